"""Merging subschemas (``allOf``, ``$ref`` siblings, ``anyOf`` with siblings, ``if``/``then`` with constant ifs)
into one, for the compiler; the types a schema admits and numeric ranges, for disjointness proofs."""

from __future__ import annotations

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.fragments import (
    _CONSTRAINING,
    _EmptyMerge,
    _ptr,
    _py_search,
    _type_of,
)
from steerdiff_plugins.schema.nodes import _json_equal, _json_key


MAX_DISTRIBUTED = 256  # branches of two anyOf (or two oneOf) lists of one allOf, distributed
CASES = "x-steerdiff-cases"  # marks an anyOf of cases of a negation (combinators._not_pieces): each case is a
# subset of the instances that fail the negated schema, so a case the compiler refuses may be left out (a narrowing)
IF_NARROWED = "x-steerdiff-if-narrowed"  # marks a merge that rewrote if/then as a union (a narrowing): such a
# schema is compiled, but never compared or negated as if it were the original (combinators checks the mark)


class _Merging:
    """``_Compiler`` methods that merge schemas (mixed into :class:`steerdiff_plugins.schema.compiler._Compiler`)."""


    # ---- merging (allOf, $ref siblings, anyOf with siblings)
    def _deref(self, s, ptr, base, seen=0):
        while isinstance(s, dict) and "$ref" in s:
            if seen > 50:
                raise UnsupportedSchemaError("$ref", ptr, "reference cycle inside allOf")
            target, _, _ = self.resolve(s["$ref"], base, _ptr(ptr, "$ref"))
            rest = {k: v for k, v in s.items() if k != "$ref"}
            if rest and self.draft >= 2019:
                s = self._merge([rest, target], ptr, base, seen + 1)
            else:
                s = target
            seen += 1
        return s

    def _merge(self, schemas, ptr, base, depth=0):
        out: dict = {}
        flat = []
        stack = list(schemas)
        while stack:
            sub = stack.pop(0)
            sub = self._deref(sub, ptr, base, depth)
            if sub is True:
                continue
            if sub is False:
                return False
            if not isinstance(sub, dict):
                raise ConstraintError(f"allOf entry at {ptr} must be a schema")
            if "allOf" in sub:
                stack = list(sub["allOf"]) + [{k: v for k, v in sub.items() if k != "allOf"}] + stack
                continue
            flat.append(sub)
        conds = [x for x in flat if "if" in x and set(x) & _CONSTRAINING <= {"if", "then", "else"}]
        if any("else" in c for c in conds) and len(conds) > 1:
            raise UnsupportedSchemaError("else", _ptr(ptr, "else"), "if/then/else together with other conditionals")
        if conds:  # if/then entries (no else): a union of the then-branches, one per if's const values
            try:
                union = [{"anyOf": self._if_branches(conds, ptr, base), IF_NARROWED: True}]
            except UnsupportedSchemaError as e:  # an if of another form: each entry as the union it equals
                if e.keyword != "if":
                    raise
                union = [_if_as_union(c) for c in conds]
                self.notes.append(f"{ptr}: if/then/else written as the union it equals ({len(conds)} entries)")
            flat = [x for x in flat if not any(x is c for c in conds)] + union
        if len(flat) > 1:
            flat = self._split_positional(flat)
        try:
            for sub in flat:
                for k, v in sub.items():
                    if k not in out:
                        out[k] = v
                        continue
                    a = out[k]
                    if k not in _CONSTRAINING or _json_equal(a, v):
                        continue
                    out[k] = self._merge_kw(k, a, v, out, sub, ptr)
        except _EmptyMerge:
            return False
        return out

    def _if_branches(self, conds, ptr, base):
        """``allOf`` entries ``{if: I_j, then: T_j}`` (or one ``{if, then, else}``) whose ifs fix object keys to constants (``I_j`` =
        ``{type: object?, properties: {key: {const}}, required?}``) as ``anyOf`` branches: branch j is the
        objects with every key of ``I_j`` present and equal to its constant (so ``I_j`` holds), satisfying
        ``T_j`` and the ``then`` of every other entry whose ``if`` is not provably false there (a key both fix
        to different constants). A narrowing: objects that lack an if's key, or match no if, are not written;
        and a ``then`` that may not apply is applied. A single entry's ``else`` (an if fixing one key) adds the
        objects whose key takes another value, under ``else``. Other ifs are refused by name and pointer."""
        keyed = []
        for c in conds:
            cond = self._deref(c["if"], ptr, base)
            fixed = {}
            ok = isinstance(cond, dict) and set(cond) & _CONSTRAINING <= {"type", "properties", "required"} \
                and cond.get("type", "object") in ("object", ["object"]) and isinstance(cond.get("properties"), dict)
            for k, sub in (cond.get("properties") or {}).items() if ok else ():
                sub = self._deref(sub, ptr, base)
                vals = [sub["const"]] if isinstance(sub, dict) and "const" in sub else \
                    sub.get("enum") if isinstance(sub, dict) else None
                if not isinstance(vals, list) or len(vals) != 1 or not self.is_valid(vals[0], sub):
                    ok = False
                    break
                fixed[k] = vals[0]
            if not ok or not fixed:
                raise UnsupportedSchemaError("if", _ptr(ptr, "if"), "conditional subschemas are supported only as "
                                                                    "if {properties: {key: {const}}} / then")
            keyed.append((fixed, c.get("then", True)))
        out = []
        for j, (fx, then) in enumerate(keyed):
            thens = [then] + [t for k, (fk, t) in enumerate(keyed) if k != j and
                              not any(key in fx and not _json_equal(fx[key], v) for key, v in fk.items())]
            out.append({"type": "object", "required": list(fx), "properties": {k: {"const": v} for k, v in fx.items()},
                        "allOf": thens})
        if "else" in conds[0]:  # one entry: the objects where its single fixed key takes another value
            if len(keyed[0][0]) != 1:
                raise UnsupportedSchemaError("else", _ptr(ptr, "else"), "else of an if that fixes several keys")
            (k, v), = keyed[0][0].items()
            out.append({"type": "object", "required": [k], "properties": {k: {"not": {"const": v}}},
                        "allOf": [conds[0]["else"]]})
        self.notes.append(f"{ptr}: if/then written as one branch per if's constants ({len(out)} branches)")
        return out

    def _split_positional(self, flat):
        """Rewrite keywords whose meaning depends on their siblings (additionalProperties, items after
        prefixItems) so that merging several schemas keeps each one's meaning."""
        flat = [dict(x) for x in flat]
        # objects: additionalProperties of one schema applies to the keys the others declare
        all_keys = []
        for sub in flat:
            for k in list(sub.get("properties") or {}) + [r for r in sub.get("required") or [] if isinstance(r, str)]:
                if k not in all_keys:
                    all_keys.append(k)
        for sub in flat:
            if "additionalProperties" in sub and sub["additionalProperties"] is not True:
                own = dict(sub.get("properties") or {})
                pats = list(sub.get("patternProperties") or {})
                for k in all_keys:
                    if k not in own and not any(_py_search(p, k, "#") for p in pats):
                        own[k] = sub["additionalProperties"]
                sub["properties"] = own
        # arrays: normalise to prefixItems + items, then let each schema's rest apply past its own prefix
        norm = []
        for sub in flat:
            pre, rest = None, None
            if isinstance(sub.get("prefixItems"), list):
                pre, rest = sub.pop("prefixItems"), sub.pop("items", None)
            elif isinstance(sub.get("items"), list):
                pre, rest = sub.pop("items"), sub.pop("additionalItems", None)
            elif "items" in sub:
                rest = sub.pop("items")
            sub.pop("additionalItems", None) if pre is None else None
            norm.append((pre or [], rest))
        plen = max(len(p) for p, _ in norm)
        if plen:
            for sub, (pre, rest) in zip(flat, norm):
                full = list(pre) + [rest if rest is not None else True] * (plen - len(pre))
                sub["prefixItems"] = full
                if rest is not None:
                    sub["items"] = rest
            merged_pre = [{"allOf": [sub["prefixItems"][i] for sub in flat]} for i in range(plen)]
            for sub in flat:
                sub["prefixItems"] = merged_pre
        else:
            for sub, (pre, rest) in zip(flat, norm):
                if rest is not None:
                    sub["items"] = rest
        return flat

    def _merge_kw(self, k, a, b, left, right, ptr):
        if k == "type":
            la = [a] if isinstance(a, str) else list(a)
            lb = [b] if isinstance(b, str) else list(b)
            res = [t for t in la if t in lb]
            res += [t for t in ("integer",) if ("number" in la and "integer" in lb) or ("integer" in la and "number" in lb)]
            return list(dict.fromkeys(res))
        if k == "required":
            return list(dict.fromkeys(list(a) + list(b)))
        if k in ("minimum", "minLength", "minItems", "minProperties"):
            return max(a, b)
        if k in ("maximum", "maxLength", "maxItems", "maxProperties"):
            return min(a, b)
        if k in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(a, bool) and not isinstance(b, bool):
            return max(a, b) if k == "exclusiveMinimum" else min(a, b)
        if k == "enum":
            keys = {_json_key(y) for y in b}  # _json_equal membership, linear
            return [x for x in a if _json_key(x) in keys]
        if k == "const":
            raise _EmptyMerge()
        if k == "properties":
            res = dict(a)
            for pk, pv in b.items():
                res[pk] = {"allOf": [res[pk], pv]} if pk in res else pv
            return res
        if k == "items" and isinstance(a, (dict, bool)) and isinstance(b, (dict, bool)):
            return {"allOf": [a, b]}
        if k == "additionalProperties" and isinstance(a, (dict, bool)) and isinstance(b, (dict, bool)):
            # only sound when both sides declare the same properties
            if set(left.get("properties", {})) == set(right.get("properties", {})):
                return {"allOf": [a, b]}
        if k == "uniqueItems":
            return bool(a) or bool(b)
        if k == "not":
            la = a["anyOf"] if isinstance(a, dict) and set(a) == {"anyOf"} else [a]
            return {"anyOf": la + [b]}
        if k in ("anyOf", "oneOf") and isinstance(a, list) and isinstance(b, list):
            # distributed: an instance satisfies m branches of one list and n of the other iff it satisfies
            # m*n of the pairs, so anyOf x anyOf = anyOf of pairs (m*n >= 1) and oneOf x oneOf = oneOf (m*n == 1)
            if len(a) * len(b) > MAX_DISTRIBUTED:
                raise UnsupportedSchemaError("allOf", ptr, f"two {k} lists would need distributing into "
                                                           f"{len(a) * len(b)} branches (at most {MAX_DISTRIBUTED})")
            return [{"allOf": [x, y]} for x in a for y in b]
        raise UnsupportedSchemaError("allOf", ptr, f"cannot merge differing {k!r} values")

    # ---- schemas compared as written or flat (combinators._disjoint)
    def _types_of(self, s, depth=0):
        """The JSON types ``s`` admits (``number`` includes ``integer``), or None when unknown. A schema
        without ``type`` admits the union of its ``anyOf``/``oneOf`` branches' types when all are known."""
        if s is False:
            return set()
        if not isinstance(s, dict) or "type" not in s:
            if isinstance(s, dict) and ("enum" in s or "const" in s):
                vals = [s["const"]] if "const" in s else list(s["enum"])
                return {_type_of(v) for v in vals}
            if isinstance(s, dict) and depth < 4:
                for kw in ("anyOf", "oneOf"):
                    subs = s.get(kw)
                    if isinstance(subs, list) and subs:
                        out = set()
                        for b in subs:
                            if isinstance(b, dict) and "$ref" in b:
                                try:
                                    b = self._deref(b, "#", "")
                                except ConstraintError:  # UnsupportedSchemaError included
                                    return None
                            t = self._types_of(b, depth + 1)
                            if t is None:
                                return None
                            out |= t
                        return out
            return None
        t = s["type"]
        ts = {t} if isinstance(t, str) else set(t)
        if "number" in ts:
            ts.add("integer")
        return ts

    def _flat(self, s, base):
        """``s`` with its ``$ref`` and ``allOf`` merged in (``s`` itself when that cannot be done)."""
        if not isinstance(s, dict) or not ("$ref" in s or "allOf" in s):
            return s
        try:
            out = self._merge([s], "#", base)
        except ConstraintError:  # UnsupportedSchemaError included: compared as written
            return s
        return s if isinstance(out, dict) and IF_NARROWED in out else out  # a narrowing: compared as written


