"""Character sets of JSON Schema patterns: code-point ranges (normalised, complemented, the ``\\d \\w \\s``
categories read so that a set is a subset of both the ECMA-262 and the Python reading) and the regex of their
canonical JSON encodings (``charset_regex``). Shared by ``pattern`` (patterns -> regex) and ``char_languages``
(patterns as character automata)."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from steerdiff_plugins.schema.fragments import _alt, _lit_char

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
    """The code points, surrogates left out, of Python's wide ``\\d`` (``str.isdecimal``), ``\\w`` (``isalnum``
    or ``_``) or ``\\s`` (``isspace``, plus ECMA's U+FEFF), as normalised ranges. Found by ``re``'s own class
    over every code point at once (its Unicode ``\\d \\w \\s`` are those predicates), not one Python call per
    code point (1.1M calls, about 1 s: paid by the first pattern with a negated class of a process; now 0.2 s)."""
    every = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")  # chr(i) at i
    out = []
    for m in re.finditer({"digit": r"\d+", "word": r"\w+", "space": r"\s+"}[kind], every):
        a, b = m.start(), m.end() - 1
        out += [(a, min(b, 0xD7FF))] if a < 0xD800 else []  # no surrogates
        out += [(max(a, 0xE000), b)] if b > 0xDFFF else []
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
    return _lit_char(chr(o))


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
