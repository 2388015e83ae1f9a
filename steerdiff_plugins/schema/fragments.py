"""Regex fragments of canonical JSON and the JSON Schema keyword tables the schema compiler shares:
JSON value regexes, format regexes (``FORMATS``), keyword sets, and small regex/pointer helpers."""

from __future__ import annotations

import json
from json.encoder import encode_basestring as _encode_string
import re
from typing import Any

from steerdiff.errors import ConstraintError, UnsupportedSchemaError

# --------------------------------------------------------------------------------------------- pieces

STRCHAR = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CeEfF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))'
STRING = '"' + STRCHAR + '*"'
INTEGER = r"(?:0|-?[1-9][0-9]*)"
NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
BOOLEAN = "(?:true|false)"
NULL = "null"

_FRAC_ANY = r"(?:\.[0-9]+)?"
_FRAC_ZERO = r"(?:\.0+)?"
_FRAC_NONZERO = r"\.[0-9]*[1-9][0-9]*"

# keywords of the JSON Schema vocabularies (drafts 3..2020-12) that can constrain instances
_CONSTRAINING = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains",
    "minContains", "maxProperties", "minProperties", "required", "dependentRequired", "dependencies",
    "properties", "patternProperties", "additionalProperties", "items", "prefixItems", "additionalItems",
    "contains", "propertyNames", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
    "dependentSchemas", "unevaluatedItems", "unevaluatedProperties", "$ref", "$dynamicRef",
    "$recursiveRef", "format", "disallow", "extends", "divisibleBy",
}
_OBJECT_KW = {"properties", "required", "additionalProperties", "patternProperties", "minProperties",
              "maxProperties", "dependentRequired", "dependencies", "propertyNames", "dependentSchemas",
              "unevaluatedProperties"}
_ARRAY_KW = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
             "minContains", "maxContains", "unevaluatedItems"}
_STRING_KW = {"minLength", "maxLength", "pattern", "format"}
_NUMBER_KW = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "divisibleBy"}
_ALWAYS_REFUSED = {
    "if": "conditional subschemas are not supported",
    "dependentSchemas": "conditional subschemas are not supported",
    "unevaluatedProperties": "unevaluated* needs annotation tracking",
    "unevaluatedItems": "unevaluated* needs annotation tracking",
    "$dynamicRef": "dynamic references are not supported",
    "$recursiveRef": "dynamic references are not supported",
    "contains": "contains is not supported",
    "disallow": "draft-03 keyword",
    "extends": "draft-03 keyword",
}
# formats python-jsonschema's FormatChecker knows (so they can assert); others are annotations
_KNOWN_FORMATS = {
    "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6", "uri", "uri-reference", "iri",
    "iri-reference", "uri-template", "date-time", "date", "time", "regex", "json-pointer",
    "relative-json-pointer", "uuid", "duration", "color", "host-name", "ip-address",
}

_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MD = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
       r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_DATE = f"(?:{_YEAR}-{_MD}|{_LEAP}-02-29)"
_TIME = (r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
         r"(?:Z|[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?\^_`{|}~\-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX = "[0-9a-fA-F]"
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@\-]|%[0-9A-Fa-f]{2})"
_REGNAME = r"(?:[A-Za-z0-9._~!$&'()*+,;=\-]|%[0-9A-Fa-f]{2})*"
_PCHAR_NC = r"(?:[A-Za-z0-9._~!$&'()*+,;=@\-]|%[0-9A-Fa-f]{2})"  # RFC 3986 segment-nz-nc: no ':'
_QF = f"(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"  # query and fragment
_H16 = "[0-9A-Fa-f]{1,4}"
# hostname (fqdn.FQDN(min_labels=1), python-jsonschema's checker): labels of 1-63 [A-Za-z0-9-] without an
# end hyphen, at most 253 characters: NARROWED to a first label of 63 and up to 6 more of 30 (<= 249), and
# to labels without '--' in the third and fourth characters (RFC 5891 reserves it: no A-label, so no
# invalid punycode)


