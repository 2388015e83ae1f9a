"""JSON Schema -> regular expression, for exact regular constraints.

``schema_to_regex(schema)`` returns a regex whose language is a set of *canonical* JSON texts that all
validate against the schema (the guarantee is one-sided and exact: every text the regex accepts is valid;
``canonical_dumps(instance, schema)`` writes any valid instance in the form the regex uses, so every
valid instance that fits the documented narrowings below is accepted).

Canonical form
    compact (separators ``,`` and ``:``, no whitespace anywhere), object keys in the order of the
    schema's ``properties``, strings written like ``json.dumps(..., ensure_ascii=False)`` (the regex
    also accepts the other JSON escapes ``\\/ \\uXXXX`` in unconstrained string parts, but never a
    ``\\u`` surrogate escape, so a string's length is the number of written characters), integers
    without fraction or exponent, bounded numbers without exponent.

Regex dialect
    A subset read identically by Python ``re``, ``interegular`` and Rust's ``regex`` crate: literal
    characters, ``\\``-escaped ASCII punctuation, ``\\xHH`` for control characters, classes ``[...]`` and
    ``[^...]`` (non-ASCII characters written raw), non-capturing groups ``(?:...)``, ``|``, ``? * +``
    and ``{m}``, ``{m,}``, ``{m,n}``. No anchors, lookaround, backrefs, lazy quantifiers, ``\\d \\w \\s``.

Supported (draft 2020-12; draft-04/06/07 spellings where ``$schema`` declares them or the keyword
form is unambiguous): ``type`` (incl. lists), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties`` (see below), ``patternProperties`` (see below), ``items``, ``prefixItems``,
``additionalItems``, ``minItems``/``maxItems``, ``uniqueItems`` (see below), ``minLength``/``maxLength``,
``pattern``, ``format`` (date, time, date-time, email, uuid, ipv4, uri; formats python-jsonschema does
not know are annotations), integer bounds (exact, any magnitude), number bounds when the bounds are
integral, ``multipleOf`` 1 (integers), ``anyOf``, ``oneOf`` (only when the branches are provably
disjoint), ``allOf`` (merged), local ``$ref`` (JSON pointers, anchors, embedded ``$id``),
``minProperties``/``maxProperties``, ``dependentRequired``/``dependencies`` (see below),
``propertyNames`` (declared keys only).

Narrowings (the language is a subset of the valid instances; each is deliberate and exact):
  * objects that declare ``properties`` get only those keys (extra keys are never generated, whatever
    ``additionalProperties`` says, except ``false`` which makes it exact); required keys that are not
    declared are added after the declared ones, with the ``additionalProperties`` schema (or any value);
    an object with no declared properties is a map (any string key, or keys from the first
    ``patternProperties`` pattern, whose values follow its schema and that of every pattern whose keys
    meet it) whose values otherwise follow ``additionalProperties``;
  * a schema without ``type`` gets the types its keywords imply (``properties`` -> object, ...), or any
    JSON value when it has no type-specific keyword;
  * arrays with no ``maxItems`` hold at most ``max(minItems, max_items)`` items (``max_items=None``, the
    default: unbounded, a loop in the automaton, so only the canvas bounds them; a cap copies the item's
    automaton once per item); strings with no ``maxLength`` hold at most ``max_string`` characters (None: unbounded);
  * the empty schema is any JSON value nested at most ``max_depth`` deep; recursive ``$ref`` is unrolled
    ``max_depth`` times, deeper optional branches are dropped;
  * ``uniqueItems: true`` is expressed exactly only for arrays of at most one item or of enum values
    (written as an ordered selection of distinct values); otherwise it is refused;
  * ``dependentRequired`` makes the dependent keys required (or drops the optional trigger key);
    ``minProperties`` promotes optional properties to required, ``maxProperties`` drops optional ones;
  * anyOf branches that use an unsupported keyword are refused (never dropped silently).

With ``capacity`` (the most bytes the canvas holds, ``canvas_bounds``), length, item, property and pattern
repetition bounds no text of that size reaches are compiled as absent, and minimums beyond it as empty: the
language is unchanged on texts of at most ``capacity`` bytes (a map's ``maxProperties`` then compiles too).

Everything else that constrains instances raises ``UnsupportedSchemaError(keyword, pointer, why)``.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.parse
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.canvas_bounds import fit_count

__all__ = ["schema_to_regex", "canonical_dumps", "schema_from_pydantic", "compile_schema", "compile_tree", "CompiledSchema"]

try:  # Python 3.11+
    import re._parser as _sre_parse  # type: ignore
    import re._constants as _sre_c  # type: ignore
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore
    import sre_constants as _sre_c  # type: ignore

MAX_REGEX_CHARS = 1_000_000
MAX_NODES = 50_000  # schema nodes visited while unrolling; beyond it the schema is refused as too large

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
# Each format regex is the content between the quotes; it only uses characters that need no JSON escape
# (the '/' of a URI is written raw, as json.dumps does).
FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f"{_DATE}T{_TIME}",
    "email": f"{_ATOM}(?:\\.{_ATOM})*@{_LABEL}(?:\\.{_LABEL})+",
    "uuid": f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "ipv4": f"{_OCTET}(?:\\.{_OCTET}){{3}}",
    "uri": (f"[A-Za-z][A-Za-z0-9+.\\-]*://{_REGNAME}(?::[0-9]*)?(?:/{_PCHAR}*)*"
            f"(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"),
}


class _EmptyMerge(Exception):
    """allOf branches that no instance satisfies together (e.g. two different consts)."""


class _TooDeep(Exception):
    def __init__(self, pointer: str):
        self.pointer = pointer
        super().__init__(pointer)


def _rep(x: str, lo: int, hi: int | None) -> str:
    """x repeated lo..hi times (hi None: unbounded); x must already be a single atom/group."""
    if hi is not None and hi < lo:
        raise ValueError("bad repetition")
    if hi == 0:
        return ""
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


def _lit_char(c: str) -> str:
    o = ord(c)
    if o < 0x20 or o == 0x7F:
        return "\\x%02x" % o
    if c in _META:
        return "\\" + c
    return c


def _lit(s: str) -> str:
    return "".join(_lit_char(c) for c in s)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# ------------------------------------------------------------------------------------- integer ranges

def _same_len(lo: str, hi: str) -> str:
    if not lo:
        return ""
    if lo == hi:
        return lo
    if len(lo) == 1:
        return f"[{lo}-{hi}]"
    k = len(lo) - 1
    if lo[1:] == "0" * k and hi[1:] == "9" * k:
        head = lo[0] if lo[0] == hi[0] else f"[{lo[0]}-{hi[0]}]"
        return head + "[0-9]" + ("{%d}" % k if k > 1 else "")
    if lo[0] == hi[0]:
        return lo[0] + _same_len(lo[1:], hi[1:])
    parts = [lo[0] + _group(_same_len(lo[1:], "9" * k))]
    a, b = int(lo[0]) + 1, int(hi[0]) - 1
    if a <= b:
        head = str(a) if a == b else f"[{a}-{b}]"
        parts.append(head + "[0-9]" + ("{%d}" % k if k > 1 else ""))
    parts.append(hi[0] + _group(_same_len("0" * k, hi[1:])))
    return _alt(parts)


def _nonneg_range(lo: int, hi: int | None) -> str | None:
    """Canonical decimal integers (no leading zeros) in [lo, hi]; hi None = unbounded. None if empty."""
    if lo < 0:
        lo = 0
    if hi is not None and hi < lo:
        return None
    parts = []
    top = len(str(hi)) if hi is not None else len(str(lo))
    for n in range(len(str(lo)), top + 1):
        a = max(lo, 10 ** (n - 1) if n > 1 else 0)
        b = 10 ** n - 1 if hi is None else min(hi, 10 ** n - 1)
        if a <= b:
            parts.append(_same_len(str(a), str(b)))
    if hi is None:
        parts.append("[1-9][0-9]" + ("{%d,}" % top if top > 1 else "+"))
    return _alt(parts)


def integer_range_regex(lo: int | None, hi: int | None) -> str | None:
    """Canonical JSON integers in [lo, hi] (either side None = unbounded). None if the range is empty."""
    if lo is not None and hi is not None and lo > hi:
        return None
    parts = []
    if hi is None or hi >= 0:
        r = _nonneg_range(max(lo, 0) if lo is not None else 0, hi)
        if r:
            parts.append(r)
    if lo is None or lo < 0:
        mlo = max(1, -hi) if hi is not None else 1
        r = _nonneg_range(mlo, -lo if lo is not None else None)
        if r:
            parts.append("-" + _group(r) if "|" in r else "-" + r)
    return _alt(parts) if parts else None


_BOUND_DIGITS = 20  # a bound whose safe decimal needs more fraction digits is rounded toward the inside


def _safe_bound(v, incl: bool, lower: bool) -> Decimal:
    """The inclusive decimal bound that keeps a plain JSON number valid the way python-jsonschema checks it.

    ``json.loads`` turns a number with a fraction into a float, and the check compares floats, so a decimal
    just above an exclusive bound (``1.00000000000000001 > 1``) can still fail it. Bounding by the
    nearest double on the valid side (the smallest double ``>= v`` or ``> v`` for a lower bound, the largest
    ``<=``/``<`` for an upper one) written in its shortest form ``d`` is safe: ``D >= d`` implies
    ``float(D) >= float(d)`` because rounding is monotonic. Decimals between ``v`` and ``d`` are the
    only ones lost (for ``exclusiveMinimum: 1``: ``1 < x < 1.0000000000000002``). A ``d`` with more than
    ``_BOUND_DIGITS`` fraction digits (``5e-324`` for ``exclusiveMinimum: 0``) is rounded toward the inside."""
    x = Fraction(v)
    f = float(x)
    if lower and (Fraction(f) < x or (not incl and Fraction(f) == x)):
        f = math.nextafter(f, math.inf)
    if not lower and (Fraction(f) > x or (not incl and Fraction(f) == x)):
        f = math.nextafter(f, -math.inf)
    d = Decimal(repr(f))
    if d.as_tuple().exponent < -_BOUND_DIGITS:
        d = d.quantize(Decimal(1).scaleb(-_BOUND_DIGITS), rounding=ROUND_CEILING if lower else ROUND_FLOOR)
    return d


def _fraction_range(lo: str, hi: str | None) -> tuple[str | None, bool]:
    """Fraction digit strings ``D`` with ``0.lo <= 0.D <= 0.hi`` (``hi`` None: no upper bound):
    ``(regex of the non-empty D or None, whether no fraction at all, i.e. 0, is in range)``."""
    lo, hi = lo.rstrip("0"), (hi.rstrip("0") if hi is not None else None)
    if hi is not None:
        n = max(len(lo), len(hi))
        if lo.ljust(n, "0") > hi.ljust(n, "0"):
            return None, False
    empty_ok = lo == ""
    if hi is None and lo == "":
        return "[0-9]+", True
    if hi == "":  # D <= 0: zeros only (then lo is "" too)
        return "0+", True
    l0 = int(lo[0]) if lo else 0
    h0 = int(hi[0]) if hi is not None else None
    alts = []
    top = 9 if h0 is None else h0 - 1
    if l0 + 1 <= top:  # a first digit strictly inside: anything may follow
        alts.append((str(l0 + 1) if l0 + 1 == top else f"[{l0 + 1}-{top}]") + "[0-9]*")

    def then(first: int, sub: tuple[str | None, bool]) -> None:
        r, e = sub
        if r is not None:
            alts.append(str(first) + (f"(?:{r})?" if e else r))
        elif e:
            alts.append(str(first))

    if h0 is None or l0 != h0:
        then(l0, _fraction_range(lo[1:], None))
        if h0 is not None:
            then(h0, _fraction_range("", hi[1:]))
    else:
        then(l0, _fraction_range(lo[1:], hi[1:]))
    return (_alt(alts) if alts else None), empty_ok


def _with_fraction(int_part: str, lo: str, hi: str | None) -> str | None:
    r, e = _fraction_range(lo, hi)
    if r is None:
        return int_part if e else None
    return int_part + r"(?:\." + r + ")" + ("?" if e else "")


def _decimal_nonneg(a: Decimal, b: Decimal | None) -> list[str]:
    """Plain decimals (no exponent) y >= 0 with a <= y <= b (decimal a >= 0; b None = unbounded)."""
    def split(x: Decimal) -> tuple[int, str]:
        i = int(x)
        return i, format(x - i, "f").partition(".")[2]

    if b is not None and b < a:
        return []
    (A, fa) = split(a)
    if b is not None:
        B, fb = split(b)
        if A == B:
            one = _with_fraction(str(A), fa, fb)
            return [one] if one else []
    out = [x for x in [_with_fraction(str(A), fa, None)] if x]
    mid = _nonneg_range(A + 1, None if b is None else B - 1)
    if mid:
        out.append(_group(mid) + _FRAC_ANY)
    if b is not None:
        last = _with_fraction(str(B), "", fb)
        if last:
            out.append(last)
    return out


def number_range_regex(lo, lo_incl, hi, hi_incl) -> str | None:
    """Plain JSON decimals x with lo <(=) x <(=) hi (numbers or None), as python-jsonschema checks them
    (see :func:`_safe_bound`)."""
    a = None if lo is None else _safe_bound(lo, lo_incl, True)
    b = None if hi is None else _safe_bound(hi, hi_incl, False)
    parts = []
    if b is None or b >= 0:
        parts += _decimal_nonneg(max(a, Decimal(0)) if a is not None else Decimal(0), b)
    if a is None or a < 0:
        # x = -y, y in [max(0, -b), -a]
        ya = Decimal(0) if (b is None or b >= 0) else -b
        parts += ["-" + _group(p) for p in _decimal_nonneg(ya, None if a is None else -a)]
    return _alt(parts) if parts else None


# ------------------------------------------------------------------------------------ pattern → regex

_FULL = [(0x00, 0xD7FF), (0xE000, 0x10FFFF)]


def _norm(ranges):
    rs = sorted(ranges)
    out = []
    for a, b in rs:
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    # drop surrogates
    res = []
    for a, b in out:
        if b < 0xD800 or a > 0xDFFF:
            res.append((a, b))
        else:
            if a < 0xD800:
                res.append((a, 0xD7FF))
            if b > 0xDFFF:
                res.append((0xE000, b))
    return res


def _complement(ranges):
    ranges = _norm(ranges)
    out, cur = [], 0
    for a, b in ranges:
        if a > cur:
            out.append((cur, a - 1))
        cur = b + 1
    if cur <= 0x10FFFF:
        out.append((cur, 0x10FFFF))
    return _norm(out)


@lru_cache(maxsize=None)
def _unicode_set(kind: str):
    test = {"digit": str.isdecimal, "word": lambda c: c.isalnum() or c == "_", "space": str.isspace}[kind]
    out, start = [], None
    for o in range(0x110000):
        if 0xD800 <= o <= 0xDFFF:
            ok = False
        else:
            ok = test(chr(o))
        if ok and start is None:
            start = o
        elif not ok and start is not None:
            out.append((start, o - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    if kind == "space":
        out.append((0xFEFF, 0xFEFF))  # ECMA whitespace
    return tuple(_norm(out))


_NARROW = {"digit": [(0x30, 0x39)], "word": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A), (0x5F, 0x5F)],
           "space": [(0x09, 0x0D), (0x20, 0x20)]}


def _category(cat, positive_context: bool):
    """Character ranges of a \\d \\w \\s category (or its negation), chosen so that the result is a subset
    of both the ECMA-262 and the Python (Unicode) reading: narrow sets for positive uses, the complement
    of the wide set for negated ones. With positive_context False the set will be complemented later,
    so it must be the *wide* reading."""
    name = str(cat).lower()
    kind = "digit" if "digit" in name else "word" if "word" in name else "space" if "space" in name else None
    if kind is None:
        raise ValueError(name)
    neg = "not" in name
    if neg:
        # positive context: complement of wide; negative context: complement of narrow
        return _complement(_unicode_set(kind) if positive_context else _NARROW[kind])
    return list(_NARROW[kind]) if positive_context else list(_unicode_set(kind))


_ESCAPES = {'"': '\\\\"', "\\": "\\\\\\\\", "\n": "\\\\n", "\r": "\\\\r", "\t": "\\\\t",
            "\b": "\\\\b", "\f": "\\\\f"}


def _encoded_char(c: str) -> str:
    """Regex for the canonical JSON encoding of one character."""
    if c in _ESCAPES:
        return _ESCAPES[c]
    if ord(c) < 0x20:
        return "\\\\u%04x" % ord(c)
    return _lit_char(c)


def _class_char(o: int) -> str:
    c = chr(o)
    if o < 0x20 or o == 0x7F:
        return "\\x%02x" % o
    if c in _META:
        return "\\" + c
    return c


def _class_body(ranges) -> str:
    out = []
    for a, b in ranges:
        if a == b:
            out.append(_class_char(a))
        elif b == a + 1:
            out.append(_class_char(a) + _class_char(b))
        else:
            out.append(_class_char(a) + "-" + _class_char(b))
    return "".join(out)


_SPECIAL = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]


def charset_regex(ranges) -> str | None:
    """Regex matching the canonical JSON encoding of any one character in `ranges`."""
    ranges = _norm(ranges)
    if not ranges:
        return None
    special = []
    for a, b in ranges:
        for sa, sb in _SPECIAL:
            lo, hi = max(a, sa), min(b, sb)
            for o in range(lo, hi + 1):
                special.append(_encoded_char(chr(o)))
    plain = _complement(_complement(ranges) + _SPECIAL)
    alts = []
    if plain:
        comp = _complement(plain)  # includes the specials
        comp_wo = [r for r in _complement(plain + _SPECIAL)]
        if len(comp_wo) < len(plain):
            alts.append("[^" + _class_body(_norm(comp_wo + _SPECIAL)) + "]")
        elif len(plain) == 1 and plain[0][0] == plain[0][1]:
            alts.append(_lit_char(chr(plain[0][0])))
        else:
            alts.append("[" + _class_body(plain) + "]")
        del comp
    alts.extend(special)
    return _alt(alts)


class _PatternError(Exception):
    pass


def _set_ranges(items, positive_context=True):
    ranges, negate = [], False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            ranges.append((av, av))
        elif name == "RANGE":
            ranges.append((av[0], av[1]))
        elif name == "CATEGORY":
            ranges.extend(_category(av, positive_context=(positive_context != negate) if negate else positive_context))
        else:
            raise _PatternError(f"set item {name}")
    return ranges, negate


def _translate_seq(seq, top=False, cap=None) -> str | None:
    """Content regex of a parsed pattern sequence; None when no string of it fits a text of ``cap`` bytes
    (repetition counts the canvas cannot reach are dropped, see ``canvas_bounds``; ``cap`` None: none)."""
    out = []
    items = list(seq)
    for i, (op, av) in enumerate(items):
        name = str(op)
        if name == "LITERAL":
            out.append(_encoded_char(chr(av)))
        elif name == "NOT_LITERAL":
            out.append(charset_regex(_complement([(av, av)])) or "")
        elif name == "ANY":
            out.append(charset_regex(_complement([(0x0A, 0x0A)])))
        elif name == "IN":
            has_neg = any(str(o) == "NEGATE" for o, _ in av)
            if has_neg:
                ranges, _ = _set_ranges(av, positive_context=False)
                r = charset_regex(_complement(ranges))
            else:
                ranges, _ = _set_ranges(av, positive_context=True)
                r = charset_regex(ranges)
            if r is None:
                raise _PatternError("empty character class")
            out.append(r)
        elif name == "BRANCH":
            alts = [x for x in (_translate_seq(s, cap=cap) for s in av[1]) if x is not None]
            if not alts:
                return None
            out.append(_alt(alts) if len(alts) > 1 else alts[0])
        elif name == "SUBPATTERN":
            group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise _PatternError("inline flags")
            inner = _translate_seq(sub, cap=cap)
            if inner is None:
                return None
            out.append(_group(inner))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, sub = av
            hi = None if hi == _sre_c.MAXREPEAT else hi
            if cap is not None:  # a pattern character writes at least one byte of JSON text
                lo, hi = fit_count(lo, hi, sub.getwidth()[0], cap)
                if hi is not None and hi < lo:
                    return None
            inner = _translate_seq(sub, cap=cap)
            if inner is None:
                if lo > 0:
                    return None
                continue
            if not inner:
                continue
            if hi == 0:
                continue
            out.append(_rep(_group(inner), lo, hi))
        elif name == "CATEGORY":
            out.append(charset_regex(_category(av, True)))
        elif name == "AT":
            raise _PatternError(f"anchor {av} inside the pattern")
        else:
            raise _PatternError(name)
    return "".join(out)


_ONE_CHAR = {"LITERAL", "NOT_LITERAL", "ANY", "IN", "CATEGORY"}


def _bounded_pattern(pattern: str, lo: int, hi: int | None, cap: int | None = None):
    """Content regex of the strings matching ``pattern`` whose length is in ``[lo, hi]``, for the one shape
    where that intersection is a matter of bounds: a pattern anchored at both ends whose items are single
    characters and repeats of a single character, at most one of them of variable count. The variable
    repeat's bounds absorb the length bounds. Returns None for any other pattern, False for an empty
    intersection (also on a canvas of ``cap`` bytes)."""
    try:
        seq = list(_sre_parse.parse(pattern, 0))
    except re.error:
        return None
    if len(seq) < 2 or str(seq[0][0]) != "AT" or str(seq[-1][0]) != "AT":
        return None
    if str(seq[0][1]) not in ("AT_BEGINNING", "AT_BEGINNING_STRING") or str(seq[-1][1]) not in ("AT_END", "AT_END_STRING"):
        return None
    body = seq[1:-1]
    fixed, var = 0, None
    for i, (op, av) in enumerate(body):
        name = str(op)
        if name in _ONE_CHAR:
            fixed += 1
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and len(av[2]) == 1 and str(av[2][0][0]) in _ONE_CHAR:
            a, b = av[0], (None if av[1] == _sre_c.MAXREPEAT else av[1])
            if a == b:
                fixed += a
            elif var is None:
                var = (i, a, b)
            else:
                return None
        else:
            return None
    if var is None:
        rx = _translate_seq(body, cap=cap) if lo <= fixed and (hi is None or fixed <= hi) else None
        return False if rx is None else rx
    i, a, b = var
    na = max(a, lo - fixed)
    nb = b if hi is None else (hi - fixed if b is None else min(b, hi - fixed))
    if nb is not None and nb < na:
        return False
    op, av = body[i]
    body = body[:i] + [(op, (na, _sre_c.MAXREPEAT if nb is None else nb, av[2]))] + body[i + 1:]
    try:
        rx = _translate_seq(body, cap=cap)
    except _PatternError:
        return None
    return False if rx is None else rx


def pattern_to_regex(pattern: str, cap: int | None = None) -> str | None:
    """Regex for the canonical JSON string *content* (between the quotes) of strings in which
    `pattern` matches somewhere (re.search semantics, ECMA-262/Python common subset). With ``cap``:
    repetition counts a text of ``cap`` bytes cannot reach are dropped (``canvas_bounds``), and None
    when no such string fits."""
    try:
        parsed = _sre_parse.parse(pattern, 0)
    except re.error as e:
        raise _PatternError(f"does not parse: {e}") from None
    flags = getattr(getattr(parsed, "state", None), "flags", 0)
    if flags & ~(_sre_c.SRE_FLAG_UNICODE):
        raise _PatternError("inline flags")
    seq = list(parsed)
    branches = None
    if len(seq) == 1 and str(seq[0][0]) == "BRANCH":
        branches = [list(b) for b in seq[0][1][1]]
    elif len(seq) == 1 and str(seq[0][0]) == "SUBPATTERN" and not seq[0][1][1] and not seq[0][1][2]:
        inner = list(seq[0][1][3])
        if len(inner) == 1 and str(inner[0][0]) == "BRANCH":
            branches = [list(b) for b in inner[0][1][1]]
    if branches is None:
        branches = [seq]
    anyrun = STRCHAR + "*"
    alts = []
    for b in branches:
        start = bool(b) and str(b[0][0]) == "AT" and str(b[0][1]) in ("AT_BEGINNING", "AT_BEGINNING_STRING")
        if start:
            b = b[1:]
        end = bool(b) and str(b[-1][0]) == "AT" and str(b[-1][1]) in ("AT_END", "AT_END_STRING")
        if end:
            b = b[:-1]
        body = _translate_seq(b, cap=cap)
        if body is not None:
            alts.append(("" if start else anyrun) + body + ("" if end else anyrun))
    return _alt(alts) if alts else None


# ----------------------------------------------------------------------------------------------- nodes

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


class Int(Node):
    def __init__(self, lo=None, hi=None, float_ok=True):
        self.lo, self.hi, self.float_ok = lo, hi, float_ok
        self.r = integer_range_regex(lo, hi) if (lo is not None or hi is not None) else INTEGER

    @property
    def empty(self):
        return self.r is None

    def _build(self):
        return self.r

    def dump(self, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return _generic_dump(v)
        if isinstance(v, float) and v.is_integer() and self.float_ok:
            return str(int(v))
        return _generic_dump(v)


class Num(Node):
    def __init__(self, lo=None, lo_incl=True, hi=None, hi_incl=True):
        self.bounded = lo is not None or hi is not None
        self.r = number_range_regex(lo, lo_incl, hi, hi_incl) if self.bounded else NUMBER

    @property
    def empty(self):
        return self.r is None

    def _build(self):
        return self.r

    def dump(self, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return _generic_dump(v)
        if isinstance(v, int):
            return str(v)
        if not math.isfinite(v):
            return repr(v)
        if self.bounded:
            s = format(Decimal(repr(v)), "f")
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
        if self.unique_enum:
            vals = [_lit(_json_text(v)) for v in self.items.values]
            return r"\[" + _ordered_optional([(v, False) for v in vals]) + r"\]"
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
    while len(entries) > _SEQ_CHUNK:
        entries = [_nonempty_sequence(entries[i:i + _SEQ_CHUNK]) for i in range(0, len(entries), _SEQ_CHUNK)]
    body, required = _nonempty_sequence(entries)
    return body if required else _group(body) + "?"


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
    def __init__(self, props, map_key=None, map_value=None):
        self.props = props  # list of (key, node, required)
        self.map_key, self.map_value = map_key, map_value

    @property
    def empty(self):
        return any(req and node.empty for _, node, req in self.props)

    def _build(self):
        if self.map_value is not None:
            kv = self.map_key + ":" + self.map_value.regex()
            return r"\{" + _group(kv + _rep(_group("," + kv), 0, None)) + r"?\}"
        entries = [(_lit(json.dumps(k, ensure_ascii=False)) + ":" + node.regex(), req)
                   for k, node, req in self.props if not node.empty]
        return r"\{" + _ordered_optional(entries) + r"\}"

    def dump(self, v):
        if not isinstance(v, dict):
            return _generic_dump(v)
        parts = []
        seen = set()
        for k, node, _ in self.props:
            if k in v:
                seen.add(k)
                parts.append(json.dumps(k, ensure_ascii=False) + ":" + node.dump(v[k]))
        for k, x in v.items():
            if k not in seen:
                node = self.map_value
                parts.append(json.dumps(k, ensure_ascii=False) + ":" + (node.dump(x) if node else _generic_dump(x)))
        return "{" + ",".join(parts) + "}"


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


# -------------------------------------------------------------------------------------------- compiler

def _ptr(base: str, *parts) -> str:
    out = base
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


def _detect_draft(root) -> int:
    if isinstance(root, dict):
        s = root.get("$schema")
        if isinstance(s, str):
            for key, d in (("draft-03", 3), ("draft-04", 4), ("draft-06", 6), ("draft-07", 7),
                           ("2019-09", 2019), ("2020-12", 2020)):
                if key in s:
                    return d
    return 2020


class _Compiler:
    def __init__(self, root, max_depth, max_items, max_string, capacity=None):
        self.root = root
        self.max_depth, self.max_items, self.max_string = max_depth, max_items, max_string
        self.cap = capacity  # bytes the canvas holds (None: unknown); see canvas_bounds
        self.too_long: list[str] = []  # minimum lengths/counts no text of `cap` bytes reaches
        from steerdiff_plugins.compile_budget import SCHEMA_SECONDS

        self.deadline = time.perf_counter() + SCHEMA_SECONDS
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
            import jsonschema
            cls = jsonschema.validators.validator_for(self.root if isinstance(self.root, dict) else {},
                                                      default=jsonschema.Draft202012Validator)
            self._validator = cls(self.root, format_checker=cls.FORMAT_CHECKER)
        return self._validator

    def is_valid(self, value, sub) -> bool:
        return self.validator().evolve(schema=sub).is_valid(value)

    # ---- main entry
    def node(self, s, ptr="#", base="") -> Node:
        """The node of subschema ``s`` at ``ptr``, tagged with its pointer (budget errors name it)."""
        self.visited += 1
        if self.visited > MAX_NODES:
            raise UnsupportedSchemaError("size", ptr, f"more than {MAX_NODES} subschemas after unrolling "
                                                      "$ref (lower max_depth)")
        if self.visited % 256 == 0 and time.perf_counter() > self.deadline:
            from steerdiff_plugins.compile_budget import SCHEMA_SECONDS

            raise UnsupportedSchemaError("size", ptr, f"compile stage 'schema' over its budget of {SCHEMA_SECONDS} s "
                                                      f"({self.visited} subschemas visited)")
        n = self._node(s, ptr, base)
        if "pointer" not in n.__dict__:
            n.pointer = ptr
        return n

    def _node(self, s, ptr, base) -> Node:
        if s is True:
            return AnyValue(max(0, self.max_depth - self.nest), self.max_items)
        if s is False:
            return Empty()
        if not isinstance(s, dict):
            raise ConstraintError(f"schema at {ptr} must be an object or a boolean, got {type(s).__name__}")
        base = self._base_of(s, base)
        if "enum" in s or "const" in s:
            return self._enum(s, ptr)
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
                alts, deep = [], None
                for i, sub in enumerate(subs):
                    p = _ptr(ptr, kw, i)
                    merged = self._merge([rest, sub], p, base) if any(k in _CONSTRAINING for k in rest) else sub
                    if kw == "oneOf" and len(subs) > 1:
                        merged = self._one_of_branch(merged, subs, i, ptr, base)
                    try:
                        alts.append(self.node(merged, p, base))
                    except _TooDeep as e:
                        deep = e
                        self.notes.append(f"{p}: recursion beyond max_depth={self.max_depth}, branch dropped")
                u = Union(alts)
                if u.empty and deep is not None:
                    raise deep
                return u.alts[0] if len(u.alts) == 1 else u
        if "not" in s:
            s = self._apply_not(s, _ptr(ptr, "not"), base)
            if s is False:
                return Empty()
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
                alts.append(AnyValue(max(0, self.max_depth - self.nest), self.max_items))
            else:
                raise ConstraintError(f"unknown type {t!r} at {_ptr(ptr, 'type')}")
        u = Union(alts)
        return u.alts[0] if len(u.alts) == 1 else u

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
            return ["string", "number", "boolean", "null", "object", "array"] if self.max_depth > self.nest else \
                ["string", "number", "boolean", "null"]
        return ts

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
            return [x for x in a if any(_json_equal(x, y) for y in b)]
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
        if k in ("anyOf", "oneOf"):
            raise UnsupportedSchemaError("allOf", ptr, f"two {k} lists would need distributing")
        raise UnsupportedSchemaError("allOf", ptr, f"cannot merge differing {k!r} values")

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

    # ---- oneOf disjointness
    def _check_disjoint(self, subs, ptr, base):
        flat = []
        for i, s in enumerate(subs):
            try:
                flat.append(self._merge([s], _ptr(ptr, i), base))
            except UnsupportedSchemaError:
                raise UnsupportedSchemaError("oneOf", ptr, "cannot analyse branch %d" % i) from None
        for i in range(len(flat)):
            for j in range(i + 1, len(flat)):
                if not self._disjoint(flat[i], flat[j], base, 0):
                    raise UnsupportedSchemaError(
                        "oneOf", ptr, f"branches {i} and {j} are not provably disjoint, so an alternation "
                                      "could accept an instance valid under both")

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
            try:
                vals = [v for v in vals if self.is_valid(v, s)]
            except Exception as e:
                kw = next(k for k in rest if k in _CONSTRAINING)
                raise UnsupportedSchemaError(kw, _ptr(ptr, kw), f"cannot check enum values: {e}") from None
        uniq = []
        for v in vals:
            if not any(_json_equal(v, u) for u in uniq):
                uniq.append(v)
        for v in uniq:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConstraintError(f"enum value {v!r} at {ptr} is not JSON")
        return Lit(uniq)

    # ---- strings
    def _string(self, s, ptr):
        lo = s.get("minLength", 0)
        hi = s.get("maxLength")
        for kw, v in (("minLength", lo), ("maxLength", hi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v)):
                raise ConstraintError(f"{kw} at {_ptr(ptr, kw)} must be a non-negative integer, got {v!r}")
        lo = int(lo)
        hi = int(hi) if hi is not None else None
        content = None
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt in _KNOWN_FORMATS:
            if fmt not in FORMATS:
                raise UnsupportedSchemaError("format", _ptr(ptr, "format"),
                                             f"format {fmt!r} has no exact regex here (supported: {sorted(FORMATS)})")
            content = FORMATS[fmt]
        elif fmt is not None:
            self.notes.append(f"{_ptr(ptr, 'format')}: unknown format {fmt!r} treated as an annotation")
        if "pattern" in s:
            if content is not None:
                raise UnsupportedSchemaError("pattern", _ptr(ptr, "pattern"), "pattern together with format")
            try:
                content = pattern_to_regex(s["pattern"], self.cap)
            except _PatternError as e:
                raise UnsupportedSchemaError("pattern", _ptr(ptr, "pattern"), f"{s['pattern']!r}: {e}") from None
            if content is None:
                self.too_long.append(f"pattern at {_ptr(ptr, 'pattern')}")
                return Str(1, 0)
        if hi is None and self.max_string is not None and content is None:
            hi = max(lo, self.max_string)
        lo, hi = self._fit(lo, hi, 1, ptr, "minLength")  # a character writes at least one byte
        if hi is not None and hi < lo:
            return Str(1, 0)
        if content is not None:
            if lo > 0 or hi is not None:
                bounded = _bounded_pattern(s["pattern"], lo, hi, self.cap) if "pattern" in s and fmt not in FORMATS else None
                if bounded is None:
                    kw = "minLength" if lo > 0 else "maxLength"
                    raise UnsupportedSchemaError(kw, _ptr(ptr, kw), "length bounds together with pattern/format "
                                                                    "need a regex intersection (supported: an anchored "
                                                                    "pattern of single characters with one variable repeat)")
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
                integer = True
            else:
                raise UnsupportedSchemaError("multipleOf", _ptr(ptr, "multipleOf"),
                                             f"multipleOf {mo} is not expressible (only 1 is)")
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
        if integer:
            ilo = None if lo is None else (math.floor(lo) + 1 if (not lo_incl and float(lo).is_integer()) else math.ceil(lo))
            ihi = None if hi is None else (math.ceil(hi) - 1 if (not hi_incl and float(hi).is_integer()) else math.floor(hi))
            if lo is not None and not lo_incl and not float(lo).is_integer():
                ilo = math.ceil(lo)
            if hi is not None and not hi_incl and not float(hi).is_integer():
                ihi = math.floor(hi)
            return Int(ilo, ihi, float_ok=self.draft >= 6)
        return Num(lo, lo_incl, hi, hi_incl)

    # ---- arrays
    def _array(self, s, ptr, base):
        lo = s.get("minItems", 0)
        hi = s.get("maxItems")
        for kw, v in (("minItems", lo), ("maxItems", hi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v)):
                raise ConstraintError(f"{kw} at {_ptr(ptr, kw)} must be a non-negative integer, got {v!r}")
        lo = int(lo)
        hi = int(hi) if hi is not None else None
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
        pprops = s.get("patternProperties") or {}
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
        if minp is not None and len(required_set & set(order)) < minp:
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
            extra = [ps for pat, ps in pprops.items() if _py_search(pat, k, ptr)]
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
                return self._map(key, psub, _ptr(ptr, "patternProperties", pat), base, pnames, minp, maxp)
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

    def _map(self, key, vs, ptr, base, pnames, minp, maxp):
        if pnames is not None:
            raise UnsupportedSchemaError("propertyNames", ptr, "propertyNames on a map is not supported")
        if minp:
            raise UnsupportedSchemaError("minProperties", ptr, "duplicate keys make counting keys non-regular")
        if maxp is not None and maxp == 0:
            return Obj([])
        if maxp is not None and fit_count(0, maxp, 5, self.cap)[1] is None:
            maxp = None  # an entry past the first writes at least ',"":0': no canvas text holds more than maxp
        if maxp is not None:
            raise UnsupportedSchemaError("maxProperties", ptr, "duplicate keys make counting keys non-regular")
        try:
            self.nest += 1
            try:
                value = self.node(vs, ptr, base) if vs is not None else AnyValue(
                    max(0, self.max_depth - self.nest), self.max_items)
            finally:
                self.nest -= 1
        except _TooDeep:
            self.notes.append(f"{ptr}: recursion beyond max_depth, map kept empty")
            return Obj([])
        if value.empty:
            return Obj([])
        return Obj([], map_key=key, map_value=value)


def largest_count(node: Node) -> tuple[str, str]:
    """``(pointer, description)`` of the largest repetition count in a compiled tree (a string's length
    bounds, an array's item bounds): what a byte-automaton budget error names."""
    best, seen, todo = (-1, "#", ""), set(), [node]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, Str) and n.content is None:
            c = n.hi if n.hi is not None else n.lo
            best = max(best, (c, getattr(n, "pointer", "#"), f"string length bounds {n.lo}..{n.hi}"), key=lambda x: x[0])
        elif isinstance(n, Arr):
            c = n.hi if n.hi is not None else n.lo
            best = max(best, (c, getattr(n, "pointer", "#"), f"array item bounds {n.lo}..{n.hi}"), key=lambda x: x[0])
            todo += list(n.prefix) + ([n.items] if n.items is not None else [])
        elif isinstance(n, Obj):
            todo += [x for _, x, _ in n.props] + ([n.map_value] if n.map_value is not None else [])
        elif isinstance(n, Union):
            todo += list(n.alts)
    return best[1], best[2]


