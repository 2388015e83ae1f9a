"""Python regex -> engine regex with explicit code-point sets (stage 1 of the regular-language pipeline).

``to_engine_regex(pattern)``: the Python-dialect regex is parsed by Python's own parser (``re._parser``)
and re-emitted with explicit code-point ranges (``\\d``, ``\\w``, ``\\s``, ``.`` and case folding expanded to
the exact sets Python's ``re`` uses), so the language compiled later is exactly the language
``re.fullmatch`` accepts. Non-regular features (backreferences, lookaround, ``\\b``, possessive/atomic
groups, anchors inside the pattern) raise :class:`ConstraintError`. Every engine regex ends with
``SENTINEL``, a code point never generated.
"""

from __future__ import annotations

import re
from functools import lru_cache

from steerdiff.errors import AutomatonTooLarge, ConstraintError

try:  # Python >= 3.11
    from re import _constants as _C
    from re import _parser as _P
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _C  # type: ignore
    import sre_parse as _P  # type: ignore

MAXCP = 0x10FFFF
_MAX_EXACT_REPEAT = 12


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


@lru_cache(maxsize=None)
def _category_ranges(cat: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
    """Exact code-point ranges of Python's ``\\d``/``\\s``/``\\w`` (and negations) for str patterns."""
    neg = cat.startswith("NOT_")
    base = cat[4:] if neg else cat
    hi = 0x7F if ascii_only else MAXCP
    if base == "DIGIT":
        test = str.isdecimal if not ascii_only else (lambda c: "0" <= c <= "9")
    elif base == "SPACE":
        test = str.isspace if not ascii_only else (lambda c: c in " \t\n\r\f\v")
    elif base == "WORD":
        test = _is_word
    else:
        raise ConstraintError(f"regex category {cat} is not supported")
    ranges = tuple(codepoint_ranges(test, hi))
    return tuple(_negate(ranges)) if neg else ranges


def codepoint_ranges(test, hi: int = MAXCP) -> list[tuple[int, int]]:
    """The code points ``0..hi`` whose character passes ``test``, as sorted disjoint inclusive ranges."""
    pos = []
    start = None
    for cp in range(hi + 1):
        ok = test(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            pos.append((start, cp - 1))
            start = None
    if start is not None:
        pos.append((start, hi))
    return pos


def _normalise(ranges) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _negate(ranges) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for a, b in _normalise(ranges):
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= MAXCP:
        out.append((nxt, MAXCP))
    return out


def _fold(cp: int) -> set[int]:
    """Code points ``re`` matches for ``chr(cp)`` under IGNORECASE (a checked subset of case variants)."""
    c = chr(cp)
    cands = {c, c.lower(), c.upper(), c.swapcase(), c.casefold(), c.title()}
    pat = re.compile(re.escape(c), re.IGNORECASE)
    out = {cp}
    for v in cands:
        if len(v) == 1 and pat.fullmatch(v):
            out.add(ord(v))
    return out


SENTINEL = 0x10FFFF  # end marker appended to every engine regex; never generated (a noncharacter)
SENTINEL_BYTES = tuple(chr(SENTINEL).encode())  # F4 8F BF BF


def _without_sentinel(ranges):
    out = []
    for a, b in ranges:
        if a <= SENTINEL <= b:
            if a < SENTINEL:
                out.append((a, SENTINEL - 1))
        else:
            out.append((a, b))
    return out


_EMPTY = "[^\\x{0}-\\x{10FFFF}]"  # the empty set


def _esc(cp: int) -> str:
    return f"\\x{{{cp:X}}}"


def _class(ranges) -> str:
    ranges = _without_sentinel(_normalise(ranges))
    if not ranges:
        return _EMPTY
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _esc(ranges[0][0])
    return "[" + "".join(_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}" for a, b in ranges) + "]"


def _shown(pattern: str, limit: int = 200) -> str:
    """``pattern`` for an error message: schema regexes run to megabytes, so long ones are cut."""
    return repr(pattern) if len(pattern) <= limit else repr(pattern[:limit]) + f"... ({len(pattern)} characters)"


def _unsupported(pattern: str, what: str):
    return ConstraintError(f"regex {_shown(pattern)}: {what} is not a regular-language feature the exact engine supports")


_IC, _DOTALL, _ASCII = int(re.IGNORECASE), int(re.DOTALL), int(re.ASCII)  # plain ints: RegexFlag's & is slow


def _emit(items, flags: int, pattern: str, top: bool) -> str:
    out = []
    n = len(items)
    flags = int(flags)
    ic = bool(flags & _IC)
    for i, (op, av) in enumerate(items):
        if op is _C.LITERAL:
            if ic:
                out.append(_class([(c, c) for c in _fold(av)]))
            else:  # most of a schema's regex (keys, punctuation): what _class gives one code point, directly
                out.append(_esc(av) if av != SENTINEL else _EMPTY)
        elif op is _C.NOT_LITERAL:
            cps = _fold(av) if ic else {av}
            out.append(_class(_negate([(c, c) for c in cps])))
        elif op is _C.ANY:
            out.append(_class([(0, MAXCP)] if flags & _DOTALL else [(0, 9), (11, MAXCP)]))
        elif op is _C.IN:
            out.append(_in_class(tuple(av), flags & (_IC | _ASCII), pattern))
        elif op is _C.BRANCH:
            out.append("(?:" + "|".join(_emit(list(alt), flags, pattern, False) for alt in av[1]) + ")")
        elif op is _C.SUBPATTERN:
            group, add, rem, sub = av
            out.append("(?:" + _emit(list(sub), (flags | add) & ~rem, pattern, False) + ")")
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT):
            lo, hi, sub = av
            body = "(?:" + _emit(list(sub), flags, pattern, False) + ")"
            if lo > _MAX_EXACT_REPEAT and "|" in body and re.search(r"\\x\{[0-9A-F]{3,}\}", body):
                # outlines_core's DFA builder takes time exponential in the count here (measured:
                # {12} 0.1 s, {14} 0.2 s, {20} 190 s): refuse instead of hanging
                raise ConstraintError(
                    f"regex {_shown(pattern)}: a minimum repetition count of {lo} over an alternation with non-ASCII "
                    f"classes is beyond the automaton builder (limit {_MAX_EXACT_REPEAT}); lower the minimum "
                    f"(e.g. minLength) or narrow the class")
            from steerdiff_plugins.automata.byte_level import MAX_STATES  # read at call time (tests lower it)

            count = lo if hi is _C.MAXREPEAT else hi
            if count > MAX_STATES:  # each repetition is at least one state: refused before the builder allocates
                raise AutomatonTooLarge(f"regex {_shown(pattern)}: a repetition count of {count} needs more automaton states "
                                        f"than the limit of {MAX_STATES}; tighten the bounds (maxLength, maxItems, minItems)",
                                        count, MAX_STATES)
            out.append(body + ("{%d,}" % lo if hi is _C.MAXREPEAT else "{%d,%d}" % (lo, hi)))
        elif op is _C.AT:
            if av in (_C.AT_BEGINNING, _C.AT_BEGINNING_STRING) and top and i == 0:
                continue
            if av in (_C.AT_END, _C.AT_END_STRING) and top and i == n - 1:
                continue
            raise _unsupported(pattern, f"the anchor {av}" + (" inside the pattern" if av not in (_C.AT_BOUNDARY, _C.AT_NON_BOUNDARY) else ""))
        else:
            raise _unsupported(pattern, str(op))
    return "".join(out)


