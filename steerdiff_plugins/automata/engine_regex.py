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
import sys
from functools import lru_cache
from itertools import accumulate, compress, count

from steerdiff.errors import AutomatonTooLarge, ConstraintError
from steerdiff_plugins.memos import memo

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


_LITERAL_TEXT: dict = memo({})  # code point -> what _class gives it alone (a cache: most of a schema's regex)


def _emit(items, flags: int, pattern: str, top: bool) -> str:
    out = []
    n = len(items)
    flags = int(flags)
    ic = bool(flags & _IC)
    lit, texts = _C.LITERAL, _LITERAL_TEXT
    for i, (op, av) in enumerate(items):
        if op is lit:
            if ic:
                out.append(_class([(c, c) for c in _fold(av)]))
            else:  # most of a schema's regex (keys, punctuation): what _class gives one code point, directly
                t = texts.get(av)
                if t is None:
                    if len(texts) >= 1 << 16:
                        texts.clear()
                    t = texts[av] = _esc(av) if av != SENTINEL else _EMPTY
                out.append(t)
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


@memo
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
    hundreds of milliseconds to parse. The dialect the schema compiler writes goes through
    :func:`_fast_parse` (the same tree, 5-10 times faster); anything else, errors included, through Python's
    parser. Raises ``re.error`` as the parser does. Callers must not modify the parse."""
    if _FAST_PARSE and isinstance(pattern, str):
        try:
            return _fast_parse(pattern)
        except _Fallback:
            pass
    return _P.parse(pattern, 0)


# --- a fast parser for the schema compiler's dialect -------------------------------------------------------
# ``re._parser`` reads a pattern a character at a time through a Python tokenizer (about 3 us a character:
# 35 ms of o61609's 12k-character regex). ``_fast_parse`` splits the pattern into tokens with one C-level
# ``findall`` (a whole ``[...]`` class, an escape, a counted repeat ``{m,n}`` are one token each) and builds
# the tree ``re._parser.parse(pattern, 0)`` builds: the same items, the same optimisations (a common prefix
# of an alternation's branches moved out, single-character branches made one class, non-capturing groups
# spliced into their parent, a repeated non-capturing group's body repeated directly). Whatever it does not
# handle (flags, lookaround, backreferences, named groups, possessive repeats, octal or named escapes,
# deep nesting) and every error raises ``_Fallback``, and Python's parser decides. A group whose text came
# before in the same pattern (the JSON string body, number and value patterns a schema's regex repeats dozens
# of times) is parsed once: its later occurrences share the first one's sequence (``_group_ends``), so the
# byte stage's later passes, which memoise per sequence object, build it once too. Written against
# Python 3.11's ``re/_parser.py``; other versions use their own parser (``_FAST_PARSE``).
# tests/test_regex_parse.py checks the trees are equal on every regex of the public schema set and on
# generated patterns.

_FAST_PARSE = sys.version_info[:2] == (3, 11)
_TOKENS = re.compile(
    r"\[\^?\]?(?:\\.|[^\]\\])*\]"  # a character class
    r"|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\."  # an escape
    r"|\{(?:[0-9]+(?:,[0-9]*)?|,[0-9]*)\}[?+]?|[*+?][?+]?"  # a repeat, lazy or possessive
    r"|\(\?:?|.",  # a group's opening, any other character
    re.S)
_CLASS_ITEMS = re.compile(r"\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\.|.", re.S)
_SPECIAL = frozenset(".\\[()*+?^$|")  # "{" alone is a literal (a repeat is one token)
_REPEAT_OPS = (_C.MAX_REPEAT, _C.MIN_REPEAT) + ((_C.POSSESSIVE_REPEAT,) if hasattr(_C, "POSSESSIVE_REPEAT") else ())
_MAX_NEST = 100  # deeper groups go to Python's parser (its recursion depth decides what it does there)
_LIT, _IN_OP, _AT_OP, _SUB_OP = _C.LITERAL, _C.IN, _C.AT, _C.SUBPATTERN


_PARENS = frozenset(("(", "(?:", ")"))


def _group_ends(toks: list) -> dict:
    """``{index of a group's opening token: index of its ")"}`` for the groups of ``toks`` that hold no capturing
    group (their parse is a function of their text alone: no group numbers inside); ``{}`` when the nesting is
    unbalanced or deeper than ``_MAX_NEST`` (the parse falls back there: sharing must not change where)."""
    ends: dict = {}
    stack: list = []
    caps = 0
    for k in compress(count(), map(_PARENS.__contains__, toks)):
        t = toks[k]
        if t == ")":
            if not stack:
                return {}
            i, c0 = stack.pop()
            if caps == c0:
                ends[i] = k
        else:
            if t == "(":
                caps += 1
            stack.append((k, caps))
            if len(stack) > _MAX_NEST:
                return {}
    return ends


_NESTED_OPS = frozenset((_C.SUBPATTERN, _C.BRANCH) + _REPEAT_OPS)  # items that hold a sequence


class _Fallback(Exception):
    """Raised by :func:`_fast_parse` for what it leaves to Python's parser."""


class _Seq(list):
    """A parsed sequence. ``==`` is identity, as for ``re._parser.SubPattern`` (no ``__eq__``): the parser's
    common-prefix test compares items holding sequences, and must see two equal-looking groups as different."""

    __slots__ = ()
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = None


class _FastParse(_Seq):
    """The tree of :func:`_fast_parse`: its items, and ``state.flags`` as ``re._parser.parse`` sets them."""

    __slots__ = ("state",)


class _FastState:
    __slots__ = ("flags",)

    def __init__(self, flags: int):
        self.flags = flags


def _escape_item(t: str, in_class: bool):
    """The item of an escape token ``t`` (``\\x41``, ``\\d``, ``\\.``), as ``re._parser``'s ``_escape`` (outside a
    class) or ``_class_escape`` (inside) return it; ``_Fallback`` for anchors, octal, named and bad escapes."""
    c = t[1]
    if c == "x" or c == "u":
        if len(t) == (4 if c == "x" else 6):
            return (_LIT, int(t[2:], 16))
        raise _Fallback
    if in_class:
        code = _P.ESCAPES.get(t)
        if code is None:
            code = _P.CATEGORIES.get(t)
            if code is None or code[0] is not _IN_OP:
                code = None
    else:
        code = _P.CATEGORIES.get(t) or _P.ESCAPES.get(t)
    if code is not None:
        if code[0] is _AT_OP:
            raise _Fallback  # \A \Z \b \B: left to Python's parser (the engine refuses most of them)
        return code
    if c.isascii() and c.isalnum():
        raise _Fallback  # octal, \N{...}, \U..., group references, bad escapes
    return (_LIT, ord(c))


def _class_item(t: str):
    body = t[2:-1] if t[1] == "^" else t[1:-1]
    if not body or t[1] == "[" or "--" in body or "&&" in body or "~~" in body or "||" in body:
        raise _Fallback  # "[]", "[^]": unterminated; the rest: the parser warns (nested sets, set operations)
    toks = _CLASS_ITEMS.findall(body)
    items: list = []
    k, n = 0, len(toks)
    while k < n:
        a = toks[k]
        code1 = _escape_item(a, True) if a[0] == "\\" and len(a) > 1 else (_LIT, ord(a))
        k += 1
        if k < n and toks[k] == "-":
            if k + 1 == n:  # "-" before the closing "]": a literal
                items.append(code1[1][0] if code1[0] is _IN_OP else code1)
                items.append((_LIT, 45))
                break
            b = toks[k + 1]
            code2 = _escape_item(b, True) if b[0] == "\\" and len(b) > 1 else (_LIT, ord(b))
            if code1[0] is not _LIT or code2[0] is not _LIT or code2[1] < code1[1]:
                raise _Fallback  # a bad range: the parser's error
            items.append((_C.RANGE, (code1[1], code2[1])))
            k += 2
        else:
            items.append(code1[1][0] if code1[0] is _IN_OP else code1)
    items = list(dict.fromkeys(items))
    if len(items) == 1 and items[0][0] is _LIT:
        return (_C.NOT_LITERAL, items[0][1]) if t[1] == "^" else items[0]
    if t[1] == "^":
        items.insert(0, (_C.NEGATE, None))
    return (_IN_OP, items)


_ATOMS: dict = memo({})  # token -> its item, for literals, escapes and classes (pure functions of the token)
_MAX_ATOMS = 1 << 16


def _atom(t: str):
    """The item of a token that is one atom (a literal character, an escape, a class), or None for the
    rest (``|``, ``)``, ``(``, repeats, ``.``, anchors, ``(?``). Memoised: a schema's regex repeats the same
    few classes and escapes hundreds of times. Items are shared between trees (callers do not modify
    a parse)."""
    item = _ATOMS.get(t)
    if item is None:
        c = t[0]
        if len(t) == 1:
            if c in _SPECIAL:
                return None
            item = (_LIT, ord(c))
        elif c == "\\":
            item = _escape_item(t, False)
        elif c == "[":
            item = _class_item(t)
        else:
            return None
        if len(_ATOMS) >= _MAX_ATOMS:
            _ATOMS.clear()
        _ATOMS[t] = item
    return item


def _fast_parse(pattern: str) -> _FastParse:
    """``re._parser.parse(pattern, 0)`` for the schema compiler's dialect (see above), or ``_Fallback``."""
    toks = _TOKENS.findall(pattern)
    groups = [0]
    atom = _atom
    ends = _group_ends(toks) if pattern.count("(") > 1 else {}  # (one group alone: nothing to share)
    offs = list(accumulate(map(len, toks), initial=0)) if len(ends) > 1 else None  # each token's offset
    shared: dict = {}  # a group's text -> its sequence, parsed once

    def parse_sub(i: int, depth: int):
        items = []
        while True:
            seq, i = parse_seq(i, depth)
            items.append(seq)
            if i < len(toks) and toks[i] == "|":
                i += 1
                continue
            break
        if len(items) == 1:
            return items[0], i
        sub = _Seq()
        while True:  # re._parser._parse_sub: move a common prefix out of the branches
            prefix = None
            for item in items:
                if not item:
                    break
                if prefix is None:
                    prefix = item[0]
                    if prefix[0] in _NESTED_OPS:
                        break  # re's sequences compare by identity (never equal); shared groups would be,
                        # and moving them out would give a tree unlike Python's parser's
                elif item[0] != prefix:
                    break
            else:
                for item in items:
                    del item[0]
                sub.append(prefix)
                continue
            break
        cset = []
        for item in items:  # branches of one character each: one class
            if len(item) != 1:
                break
            op, av = item[0]
            if op is _LIT:
                cset.append((op, av))
            elif op is _IN_OP and av[0][0] is not _C.NEGATE:
                cset.extend(av)
            else:
                break
        else:
            sub.append((_IN_OP, list(dict.fromkeys(cset))))
            return sub, i
        sub.append((_C.BRANCH, (None, items)))
        return sub, i

    def parse_seq(i: int, depth: int):
        if depth > _MAX_NEST:
            raise _Fallback
        seq = _Seq()
        append = seq.append
        spliced = []  # positions of non-capturing groups, spliced at the end
        n = len(toks)
        while i < n:
            t = toks[i]
            item = atom(t)
            if item is not None:  # a literal, an escape or a class: most tokens
                append(item)
                i += 1
                continue
            if t == "|" or t == ")":
                break
            i += 1
            c = t[0]
            if c in "*+?" or (c == "{" and len(t) > 1):
                if c == "{":
                    close = t.index("}")
                    lo, comma, hi = t[1:close].partition(",")
                    if not comma:
                        hi = lo
                    suffix = t[close + 1:]
                    mn = int(lo) if lo else 0
                    mx = int(hi) if hi else _C.MAXREPEAT
                    if mn >= _C.MAXREPEAT or (hi and (mx >= _C.MAXREPEAT or mx < mn)):
                        raise _Fallback  # the parser's overflow and order errors
                else:
                    mn, mx = (0, 1) if c == "?" else (0, _C.MAXREPEAT) if c == "*" else (1, _C.MAXREPEAT)
                    suffix = t[1:]
                if not seq or seq[-1][0] is _AT_OP or seq[-1][0] in _REPEAT_OPS or suffix == "+":
                    raise _Fallback  # nothing to repeat, a multiple repeat, a possessive repeat
                last = seq[-1]
                if last[0] is _SUB_OP and last[1][0] is None and not last[1][1] and not last[1][2]:
                    item = last[1][3]
                else:
                    item = _Seq((last,))
                seq[-1] = (_C.MIN_REPEAT if suffix else _C.MAX_REPEAT, (mn, mx, item))
            elif c == "$" or c == "^" or c == ".":
                append((_AT_OP, _C.AT_END) if c == "$" else (_AT_OP, _C.AT_BEGINNING) if c == "^" else (_C.ANY, None))
            elif t == "(" or t == "(?:":
                gid = None
                if t == "(":
                    gid = groups[0] = groups[0] + 1
                end = ends.get(i - 1) if offs else None
                if end is not None:  # no capturing group inside: shared by every group of the same text
                    key = pattern[offs[i]:offs[end]]
                    p = shared.get(key)
                    if p is None:
                        p, i = parse_sub(i, depth + 1)
                        if i == end:
                            shared[key] = p
                    else:
                        i = end
                else:
                    p, i = parse_sub(i, depth + 1)
                if i >= n or toks[i] != ")":
                    raise _Fallback  # an unterminated group
                i += 1
                if gid is None:
                    spliced.append(len(seq))
                append((_SUB_OP, (gid, 0, 0, p)))
            else:
                raise _Fallback  # (?P, (?=, (?i, a trailing backslash, an unterminated class ...
        for k in reversed(spliced):  # splice non-capturing groups (not repeated since) into the sequence
            op, av = seq[k]
            if op is _SUB_OP:
                seq[k: k + 1] = av[3]
        return seq, i

    try:
        top, i = parse_sub(0, 0)
    finally:  # the two closures refer to each other: a cycle only the collector frees, holding what they hold
        parse_sub = parse_seq = None  # noqa: F841
    if i != len(toks):
        raise _Fallback  # an unbalanced ")"
    out = _FastParse(top)
    out.state = _FastState(int(_C.SRE_FLAG_UNICODE))
    return out


@lru_cache(maxsize=4096)
def to_engine_regex(pattern: str) -> str:
    """The Python-dialect ``pattern`` as an engine regex with the same ``re.fullmatch`` language."""
    if not isinstance(pattern, str):
        raise ConstraintError(f"a regex must be a str, got {type(pattern).__name__}")
    try:
        parsed = parse_regex(pattern)
    except (re.error, OverflowError, RecursionError) as exc:  # OverflowError: a count past re's MAXREPEAT
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