def _languages_meet(rx_a: str, rx_b: str) -> bool:
    """Whether two regexes (full match) share a string: breadth-first search over pairs of states of their
    byte automata (``steerdiff_plugins.tokendfa.byte_dfa``)."""
    from steerdiff_plugins.tokendfa import byte_dfa

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


# ------------------------------------------------------------------------------------------------ API

class CompiledSchema:
    """A compiled schema: `regex`, the `node` tree used by canonical_dumps, and `notes` (narrowings)."""

    def __init__(self, node: Node, notes: list[str]):
        self.node, self.notes = node, notes
        self.regex = node.regex()
        self._cre = None

    def fullmatch(self, text: str) -> bool:
        if self._cre is None:
            self._cre = re.compile(self.regex)
        return self._cre.fullmatch(text) is not None

    def dumps(self, instance) -> str:
        return self.node.dump(instance)


_CACHE: dict = {}
_TREES: dict = {}


def _cache_key(schema, *options) -> tuple:
    return (json.dumps(schema, sort_keys=True, default=repr), *options)


def compile_tree(schema, *, max_depth: int = 3, max_items: int | None = None,
                 max_string: int | None = None, capacity: int | None = None) -> tuple[Node, list[str]]:
    """The compiled tree of `schema` and the narrowings applied, without building its regex (the grammar
    engine takes a tree whose regex would be too large: see ``grammar_jsonschema.tree_to_lark``). Raises
    like :func:`compile_schema`, except for the ``size`` of the regex."""
    if not isinstance(schema, (dict, bool)):
        raise ConstraintError(f"a JSON Schema is a dict or a bool, got {type(schema).__name__}")
    if not isinstance(max_depth, int) or max_depth < 0:
        raise ConstraintError(f"max_depth must be a non-negative int, got {max_depth!r}")
    if schema is False:
        raise ConstraintError("schema is false: empty language")
    key = _cache_key(schema, max_depth, max_items, max_string, capacity)
    hit = _TREES.get(key)  # fill builds the tree again when the regex turns out too large
    if hit is not None:
        return hit
    comp = _Compiler(schema, max_depth, max_items, max_string, capacity)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        node = comp.node(schema, "#", "")
    except _TooDeep as e:
        raise UnsupportedSchemaError("$ref", e.pointer, f"recursion deeper than max_depth={max_depth} "
                                                        "on a required path") from None
    except RecursionError:
        raise UnsupportedSchemaError("$ref", "#", "schema nesting too deep to unroll") from None
    finally:
        sys.setrecursionlimit(old)
    if node.empty and comp.too_long:
        raise ConstraintError(f"schema admits no instance that fits a canvas of {capacity} bytes: "
                              f"{comp.too_long[0]} needs more; raise length")
    if node.empty:
        raise ConstraintError("schema admits no instance: empty language")
    if len(_TREES) > 64:
        _TREES.clear()
    _TREES[key] = (node, comp.notes)
    return node, comp.notes


