"""Arrays and objects (maps, ``patternProperties``, ``propertyNames``) for the schema compiler."""

from __future__ import annotations

import re

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.canvas_bounds import fit_count
from steerdiff_plugins.schema.combinators import _languages_meet
from steerdiff_plugins.schema.fragments import (
    STRING,
    _count_bounds,
    _ptr,
    _py_search,
    _TooDeep,
)
from steerdiff_plugins.schema.nodes import AnyValue, Arr, Empty, Lit, Obj
from steerdiff_plugins.schema.pattern import _matches_every_string, _PatternError, pattern_to_regex


class _Containers:
    """``_Compiler`` methods for arrays and objects (mixed into :class:`steerdiff_plugins.schema.compiler._Compiler`)."""


    # ---- arrays
    def _array(self, s, ptr, base):
        lo, hi = _count_bounds(s, ptr, "minItems", "maxItems")
        prefix_s, items_s, items_kw = [], True, None
        if isinstance(s.get("prefixItems"), list):
            prefix_s = s["prefixItems"]
            pkw = "prefixItems"
            if "items" in s:
                items_s, items_kw = s["items"], "items"
        elif isinstance(s.get("items"), list):
            prefix_s, pkw = s["items"], "items"
            if "additionalItems" in s:
                items_s, items_kw = s["additionalItems"], "additionalItems"
        else:
            pkw = None
            if "items" in s:
                items_s, items_kw = s["items"], "items"
        prefix = []
        for i, sub in enumerate(prefix_s):
            p = _ptr(ptr, pkw, i)
            try:
                self.nest += 1
                try:
                    prefix.append(self.node(sub, p, base))
                finally:
                    self.nest -= 1
            except _TooDeep:
                if i < lo:
                    raise
                self.notes.append(f"{p}: recursion beyond max_depth, array cut before this position")
                prefix.append(Empty())
                break
        items = None
        if items_s is not False:
            p = _ptr(ptr, items_kw) if items_kw else ptr
            try:
                self.nest += 1
                try:
                    items = self.node(items_s, p, base) if items_kw else AnyValue(
                        max(0, self.max_depth - self.nest), self.max_items)
                finally:
                    self.nest -= 1
            except _TooDeep:
                if lo > len(prefix):
                    raise
                self.notes.append(f"{p}: recursion beyond max_depth, no further items")
                items = None
        unique = s.get("uniqueItems") is True
        unique_enum = False
        if unique:
            max_len = hi if hi is not None else (None if items is not None else len(prefix))
            if max_len is not None and max_len <= 1:
                pass
            elif not prefix and isinstance(items, Lit) and lo <= 1 and (hi is None or hi >= len(items.values)):
                unique_enum = True
            else:
                raise UnsupportedSchemaError("uniqueItems", _ptr(ptr, "uniqueItems"),
                                             "uniqueness of arbitrary items is not regular "
                                             "(supported: at most one item, or arrays of enum values)")
        if hi is None and self.max_items is not None and not unique_enum:
            hi = max(lo, self.max_items)
        lo, hi = self._fit(lo, hi, 2, ptr, "minItems")  # an item past the first writes a comma and a byte
        if hi is not None and hi < lo:
            return Empty()
        a = Arr(prefix, items, lo, hi, unique_enum=unique_enum)
        if unique_enum and lo == 1:
            a.lo = 1
        return a

    # ---- objects
    def _object(self, s, ptr, base):
        props = s.get("properties", {}) or {}
        if not isinstance(props, dict):
            raise ConstraintError(f"properties at {ptr} must be an object")
        required = list(s.get("required", []) or []) if not isinstance(s.get("required"), bool) else []
        if self.draft <= 3:
            required = [k for k, v in props.items() if isinstance(v, dict) and v.get("required") is True]
        addl = s.get("additionalProperties", True)
        pprops = pp_declared = s.get("patternProperties") or {}
        if pprops and "|".join(pprops) == "":  # python-jsonschema finds additional properties by searching the
            # joined patterns, and an empty join finds none: every undeclared key is additional as well
            addl = False if addl is False else (pprops[""] if addl is True else {"allOf": [addl, pprops[""]]})
            pprops = {}
        deps = dict(s.get("dependentRequired") or {})
        for k, v in (s.get("dependencies") or {}).items():
            deps[k] = v
        # propertyNames: check declared keys
        pnames = s.get("propertyNames")
        order = list(props)
        for r in required:
            if r not in props:
                if addl is False and not any(re.search(p, r) for p in pprops):
                    return Empty()
                order.append(r)
        required_set = set(required)
        # dependencies: make dependents required when the trigger may appear
        for trig, dep in deps.items():
            if trig not in order:
                continue
            if isinstance(dep, list) and all(d in order for d in dep):
                if trig in required_set:
                    required_set |= set(dep)
                else:
                    required_set |= set(dep)
            else:
                if trig in required_set:
                    raise UnsupportedSchemaError("dependencies", _ptr(ptr, "dependencies", trig),
                                                 "schema dependency on a required property")
                order.remove(trig)
                self.notes.append(f"{ptr}: optional property {trig!r} dropped (dependency not expressible)")
        if pnames is not None:
            for k in list(order):
                if not self.is_valid(k, pnames):
                    if k in required_set:
                        return Empty()
                    order.remove(k)
        minp, maxp = s.get("minProperties"), s.get("maxProperties")
        is_map = not order and (addl is not False or bool(pprops))  # counted in _map
        if minp is not None and len(required_set & set(order)) < minp and not is_map:
            need = minp - len(required_set & set(order))
            opt = [k for k in order if k not in required_set]
            if len(opt) < need:
                if addl is not False or pprops:
                    raise UnsupportedSchemaError("minProperties", _ptr(ptr, "minProperties"),
                                                 "needs more properties than the schema declares")
                return Empty()
            required_set |= set(opt[:need])
        if maxp is not None and len(order) > maxp:
            nreq = len(required_set & set(order))
            if nreq > maxp:
                return Empty()
            keep = maxp - nreq
            opt = [k for k in order if k not in required_set]
            for k in opt[keep:]:
                order.remove(k)
        entries = []
        for k in order:
            p = _ptr(ptr, "properties", k)
            sub = props.get(k)
            extra = [ps for pat, ps in (pp_declared if k in props else pprops).items() if _py_search(pat, k, ptr)]
            if sub is None:
                sub = addl if (addl is not True and not extra) else True
            if extra:
                sub = {"allOf": [sub] + extra}
            req = k in required_set
            try:
                self.nest += 1
                try:
                    node = self.node(sub, p, base)
                finally:
                    self.nest -= 1
            except _TooDeep:
                if req:
                    raise
                self.notes.append(f"{p}: recursion beyond max_depth={self.max_depth}, property dropped")
                continue
            if node.empty and req:
                return Empty()
            entries.append((k, node, req))
        if not order:
            # a map: no declared properties
            if deps:
                kw = "dependentRequired" if "dependentRequired" in s else "dependencies"
                raise UnsupportedSchemaError(kw, _ptr(ptr, kw), "dependencies on an object without declared "
                                                                "properties")
            if pprops:
                pat, key, psub = self._map_pattern(pprops, ptr)
                return self._map(key, psub, _ptr(ptr, "patternProperties", pat), base, pnames, minp, maxp,
                                 key_any=_matches_every_string(pat))
            if addl is False:
                return Obj([])
            vs = addl if addl is not True else None
            return self._map(STRING, vs, _ptr(ptr, "additionalProperties"), base, pnames, minp, maxp)
        return Obj(entries)

    def _map_pattern(self, pprops: dict, ptr: str):
        """The keys a map of ``patternProperties`` is generated with: ``(pattern, key regex, value schema)``.

        Keys come from one pattern only (a narrowing: keys that match no pattern, which
        ``additionalProperties`` would govern, are never generated). A key may also match other patterns,
        and then its value must satisfy their schemas too: the value schema is the ``allOf`` of the chosen
        pattern's schema and of every other pattern whose key language meets it (checked exactly on the
        byte automata of the two key languages), for every generated key (a narrowing for keys that match
        the chosen pattern only). The first pattern, in order, that compiles is chosen."""
        keys = {}
        why = None
        for pat in pprops:
            try:
                keys[pat] = pattern_to_regex(pat)
            except _PatternError as e:
                why = why or f"{pat!r}: {e}"
        if not keys:
            raise UnsupportedSchemaError("patternProperties", _ptr(ptr, "patternProperties"), why or "no pattern")
        pat = next(iter(keys))
        for q in pprops:
            if q not in keys:  # its keys may overlap the chosen pattern's, and that cannot be checked
                raise UnsupportedSchemaError("patternProperties", _ptr(ptr, "patternProperties", q),
                                             f"another key pattern that cannot be compiled ({why})")
        meets = [pprops[q] for q in pprops if q != pat and _languages_meet(keys[pat], keys[q])]
        psub = {"allOf": [pprops[pat]] + meets} if meets else pprops[pat]
        return pat, '"' + keys[pat] + '"', psub

    def _map(self, key, vs, ptr, base, pnames, minp, maxp, key_any=True):
        """A map of ``key`` (a key regex with its quotes; ``key_any``: it is every JSON string) to ``vs``.
        ``propertyNames`` narrows ``key`` to the names it accepts (exact over any-key maps: the key is then
        the compiled string schema). ``maxProperties`` bounds the entries (a text of at most n entries has at
        most n distinct keys: exact up to duplicate keys, which are never needed); ``minProperties: 1`` asks
        for one entry; more is refused (duplicate keys would count once)."""
        if pnames is not None:
            if not key_any:
                raise UnsupportedSchemaError("propertyNames", ptr, "propertyNames on a map whose keys come "
                                                                   "from a pattern (no regex intersection)")
            knode = self.node({"allOf": [{"type": "string"}, pnames]}, _ptr(ptr, "propertyNames"), base)
            if knode.empty:
                return Empty() if minp else Obj([])
            key = knode.regex()
        if minp is not None and minp > 1:
            raise UnsupportedSchemaError("minProperties", ptr, "duplicate keys make counting keys non-regular "
                                                               "(minProperties above 1 on a map)")
        if maxp is not None and maxp == 0:
            return Empty() if minp else Obj([])
        if maxp is not None and fit_count(0, maxp, 5, self.cap)[1] is None:
            maxp = None  # an entry past the first writes at least ',"":0': no canvas text holds more than maxp
        try:
            self.nest += 1
            try:
                value = self.node(vs, ptr, base) if vs is not None else AnyValue(
                    max(0, self.max_depth - self.nest), self.max_items)
            finally:
                self.nest -= 1
        except _TooDeep:
            if minp:
                raise
            self.notes.append(f"{ptr}: recursion beyond max_depth, map kept empty")
            return Obj([])
        if value.empty:
            return Empty() if minp else Obj([])
        return Obj([], map_key=key, map_value=value, map_lo=1 if minp else 0, map_hi=maxp)

