"""Arrays and objects (maps, ``patternProperties``, ``propertyNames``) for the schema compiler, and what the
objects a ``oneOf`` branch writes are proved to fail (``_outputs_fail``, ``_discriminated``)."""

from __future__ import annotations

import re

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.canvas_bounds import fit_count
from steerdiff_plugins.schema.combinators import _languages_meet
from steerdiff_plugins.schema.merge import IF_NARROWED
from steerdiff_plugins.schema.fragments import (
    STRING,
    _count_bounds,
    _ptr,
    _py_search,
    _TooDeep,
)
from steerdiff_plugins.schema.nodes import AnyValue, Arr, Empty, Lit, Obj
from steerdiff_plugins.schema.pattern import _matches_every_string, _PatternError, pattern_to_regex


_MAX_KEYED = 32  # values of the enum key that tells apart the items of a uniqueItems array of objects


def _keyed_alternatives(items):
    """For ``uniqueItems`` over objects: one copy of the object node ``items`` per value of its first
    required key whose node is an enum (``Lit``) of 2..``_MAX_KEYED`` values, that key fixed to the value;
    None when there is no such key. Items drawn from distinct copies differ at that key, so an ordered
    selection of copies (``Arr.unique_alts``) holds distinct items: a narrowing (each value at most once, in
    enum order; items equal at that key are never written together)."""
    if not isinstance(items, Obj) or items.map_value is not None:
        return None
    for k, node, req in items.props:
        if req and isinstance(node, Lit) and 2 <= len(node.values) <= _MAX_KEYED:
            return [Obj([(k2, Lit([v]) if k2 == k else n2, r2) for k2, n2, r2 in items.props]) for v in node.values]
    return None