def compile_schema(schema, *, max_depth: int = 3, max_items: int | None = None,
                   max_string: int | None = None, capacity: int | None = None) -> CompiledSchema:
    """Compile `schema` (dict or bool) into a CompiledSchema. Raises UnsupportedSchemaError naming the
    keyword and JSON pointer for anything not expressible exactly, ConstraintError for an empty language
    or a malformed schema. ``capacity``: the most bytes the canvas holds (``canvas_bounds``); bounds no
    text of that size reaches are compiled as absent, so the language is the schema's only on texts of at
    most ``capacity`` bytes (None: no such assumption)."""
    key = _cache_key(schema, max_depth, max_items, max_string, capacity)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    node, notes = compile_tree(schema, max_depth=max_depth, max_items=max_items, max_string=max_string,
                               capacity=capacity)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        out = CompiledSchema(node, notes)
    finally:
        sys.setrecursionlimit(old)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def schema_to_regex(schema, *, max_depth: int = 3, max_items: int | None = None,
                    max_string: int | None = None, capacity: int | None = None) -> str:
    """Regex (Python re / interegular / Rust regex common dialect) of canonical JSON texts valid under
    `schema`. See the module docstring for the canonical form and the narrowings."""
    return compile_schema(schema, max_depth=max_depth, max_items=max_items, max_string=max_string,
                          capacity=capacity).regex


