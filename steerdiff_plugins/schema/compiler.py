"""The JSON Schema compiler: a schema -> the node tree of its canonical JSON texts (see ``compiled`` for the
contract). References, type inference, enums, strings and numbers here; merging, ``not``/``oneOf`` and
containers in their own modules (mixed in)."""

from __future__ import annotations

import math
import sys
import urllib.parse
from typing import Any

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.canvas_bounds import fit_count
from steerdiff_plugins.compile_budget import _now, at_pointer, check_deadline, compile_deadline, restore_pointer
from steerdiff_plugins.schema.combinators import _Combinators
from steerdiff_plugins.schema.containers import _Containers
from steerdiff_plugins.schema.fragments import (
    _ALWAYS_REFUSED,
    _DRAFT3_FORMATS,
    _ARRAY_KW,
    _CONSTRAINING,
    _KNOWN_FORMATS,
    _NUMBER_KW,
    _OBJECT_KW,
    _STRING_KW,
    FORMATS,
    _count_bounds,
    _ptr,
    _lit_char,
    _py_search,
    _TooDeep,
)
from steerdiff_plugins.schema.merge import CASES, _Merging
from steerdiff_plugins.schema.nodes import (
    Empty,
    Int,
    Lit,
    Node,
    Num,
    Str,
    Union,
    _json_equal,
    _json_key,
)
from steerdiff_plugins.schema.numeric import multiple_of_regex
from steerdiff_plugins.schema.pattern import (
    _PatternError,
    length_bounded,
    pattern_length_bounds,
    pattern_to_regex,
)

MAX_NODES = 50_000  # schema nodes visited while unrolling; beyond it the schema is refused as too large
# nesting of the values written under undeclared keys where any value is valid (a narrowing: 0 is scalars only,
# 174 regex characters; a deeper cap copies AnyValue's regex, 1.1k characters at 1, 4.8k at 2, into every
# open object: at 1 the MaskBench schemas' regexes grew 3.3x at the median and 26 went over the size limits)
EXTRA_DEPTH = 2


def _detect_draft(root) -> int:
    if isinstance(root, dict):
        s = root.get("$schema")
        if isinstance(s, str):
            for key, d in (("draft-03", 3), ("draft-04", 4), ("draft-06", 6), ("draft-07", 7),
                           ("2019-09", 2019), ("2020-12", 2020)):
                if key in s:
                    return d
    return 2020