class _Containers:
    """``_Compiler`` methods for arrays and objects (mixed into :class:`steerdiff_plugins.schema.compiler._Compiler`)."""

    any_depth = 0  # levels any-value nodes nest beyond max_depth's (set by compiled.compile_tree)
    # compile_tree(any_depth=None): any values have no depth bound (the grammar engine writes them, tree_to_lark);
    # untyped schemas keep every type at any nesting; any_used records that the tree holds such a value
    unbounded_any = False
    any_used = False

    def _any(self, cap: int | None = None) -> AnyValue:
        """Any JSON value at the current nesting: ``max_depth - nest + any_depth`` levels deep (at most ``cap +
        any_depth``: the undeclared keys' ``EXTRA_DEPTH``); deeper values are left out (a narrowing). The node's
        regex keeps that bound; with ``unbounded_any`` only the grammar engine, which has none, writes the tree."""
        self.any_used = True
        d = max(0, self.max_depth + self.any_depth - self.nest)
        return AnyValue(d if cap is None else min(cap + self.any_depth, d), self.max_items)

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
                    items = self.node(items_s, p, base) if items_kw else self._any()
                finally:
                    self.nest -= 1
            except _TooDeep:
                if lo > len(prefix):
                    raise
                self.notes.append(f"{p}: recursion beyond max_depth, no further items")
                items = None
        unique = s.get("uniqueItems") is True
        unique_enum, unique_alts = False, None
        if unique:
            max_len = hi if hi is not None else (None if items is not None else len(prefix))
            if max_len is not None and max_len <= 1:
                pass
            elif not prefix and isinstance(items, Lit) and lo <= 1 and (hi is None or hi >= len(items.values)):
                unique_enum = True
            elif not prefix and lo <= 1 and (unique_alts := _keyed_alternatives(items)) is not None and \
                    (hi is None or hi >= len(unique_alts)):
                unique_enum = True
                self.notes.append(f"{_ptr(ptr, 'uniqueItems')}: items written with distinct values of their "
                                  f"required enum key, in enum order")
            else:
                raise UnsupportedSchemaError("uniqueItems", _ptr(ptr, "uniqueItems"),
                                             "uniqueness of arbitrary items is not regular "
                                             "(supported: at most one item, arrays of enum values, or of objects "
                                             f"with a required enum key of at most {_MAX_KEYED} values)")
        if hi is None and self.max_items is not None and not unique_enum:
            hi = max(lo, self.max_items)
        lo, hi = self._fit(lo, hi, 2, ptr, "minItems")  # an item past the first writes a comma and a byte
        if hi is not None and hi < lo:
            return Empty()
        a = Arr(prefix, items, lo, hi, unique_enum=unique_enum)
        a.unique_alts = unique_alts
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
        return Obj(entries, extra=self._extra_keys(s, ptr, base))

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
                value = self.node(vs, ptr, base) if vs is not None else self._any()
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

    # ---- objects compared for oneOf (combinators._one_of_branch)
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
        if not isinstance(other, dict) or isinstance(other.get("required"), bool) or IF_NARROWED in other:
            return False
        t = mine.get("type")
        types = ([t] if isinstance(t, str) else list(t)) if t is not None else self._infer_types(mine)
        if list(types) != ["object"]:
            return False
        req = mine.get("required") if not isinstance(mine.get("required"), bool) else []
        keys = set(mine.get("properties") or {}) | set(req or [])
        if not keys:  # written as a map: any key may appear
            return False
        keys -= _never_written(mine) - set(req or [])  # not {required: [k]}: k is never written (combinators)
        if any(k not in keys for k in (other.get("required") or [])):
            self.closed_proof = True  # true of the declared keys only: the branch's objects must stay closed
            return True
        if set(req or []) and any(r and set(r) <= set(req) for r in _never_written_sets(other)):
            return True  # other's not {required: [...]} fails on keys mine always writes
        ot = self._types_of(other)
        if ot is not None and "object" not in ot:
            return True  # what mine writes is always an object
        # a key mine always writes: other rejects the object if that key is not allowed there, or if its
        # value (valid under mine's subschema for it) can never be valid under other's subschema for it
        mp, op = mine.get("properties") or {}, other.get("properties") or {}
        for k in req or []:
            if k not in op:
                hits = [(_search(p, k), ps) for p, ps in (other.get("patternProperties") or {}).items()]
                if any(h is None for h, _ in hits):
                    continue  # a pattern Python does not compile: unknown
                pats = [ps for h, ps in hits if h]
                addl = other.get("additionalProperties", True)
                if any(self._disjoint(mp.get(k, True), ps, base, 1) for ps in pats) or \
                        (not pats and (addl is False or (isinstance(addl, dict) and self._disjoint(mp.get(k, True), addl, base, 1)))):
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
        if not isinstance(other, dict) or IF_NARROWED in other:
            return None
        mp, op = mine.get("properties") or {}, other.get("properties") or {}
        req = list(mine.get("required") or [])
        if not isinstance(mp, dict) or not isinstance(op, dict):
            return None
        for declared_both in (True, False):  # a key both declare (disjointly) first, then one other rejects
            for k, sub in mp.items():
                if k in req or sub is False or (k in op) != declared_both:
                    continue
                if not declared_both or self._disjoint(sub, op[k], base, 1):
                    cand = dict(mine, required=req + [k])
                    if self._outputs_fail(cand, other, base):
                        return cand, k
        return None


def _search(pattern, key):
    """Whether ``re.search(pattern, key)`` matches, as python-jsonschema reads ``patternProperties``; None
    when the pattern does not compile."""
    import re

    try:
        return re.search(pattern, key) is not None
    except (re.error, TypeError):
        return None


def _never_written_sets(s):
    """The key lists ``R`` of a schema's ``not: {required: R}`` (or ``not: {anyOf: [{required: R}, ...]}``):
    an object valid under it lacks at least one key of each."""
    n = s.get("not") if isinstance(s, dict) else None
    negs = n["anyOf"] if isinstance(n, dict) and set(n) == {"anyOf"} else [n]
    return [b["required"] for b in negs if isinstance(b, dict) and set(b) == {"required"}
            and isinstance(b["required"], list) and b["required"]]


def _never_written(s) -> set:
    """Keys ``combinators._apply_not`` never writes for ``not: {required: [k]}`` (single-key lists)."""
    return {r[0] for r in _never_written_sets(s) if len(r) == 1}