def canonical_dumps(instance, schema, *, max_depth: int = 3, max_items: int | None = None,
                    max_string: int | None = None) -> str:
    """Write `instance` the way the constraint for `schema` writes JSON (compact, keys in `properties`
    order, integers plain, bounded numbers without exponent). For an invalid instance the text is still
    produced (so tests can check that it is rejected)."""
    return compile_schema(schema, max_depth=max_depth, max_items=max_items, max_string=max_string).dumps(instance)


def schema_from_pydantic(model) -> dict:
    """`model.model_json_schema()` with every `$ref` kept local (pydantic writes `#/$defs/...`)."""
    try:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
    except AttributeError:
        raise ConstraintError(f"{model!r} is not a pydantic v2 model class") from None
    return schema


# --------------------------------------------------------------------------------------- test helper

def sample_text(regex: str, rng, max_repeat: int = 3) -> str:
    """A random string of `regex`'s language (for soundness tests: every sample must be valid JSON that
    validates). Unbounded repeats are cut at `max_repeat` extra copies; classes draw from their ranges."""
    parsed = _sre_parse.parse(regex, 0)

    def pick_set(items):
        ranges, neg = [], False
        for op, av in items:
            n = str(op)
            if n == "NEGATE":
                neg = True
            elif n == "LITERAL":
                ranges.append((av, av))
            elif n == "RANGE":
                ranges.append(av)
            else:
                raise ValueError(f"sampler: set item {n}")
        if neg:
            ranges = _complement(ranges)
            # prefer readable characters most of the time
            if rng.random() < 0.8:
                ranges = [(max(a, 0x20), min(b, 0x7E)) for a, b in ranges if a <= 0x7E and b >= 0x20] or ranges
        weights = [b - a + 1 for a, b in ranges]
        a, b = rng.choices(ranges, weights=[min(w, 64) for w in weights])[0]
        return chr(rng.randint(a, b))

    def gen(seq, out):
        for op, av in seq:
            n = str(op)
            if n == "LITERAL":
                out.append(chr(av))
            elif n == "NOT_LITERAL":
                out.append(pick_set([(_sre_c.NEGATE, None), (_sre_c.LITERAL, av)]))
            elif n == "IN":
                out.append(pick_set(av))
            elif n == "BRANCH":
                gen(rng.choice(av[1]), out)
            elif n == "SUBPATTERN":
                gen(av[3], out)
            elif n in ("MAX_REPEAT", "MIN_REPEAT"):
                lo, hi, sub = av
                hi = lo + max_repeat if hi == _sre_c.MAXREPEAT else min(hi, lo + max_repeat)
                for _ in range(rng.randint(lo, hi)):
                    gen(sub, out)
            else:
                raise ValueError(f"sampler: {n} is outside the dialect")
        return out

    return "".join(gen(parsed, []))
