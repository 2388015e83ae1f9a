"""JSON Schema ``pattern`` (ECMA-262 subset, read by Python's parser) -> the compiler's regex dialect."""

from __future__ import annotations

import re
from functools import lru_cache

from steerdiff_plugins.automata.engine_regex import codepoint_ranges
from steerdiff_plugins.canvas_bounds import fit_count
from steerdiff_plugins.schema.fragments import (
    STRCHAR,
    _alt,
    _group,
    _lit_char,
    _rep,
)

try:  # Python 3.11+
    import re._constants as _sre_c  # type: ignore
    import re._parser as _sre_parse  # type: ignore
except ImportError:  # pragma: no cover
    import sre_constants as _sre_c  # type: ignore
    import sre_parse as _sre_parse  # type: ignore

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
    out = codepoint_ranges(lambda c: not 0xD800 <= ord(c) <= 0xDFFF and test(c), 0x10FFFF)  # no surrogates
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


def pattern_length_bounds(pattern: str) -> tuple[int, int | None] | None:
    """``(shortest, longest)`` length in characters of the strings ``pattern`` matches (re.search semantics:
    a branch not anchored at both ends has no longest, None), or None when the pattern does not parse.
    Length bounds a pattern already implies need no intersection (``compiler._string``)."""
    try:
        parsed = _sre_parse.parse(pattern, 0)
    except re.error:
        return None
    seq = list(parsed)
    branches = [list(b) for b in seq[0][1][1]] if len(seq) == 1 and str(seq[0][0]) == "BRANCH" else [seq]
    lo, hi = None, 0
    for b in branches:
        w = _sre_parse.SubPattern(parsed.state, b).getwidth()
        start = bool(b) and str(b[0][0]) == "AT" and str(b[0][1]) in ("AT_BEGINNING", "AT_BEGINNING_STRING")
        end = bool(b) and str(b[-1][0]) == "AT" and str(b[-1][1]) in ("AT_END", "AT_END_STRING")
        if any(str(op) == "AT" for op, _ in b[1 if start else 0:len(b) - 1 if end else len(b)]):
            return None  # an anchor inside: not read here
        lo = w[0] if lo is None else min(lo, w[0])
        if hi is not None:
            hi = max(hi, w[1]) if start and end and w[1] < _sre_c.MAXREPEAT - 1 else None
    return (lo or 0), hi


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