def _host_label(most: int) -> str:
    a, x = "[A-Za-z0-9]", "[A-Za-z0-9\\-]"
    return f"{a}(?:{a}|{x}{a}|{x}{x}{a}|{x}(?:{a}{x}|\\-{a}){x}{{0,{most - 5}}}{a})?"


_HOST_LABEL, _SHORT_LABEL = _host_label(63), _host_label(30)
# ipv6 (ipaddress.IPv6Address): the eight-group and '::' forms, and an IPv4 tail in place of the last two
# groups (with '::': i groups before it, at most 5 - i after)
_V4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"
_IPV6 = "|".join([f"(?:{_H16}:){{7}}{_H16}", f"(?:{_H16}:){{1,7}}:", f"(?:{_H16}:){{1,6}}:{_H16}"]
                 + [f"(?:{_H16}:){{1,{k}}}(?::{_H16}){{1,{7 - k}}}" for k in range(5, 0, -1)]
                 + [f":(?::{_H16}){{1,7}}", "::", f"(?:{_H16}:){{6}}{_V4}"]
                 + [("" if i == 0 else f"{_H16}(?::{_H16}){{{i - 1}}}") + f"::(?:{_H16}:){{0,{5 - i}}}{_V4}"
                    for i in range(6)])
_RX_PLAIN = r'[^"\\\x00-\x1f()\[\]{}|*+?.^$\-]'  # a character re.compile reads as itself, anywhere
_RX_ATOM = f"(?:{_RX_PLAIN}|-|\\\\\\\\(?:\\\\\\\\|[()\\[\\]{{}}|*+?.^$dDwWsS])|\\.)"
_RX_ITEM = f"(?:{_RX_ATOM}|\\[\\^?{_RX_PLAIN}+\\])"
# Each format regex is the content between the quotes; it only uses characters that need no JSON escape
# (the '/' of a URI is written raw, as json.dumps does), except "regex" (a backslash is written \\).
FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f"{_DATE}T{_TIME}",
    "email": f"{_ATOM}(?:\\.{_ATOM})*@{_LABEL}(?:\\.{_LABEL})+",
    "uuid": f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "ipv4": f"{_OCTET}(?:\\.{_OCTET}){{3}}",
    "uri": (f"[A-Za-z][A-Za-z0-9+.\\-]*://{_REGNAME}(?::[0-9]*)?(?:/{_PCHAR}*)*"
            f"(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"),
    "hostname": f"{_HOST_LABEL}(?:\\.{_SHORT_LABEL}){{0,6}}",
    "ipv6": f"(?:{_IPV6})",
    # re.compile accepts it: an optional ^, items each with at most one of * + ?, an optional $; an item is
    # an atom (a plain character, '.', a backslash before a meta character or one of dDwWsS), a class of
    # plain characters ([abc], [^ab]: no '-', so no range) or a group of those (one level); no '"' or
    # control characters
    "regex": f"\\^?(?:(?:{_RX_ITEM}|\\((?:{_RX_ITEM}[*+?]?)*\\))[*+?]?)*\\$?",
}
# uri-reference (rfc3987 URI_reference): a URI, or a relative reference with a path-absolute or a
# path-noscheme (no network-path '//' form: narrowed), then query and fragment
FORMATS["uri-reference"] = (f"(?:{FORMATS['uri']}|(?:/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?|{_PCHAR_NC}+(?:/{_PCHAR}*)*)?"
                            f"{_QF})")
# formats python-jsonschema checks in draft 3 only (an annotation in later drafts)
_DRAFT3_FORMATS = {"color", "host-name", "ip-address"}


class _EmptyMerge(Exception):
    """allOf branches that no instance satisfies together (e.g. two different consts)."""


class _TooDeep(Exception):
    def __init__(self, pointer: str):
        self.pointer = pointer
        super().__init__(pointer)


_MAX_FLAT_COUNT = 12  # the automaton builder's limit on one minimum count (automata.engine_regex)


