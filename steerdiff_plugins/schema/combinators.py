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
        negs = []
        for j, other in enumerate(subs):
            if j == i:
                continue
            flat = self._merge([other], ptr, base)
            if not self._disjoint(merged, flat, base, 0) and not self._outputs_fail(merged, flat, base):
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

    def _types_of(self, s):
        if s is False:
            return set()
        if not isinstance(s, dict) or "type" not in s:
            if isinstance(s, dict) and ("enum" in s or "const" in s):
                vals = [s["const"]] if "const" in s else list(s["enum"])
                return {_type_of(v) for v in vals}
            return None
        t = s["type"]
        ts = {t} if isinstance(t, str) else set(t)
        if "number" in ts:
            ts.add("integer")
        return ts

    def _disjoint(self, a, b, base, depth) -> bool:
        if depth > 4:
            return False
        a = self._deref(a, "#", base) if isinstance(a, dict) else a
        b = self._deref(b, "#", base) if isinstance(b, dict) else b
        if a is False or b is False:
            return True
        ta, tb = self._types_of(a), self._types_of(b)
        if ta is not None and tb is not None:
            if not (ta & tb) and not ({"integer", "number"} & ta and {"integer", "number"} & tb):
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