@lru_cache(maxsize=4096)
def _in_class_text(items: tuple, flags: int) -> str:
    """The engine class of a parsed ``[...]`` (``items``) under ``flags`` (only IGNORECASE and ASCII matter):
    a pure function of both, cached, since a schema's regex repeats the same few classes hundreds of times
    (o58767: 1086 classes). Raises ``_Unsupported`` for what :func:`_in_ranges` refuses (the caller names the
    pattern)."""
    return _class(_in_ranges(items, flags, None))


def _in_class(items: tuple, flags: int, pattern: str) -> str:
    try:
        return _in_class_text(items, flags)
    except _Unsupported as exc:
        raise _unsupported(pattern, exc.args[0]) from None


class _Unsupported(Exception):
    """What :func:`_in_ranges` refuses, before the pattern is named (``args[0]``: what)."""


def _in_ranges(items, flags: int, pattern: str | None) -> list[tuple[int, int]]:
    neg = False
    ranges: list[tuple[int, int]] = []
    ic = bool(flags & _IC)
    for op, av in items:
        if op is _C.NEGATE:
            neg = True
        elif op is _C.LITERAL:
            ranges.extend((c, c) for c in (_fold(av) if ic else {av}))
        elif op is _C.RANGE:
            a, b = av
            ranges.append((a, b))
            if ic:
                if b - a > 5000:
                    _refuse(pattern, f"a case-insensitive range of {b - a + 1} code points")
                for cp in range(a, b + 1):
                    ranges.extend((c, c) for c in _fold(cp))
        elif op is _C.CATEGORY:
            ranges.extend(_category_ranges(str(av).replace("CATEGORY_", ""), bool(flags & _ASCII)))
        else:
            _refuse(pattern, f"{op} inside a character class")
    return _negate(ranges) if neg else _normalise(ranges)


def _refuse(pattern: str | None, what: str):
    if pattern is None:
        raise _Unsupported(what)
    raise _unsupported(pattern, what)


@lru_cache(maxsize=16)
def parse_regex(pattern: str):
    """``re._parser.parse(pattern, 0)``, cached: the byte stage reads each pattern's parse twice (the
    compile budget's expansion estimate, then :func:`to_engine_regex`), and a schema's regex can take
    hundreds of milliseconds to parse. Raises ``re.error`` as the parser does. Callers must not modify
    the parse."""
    return _P.parse(pattern, 0)


@lru_cache(maxsize=4096)
def to_engine_regex(pattern: str) -> str:
    """The Python-dialect ``pattern`` as an engine regex with the same ``re.fullmatch`` language."""
    if not isinstance(pattern, str):
        raise ConstraintError(f"a regex must be a str, got {type(pattern).__name__}")
    try:
        parsed = parse_regex(pattern)
    except re.error as exc:
        raise ConstraintError(f"regex {_shown(pattern)} does not compile: {exc}") from None
    flags = parsed.state.flags
    if flags & re.MULTILINE:
        flags &= ~re.MULTILINE  # only leading/trailing anchors are accepted, where MULTILINE changes nothing
    if flags & re.ASCII and flags & re.IGNORECASE:
        pass
    # The Rust DFA has leftmost-first semantics: once a higher-priority alternative matches, lower ones
    # are pruned, so `a|ab` would not accept "ab". An end marker makes every match end at the same
    # place, so no thread is pruned and the DFA accepts exactly the set-theoretic language.
    return "(?:" + _emit(list(parsed), flags, pattern, True) + ")" + _esc(SENTINEL)

