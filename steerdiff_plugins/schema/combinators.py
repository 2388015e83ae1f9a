"""``not`` and ``oneOf``: branch restriction and disjointness proofs, and whether two regex languages meet.
String languages over characters (exclusion, disjointness) are in ``char_languages``."""

from __future__ import annotations

import math

from steerdiff.errors import AutomatonTooLarge, ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.compile_budget import (
    CompileBudgetExceeded,
    CompileDeadlineExceeded,
    check_deadline,
    current_pointer,
)
from steerdiff_plugins.schema.char_languages import (
    _ANYSTAR,
    _MAX_RX,
    _MAX_STATES,
    _UNIV,
    _pattern_tree,
    _TooLarge,
    _value_tree,
    format_tree,
    string_language,
    strings_meet,
)
from steerdiff_plugins.schema.merge import CASES, IF_NARROWED, MAX_DISTRIBUTED, _interval, _numeric_apart
from steerdiff_plugins.schema.nodes import _json_equal
from steerdiff_plugins.schema.fragments import (
    _ARRAY_KW,
    _CONSTRAINING,
    _NUMBER_KW,
    _OBJECT_KW,
    _STRING_KW,
    _ptr,
)

_STR_NEG_KEYS = {"type", "pattern", "minLength", "maxLength", "enum", "const"}
_TYPED_KW = _OBJECT_KW | _ARRAY_KW | _NUMBER_KW | _STRING_KW | {"properties", "required"}


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
        mine_flat = self._flat(subs[i], base)
        for j, other in enumerate(subs):
            if j == i:
                continue
            flat = self._flat(other, base)
            if _json_equal(mine_flat, flat):
                return False  # an instance valid under one is valid under both: no instance is valid here
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
            res = self._apply_not(out, _ptr(ptr, "oneOf", i), base)
            if isinstance(res, dict) and "not" in res and not ("enum" in res or "const" in res) and \
                    "string" in (self._types_of(res) or {"string"}):
                self._string(res, _ptr(ptr, "oneOf", i))  # the exclusion is built (and kept) now, to refuse it as oneOf
            return res
        except UnsupportedSchemaError as e:
            raise UnsupportedSchemaError("oneOf", _ptr(ptr, "oneOf"), f"branch {i} overlaps another branch and its "
                                                       f"exclusion is not expressible ({e.why})") from None

    def _apply_not(self, s, ptr, base):
        """s without its 'not', narrowed so that every remaining instance fails the negated schema(s).
        Exact forms: not false/true, not of a provably disjoint schema, not {type}, not {required}."""
        n = s["not"]
        out = {k: v for k, v in s.items() if k != "not"}
        negs = n["anyOf"] if isinstance(n, dict) and set(n) == {"anyOf"} else [n]
        if "enum" in out or "const" in out:
            return s  # _enum keeps the values that fail every negated schema (python-jsonschema decides)
        strnegs, unions = [], []
        for b in negs:
            b = self._deref(b, ptr, base) if isinstance(b, dict) else b
            if isinstance(b, dict) and "allOf" in b:
                b = self._merge([b], ptr, base)
                if isinstance(b, dict) and IF_NARROWED in b:
                    raise UnsupportedSchemaError("not", ptr, "negation of if/then")
            if b is False:
                continue
            keys = set(b) & _CONSTRAINING if isinstance(b, dict) else set()
            if b is True or not keys:
                return False
            if self._disjoint(out, b, base, 0):
                continue
            if isinstance(b, dict) and all(_implies(out, b, k) for k in keys):
                return False  # out has every constraint of b: each of its instances satisfies b
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
            vals = [b["const"]] if "const" in b else b.get("enum")
            if keys <= _STR_NEG_KEYS and (btypes is None or btypes == ["string"]) and self._str_parts(b) is not None \
                    and ("string" in cur or vals is None):
                if btypes is None and vals is None:  # every non-string satisfies b: only strings are left
                    if "string" not in cur:
                        return False
                    out["type"] = cur = ["string"]
                elif vals is not None and any(not isinstance(v, str) for v in vals) and set(cur) - {"string"}:
                    raise UnsupportedSchemaError("not", ptr, "negation of an enum with values that are not strings")
                if "string" in cur:
                    strnegs.append(b)  # excluded by _string_not, over characters
                continue
            req = [k for k in out.get("required") or [] if k in (out.get("properties") or {})]
            if keys <= {"enum", "const", "type"} and isinstance(vals, list) and list(cur) == ["object"] and req:
                # objects unequal to every listed one: the first required declared key never takes their values
                kv = [v[req[0]] for v in vals if isinstance(v, dict) and req[0] in v]
                if kv:
                    props = dict(out["properties"])
                    props[req[0]] = {"allOf": [props[req[0]], {"not": {"enum": kv}}]}
                    out["properties"] = props
                continue
            pieces, dropped = self._not_pieces(b, out, cur, base)
            pieces = [p for p in pieces if not _empty_with(out, p)]
            if not pieces and not dropped:
                return False  # every instance of out satisfies b
            if not pieces:
                raise UnsupportedSchemaError("not", ptr, f"negation of {sorted(keys)} is not expressible"
                                                         + (f" (left out: {'; '.join(dropped)})" if dropped else ""))
            if dropped:
                self.notes.append(f"{ptr}: negation of {sorted(keys)} written as {len(pieces)} cases; narrowed, "
                                  f"left out: {'; '.join(dropped)}")
            unions.append(pieces)
        if strnegs:
            out["not"] = {"anyOf": strnegs} if len(strnegs) > 1 else strnegs[0]
        if unions:  # out and one of the cases of each union (merge distributes them, bounded)
            self._cap(unions, MAX_DISTRIBUTED // max(1, len(out.get("anyOf") or [])), ptr)
            return {"allOf": [out] + [{"anyOf": u, CASES: True} for u in unions]}
        return out

    def _cap(self, unions, room, where):
        """Leave out the last cases of the longest of ``unions`` (lists of cases, one of each to hold) until
        their combinations are at most ``room`` (a narrowing, noted)."""
        cut = 0
        while math.prod(len(u) for u in unions) > room and max(len(u) for u in unions) > 1:
            max(unions, key=len).pop()
            cut += 1
        if cut:
            self.notes.append(f"{where}: negation narrowed: {cut} of its cases left out (at most {room} combined)")

    def _not_pieces(self, b, out, cur, base, depth=0):
        """``(pieces, dropped)``: schemas whose union is a subset of the instances of types ``cur`` that fail
        ``b``, each a way to fail it: a type ``b`` does not admit; for objects a required key absent, a key
        ``b`` declares present with a value failing its schema, a key ``out`` declares that ``b``'s
        ``additionalProperties``/``patternProperties`` govern present with a failing value, a count bound
        crossed; for arrays a count bound crossed; any instance satisfying ``b``'s ``not``; the instances
        failing every branch of its ``anyOf``/``oneOf`` (for oneOf, those satisfying two are left out).
        Other failures are left out (``dropped`` names them): the union is exact without them."""
        from steerdiff_plugins.schema.fragments import _py_search

        b = self._flat(self._deref(b, "#", base), base)
        if b is False or b is True:
            return ([{}] if b is False else []), []
        if IF_NARROWED in b:
            return [], ["if/then"]
        bt = b.get("type")
        btypes = None if bt is None else [bt] if isinstance(bt, str) else list(bt)
        pieces, dropped = [], []
        for t in cur:
            if btypes is not None and t not in btypes and not (t == "integer" and "number" in btypes):
                if t == "number" and "integer" in btypes:
                    dropped.append("numbers that are not integers")
                else:
                    pieces.append({"type": t})
                continue
            if t == "object" and not out.get("properties") and (out.get("patternProperties") or isinstance(
                    out.get("additionalProperties"), dict)):  # a map: a case naming keys would close it
                dropped.append("keys of a map")
                if b.get("minProperties", 0) >= 1:
                    pieces.append({"type": "object", "maxProperties": b["minProperties"] - 1})
                if "maxProperties" in b:
                    pieces.append({"type": "object", "minProperties": b["maxProperties"] + 1})
            elif t == "object":
                props = out.get("properties") or {}
                bprops, bpats = b.get("properties") or {}, b.get("patternProperties") or {}
                for r in b.get("required") or []:
                    pieces.append({"type": "object", "properties": {r: False}})
                for k, sub in bprops.items():
                    if sub is not True and not (isinstance(sub, dict) and not set(sub) & _CONSTRAINING):
                        pieces.append({"type": "object", "required": [k], "properties": {k: {"not": sub}}})
                addl = b.get("additionalProperties", True)
                for k in props if addl is not True else ():
                    if k not in bprops and not any(_py_search(p, k, "#") for p in bpats):
                        pieces.append({"type": "object", "required": [k]} if addl is False else
                                      {"type": "object", "required": [k], "properties": {k: {"not": addl}}})
                for pat, sub in bpats.items():
                    for k in props:
                        if _py_search(pat, k, "#") and sub is not True:
                            pieces.append({"type": "object", "required": [k], "properties": {k: {"not": sub}}})
                if b.get("minProperties", 0) >= 1:
                    pieces.append({"type": "object", "maxProperties": b["minProperties"] - 1})
                if "maxProperties" in b:
                    pieces.append({"type": "object", "minProperties": b["maxProperties"] + 1})
                dropped += [k for k in sorted(set(b) & _OBJECT_KW) if k not in (
                    "properties", "required", "additionalProperties", "patternProperties", "minProperties",
                    "maxProperties")]
            elif t == "array":
                if b.get("minItems", 0) >= 1:
                    pieces.append({"type": "array", "maxItems": b["minItems"] - 1})
                if "maxItems" in b:
                    pieces.append({"type": "array", "minItems": b["maxItems"] + 1})
                dropped += [k for k in sorted(set(b) & _ARRAY_KW) if k not in ("minItems", "maxItems")]
            elif t in ("number", "integer"):
                lo, lo_in, hi, hi_in = _interval(b)
                if lo is not None:  # below the lower bound
                    pieces.append({"type": t, ("exclusiveMaximum" if lo_in else "maximum"): lo})
                if hi is not None:
                    pieces.append({"type": t, ("exclusiveMinimum" if hi_in else "minimum"): hi})
                dropped += sorted(k for k in set(b) & _NUMBER_KW if k not in (
                    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
            else:
                dropped += sorted(set(b) & (_STRING_KW if t == "string" else set()))
        if "not" in b:
            pieces.append(b["not"])
        for kw in ("anyOf", "oneOf"):
            if isinstance(b.get(kw), list):
                each = [self._not_pieces(x, out, cur, base, depth + 1) if depth < 3 else ([], [kw])
                        for x in b[kw]]
                dropped += [d for _, ds in each for d in ds] + (["two oneOf branches at once"] if kw == "oneOf" else [])
                if all(ps for ps, _ in each):
                    unions = [list(ps) for ps, _ in each]
                    self._cap(unions, MAX_DISTRIBUTED, f"{kw} of a negated schema")
                    pieces.append({"allOf": [{"anyOf": u, CASES: True} for u in unions]})
                if kw == "oneOf":  # a type two branches constrain in no way: all of it satisfies both
                    flat = [self._flat(self._deref(x, "#", base), base) for x in b[kw]]
                    pieces += [{"type": t} for t in cur if sum(_vacuous_for(x, t) for x in flat) >= 2]
        dropped += sorted(k for k in ("enum", "const", "if", "dependencies", "dependentSchemas") if k in b)
        return pieces, dropped

    def _str_parts(self, b, mode="sup"):
        """Trees (see ``_pattern_tree``) whose intersection is the set of strings valid under ``b``
        (``mode`` "sup": a superset, "sub": a subset), or None when a keyword of ``b`` is not read here
        (a format, a combinator, a pattern the automaton reader refuses)."""
        from steerdiff_plugins.schema.fragments import _KNOWN_FORMATS, _STRING_KW
        from steerdiff_plugins.schema.pattern import _PatternError

        if not isinstance(b, dict):
            return None if b is not False else [("alt", [])]
        if set(b) & _CONSTRAINING - _STR_NEG_KEYS - (_TYPED_KW - _STRING_KW) - {"format"}:
            return None
        fmt = b.get("format")
        if fmt in _KNOWN_FORMATS and (mode == "sup" or format_tree(fmt) is None):
            return None  # a format regex is a narrowing: read as a subset only
        bt = b.get("type")
        if bt is not None and "string" not in ([bt] if isinstance(bt, str) else bt):
            return [("alt", [])]
        parts = []
        if "enum" in b or "const" in b:
            vals = [b["const"]] if "const" in b else b["enum"]
            if not isinstance(vals, list):
                return None
            parts.append(_value_tree([v for v in vals if isinstance(v, str)]))
        lo, hi = b.get("minLength", 0), b.get("maxLength")
        if lo or hi is not None:
            parts.append(("rep", int(lo), None if hi is None else int(hi), ("set", _UNIV)))
        if "pattern" in b:
            try:
                parts.append(_pattern_tree(b["pattern"], mode))
            except _PatternError:
                return None
        if fmt in _KNOWN_FORMATS:
            parts.append(format_tree(fmt))
        return parts or [_ANYSTAR]

    def _string_not(self, s, ptr, lo, hi, why=None):
        """The ``Str`` node of string schema ``s`` (length bounds ``lo``/``hi`` already fitted) less the
        strings its ``not`` (one schema or ``{anyOf: [...]}``, as ``_apply_not`` leaves it; none when ``s``
        has no ``not``) admits: the negated languages read as supersets, ``s``'s own pattern and format
        (the format's regex, a narrowing) as subsets, intersected with the length bounds, all over
        characters (``string_language``); canonical encoding. Also the path of a pattern the regex
        translator refuses (a lookahead, an inner ``$``) or one together with a format: ``why`` says which.
        Refuses ``not`` (or ``pattern`` when there is no ``not``) by name when it cannot be built."""
        from steerdiff_plugins.schema.nodes import Str

        n = s.get("not")
        negs = [] if n is None else n["anyOf"] if isinstance(n, dict) and set(n) == {"anyOf"} else [n]
        kw = "not" if n is not None else "pattern"
        nptr = _ptr(ptr, kw)
        own = {k: v for k, v in s.items() if k in ("pattern", "format")}
        pos = self._str_parts(own, "sub")
        if pos is None:
            raise UnsupportedSchemaError(kw, nptr, why or "excluding strings from a string whose format or pattern "
                                                          "is not read as an automaton")
        if lo or hi is not None:
            pos.append(("rep", lo, hi, ("set", _UNIV)))
        neg = []
        for b in negs:
            parts = self._str_parts(self._flat(self._deref(b, nptr, ""), ""))
            if parts is None:
                raise UnsupportedSchemaError("not", nptr, "negation of a string schema not read as an automaton")
            neg.append(parts)
        key = repr((pos, neg))
        memo = self.__dict__.setdefault("_string_memo", {})
        try:
            rx = memo[key] if key in memo else memo.setdefault(key, string_language(pos, neg))
        except _TooLarge:
            raise UnsupportedSchemaError(kw, nptr, (f"{why}: " if why else "") + f"the strings left need over "
                                                   f"{_MAX_STATES} automaton states or {_MAX_RX} regex characters") from None
        return Str(1, 0) if rx is False else Str(content=rx)

    def _strings_apart(self, a, b) -> bool:
        """Whether schemas ``a`` and ``b`` share no string: their string languages, each read as a superset
        over characters (``_str_parts``), do not meet. False when either is not read so."""
        pa, pb = self._str_parts(a), self._str_parts(b)
        if pa is None or pb is None:
            return False
        try:
            return not strings_meet(pa + pb)
        except _TooLarge:
            return False

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
        if (ta == {"string"} or tb == {"string"}) and self._strings_apart(a, b):  # one admits strings only
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

def _empty_with(out, piece) -> bool:
    """Whether no instance satisfies both ``out`` and the case ``piece`` (``_not_pieces``), by the plain
    forms: a key ``out`` requires made absent, a key ``out`` forbids (closed, undeclared) made present, fewer
    properties than ``out`` requires."""
    if not isinstance(piece, dict) or not isinstance(out, dict):
        return False
    req = set(out.get("required") or [])
    if any(v is False and k in req for k, v in (piece.get("properties") or {}).items()):
        return True
    closed = out.get("additionalProperties") is False and not out.get("patternProperties")
    if closed and any(k not in (out.get("properties") or {}) for k in piece.get("required") or []):
        return True
    return "maxProperties" in piece and len(req) > piece["maxProperties"]


def _vacuous_for(x, t) -> bool:
    """Whether every instance of JSON type ``t`` satisfies schema ``x`` (flat): ``x`` admits the type and has
    no constraining keyword but those of other types."""
    if x is True or x is False:
        return x
    if not isinstance(x, dict) or x.get(IF_NARROWED):
        return False
    xt = x.get("type")
    if xt is not None:
        xts = {xt} if isinstance(xt, str) else set(xt)
        if t not in xts and not (t == "integer" and "number" in xts):
            return False
    own = {"object": _OBJECT_KW | {"properties", "required"}, "array": _ARRAY_KW, "string": _STRING_KW,
           "number": _NUMBER_KW, "integer": _NUMBER_KW}.get(t, set())
    return not (set(x) & _CONSTRAINING) - {"type"} - (_TYPED_KW - own)


def _implies(out, b, k) -> bool:
    """Whether keyword ``k`` of ``b`` holds for every instance of ``out``: ``out`` has the same value, or for
    ``type`` a subset of ``b``'s types (an integer is a number)."""
    if k not in out:
        return False
    if k != "type":
        return _json_equal(out[k], b[k])
    mine = {out[k]} if isinstance(out[k], str) else set(out[k])
    theirs = {b[k]} if isinstance(b[k], str) else set(b[k])
    return mine <= theirs | ({"integer"} if "number" in theirs else set())


def _languages_meet(rx_a: str, rx_b: str) -> bool:
    """Whether two regexes (full match) share a string: breadth-first search over pairs of states of their
    byte automata (``steerdiff_plugins.automata.byte_level.byte_dfa``)."""
    from steerdiff_plugins.automata.byte_level import byte_dfa

    try:
        a, b = byte_dfa(rx_a), byte_dfa(rx_b)
    except CompileDeadlineExceeded:
        raise
    except (AutomatonTooLarge, CompileBudgetExceeded) as big:  # not known to be empty: "no meet" would loosen
        raise UnsupportedSchemaError("size", current_pointer(), f"whether two key patterns overlap cannot be "
                                                                f"checked: {big}") from None
    except ConstraintError:  # an empty language meets nothing
        return False
    seen = {(a.start, b.start)}
    todo = [(a.start, b.start)]
    steps = 0
    while todo:
        steps += 1
        if not steps & 1023:
            check_deadline("key patterns")
        x, y = todo.pop()
        if a.accept[x] and b.accept[y]:
            return True
        for nx, ny in set(zip(a.trans[x].tolist(), b.trans[y].tolist())):
            if nx != a.dead and ny != b.dead and (nx, ny) not in seen:
                seen.add((nx, ny))
                todo.append((nx, ny))
    return False