def _if_as_union(c):
    """``{if: I, then: T, else: E}`` as the ``anyOf`` it equals: ``[I and T, not I and E]``; without ``else``
    ``[not I, T]`` (an instance satisfying I satisfies T, or it fails I)."""
    cond, then = c["if"], c.get("then", True)
    if "else" not in c:
        return {"anyOf": [{"not": cond}, then]}
    return {"anyOf": [{"allOf": [cond, then]}, {"allOf": [{"not": cond}, c["else"]]}]}


def _interval(s):
    """``(lo, lo_inclusive, hi, hi_inclusive)`` of a schema's numeric bounds (draft 4-2020 spellings); None
    for a bound that is absent."""
    lo = hi = None
    lo_in = hi_in = True
    for kw in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        v = s.get(kw)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        excl = kw.startswith("exclusive") or s.get("exclusive" + kw[0].upper() + kw[1:]) is True
        if "inimum" in kw and (lo is None or v > lo or (v == lo and excl)):
            lo, lo_in = v, not excl
        elif "aximum" in kw and (hi is None or v < hi or (v == hi and excl)):
            hi, hi_in = v, not excl
    return lo, lo_in, hi, hi_in


def _numeric_apart(a, b, ta, tb) -> bool:
    """Whether no instance satisfies both ``a`` and ``b`` because one admits numbers only (``ta``/``tb``:
    their known types) and their numeric bounds do not meet."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    if not any(t is not None and t and t <= {"integer", "number"} for t in (ta, tb)):
        return False
    alo, alo_in, ahi, ahi_in = _interval(a)
    blo, blo_in, bhi, bhi_in = _interval(b)
    for lo, lo_in, hi, hi_in in ((alo, alo_in, bhi, bhi_in), (blo, blo_in, ahi, ahi_in)):
        if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lo_in and hi_in))):
            return True
    return False
