"""The compiled schema tree: one node class per JSON value shape, each with its regex (``regex()``),
its canonical writer (``dump``) and a matcher."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.fragments import (
    BOOLEAN,
    INTEGER,
    NULL,
    NUMBER,
    STRCHAR,
    STRING,
    _alt,
    _group,
    _json_text,
    _lit,
    _rep,
)
from steerdiff_plugins.schema.numeric import integer_range_regex, number_range_regex

MAX_REGEX_CHARS = 1_000_000


def _json_equal(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return False


def _json_key(v):
    """A hashable key with ``_json_key(a) == _json_key(b)`` exactly when ``_json_equal(a, b)``, for linear-time
    deduplication and membership (``_json_equal`` pairwise is quadratic on long enums). Values ``_json_equal``
    never equates, not even to themselves (NaN anywhere inside, non-JSON types), get a fresh ``object()``."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v) if v == v else object()  # 1 and 1.0 are one key (hash and == agree); NaN equals nothing
    if isinstance(v, str) or v is None:
        return ("s", type(v), v)  # _json_equal wants the same type for strings (and None)
    if isinstance(v, list):
        return ("l", tuple(_json_key(x) for x in v))
    if isinstance(v, dict):
        return ("d", frozenset((k, _json_key(x)) for k, x in v.items()))
    return object()


class Node:
    empty = False
    _rx: str | None = None
    _cre = None

    def regex(self) -> str:
        if self._rx is None:
            rx = self._build()
            if len(rx) > MAX_REGEX_CHARS:  # not kept: a tree is reused (compile_tree's cache), so raise every time
                raise UnsupportedSchemaError("size", getattr(self, "pointer", "#"),
                                             f"regex over {MAX_REGEX_CHARS} characters")
            self._rx = rx
        return self._rx

    def matches(self, text: str) -> bool:
        if self.empty:
            return False
        if self._cre is None:
            self._cre = re.compile(self.regex())
        return self._cre.fullmatch(text) is not None

    def dump(self, v) -> str:
        return _generic_dump(v)


