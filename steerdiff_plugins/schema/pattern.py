"""JSON Schema ``pattern`` (ECMA-262 subset, read by Python's parser) -> the compiler's regex dialect."""

from __future__ import annotations

import functools
import re

from steerdiff_plugins.canvas_bounds import fit_count
from steerdiff_plugins.memos import memo
from steerdiff_plugins.schema.char_sets import (
    _FULL,
    _category,
    _complement,
    _encoded_char,
    charset_regex,
)
from steerdiff_plugins.schema.fragments import (
    STRCHAR,
    _alt,
    _group,
    _rep,
)

try:  # Python 3.11+
    import re._constants as _sre_c  # type: ignore
    import re._parser as _sre_parse  # type: ignore
except ImportError:  # pragma: no cover
    import sre_constants as _sre_c  # type: ignore
    import sre_parse as _sre_parse  # type: ignore


class _PatternError(Exception):
    pass


def _memoised(fn):
    """``fn`` (a pure function of a pattern string and int bounds, returning an immutable value) remembered by
    its arguments when they are all ``str``/``int``/``None`` (a ``$ref``'d definition asks again per use; o21307
    read 506 patterns, a few dozen distinct); other arguments (a malformed schema's) and raised errors go
    through uncached, so the results and errors are those of ``fn`` itself."""
    cached = functools.lru_cache(maxsize=4096, typed=True)(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not kwargs and all(a is None or type(a) in (str, int) for a in args):
            return cached(*args)
        return fn(*args, **kwargs)

    call.cache_clear = cached.cache_clear
    call.cache_info = cached.cache_info
    return memo(call)


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
            ranges.extend(_category(av, positive_context))  # a negated class is complemented: read wide
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


# ---------------------------------------------------------------------------------------------------- length bounds
# Length bounds (``minLength``/``maxLength``) together with a ``pattern`` or a ``format`` regex: a content
# regex whose every string matches the pattern (or format) AND has a length within the bounds.
#
# The regex pipeline has no intersection operator, so the intersection is built on the pattern's parse tree
# (Python's ``re`` parser, the subset ``pattern.py`` translates): each repetition gets count bounds and each
# sequence splits the length budget among its items, so that every string of the result has a length in
# ``[lo, hi]`` by construction. Contract:
#
# * the result is always a SUBSET of ``pattern ∩ {lo <= len <= hi}`` (exactness is never traded away);
# * it is the whole intersection when at most one item of every sequence has a variable width that the
#   bounds cut, when repetitions are of fixed-width items, and for an unanchored fixed-width pattern
#   (``[RD][0-9]{9}``: the union over the match's offset);
# * otherwise it is a documented NARROWING: the length budget of a sequence is split evenly among its
#   variable items (``^([a-z]+):([a-z]+)$`` with ``maxLength: 9`` keeps ``[a-z]{1,4}:[a-z]{1,4}``, losing
#   ``abcdef:g``), and a repeated variable-width group gets ``budget // count`` per copy.
#
# Widths are counted in characters (code points), as python-jsonschema counts ``minLength``/``maxLength``;
# every pattern character is one JSON string character.

_BEGIN = ("AT_BEGINNING", "AT_BEGINNING_STRING")
_END = ("AT_END", "AT_END_STRING")
_MAX_ALTERNATIVES = 64  # flattened top-level alternatives (distributed groups and branches)
_EXACT_OFFSETS = 12  # an unanchored fixed-width pattern: the union over at most this many offsets
_STAR_COPIES = 8  # copies kept of an unbounded repetition of a variable-width item when the budget is cut


class _Refuse(Exception):
    """The tree holds a construct this module does not bound (the caller refuses the keyword)."""


class _NoFit(Exception):
    """A repetition minimum no text of the canvas holds: the alternative is empty."""


# ---------------------------------------------------------------------------------------------- the tree
# A node is ("char", sre_item) | ("seq", [nodes]) | ("alt", [nodes]) | ("rep", lo, hi, node); hi None: no
# upper count. ``width`` gives (min, max) characters, max None when unbounded.

def _tree(items, cap: int | None = None) -> tuple:
    """The node of an sre item list; repetition counts a text of ``cap`` bytes cannot reach are dropped
    (``canvas_bounds.fit_count``; a character writes at least one byte)."""
    out = []
    for op, av in items:
        name = str(op)
        if name in _ONE_CHAR:
            out.append(("char", (op, av)))
        elif name == "BRANCH":
            out.append(("alt", [_tree(b, cap) for b in av[1]]))
        elif name == "SUBPATTERN":
            if av[1] or av[2]:
                raise _Refuse("inline flags")
            out.append(_tree(av[3], cap))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, sub = av
            node = _tree(sub, cap)
            lo, hi = fit_count(lo, None if hi == _sre_c.MAXREPEAT else hi, _width(node)[0], cap)
            if hi is not None and hi < lo:
                raise _NoFit()
            out.append(("rep", lo, hi, node))
        else:
            raise _Refuse(name)
    return out[0] if len(out) == 1 else ("seq", out)


def _width(n) -> tuple[int, int | None]:
    kind = n[0]
    if kind == "char":
        return 1, 1
    if kind == "seq":
        lo, hi = 0, 0
        for x in n[1]:
            a, b = _width(x)
            lo += a
            hi = None if hi is None or b is None else hi + b
        return lo, hi
    if kind == "alt":
        ws = [_width(x) for x in n[1]]
        return min(w[0] for w in ws), (None if any(w[1] is None for w in ws) else max(w[1] for w in ws))
    _, a, b, sub = n
    m, mm = _width(sub)
    return a * m, (0 if b == 0 else None if b is None or mm is None else b * mm)


# ------------------------------------------------------------------------------------------- bounding

class _Bounder:
    """Bounds a tree to widths ``[lo, hi]``: ``bound`` returns ``(regex, min, max)`` of a subset of the node's
    language whose widths lie in the bounds, or None when this module finds no such subset."""

    def __init__(self, leaf):
        self.leaf = leaf  # sre item of one character -> content regex

    def whole(self, n) -> str:
        kind = n[0]
        if kind == "char":
            return self.leaf(n[1])
        if kind == "seq":
            return "".join(self.whole(x) for x in n[1])
        if kind == "alt":
            return _alt([self.whole(x) for x in n[1]])
        _, a, b, sub = n
        inner = self.whole(sub)
        return _rep(_group(inner), a, b) if inner and b != 0 else ""

    def bound(self, n, lo: int, hi: int | None):
        m, mm = _width(n)
        if hi is not None and m > hi:
            return None
        if mm is not None and mm < lo:
            return None
        if lo <= m and (hi is None or (mm is not None and mm <= hi)):
            return self.whole(n), m, mm  # already inside the bounds: the node unchanged
        kind = n[0]
        if kind == "alt":
            outs = [r for r in (self.bound(x, lo, hi) for x in n[1]) if r is not None]
            if not outs:
                return None
            return (_alt([r[0] for r in outs]), min(r[1] for r in outs),
                    None if any(r[2] is None for r in outs) else max(r[2] for r in outs))
        if kind == "seq":
            return self._seq(n[1], lo, hi)
        if kind == "rep":
            return self._rep(n, lo, hi)
        return None  # a character is width 1, handled above

    def _seq(self, items, lo, hi):
        ws = [_width(x) for x in items]
        caps = [w[1] for w in ws]
        if hi is not None:
            slack = hi - sum(w[0] for w in ws)
            need = {i: (None if w[1] is None else w[1] - w[0]) for i, w in enumerate(ws) if w[1] != w[0]}
            alloc = _water_fill(need, slack)
            caps = [ws[i][0] + alloc[i] if i in alloc else ws[i][1] for i in range(len(ws))]
        floors = [w[0] for w in ws]
        deficit = lo - sum(floors)
        if deficit > 0:
            room = {i: (None if caps[i] is None else caps[i] - floors[i]) for i in range(len(ws))
                    if caps[i] is None or caps[i] > floors[i]}
            if sum(r if r is not None else deficit for r in room.values()) < deficit:
                return None
            extra = _water_fill(room, deficit)
            floors = [floors[i] + extra.get(i, 0) for i in range(len(ws))]
        parts, a, b = [], 0, 0
        for x, f, c in zip(items, floors, caps):
            r = self.bound(x, f, c)
            if r is None:
                return None
            parts.append(r[0])
            a += r[1]
            b = None if b is None or r[2] is None else b + r[2]
        return "".join(parts), a, b

    def _rep(self, n, lo, hi):
        _, a, b, sub = n
        m, mm = _width(sub)
        if m == mm:  # fixed width: the count bounds are the whole intersection
            if m == 0:
                return None
            ka = max(a, -(-lo // m))
            kb = b if hi is None else (hi // m if b is None else min(b, hi // m))
            if kb is not None and kb < ka:
                return None
            rx = self.whole(sub)
            return (_rep(_group(rx), ka, kb) if kb != 0 else ""), ka * m, (None if kb is None else kb * m)
        if hi is None:
            kb, ihi = b, mm
        elif b is not None and b > 0 and hi // b >= m:  # every copy allowed, each one shortened
            kb, ihi = b, (hi // b if mm is None else min(mm, hi // b))
        elif mm is not None and mm <= hi and hi // mm >= max(a, 1):
            kb, ihi = (hi // mm if b is None else min(b, hi // mm)), mm
        else:
            kb = b if b is not None else max(a, _STAR_COPIES)
            if m > 0:
                kb = min(kb, hi // m)
            if kb < a:
                return None
            if kb == 0:
                return ("", 0, 0) if lo == 0 else None
            ihi = hi // kb
        ka, ilo = a, m
        if lo > 0:
            ka = max(a, 1)
            ilo = max(m, -(-lo // ka))
            if ihi is not None and ilo > ihi:
                ka = max(a, -(-lo // ihi))
                ilo = max(m, -(-lo // ka))
            if kb is not None and ka > kb:
                return None
        r = self.bound(sub, ilo, ihi)
        if r is None:
            return None
        rx, ra, rb = r
        if not rx:
            return None
        return (_rep(_group(rx), ka, kb), ka * ra,
                None if kb is None or rb is None else kb * rb)


def _water_fill(need: dict, budget: int) -> dict:
    """Split ``budget`` among the keys of ``need`` (each wants ``need[k]``, None: unlimited) so that no key
    gets more than it wants and the shares are as even as possible (max-min fair). Returns key -> share."""
    out, left, budget = {}, dict(need), max(budget, 0)
    while left:
        fair = budget // len(left)
        small = {k: v for k, v in left.items() if v is not None and v <= fair}
        if not small:
            extra = budget - fair * len(left)
            for j, k in enumerate(sorted(left)):
                out[k] = fair + (1 if j < extra else 0)
            return out
        for k, v in small.items():
            out[k] = v
            budget -= v
            del left[k]
    return out


# ---------------------------------------------------------------------------------------- entry points

def _flatten(seq) -> list[list]:
    """Top-level alternatives of a parsed pattern with the branches and plain groups that hold anchors
    distributed (``^01$|^07$``, which the parser factors into ``^0(?:1$|7$)``): each a flat item list."""
    todo, done = [list(seq)], []
    while todo:
        s = todo.pop()
        for i, (op, av) in enumerate(s):
            name = str(op)
            if name == "BRANCH" and _has_anchor(av[1]):
                todo.extend(s[:i] + list(b) + s[i + 1:] for b in av[1])
                break
            if name == "SUBPATTERN" and not av[1] and not av[2] and _has_anchor([av[3]]):
                todo.append(s[:i] + list(av[3]) + s[i + 1:])
                break
        else:
            done.append(s)
        if len(todo) + len(done) > _MAX_ALTERNATIVES:
            raise _Refuse("too many alternatives")
    return done


def _has_anchor(seqs) -> bool:
    for sq in seqs:
        for op, av in sq:
            name = str(op)
            if name == "AT":
                return True
            if name == "BRANCH" and _has_anchor(av[1]):
                return True
            if name == "SUBPATTERN" and _has_anchor([av[3]]):
                return True
    return False


def split_anchors(pattern: str) -> list[tuple[bool, list, bool]] | None:
    """``(anchored at start, items, anchored at end)`` per top-level alternative, anchors only at the ends;
    None when the pattern does not parse or has an anchor elsewhere. An alternative with ``^`` after a
    character can match nothing and is dropped."""
    try:
        parsed = _sre_parse.parse(pattern, 0)
        if parsed.state.flags & ~_sre_c.SRE_FLAG_UNICODE:
            return None
        alts = _flatten(parsed)
    except (re.error, _Refuse, AttributeError):
        return None
    out = []
    for b in alts:
        start = end = False
        while b and str(b[0][0]) == "AT" and str(b[0][1]) in _BEGIN:
            start, b = True, b[1:]
        while b and str(b[-1][0]) == "AT" and str(b[-1][1]) in _END:
            end, b = True, b[:-1]
        if any(str(op) == "AT" and str(av) in _BEGIN for op, av in b):
            continue  # ``^`` after a character: never matches (no MULTILINE); dropping it keeps a subset
        if any(str(op) == "AT" for op, _ in b):
            return None
        out.append((start, b, end))
    return out


def bounded_regex(pattern: str, lo: int, hi: int | None, leaf, anychar: str, cap: int | None = None):
    """Content regex of strings that ``pattern`` matches (re.search semantics) with ``lo <= len <= hi``
    (``hi`` None: no upper bound); ``leaf`` translates one sre character item, ``anychar`` is the regex of
    any one character. Returns None when this module cannot bound the pattern (the caller refuses), or
    False when no string of the pattern has a length within the bounds (exact: from the pattern's widths)."""
    alts = split_anchors(pattern)
    if alts is None:
        return None
    bounder = _Bounder(lambda it: anychar if it == "any" else leaf(it))
    any_run = ("rep", 0, None, ("char", "any"))
    out, feasible = [], False
    for start, items, end in alts:
        try:
            nodes = [_tree([it], cap) for it in items]
        except _Refuse:
            return None
        except _NoFit:
            continue
        # re.search semantics: an unanchored side's nullable items change nothing (drop them)
        while not end and nodes and _width(nodes[-1])[0] == 0:
            nodes.pop()
        while not start and nodes and _width(nodes[0])[0] == 0:
            nodes.pop(0)
        body = nodes[0] if len(nodes) == 1 else ("seq", nodes)
        bm, bM = _width(body)
        if (hi is not None and bm > hi) or (start and end and bM is not None and bM < lo):
            continue  # no string of this alternative has a length within the bounds
        feasible = True
        if not start and not end and bm == bM and hi is not None and hi - bm <= _EXACT_OFFSETS:
            out.append(_offsets(bounder.whole(body), bm, lo, hi, anychar))
            continue
        seq = ([] if start else [any_run]) + [body] + ([] if end else [any_run])
        r = bounder.bound(("seq", seq), lo, hi)
        if r is None:
            return None  # a feasible alternative this module cannot bound: refuse, never drop it silently
        out.append(r[0])
    if not feasible:
        return False
    return _alt(out)


def _offsets(body: str, w: int, lo: int, hi: int, anychar: str) -> str:
    """Strings of length ``[lo, hi]`` containing the fixed-width ``body`` (``w`` characters): the union over
    the offset ``i`` of ``anychar{i} body anychar{..}`` (the whole intersection)."""
    alts = []
    slack = hi - w
    for i in range(slack + 1):
        tail_lo = max(0, lo - w - i)
        if tail_lo > slack - i:
            continue
        alts.append(_rep(_group(anychar), i, i) + body + _rep(_group(anychar), tail_lo, slack - i))
    return _alt(alts)


@_memoised
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


@_memoised
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
    flat = split_anchors(pattern)  # anchors inside distributed branches and groups (``^01$|^07$``)
    if flat is not None:
        alts = []
        for start, b, end in flat:
            body = _translate_seq(b, cap=cap)
            if body is not None:
                alts.append(("" if start else STRCHAR + "*") + body + ("" if end else STRCHAR + "*"))
        return _alt(alts) if alts else None
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


@_memoised
def length_bounded(pattern: str, lo: int, hi: int | None, cap: int | None = None):
    """Content regex of the strings ``pattern`` matches (re.search semantics) whose length is in ``[lo, hi]``
    (:func:`bounded_regex`: exact or a documented narrowing, always a subset). None: not bounded here (the
    caller refuses); False: no string of the pattern has a length within the bounds (also on a canvas of
    ``cap`` bytes). A format's regex is passed as ``^(?:regex)$``."""
    def leaf(item):
        return _translate_seq([item])

    try:
        return bounded_regex(pattern, lo, hi, leaf, charset_regex(_FULL), cap)
    except _PatternError:
        return None


@_memoised
def _matches_every_string(pattern: str) -> bool:
    """Whether ``re.search(pattern, s)`` succeeds for every string ``s``: an alternative anchored at neither
    end whose body can match the empty string (``""``, ``.*``, ``x?``). False when unsure."""
    for start, items, end in split_anchors(pattern) or []:
        if start or end:
            continue
        try:
            if _width(_tree(items))[0] == 0 if items else True:
                return True
        except (_Refuse, _NoFit):
            continue
    return False