class _Compiler(_Merging, _Combinators, _Containers):
    def __init__(self, root, max_depth, max_items, max_string, capacity=None, extra_keys=False):
        self.root = root
        self.extra_keys = extra_keys  # objects may hold undeclared keys where that is exact (_extra_keys)
        self.closed_nests: set[int] = set()  # nesting levels of oneOf branches: their objects stay closed
        self.closed_proof = False  # set by _outputs_fail when a oneOf proof reads the declared keys only
        self.max_depth, self.max_items, self.max_string = max_depth, max_items, max_string
        self.cap = capacity  # bytes the canvas holds (None: unknown); see canvas_bounds
        self.too_long: list[str] = []  # minimum lengths/counts no text of `cap` bytes reaches
        from steerdiff_plugins.compile_budget import SCHEMA_SECONDS  # read at call time (tests lower it)

        # on the budget clock (CPU time less one-time set-up): a process's first import of jsonschema (4-9 s,
        # inside the first enum's check) or a loaded machine does not eat a schema's budget
        self.deadline = _now() + SCHEMA_SECONDS
        self.draft = _detect_draft(root)
        self.ref_counts: dict[str, int] = {}
        self.notes: list[str] = []
        self.ids: dict[str, Any] = {}
        self.anchors: dict[tuple[str, str], Any] = {}
        self._validator = None
        self.visited = 0
        self.nest = 0
        self._index(root, "", True)

    # ---- reference resolution
    def _index(self, s, base, is_root=False):
        if isinstance(s, list):
            for x in s:
                self._index(x, base)
            return
        if not isinstance(s, dict):
            return
        idkey = "$id" if "$id" in s or self.draft >= 6 else "id"
        sid = s.get(idkey)
        if isinstance(sid, str) and not ("$ref" in s and self.draft < 2019):
            if sid.startswith("#") and self.draft < 2019:
                self.anchors[(base, sid[1:])] = s
            else:
                base = urllib.parse.urljoin(base, sid).split("#")[0] if base or sid else sid
                self.ids[base] = s
        if is_root:
            self.ids[base] = s
        if isinstance(s.get("$anchor"), str):
            self.anchors[(base, s["$anchor"])] = s
        for k, v in s.items():
            if k in ("enum", "const", "examples", "default"):
                continue
            if k in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"):
                if isinstance(v, dict):
                    for x in v.values():
                        self._index(x, base)
                continue
            self._index(v, base)

    def _base_of(self, s, base):
        if isinstance(s, dict):
            sid = s.get("$id", s.get("id") if self.draft < 6 else None)
            if isinstance(sid, str) and not sid.startswith("#"):
                return urllib.parse.urljoin(base, sid).split("#")[0] if base else sid.split("#")[0]
        return base

    def resolve(self, ref: str, base: str, pointer: str):
        if not isinstance(ref, str):
            raise UnsupportedSchemaError("$ref", pointer, "$ref must be a string")
        url = urllib.parse.urljoin(base, ref) if base else ref
        doc_url, _, frag = url.partition("#")
        if doc_url not in self.ids:
            raise UnsupportedSchemaError("$ref", pointer, f"reference {ref!r} is not local to the schema "
                                                         "(remote references are not fetched)")
        doc = self.ids[doc_url]
        frag = urllib.parse.unquote(frag)
        if frag and not frag.startswith("/"):
            target = self.anchors.get((doc_url, frag))
            if target is None:
                raise UnsupportedSchemaError("$ref", pointer, f"anchor {frag!r} not found")
            return target, doc_url, url
        cur = doc
        for part in frag.split("/")[1:] if frag else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(cur, list):
                try:
                    cur = cur[int(part)]
                except (ValueError, IndexError):
                    raise UnsupportedSchemaError("$ref", pointer, f"reference {ref!r} does not resolve") from None
            elif isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                raise UnsupportedSchemaError("$ref", pointer, f"reference {ref!r} does not resolve")
        return cur, doc_url, url

    # ---- helpers
    def validator(self):
        if self._validator is None:
            from steerdiff_plugins.compile_budget import outside_budget

            with outside_budget():  # a process's first import builds rfc3987's 39 lark grammars: 4-9 s, once
                import jsonschema
            cls = jsonschema.validators.validator_for(self.root if isinstance(self.root, dict) else {},
                                                      default=jsonschema.Draft202012Validator)
            self._validator = cls(self.root, format_checker=cls.FORMAT_CHECKER)
        return self._validator

    def is_valid(self, value, sub) -> bool:
        return bool(self.valid_values([value], sub))

    def typed_values(self, values: list, sub: dict) -> list:
        """``valid_values`` for a subschema whose only constraint is ``type`` (an enum's own ``type``: hundreds of
        values in some schemas), by the root draft's type checker alone, as python-jsonschema's ``type`` keyword
        checks: the same verdicts without a validation per value. Any other ``type`` (not a name or a list of
        names, or a name the draft does not know): ``valid_values``."""
        types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
        if not types or not all(isinstance(t, str) for t in types):
            return self.valid_values(values, sub)
        checker = self.validator().TYPE_CHECKER
        try:
            return [v for v in values if any(checker.is_type(v, t) for t in types)]
        except Exception:  # noqa: BLE001 - jsonschema's UnknownType: the full check says what it says
            return self.valid_values(values, sub)

    def valid_values(self, values: list, sub) -> list:
        """The ``values`` valid under subschema ``sub`` (python-jsonschema, the root's draft), by one validator."""
        try:
            check = self.validator().evolve(schema=sub).is_valid
            return [v for v in values if check(v)]
        except BaseException as exc:  # noqa: BLE001 - pyo3's PanicException derives from BaseException
            # python-jsonschema's references live in rpds (Rust): Python's recursion limit reached inside it
            # comes out as a PanicException wrapping the RecursionError; compile_root names it as such
            if type(exc).__name__ == "PanicException" and "RecursionError" in str(exc):
                raise RecursionError(str(exc)[:200]) from None
            raise

    # ---- main entry
    def compile_root(self, schema, too_deep: str, too_nested: str) -> Node:
        """The node of the whole ``schema`` under a raised recursion limit; recursion past ``max_depth`` on a
        required path (``too_deep``) and nesting Python cannot recurse through (``too_nested``) become
        ``UnsupportedSchemaError("$ref", ...)`` with those messages."""
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 20000))
        try:
            with compile_deadline():  # the caller's deadline when one is open (fill's: all tries share it)
                node = self.node(schema, "#", "")
                check_deadline("schema", "#")  # a check a fallback swallowed on the way still stops the compile
                return node
        except _TooDeep as e:
            raise UnsupportedSchemaError("$ref", e.pointer, too_deep) from None
        except RecursionError:
            raise UnsupportedSchemaError("$ref", "#", too_nested) from None
        finally:
            sys.setrecursionlimit(old)

    def node(self, s, ptr="#", base="") -> Node:
        """The node of subschema ``s`` at ``ptr``, tagged with its pointer (budget errors name it)."""
        self.visited += 1
        if self.visited > MAX_NODES:
            raise UnsupportedSchemaError("size", ptr, f"more than {MAX_NODES} subschemas after unrolling "
                                                      "$ref (lower max_depth)")
        if self.visited % 256 == 0 and _now() > self.deadline:
            from steerdiff_plugins.compile_budget import SCHEMA_SECONDS

            raise UnsupportedSchemaError("size", ptr, f"compile stage 'schema' over its budget of {SCHEMA_SECONDS} s "
                                                      f"({self.visited} subschemas visited)")
        check_deadline("schema", ptr)  # the whole compile's clock (compile_budget.compile_deadline)
        prev = at_pointer(ptr)  # deeper checks (string automata, merges) name this subschema
        try:
            n = self._node(s, ptr, base)
        finally:
            restore_pointer(prev)
        if "pointer" not in n.__dict__:
            n.pointer = ptr
        return n

    def _node(self, s, ptr, base) -> Node:
        if s is True:
            return self._any()
        if s is False:
            return Empty()
        if not isinstance(s, dict):
            raise ConstraintError(f"schema at {ptr} must be an object or a boolean, got {type(s).__name__}")
        base = self._base_of(s, base)
        if "enum" in s or "const" in s:
            return self._enum(s, ptr)
        if "if" in s and ("then" in s or "else" in s):  # as an allOf entry: merge._if_branches reads it
            cond = {k: s[k] for k in ("if", "then", "else") if k in s}
            s = {**{k: v for k, v in s.items() if k not in cond}, "allOf": list(s.get("allOf") or []) + [cond]}
        s = _required_dependencies_merged(s)
        for kw, why in _ALWAYS_REFUSED.items():
            if kw in s:
                if kw == "if" and "then" not in s and "else" not in s:
                    continue
                if kw == "contains" and self.draft < 6:
                    continue
                raise UnsupportedSchemaError(kw, _ptr(ptr, kw), why)
        if "$ref" in s:
            target, tbase, url = self.resolve(s["$ref"], base, _ptr(ptr, "$ref"))
            siblings = {k: v for k, v in s.items() if k in _CONSTRAINING and k != "$ref"}
            if siblings and self.draft >= 2019:
                rest = {k: v for k, v in s.items() if k != "$ref"}
                return self._guard(url, ptr, lambda: self.node(self._merge([rest, target], ptr, base), ptr, base))
            return self._guard(url, ptr, lambda: self.node(target, _ptr(ptr, "$ref"), tbase))
        if "allOf" in s:
            subs = s["allOf"]
            if not isinstance(subs, list) or not subs:
                raise ConstraintError(f"allOf at {ptr} must be a non-empty array")
            rest = {k: v for k, v in s.items() if k != "allOf"}
            return self.node(self._merge([rest] + subs, _ptr(ptr, "allOf"), base), ptr, base)
        for kw in ("anyOf", "oneOf"):
            if kw in s:
                subs = s[kw]
                if not isinstance(subs, list) or not subs:
                    raise ConstraintError(f"{kw} at {ptr} must be a non-empty array")
                rest = {k: v for k, v in s.items() if k != kw}
                alts, deep = self._branches(kw, subs, rest, ptr, base)
                u = Union(alts)
                if u.empty and deep is not None:
                    raise deep
                return u.alts[0] if len(u.alts) == 1 else u
        if "not" in s:
            s = self._apply_not(s, _ptr(ptr, "not"), base)
            if s is False:
                return Empty()
            if "allOf" in s:  # a negation written as a union of cases (combinators._not_pieces)
                return self.node(s, ptr, base)
            if "enum" in s or "const" in s:
                return self._enum(s, ptr)
        types = s.get("type")
        if types is None:
            types = self._infer_types(s)
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list):
            raise ConstraintError(f"type at {ptr} must be a string or an array of strings")
        alts = []
        if "integer" in types and "number" in types:
            types = [t for t in types if t != "integer"]
        for t in dict.fromkeys(types):
            if t == "string":
                alts.append(self._string(s, ptr))
            elif t == "integer":
                alts.append(self._number(s, ptr, integer=True))
            elif t == "number":
                alts.append(self._number(s, ptr, integer=False))
            elif t == "boolean":
                alts.append(Lit([True, False]))
            elif t == "null":
                alts.append(Lit([None]))
            elif t == "object":
                alts.append(self._object(s, ptr, base))
            elif t == "array":
                alts.append(self._array(s, ptr, base))
            elif t == "any" and self.draft <= 3:
                alts.append(self._any())
            else:
                raise ConstraintError(f"unknown type {t!r} at {_ptr(ptr, 'type')}")
        u = Union(alts)
        return u.alts[0] if len(u.alts) == 1 else u

    def _branches(self, kw, subs, rest, ptr, base):
        """The nodes of an ``anyOf``/``oneOf``'s branches (each merged with the sibling keywords ``rest``), and
        the last ``_TooDeep`` of a branch dropped for recursion (None when none was)."""
        alts, deep, refused = [], None, None
        for i, sub in enumerate(subs):
            p = _ptr(ptr, kw, i)
            merged = self._merge([rest, sub], p, base) if any(k in _CONSTRAINING for k in rest) else sub
            self.closed_proof = False
            if kw == "oneOf" and len(subs) > 1:
                merged = self._one_of_branch(merged, subs, i, ptr, base)
            # a oneOf branch told apart by keys its objects never write (_outputs_fail) keeps them closed
            close = self.closed_proof and self.nest not in self.closed_nests
            if close:
                self.closed_nests.add(self.nest)
            try:
                alts.append(self.node(merged, p, base))
            except _TooDeep as e:
                deep = e
                self.notes.append(f"{p}: recursion beyond max_depth={self.max_depth}, branch dropped")
            except UnsupportedSchemaError as e:  # a case of a negation (merge.CASES) may be left out
                if kw != "anyOf" or not rest.get(CASES) or e.keyword == "size":
                    raise
                refused = refused or e
                self.notes.append(f"{p}: a case of a negation left out (a narrowing): {e.why}")
            finally:
                if close:
                    self.closed_nests.discard(self.nest)
        if not alts and refused is not None:
            raise refused
        return alts, deep

    def _extra_keys(self, s, ptr, base):
        """``(key regex, value node)`` of the undeclared keys an object of ``s`` (with declared properties) may
        hold, for ``Obj.extra``; None where the object stays closed (always without ``extra_keys``).

        Exact: an extra key is written without escapes and decodes to none of the keys ``s`` names
        (``properties``, ``required``, ``dependentRequired``/``dependencies`` triggers), so no keyword but
        ``additionalProperties`` and ``patternProperties`` govern it; its value follows ``additionalProperties``
        and every pattern's schema at once (whichever apply to the key, the value is valid; any value, nested
        at most ``EXTRA_DEPTH`` deep, where there is none). Closed where that is not the whole story:
        ``additionalProperties: false`` without patterns (with them: keys of one pattern no named key matches,
        see the code), ``propertyNames``,
        ``maxProperties`` (extra keys count), and the objects of a ``oneOf`` branch itself when it is told
        from another by a key the other requires and it never writes (``_outputs_fail``)."""
        if self.extra_keys is False or self.nest in self.closed_nests or (
                self.extra_keys is not True and self.nest > self.extra_keys):
            return None
        addl = s.get("additionalProperties", True)
        pats = s.get("patternProperties") or {}
        if (addl is False and not pats) or not isinstance(pats, dict) or "propertyNames" in s or "maxProperties" in s:
            return None
        named = list(s.get("properties") or {}) + list(s.get("dependentRequired") or {}) + \
            list(s.get("dependencies") or {})
        if isinstance(s.get("required"), list):
            named += s["required"]
        if not all(isinstance(k, str) for k in named):
            return None
        if addl is False:
            # keys from one pattern (``_map_pattern``: its schema and those of the patterns that meet it), when no
            # named key matches it: every such key decodes to a text the pattern matches, so none is named
            try:
                pat, key, psub = self._map_pattern(pats, ptr)
                if any(_py_search(pat, k, ptr) for k in named):
                    return None
            except UnsupportedSchemaError:
                return None
            keys, subs = key[1:-1], [psub]
        else:
            # a key that matches patterns takes their schemas, one that matches none takes additionalProperties:
            # a value valid under all of them is valid either way
            keys, subs = None, ([addl] if addl is not True else []) + list(pats.values())
        self.nest += 1
        try:
            value = self._any(EXTRA_DEPTH) if not subs else \
                self.node(subs[0] if len(subs) == 1 else {"allOf": subs}, _ptr(ptr, "additionalProperties"), base)
        except (_TooDeep, UnsupportedSchemaError):  # what additionalProperties says is not expressible: closed
            return None
        finally:
            self.nest -= 1
        return None if value.empty else (keys if keys is not None else keys_except(named), value)

    def _guard(self, url, ptr, fn):
        n = self.ref_counts.get(url, 0)
        if n >= self.max_depth:
            raise _TooDeep(ptr)
        self.ref_counts[url] = n + 1
        try:
            return fn()
        finally:
            self.ref_counts[url] = n

    def _infer_types(self, s):
        ts = []
        if any(k in s for k in _OBJECT_KW):
            ts.append("object")
        if any(k in s for k in _ARRAY_KW):
            ts.append("array")
        if any(k in s for k in _STRING_KW) and not (set(s) & _STRING_KW == {"format"} and s["format"] not in FORMATS):
            ts.append("string")
        if any(k in s for k in _NUMBER_KW):
            ts.append("number")
        if not ts:
            self.any_used = self.any_used or self.unbounded_any
            return ["string", "number", "boolean", "null", "object", "array"] if self.max_depth + self.any_depth > \
                self.nest or self.unbounded_any else \
                ["string", "number", "boolean", "null"]
        return ts

    # ---- enum / const
    def _enum(self, s, ptr):
        if "const" in s:
            vals = [s["const"]]
            if "enum" in s and not any(_json_equal(s["const"], v) for v in s["enum"]):
                vals = []
        else:
            if not isinstance(s["enum"], list):
                raise ConstraintError(f"enum at {ptr} must be an array")
            vals = list(s["enum"])
        rest = {k: v for k, v in s.items() if k not in ("enum", "const")}
        if any(k in _CONSTRAINING for k in rest):
            # an enum's own values pass its ``enum`` (python-jsonschema's ``equal`` holds on the identical object):
            # checked without it, the same verdicts in linear instead of quadratic time
            sub = s if "const" in s else {k: v for k, v in s.items() if k != "enum"}
            try:
                vals = self.typed_values(vals, rest) if [k for k in rest if k in _CONSTRAINING] == ["type"] \
                    else self.valid_values(vals, sub)
            except Exception as e:
                kw = next(k for k in rest if k in _CONSTRAINING)
                raise UnsupportedSchemaError(kw, _ptr(ptr, kw), f"cannot check enum values: {e}") from None
        uniq, seen = [], set()
        for v in vals:  # the first of each group of _json_equal values, in order
            key = _json_key(v)
            if key not in seen:
                seen.add(key)
                uniq.append(v)
        for v in uniq:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConstraintError(f"enum value {v!r} at {ptr} is not JSON")
        return Lit(uniq)

    # ---- strings
    def _string(self, s, ptr):
        lo, hi = _count_bounds(s, ptr, "minLength", "maxLength")
        content = None
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt in _KNOWN_FORMATS and (fmt not in _DRAFT3_FORMATS or self.draft == 3):
            if fmt not in FORMATS:
                raise UnsupportedSchemaError("format", _ptr(ptr, "format"),
                                             f"format {fmt!r} has no exact regex here (supported: {sorted(FORMATS)})")
            content = FORMATS[fmt]
        elif fmt is not None:
            self.notes.append(f"{_ptr(ptr, 'format')}: unknown format {fmt!r} treated as an annotation")
        chars = None  # why the pattern is read over characters instead (combinators._string_not, no 'not')
        if "pattern" in s:
            if content is not None:
                chars = "pattern together with format"
            else:
                try:
                    content = pattern_to_regex(s["pattern"], self.cap)
                except _PatternError as e:
                    chars = f"{s['pattern']!r}: {e}"
                if content is None and chars is None:
                    self.too_long.append(f"pattern at {_ptr(ptr, 'pattern')}")
                    return Str(1, 0)
        if hi is None and self.max_string is not None and content is None and chars is None:
            hi = max(lo, self.max_string)
        lo, hi = self._fit(lo, hi, 1, ptr, "minLength")  # a character writes at least one byte
        if hi is not None and hi < lo:
            return Str(1, 0)
        if "not" in s or chars is not None:  # string exclusions _apply_not left; pattern with format, lookahead
            return self._string_not(s, ptr, lo, hi, chars)
        if content is not None:
            if lo == 0 and hi is None:
                return Str(content=content)  # no length bounds to meet (the pattern is not parsed for its own)
            source = s["pattern"] if "pattern" in s and fmt not in FORMATS else "^(?:" + content + ")$"
            implied = pattern_length_bounds(source)
            if implied is not None and lo <= implied[0] and (hi is None or (implied[1] is not None and implied[1] <= hi)):
                return Str(content=content)  # every string of the pattern has a length within the bounds
            if lo > 0 or hi is not None:
                bounded = length_bounded(source, lo, hi, self.cap)
                if bounded is None:
                    kw = "minLength" if lo > 0 else "maxLength"
                    raise UnsupportedSchemaError(kw, _ptr(ptr, kw), "length bounds together with pattern/format "
                                                                    "need a regex intersection (supported: see "
                                                                    "schema/pattern.py, length bounds)")
                if bounded is False:
                    return Str(1, 0)  # empty: no string of the pattern has a length in bounds
                content = bounded
            return Str(content=content)
        return Str(lo, hi)

    def _fit(self, lo, hi, unit, ptr, min_kw):
        """``canvas_bounds.fit_count`` on the compile's capacity; records a minimum the canvas cannot hold."""
        lo2, hi2 = fit_count(lo, hi, unit, self.cap)
        if hi2 is not None and hi2 < lo2:
            self.too_long.append(f"{min_kw} {lo} at {_ptr(ptr, min_kw)}")
        return lo2, hi2

    # ---- numbers
    def _number(self, s, ptr, integer):
        mo = s.get("multipleOf", s.get("divisibleBy"))
        if mo is not None:
            if isinstance(mo, bool) or not isinstance(mo, (int, float)) or mo <= 0:
                raise ConstraintError(f"multipleOf at {ptr} must be a positive number")
            if mo == 1:
                integer, mo = True, None
            elif not isinstance(mo, float):
                raise UnsupportedSchemaError("multipleOf", _ptr(ptr, "multipleOf"),
                                             f"multipleOf {mo} is not expressible (1 and steps like 0.01, 0.25 are)")
        lo = hi = None
        lo_incl = hi_incl = True
        bounds = []
        for kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            v = s.get(kw)
            if v is None:
                continue
            if isinstance(v, bool):
                continue  # draft-04 flags, read below
            if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
                raise ConstraintError(f"{kw} at {_ptr(ptr, kw)} must be a number, got {v!r}")
            bounds.append(kw)
            excl = kw.startswith("exclusive") or (s.get("exclusive" + kw[0].upper() + kw[1:]) is True)
            if "inimum" in kw:
                if lo is None or v > lo or (v == lo and excl):
                    lo, lo_incl = v, not excl
            else:
                if hi is None or v < hi or (v == hi and excl):
                    hi, hi_incl = v, not excl
        if mo is not None:  # a float step: numeric.multiple_of_regex (a narrowing, documented there)
            try:
                rx = multiple_of_regex(mo, lo, lo_incl, hi, hi_incl, integer)
            except ValueError as e:
                raise UnsupportedSchemaError("multipleOf", _ptr(ptr, "multipleOf"), str(e)) from None
            return Num(regex=rx if rx is not None else False)
        if integer:
            ilo = None if lo is None else (math.floor(lo) + 1 if (not lo_incl and float(lo).is_integer()) else math.ceil(lo))
            ihi = None if hi is None else (math.ceil(hi) - 1 if (not hi_incl and float(hi).is_integer()) else math.floor(hi))
            if lo is not None and not lo_incl and not float(lo).is_integer():
                ilo = math.ceil(lo)
            if hi is not None and not hi_incl and not float(hi).is_integer():
                ihi = math.floor(hi)
            return Int(ilo, ihi, float_ok=self.draft >= 6)
        return Num(lo, lo_incl, hi, hi_incl)



