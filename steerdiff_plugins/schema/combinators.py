"""``not`` and ``oneOf``: branch restriction and disjointness proofs, and whether two regex languages meet."""

from __future__ import annotations

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.fragments import _CONSTRAINING, _ptr, _type_of


class _Combinators:
    """``_Compiler`` methods for ``not`` and ``oneOf`` (mixed into :class:`steerdiff_plugins.schema.compiler._Compiler`)."""


    # ---- not / oneOf
    def _one_of_branch(self, merged, subs, i, ptr, base):
        """Branch i of a oneOf, restricted to instances that fail every other branch."""
        if merged is False:
            return False
        if merged is True:
            merged = {}
        if isinstance(merged, dict) and ("allOf" in merged or "$ref" in merged):
            merged = self._merge([merged], _ptr(ptr, "oneOf", i), base)  # the keywords compared below, flat
            if merged is False:
                return False
        negs = []
        for j, other in enumerate(subs):
            if j == i:
                continue
            flat = self._merge([other], ptr, base)
            if self._disjoint(merged, flat, base, 0) or self._outputs_fail(merged, flat, base):
                continue
            promoted = self._discriminated(merged, flat, base)
            if promoted is not None:  # a narrowing: the discriminating key is always written
                self.notes.append(f"{_ptr(ptr, 'oneOf', i)}: optional key {promoted[1]!r} made required (it tells "
                                  f"branch {i} from branch {j})")
                merged = promoted[0]
                continue
            negs.append(other)
        if not negs:
            return merged
        out = dict(merged)
        prev = out.pop("not", None)
        out["not"] = {"anyOf": ([prev] if prev is not None else []) + negs}
        try:
            return self._apply_not(out, _ptr(ptr, "oneOf", i), base)
        except UnsupportedSchemaError as e:
            raise UnsupportedSchemaError("oneOf", _ptr(ptr, "oneOf"), f"branch {i} overlaps another branch and its "
                                                       f"exclusion is not expressible ({e.why})") from None

    def _outputs_fail(self, mine, other, base) -> bool:
        """Whether every instance this compiler writes for ``mine`` fails ``other`` (a oneOf branch need
        not exclude what it never writes). True when ``mine`` is written as an object with declared keys
        only (object-only, not a map: see the narrowings above) and ``other`` requires a key outside them
        (such an object always lacks it), or is no object schema, or rejects a key ``mine`` requires (not
        declared under ``additionalProperties: false``, or declared with a subschema disjoint from
        ``mine``'s: a discriminator). Schema-level overlap (``_disjoint``) is not needed then."""
        if self.draft <= 3 or not isinstance(mine, dict) or not isinstance(other, dict):
            return False
        other = self._deref(other, "#", base)
        if not isinstance(other, dict) or isinstance(other.get("required"), bool):
            return False
        t = mine.get("type")
        types = ([t] if isinstance(t, str) else list(t)) if t is not None else self._infer_types(mine)
        if list(types) != ["object"]:
            return False
        req = mine.get("required") if not isinstance(mine.get("required"), bool) else []
        keys = set(mine.get("properties") or {}) | set(req or [])
        if not keys:  # written as a map: any key may appear
            return False
        if any(k not in keys for k in (other.get("required") or [])):
            self.closed_proof = True  # true of the declared keys only: the branch's objects must stay closed
            return True
        ot = self._types_of(other)
        if ot is not None and "object" not in ot:
            return True  # what mine writes is always an object
        # a key mine always writes: other rejects the object if that key is not allowed there, or if its
        # value (valid under mine's subschema for it) can never be valid under other's subschema for it
        mp, op = mine.get("properties") or {}, other.get("properties") or {}
        for k in req or []:
            if k not in op:
                if other.get("additionalProperties") is False and not other.get("patternProperties"):
                    return True
                continue
            if op[k] is False or (k in mp and self._disjoint(mp[k], op[k], base, 1)):
                return True
        return False

    def _discriminated(self, mine, other, base):
        """``(mine with one optional key made required, the key)`` such that every object written for it
        fails ``other`` (:meth:`_outputs_fail`): a key both declare whose subschemas are disjoint (a
        ``const``/``enum`` discriminator, different types), so always writing it tells the branches apart.
        A narrowing (objects without that key are not written); None when no such key exists."""
        if not isinstance(mine, dict) or not isinstance(other, dict) or isinstance(mine.get("required"), bool):
            return None
        other = self._deref(other, "#", base)
        if not isinstance(other, dict):
            return None
        mp, op = mine.get("properties") or {}, other.get("properties") or {}
        req = list(mine.get("required") or [])
        if not isinstance(mp, dict) or not isinstance(op, dict):
            return None
        for k, sub in mp.items():
            if k in req or k not in op or sub is False:
                continue
            if self._disjoint(sub, op[k], base, 1):
                cand = dict(mine, required=req + [k])
                if self._outputs_fail(cand, other, base):
                    return cand, k
        return None

    def _apply_not(self, s, ptr, base):
        """s without its 'not', narrowed so that every remaining instance fails the negated schema(s).
        Exact forms: not false/true, not of a provably disjoint schema, not {type}, not {required}."""
        n = s["not"]
        out = {k: v for k, v in s.items() if k != "not"}
        negs = n["anyOf"] if isinstance(n, dict) and set(n) == {"anyOf"} else [n]
        for b in negs:
            b = self._deref(b, ptr, base) if isinstance(b, dict) else b
            if isinstance(b, dict) and "allOf" in b:
                b = self._merge([b], ptr, base)
            if b is False:
                continue
            keys = set(b) & _CONSTRAINING if isinstance(b, dict) else set()
            if b is True or not keys:
                return False
            if self._disjoint(out, b, base, 0):
                continue
            btypes = b.get("type")
            btypes = [btypes] if isinstance(btypes, str) else btypes
            cur = out.get("type")
            cur = ([cur] if isinstance(cur, str) else list(cur)) if cur is not None else self._infer_types(out)
            if keys == {"type"}:
                if "integer" in btypes and "number" not in btypes and "number" in cur:
                    raise UnsupportedSchemaError("not", ptr, "excluding integers from numbers")
                left = [t for t in cur if t not in btypes and not (t == "integer" and "number" in btypes)]
                if not left:
                    return False
                out["type"] = left
                continue
            if keys <= {"required", "type"} and b.get("required") and (btypes is None or btypes == ["object"]):
                req = set(out.get("required") or [])
                free = [k for k in b["required"] if k not in req]
                if "object" not in cur:
                    continue
                if not free:
                    left = [t for t in cur if t != "object"]
                    if not left:
                        return False
                    out["type"] = left
                    continue
                out["type"] = ["object"]  # other types satisfy {required} and so fail the 'not'
                props = dict(out.get("properties") or {})
                props[free[-1]] = False
                out["properties"] = props
                continue
            raise UnsupportedSchemaError("not", ptr, f"negation of {sorted(keys)} is not expressible")
        return out

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
            return self._merge([s], "#", base)
        except ConstraintError:  # UnsupportedSchemaError included: compared as written
            return s

    def _disjoint(self, a, b, base, depth) -> bool:
        if depth > 4:
            return False
        a = self._flat(a, base)
        b = self._flat(b, base)
        if a is False or b is False:
            return True
        ta, tb = self._types_of(a), self._types_of(b)
        if ta is not None and tb is not None:
            if not (ta & tb) and not ({"integer", "number"} & ta and {"integer", "number"} & tb):
                return True
        if _numeric_apart(a, b, ta, tb):
            return True
        for x, y in ((a, b), (b, a)):
            if isinstance(x, dict) and ("enum" in x or "const" in x) and "allOf" not in x and "anyOf" not in x:
                vals = [x["const"]] if "const" in x else list(x["enum"])
                try:
                    if not any(self.is_valid(v, y) for v in vals):
                        return True
                except Exception:
                    pass
        if isinstance(a, dict) and isinstance(b, dict):
            ra, rb = set(a.get("required", [])), set(b.get("required", []))
            pa, pb = a.get("properties", {}) or {}, b.get("properties", {}) or {}
            objs = (ta is None or "object" in ta) and (tb is None or "object" in tb)
            if objs and (ta is not None and tb is not None) and ta == {"object"} == tb:
                for key in ra & rb:
                    if key in pa and key in pb and self._disjoint(pa[key], pb[key], base, depth + 1):
                        return True
                for x, y, rx in ((a, b, ra), (b, a, rb)):
                    if y.get("additionalProperties") is False and not y.get("patternProperties"):
                        if any(k not in (y.get("properties") or {}) for k in rx):
                            return True
        return False

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


def _languages_meet(rx_a: str, rx_b: str) -> bool:
    """Whether two regexes (full match) share a string: breadth-first search over pairs of states of their
    byte automata (``steerdiff_plugins.automata.byte_level.byte_dfa``)."""
    from steerdiff_plugins.automata.byte_level import byte_dfa

    try:
        a, b = byte_dfa(rx_a), byte_dfa(rx_b)
    except ConstraintError:  # an empty language meets nothing
        return False
    seen = {(a.start, b.start)}
    todo = [(a.start, b.start)]
    while todo:
        x, y = todo.pop()
        if a.accept[x] and b.accept[y]:
            return True
        for nx, ny in set(zip(a.trans[x].tolist(), b.trans[y].tolist())):
            if nx != a.dead and ny != b.dead and (nx, ny) not in seen:
                seen.add((nx, ny))
                todo.append((nx, ny))
    return False