def _nested_count(x: str, n: int) -> str:
    """``x`` exactly ``n`` times, written with no single count above ``_MAX_FLAT_COUNT``: ``x{n}`` as
    ``(?:x{12}){q}x{r}``, nested again while ``q`` is too large. The same language; the automaton builder
    takes time exponential in one large count over a multi-byte alternation (a string's characters), not
    in nested small ones (``minLength: 50``: 0.1 s instead of a refusal)."""
    if n <= _MAX_FLAT_COUNT:
        return "" if n == 0 else x if n == 1 else x + "{%d}" % n
    q, r = divmod(n, _MAX_FLAT_COUNT)
    return _nested_count(_group(x + "{%d}" % _MAX_FLAT_COUNT), q) + _nested_count(x, r)


def _rep(x: str, lo: int, hi: int | None) -> str:
    """x repeated lo..hi times (hi None: unbounded); x must already be a single atom/group. A minimum over
    ``_MAX_FLAT_COUNT`` is written as nested counts (:func:`_nested_count`)."""
    if hi is not None and hi < lo:
        raise ValueError("bad repetition")
    if hi == 0:
        return ""
    if lo > _MAX_FLAT_COUNT:
        return _nested_count(x, lo) + _rep(x, 0, None if hi is None else hi - lo)
    if lo == hi == 1:
        return x
    if hi is None:
        return x + ("*" if lo == 0 else "+" if lo == 1 else "{%d,}" % lo)
    if lo == 0 and hi == 1:
        return x + "?"
    if lo == hi:
        return x + "{%d}" % lo
    return x + "{%d,%d}" % (lo, hi)


def _group(x: str) -> str:
    return "(?:" + x + ")"


def _alt(parts: list[str]) -> str:
    parts = list(dict.fromkeys(parts))
    if len(parts) == 1:
        return parts[0]
    return "(?:" + "|".join(parts) + ")"


# characters escaped with a backslash: the regex meta characters of Python re, interegular and Rust regex
# (Rust treats # & - ~ as meta too, so escaping them is allowed everywhere); nothing else is escaped
_META = set("\\.^$|?*+()[]{}#&-~")


def _count_bounds(s: dict, ptr: str, lo_kw: str, hi_kw: str) -> tuple[int, int | None]:
    """``(lo, hi)`` of a pair of count keywords (``minLength``/``maxLength``, ``minItems``/``maxItems``):
    non-negative integers, lo 0 and hi None when absent. Raises ConstraintError naming a bad one."""
    lo = s.get(lo_kw, 0)
    hi = s.get(hi_kw)
    for kw, v in ((lo_kw, lo), (hi_kw, hi)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v)):
            raise ConstraintError(f"{kw} at {_ptr(ptr, kw)} must be a non-negative integer, got {v!r}")
    return int(lo), (int(hi) if hi is not None else None)


def _lit_char(c: str) -> str:
    o = ord(c)
    if o < 0x20 or o == 0x7F:
        return "\\x%02x" % o
    if c in _META:
        return "\\" + c
    return c


_LIT_TABLE = {o: _lit_char(chr(o)) for o in range(0x80) if _lit_char(chr(o)) != chr(o)}  # what _lit_char escapes


def _lit(s: str) -> str:
    """``s`` as a regex literal: ``_lit_char`` of each character (one ``str.translate``: it escapes ASCII only)."""
    return s.translate(_LIT_TABLE)


def _json_text(value: Any) -> str:
    """Compact JSON of ``value`` (``ensure_ascii=False``); a ``str`` straight through the encoder's own string
    function (what ``json.dumps`` calls for one, without its per-call setup)."""
    if type(value) is str:
        return _encode_string(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _ptr(base: str, *parts) -> str:
    out = base
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


def _py_search(pat, key, ptr):
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.search(pat, key) is not None
    except re.error:
        raise UnsupportedSchemaError("patternProperties", _ptr(ptr, "patternProperties"),
                                     f"pattern {pat!r} does not parse") from None


def _type_of(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"