_KEY_CHAR = r'[^"\\\x00-\x1f]'  # a key character written without an escape
KEY_DEPTH = 64  # characters of the declared keys' trie that extra keys are told apart by (keys_except)


def keys_except(keys, depth: int = KEY_DEPTH) -> str:
    """Regex of JSON key texts (inside the quotes) written without escapes that decode to none of ``keys``.

    A subset of that complement, of size linear in the number of keys: a text is in it when it is a proper
    prefix of at most ``depth`` characters of the keys' trie that is no key, or when it leaves the trie within
    its first ``depth`` characters (its ``i``-th character is no key's, after a prefix that keys share); texts
    that follow some key for more than ``depth`` characters are left out (a narrowing). A key with a
    character that needs an escape is never written so, and needs no exclusion."""
    trie: dict = {}
    for k in keys:
        if all(c >= " " and c not in '"\\' for c in k):
            node = trie
            for c in k:
                node = node.setdefault(c, {})
            node[None] = True

    def leave(node, d) -> str:  # the texts that leave the trie at their last character, within depth
        kids = sorted(c for c in node if c is not None)
        parts = [r'[^"\\\x00-\x1f' + "".join(_lit_char(c) for c in kids) + "]"]
        if d < depth:
            parts += [_lit_char(c) + leave(node[c], d + 1) for c in kids]
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"

    def inside(node, d) -> list[str]:  # the non-empty proper prefixes within depth that are no key
        out = []
        for c in sorted(c for c in node if c is not None) if d < depth else []:
            sub = inside(node[c], d + 1)
            tail = "(?:" + "|".join(sub) + ")" if sub else ""
            if None not in node[c]:
                tail = (tail + "?") if sub else ""
            if None not in node[c] or sub:
                out.append(_lit_char(c) + tail)
        return out

    # leave(...) + any tail, or a prefix inside the trie; the empty text unless it is a key
    parts = [leave(trie, 0) + _KEY_CHAR + "*"] + inside(trie, 0)
    body = "(?:" + "|".join(parts) + ")" if len(parts) > 1 else parts[0]
    return body if None in trie else "(?:" + body + ")?"


def _required_dependencies_merged(s: dict) -> dict:
    """``s`` with each schema dependency (``dependencies``/``dependentSchemas``) whose trigger ``s`` requires
    moved into its ``allOf``: when ``s`` admits objects only, every valid instance has the trigger, so the
    dependency always applies (an equivalence). ``s`` itself otherwise."""
    req = s.get("required")
    if not isinstance(req, list) or s.get("type") not in ("object", ["object"]):
        return s
    out, moved = dict(s), []
    for kw in ("dependencies", "dependentSchemas"):
        deps = s.get(kw)
        if not isinstance(deps, dict):
            continue
        keep = {t: d for t, d in deps.items() if not (t in req and isinstance(d, (dict, bool)))}
        moved += [d for t, d in deps.items() if t in req and isinstance(d, (dict, bool))]
        if len(keep) < len(deps):
            out.pop(kw)
            if keep:
                out[kw] = keep
    if moved:
        out["allOf"] = list(s.get("allOf") or []) + moved
    return out