def _generic_dump(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    try:
        return _json_text(v)
    except (TypeError, ValueError):
        return repr(v)


class Empty(Node):
    empty = True

    def _build(self):
        raise ConstraintError("empty language has no regex")


class Lit(Node):
    """A finite set of JSON values (enum/const, or true/false/null)."""

    def __init__(self, values):
        self.values = list(values)

    @property
    def empty(self):
        return not self.values

    def _build(self):
        return _alt([_lit(_json_text(v)) for v in self.values])

    def dump(self, v):
        for m in self.values:
            if _json_equal(m, v):
                return _json_text(m)
        return _generic_dump(v)


class AnyValue(Node):
    def __init__(self, depth: int, max_items):
        self.depth, self.max_items = depth, max_items

    def _build(self):
        scal = [STRING, NUMBER, BOOLEAN, NULL]
        if self.depth <= 0:
            return _alt(scal)
        inner = AnyValue(self.depth - 1, self.max_items).regex()
        arr = r"\[" + _group(inner + _rep(_group("," + inner), 0, None)) + r"?\]"
        kv = STRING + ":" + inner
        obj = r"\{" + _group(kv + _rep(_group("," + kv), 0, None)) + r"?\}"
        return _alt(scal + [arr, obj])

    def dump(self, v):
        return _generic_dump(v)


class Str(Node):
    def __init__(self, lo=0, hi=None, content=None):
        self.lo, self.hi, self.content = lo, hi, content

    @property
    def empty(self):
        return self.hi is not None and self.hi < self.lo

    def _build(self):
        if self.content is not None:
            return '"' + self.content + '"'
        return '"' + _rep(STRCHAR, self.lo, self.hi) + '"'

    def dump(self, v):
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        return _generic_dump(v)


class _Numeric(Node):
    """A number node whose regex ``r`` is fixed at construction (None: no number is in range)."""

    r: str | None

    @property
    def empty(self):
        return self.r is None

    def _build(self):
        return self.r


class Int(_Numeric):
    def __init__(self, lo=None, hi=None, float_ok=True):
        self.lo, self.hi, self.float_ok = lo, hi, float_ok
        self.r = integer_range_regex(lo, hi) if (lo is not None or hi is not None) else INTEGER

    def dump(self, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return _generic_dump(v)
        if isinstance(v, float) and v.is_integer() and self.float_ok:
            return str(int(v))
        return _generic_dump(v)


class Num(_Numeric):
    def __init__(self, lo=None, lo_incl=True, hi=None, hi_incl=True, regex=None):
        """``regex``: the language already built (``numeric.multiple_of_regex``), plain decimals (``r`` None
        when empty: then pass ``regex=False``)."""
        self.bounded = lo is not None or hi is not None or regex is not None
        self.shortest = regex is not None  # dump writes the shortest plain decimal (2.0 -> 2, 2.50 -> 2.5)
        if regex is not None:
            self.r = regex or None
        else:
            self.r = number_range_regex(lo, lo_incl, hi, hi_incl) if self.bounded else NUMBER

    def dump(self, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return _generic_dump(v)
        if isinstance(v, int):
            return str(v)
        if not math.isfinite(v):
            return repr(v)
        if self.bounded:
            s = format(Decimal(repr(v)), "f")
            if self.shortest and "." in s:
                s = s.rstrip("0").rstrip(".")
            return s
        return _json_text(v)


class Arr(Node):
    def __init__(self, prefix, items, lo, hi, unique_enum=False):
        # trim at the first empty element
        maxlen = hi
        for i, p in enumerate(prefix):
            if p.empty:
                prefix = prefix[:i]
                maxlen = i if maxlen is None else min(maxlen, i)
                items = None
                break
        if items is not None and items.empty:
            items = None
        if items is None:
            maxlen = len(prefix) if maxlen is None else min(maxlen, len(prefix))
        self.prefix, self.items, self.lo, self.hi = prefix, items, lo, maxlen
        self.unique_enum = unique_enum

    @property
    def empty(self):
        return self.hi is not None and self.hi < self.lo

    def _el(self, i):
        return self.prefix[i] if i < len(self.prefix) else self.items

    def _tail(self, i):
        if self.hi is not None and i >= self.hi:
            return ""
        sep = "," if i > 0 else ""
        if i >= len(self.prefix):
            it = self.items.regex()
            rmin = max(0, self.lo - i)
            rmax = None if self.hi is None else self.hi - i
            if i == 0:
                if rmin == 0:
                    return _group(it + _rep(_group("," + it), 0, None if rmax is None else rmax - 1)) + "?"
                return it + _rep(_group("," + it), rmin - 1, None if rmax is None else rmax - 1)
            return _rep(_group("," + it), rmin, rmax)
        s = sep + self._el(i).regex() + self._tail(i + 1)
        return s if i < self.lo else _group(s) + "?"

    def _build(self):
        if self.unique_enum:  # distinct items in a fixed order: enum values, or objects told apart by a key
            alts = getattr(self, "unique_alts", None)
            vals = [a.regex() for a in alts] if alts else [_lit(_json_text(v)) for v in self.items.values]
            body = _ordered_optional([(v, False) for v in vals])  # "(?:...)?": drop the "?" for minItems 1
            return r"\[" + (body[:-1] if self.lo >= 1 else body) + r"\]"
        return r"\[" + self._tail(0) + r"\]"

    def dump(self, v):
        if not isinstance(v, list):
            return _generic_dump(v)
        parts = []
        for i, x in enumerate(v):
            el = self._el(i) if (i < len(self.prefix) or self.items is not None) else None
            parts.append(el.dump(x) if el is not None else _generic_dump(x))
        return "[" + ",".join(parts) + "]"


_SEQ_CHUNK = 12  # entries per level of _ordered_optional's grouping (bounds the regex's group nesting)


def _ordered_optional(entries) -> str:
    """Comma-separated sequence of entries kept in order; (regex, required) each.

    Written so that each entry's regex appears at most twice per level: ``Q(k+1) = Q(k)(?:,e)?|e`` (the
    valid non-empty sequences over the first k+1 entries, for an optional ``e`` while no entry before it
    is required). The plain form, one alternative per possible first entry, copies entry j into j
    alternatives: its regex grows with n^2 and the engine's automaton with it, a copy of every value's
    states per context (a 100-property object: 85k characters and 0.76 s, against 6k and 0.03 s). Each
    level nests two groups per entry, so entries are taken ``_SEQ_CHUNK`` at a time and the chunks, each
    a non-empty sequence with its own required flag, are combined the same way (the Rust parser refuses
    more than 250 nested groups)."""
    if not entries:
        return ""
    body, required = _chunked(entries)
    return body if required else _group(body) + "?"


def _chunked(entries) -> tuple[str, bool]:
    """:func:`_nonempty_sequence` of ``entries`` taken ``_SEQ_CHUNK`` at a time (see :func:`_ordered_optional`)."""
    while len(entries) > _SEQ_CHUNK:
        entries = [_nonempty_sequence(entries[i:i + _SEQ_CHUNK]) for i in range(0, len(entries), _SEQ_CHUNK)]
    return _nonempty_sequence(entries)


def _nonempty_sequence(entries) -> tuple[str, bool]:
    """(regex of the non-empty in-order sequences of ``entries`` that hold every required one, whether
    one is required)."""
    q, req_seen = entries[0]
    for rx, req in entries[1:]:
        if req:
            q = (q + "," if req_seen else _group(q + ",") + "?") + rx
        else:
            q = q + _group("," + rx) + "?" if req_seen else _alt([q + _group("," + rx) + "?", rx])
        req_seen = req_seen or req
    return q, req_seen


class Obj(Node):
    """An object: declared ``props`` ``(key, node, required)`` written in order, or a map (``map_key`` regex of
    a quoted key, ``map_value`` node) of ``map_lo`` (0 or 1) to ``map_hi`` (None: any) entries. ``extra``:
    ``(key regex, value node)`` of undeclared keys the object may also hold (``compile_schema(extra_keys=True)``),
    written before the declared ones; the key regex is the inside of the quotes and must exclude every declared
    key (the compiler builds it, ``_extra_keys``)."""

    def __init__(self, props, map_key=None, map_value=None, map_lo=0, map_hi=None, extra=None):
        self.props = props  # list of (key, node, required)
        self.map_key, self.map_value = map_key, map_value
        self.map_lo, self.map_hi = map_lo, map_hi
        self.extra = extra if extra is not None and not extra[1].empty else None

    @property
    def empty(self):
        return any(req and node.empty for _, node, req in self.props)

    def _build(self):
        if self.map_value is not None:
            kv = self.map_key + ":" + self.map_value.regex()
            more = _rep(_group("," + kv), 0, None if self.map_hi is None else self.map_hi - 1)
            return r"\{" + _group(kv + more) + ("" if self.map_lo else "?") + r"\}"
        entries = [(_lit(json.dumps(k, ensure_ascii=False)) + ":" + node.regex(), req)
                   for k, node, req in self.props if not node.empty]
        if self.extra is None:
            return r"\{" + _ordered_optional(entries) + r"\}"
        # undeclared keys first: after '{' or ',' the automaton reads one key trie (declared + extra keys)
        # instead of one per position of the declared sequence
        e = '"' + self.extra[0] + '":' + self.extra[1].regex()
        if not entries:
            return r"\{" + _group(e + _rep(_group("," + e), 0, None)) + r"?\}"
        body, required = _chunked(entries)
        if required:
            return r"\{" + _group(e + ",") + "*" + body + r"\}"
        return r"\{" + _group(_group(e + ",") + "*" + _alt([body, e])) + r"?\}"

    def dump(self, v):
        if not isinstance(v, dict):
            return _generic_dump(v)
        parts = []
        seen = set()
        for k, node, _ in self.props:
            if k in v:
                seen.add(k)
                parts.append(json.dumps(k, ensure_ascii=False) + ":" + node.dump(v[k]))
        rest = []
        for k, x in v.items():
            if k not in seen:
                node = self.map_value if self.extra is None else self.extra[1]
                rest.append(json.dumps(k, ensure_ascii=False) + ":" + (node.dump(x) if node else _generic_dump(x)))
        return "{" + ",".join(rest + parts if self.extra is not None else parts + rest) + "}"


class Union(Node):
    def __init__(self, alts):
        self.alts = [a for a in alts if not a.empty]

    @property
    def empty(self):
        return not self.alts

    def _build(self):
        return _alt([a.regex() for a in self.alts])

    def dump(self, v):
        first = None
        for a in self.alts:
            s = a.dump(v)
            if first is None:
                first = s
            if a.matches(s):
                return s
        return first if first is not None else _generic_dump(v)

