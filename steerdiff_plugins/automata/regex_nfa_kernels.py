"""Regex text -> byte-level Thompson NFA in one numba pass: :mod:`byte_build`'s fast front end.

``build(cps, cap, max_count)`` reads a pattern's code points and writes the NFA that ``byte_build._Nfa``
builds from Python's parse of it, for the dialect the schema compiler writes:

- literal characters (any code point), ``\\xHH``, ``\\uHHHH``, ``\\n \\t \\r \\f \\v \\a`` and an escaped
  character that is not an ASCII letter or digit;
- classes ``[...]`` and ``[^...]`` of those, with ranges (``]`` first is a literal, ``-`` before ``]`` too;
  inside a class ``\\b`` is the backspace); code points as ``engine_regex._emit`` computes them: the
  ``SENTINEL`` left out, surrogates (no UTF-8 encoding) cut out of ranges;
- groups ``(...)`` and ``(?:...)``, alternation ``|``, repeats ``* + ? {m} {m,} {,n} {m,n}`` and their lazy
  forms (a full match's language is the same).

Anything else (``.``, anchors, ``\\d \\w \\s`` and other letter escapes, inline flags, lookaround, a
possessive repeat, a class bounded by a surrogate or holding the sentinel alone, ``X{0}``, a repeat of
nothing, a repeat of an empty group, syntax Python's parser rejects or warns about, nesting past 100) returns
``UNSUPPORTED``: the caller takes Python's parser and ``_Nfa``, which accept, refuse or name the problem as
before. So this pass never accepts a pattern that path refuses, and the languages are equal where both build
(``tests/test_regex_nfa.py`` compares the minimal automata on a sample of the public schemas' regexes and
on generated patterns; all 799 public ones up to 400k characters were compared when it was written).

The compile budget: it counts what ``compile_budget.expansion`` counts (positions counted repetitions add),
without sharing the alternatives' leading literals, so its count is at least Python's; past ``cap`` it returns
``OVER`` and the caller's check measures it exactly. A count over ``max_count`` (``MAX_STATES``) returns ``OVER``
too (``_Nfa.repeat`` refuses it by name).

Construction invariant (as ``_Nfa.seq``'s): an item built from state ``cur`` adds edges out of ``cur`` and out of
fresh states only, into fresh states only, and the item's fresh states and edges are the arrays' tails. A
repeat therefore takes the item it follows as a template (cut off the tails) and pastes copies of it, each
with its fresh states shifted and its start renamed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK, UNSUPPORTED, OVER = 0, 1, 2
MAX_NEST = 100  # deeper groups: Python's parser decides (engine_regex._MAX_NEST alike)
_SENTINEL = 0x10FFFF
_SURR_LO, _SURR_HI = 0xD800, 0xDFFF
_MAX_EXACT_REPEAT = 12  # engine_regex._MAX_EXACT_REPEAT: above it over an alternation, Python's path decides
_STATE_LIMIT = 1 << 26  # a guard on the arrays (the budget stops far earlier)
_LETTER_ESCAPES = np.full(128, -1, np.int64)  # \n \t \r \f \v \a -> their code points (re._parser.ESCAPES)
for _c, _v in (("n", 10), ("t", 9), ("r", 13), ("f", 12), ("v", 11), ("a", 7)):
    _LETTER_ESCAPES[ord(_c)] = _v


@njit(cache=True, nogil=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty((max(need, 2 * a.shape[0]), a.shape[1]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True, nogil=True)
def _escape(cps, i, in_class):
    """``(code point, next index)`` of the escape at ``cps[i] == '\\'``, or ``(-1, i)`` for one left to Python."""
    n = len(cps)
    if i + 1 >= n:
        return -1, i
    c = cps[i + 1]
    if c == 120 or c == 117:  # \xHH, \uHHHH: exactly that many hex digits
        k = 2 if c == 120 else 4
        if i + 2 + k > n:
            return -1, i
        v = 0
        for j in range(i + 2, i + 2 + k):
            h = _hex(cps[j])
            if h < 0:
                return -1, i
            v = v * 16 + h
        return v, i + 2 + k
    if c < 128 and _LETTER_ESCAPES[c] >= 0:
        return _LETTER_ESCAPES[c], i + 2
    if c == 98 and in_class:
        return 8, i + 2
    if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122:
        return -1, i  # categories, anchors, \U, \N, octal, group references, bad escapes
    return c, i + 2


@njit(cache=True, nogil=True)
def _class(cps, i, R):
    """Parse the class at ``cps[i] == '['`` into ``R[:k]`` ranges: ``(k, negated, next index)``, k -1: left to Python."""
    n = len(cps)
    j = i + 1
    neg = False
    if j < n and cps[j] == 94:
        neg = True
        j += 1
    k = 0
    first = True
    while True:
        if j >= n:
            return -1, neg, j
        c = cps[j]
        if c == 93 and not first:
            return k, neg, j + 1
        if c == 91:
            return -1, neg, j  # "[" inside: Python warns of nested sets
        if (c == 45 or c == 38 or c == 126 or c == 124) and j + 1 < n and cps[j + 1] == c:
            return -1, neg, j  # "--", "&&", "~~", "||": Python warns of set operations
        if c == 92:
            a, j = _escape(cps, j, True)
            if a < 0:
                return -1, neg, j
        else:
            a = c
            j += 1
        first = False
        if j < n and cps[j] == 45:  # "-": a range, or a literal before "]"
            if j + 1 >= n:
                return -1, neg, j
            d = cps[j + 1]
            if d == 93:
                R[k, 0] = a
                R[k, 1] = a
                R[k + 1, 0] = 45
                R[k + 1, 1] = 45
                return k + 2, neg, j + 2
            if d == 92:
                b, j2 = _escape(cps, j + 1, True)
                if b < 0:
                    return -1, neg, j
            elif d == 91 or d == 45:
                return -1, neg, j
            else:
                b, j2 = d, j + 2
            if b < a:
                return -1, neg, j  # a bad range: Python's error
            R[k, 0] = a
            R[k, 1] = b
            k += 1
            j = j2
        else:
            R[k, 0] = a
            R[k, 1] = a
            k += 1


@njit(cache=True, nogil=True)
def _class_ranges(R, k, neg, out):
    """``R[:k]`` normalised (sorted, merged), complemented if ``neg``, the sentinel left out and surrogates cut
    out, into ``out``: the count, or -1 where a range is bounded by a surrogate or nothing is left."""
    order = np.argsort(R[:k, 0], kind="mergesort")
    m = 0
    tmp = np.empty((k + 2, 2), np.int64)
    for q in range(k):
        a, b = R[order[q], 0], R[order[q], 1]
        if m and a <= tmp[m - 1, 1] + 1:
            tmp[m - 1, 1] = max(tmp[m - 1, 1], b)
        else:
            tmp[m, 0] = a
            tmp[m, 1] = b
            m += 1
    if neg:
        c = np.empty((m + 1, 2), np.int64)
        mc = 0
        nxt = 0
        for q in range(m):
            if tmp[q, 0] > nxt:
                c[mc, 0] = nxt
                c[mc, 1] = tmp[q, 0] - 1
                mc += 1
            nxt = tmp[q, 1] + 1
        if nxt <= 0x10FFFF:
            c[mc, 0] = nxt
            c[mc, 1] = 0x10FFFF
            mc += 1
        tmp, m = c, mc
    w = 0
    for q in range(m):
        a, b = tmp[q, 0], tmp[q, 1]
        if b == _SENTINEL:
            b -= 1
        if a > b:
            continue
        if _SURR_LO <= a <= _SURR_HI or _SURR_LO <= b <= _SURR_HI:
            return -1
        if a < _SURR_LO and b > _SURR_HI:
            out[w, 0] = a
            out[w, 1] = _SURR_LO - 1
            w += 1
            a = _SURR_HI + 1
        out[w, 0] = a
        out[w, 1] = b
        w += 1
    return w if w else -1


@njit(cache=True, nogil=True)
def _encode(cp, buf):
    if cp < 0x80:
        buf[0] = cp
        return 1
    if cp < 0x800:
        buf[0] = 0xC0 | (cp >> 6)
        buf[1] = 0x80 | (cp & 0x3F)
        return 2
    if cp < 0x10000:
        buf[0] = 0xE0 | (cp >> 12)
        buf[1] = 0x80 | ((cp >> 6) & 0x3F)
        buf[2] = 0x80 | (cp & 0x3F)
        return 3
    buf[0] = 0xF0 | (cp >> 18)
    buf[1] = 0x80 | ((cp >> 12) & 0x3F)
    buf[2] = 0x80 | ((cp >> 6) & 0x3F)
    buf[3] = 0x80 | (cp & 0x3F)
    return 4


@njit(cache=True, nogil=True)
def utf8_sequences(a, b, out, m):
    """The code points ``a..b`` (no surrogates inside) as UTF-8 byte-range sequences (``byte_build.utf8_sequences``
    reads them as tuples) appended to ``out[m:]`` rows ``(length, lo0, hi0, .., lo3, hi3)``;
    returns the new count (``out`` grown as needed)."""
    stack = np.empty((64, 2), np.int64)
    stack[0, 0] = a
    stack[0, 1] = b
    top = 1
    bs = np.empty(4, np.int64)
    be = np.empty(4, np.int64)
    while top:
        top -= 1
        s, e = stack[top, 0], stack[top, 1]
        split = False
        for t in (0x7F, 0x7FF, 0xFFFF):  # one encoded length per piece
            if s <= t < e:
                stack[top, 0], stack[top, 1] = t + 1, e
                stack[top + 1, 0], stack[top + 1, 1] = s, t
                top += 2
                split = True
                break
        if split:
            continue
        if e > 0x7F:
            for i in (1, 2, 3):  # continuation bytes: whole 64-blocks, or one prefix
                msk = (1 << (6 * i)) - 1
                if (s & ~msk) != (e & ~msk):
                    if s & msk:
                        stack[top, 0], stack[top, 1] = (s | msk) + 1, e
                        stack[top + 1, 0], stack[top + 1, 1] = s, s | msk
                        top += 2
                        split = True
                        break
                    if (e & msk) != msk:
                        stack[top, 0], stack[top, 1] = e & ~msk, e
                        stack[top + 1, 0], stack[top + 1, 1] = s, (e & ~msk) - 1
                        top += 2
                        split = True
                        break
            if split:
                continue
        out = _grow(out, m + 1)
        L = _encode(s, bs)
        _encode(e, be)
        out[m, 0] = L
        for q in range(L):
            out[m, 1 + 2 * q] = bs[q]
            out[m, 2 + 2 * q] = be[q]
        m += 1
    return out, m


@njit(cache=True, nogil=True)
def _edge(E, ne, s, lo, hi, d):
    E = _grow(E, ne + 1)
    E[ne, 0] = s
    E[ne, 1] = lo
    E[ne, 2] = hi
    E[ne, 3] = d
    return E, ne + 1


@njit(cache=True, nogil=True)
def _eps(X, nx, s, d):
    X = _grow(X, nx + 1)
    X[nx, 0] = s
    X[nx, 1] = d
    return X, nx + 1


@njit(cache=True, nogil=True)
def _put_class(seqs, m, cur, E, ne, n):
    """The class of UTF-8 sequences ``seqs[:m]`` from ``cur`` to a fresh end; equal suffixes share a state (after
    different lead bytes the same continuation is one NFA state, as in ``byte_build._template``).
    Returns ``(end, E, ne, n)``."""
    end = n
    n += 1
    keys = np.empty(m * 3 + 1, np.int64)
    states = np.empty(m * 3 + 1, np.int64)
    nk = 0
    for q in range(m):
        L = seqs[q, 0]
        nxt = end
        key = np.int64(0)
        for j in range(L - 1, 0, -1):  # the suffix j..L-1, from the last range back
            key = key * 65536 + seqs[q, 1 + 2 * j] * 256 + seqs[q, 2 + 2 * j]
            kk = key * 4 + (L - j)
            st = -1
            for z in range(nk):
                if keys[z] == kk:
                    st = states[z]
                    break
            if st < 0:
                st = n
                n += 1
                E, ne = _edge(E, ne, st, seqs[q, 1 + 2 * j], seqs[q, 2 + 2 * j], nxt)
                keys[nk] = kk
                states[nk] = st
                nk += 1
            nxt = st
        E, ne = _edge(E, ne, cur, seqs[q, 1], seqs[q, 2], nxt)
    return end, E, ne, n


@njit(cache=True, nogil=True)
def _renamed(v, s, start, n0, size, base):
    """State ``v`` of a template in its copy: the template's start ``s`` -> ``start``, a fresh state shifted to
    ``base``; -1 for any other state (an edge into or out of it would break the construction invariant)."""
    if v == s:
        return start
    if n0 <= v < n0 + size:
        return v - n0 + base
    return -1


@njit(cache=True, nogil=True)
def _paste(TE, TX, s, n0, size, end0, start, E, ne, X, nx, n):
    """A copy of the template (byte edges ``TE``, epsilon edges ``TX``, built from ``s`` with fresh states
    ``n0 .. n0+size-1`` and end ``end0``) from ``start``: ``(end, E, ne, X, nx, n)``; end -1 if an edge breaks
    the construction invariant (out of a state before the template, or into one: the caller gives up)."""
    E = _grow(E, ne + TE.shape[0])
    X = _grow(X, nx + TX.shape[0])
    for q in range(TE.shape[0]):
        f = _renamed(TE[q, 0], s, start, n0, size, n)
        t = _renamed(TE[q, 3], -2, start, n0, size, n)  # into fresh states only
        if f < 0 or t < 0:
            return -1, E, ne, X, nx, n
        E[ne, 0], E[ne, 1], E[ne, 2], E[ne, 3] = f, TE[q, 1], TE[q, 2], t
        ne += 1
    for q in range(TX.shape[0]):
        f = _renamed(TX[q, 0], s, start, n0, size, n)
        t = _renamed(TX[q, 1], -2, start, n0, size, n)
        if f < 0 or t < 0:
            return -1, E, ne, X, nx, n
        X[nx, 0], X[nx, 1] = f, t
        nx += 1
    return _renamed(end0, s, start, n0, size, n), E, ne, X, nx, n + size


@njit(cache=True, nogil=True)
def _repeat(TE, TX, s, n0, size, end0, lo, hi, E, ne, X, nx, n):
    """``X{lo,hi}`` (``hi`` -1: no bound) from ``s``, of the template ``X`` (see :func:`_paste`; cut off the arrays'
    tails, which end at ``ne``/``nx``/``n``): ``(end, E, ne, X, nx, n)``, end -1 where a paste gives up. ``lo``
    copies chained, then a loop for no bound (``X*``: a fresh state entered from the last copy, a copy from it back
    into it), or ``hi - lo`` optional copies nested, each copy's start able to leave to one fresh end (as
    ``_Nfa.repeat``: not ``X?X?X?``, whose chain of skips grows the subset construction's sets)."""
    c = s
    for _ in range(lo):
        c, E, ne, X, nx, n = _paste(TE, TX, s, n0, size, end0, c, E, ne, X, nx, n)
        if c < 0:
            return -1, E, ne, X, nx, n
    if hi < 0:
        loop = n
        X, nx = _eps(X, nx, c, loop)
        e, E, ne, X, nx, n = _paste(TE, TX, s, n0, size, end0, loop, E, ne, X, nx, n + 1)
        if e < 0:
            return -1, E, ne, X, nx, n
        X, nx = _eps(X, nx, e, loop)
        return loop, E, ne, X, nx, n
    if hi == lo:
        return c, E, ne, X, nx, n
    out = n
    n += 1
    for _ in range(hi - lo):
        X, nx = _eps(X, nx, c, out)
        c, E, ne, X, nx, n = _paste(TE, TX, s, n0, size, end0, c, E, ne, X, nx, n)
        if c < 0:
            return -1, E, ne, X, nx, n
    X, nx = _eps(X, nx, c, out)
    return out, E, ne, X, nx, n


@njit(cache=True, nogil=True)
def _digits(cps, j):
    """The decimal number at ``cps[j:]``: ``(value, digits, next index)`` (up to 18 digits counted exactly)."""
    v = nd = 0
    while j < len(cps) and 48 <= cps[j] <= 57:
        if nd < 18:
            v = v * 10 + cps[j] - 48
        nd += 1
        j += 1
    return v, nd, j


@njit(cache=True, nogil=True)
def _counts(cps, i):
    """The repeat ``{m}``, ``{m,}``, ``{,n}``, ``{m,n}`` or ``{,}`` at ``cps[i] == '{'``: ``(lo, hi, next index)``,
    ``hi`` -1 for no bound; ``lo`` -1 where ``{`` is a literal (as Python's parser reads it), -2 for a count
    Python's parser decides (too many digits, or a maximum below the minimum)."""
    n = len(cps)
    lo, nd, j = _digits(cps, i + 1)
    hi = lo
    comma = j < n and cps[j] == 44
    if comma:
        hi, nh, j = _digits(cps, j + 1)
        if nh == 0:
            hi = -1
        nd = max(nd, nh)
    if (nd == 0 and not comma) or j >= n or cps[j] != 125:
        return -1, 0, i
    if nd > 9 or (hi >= 0 and hi < lo):
        return -2, 0, i
    return lo, hi, j + 1


@njit(cache=True, nogil=True)
def build(cps, cap, max_count):
    """The byte-level Thompson NFA of the pattern of code points ``cps`` (full match; state 0 the start):
    ``(status, states, final, E (edges, 4) [src, lo, hi, dst] byte-range edges, X (edges, 2) epsilon edges)``.
    ``status`` ``OK``; ``UNSUPPORTED`` for what Python's parser must read; ``OVER`` past the budget (see the
    module docstring). The arrays are empty unless ``OK``."""
    L = len(cps)
    none4 = np.empty((0, 4), np.int64)
    none2 = np.empty((0, 2), np.int64)
    E = np.empty((max(16, 2 * L), 4), np.int64)  # (capacity, 4)
    X = np.empty((max(16, L), 2), np.int64)  # (capacity, 2)
    ne = nx = 0
    n = 1
    cur = 0
    R = np.empty((L + 2, 2), np.int64)  # a class's items
    RR = np.empty((2 * L + 4, 2), np.int64)  # its ranges
    seqs = np.empty((64, 9), np.int64)  # their UTF-8 sequences
    buf = np.empty(4, np.int64)
    # per open group: start, join (-1: none yet), fresh-state / edge / epsilon marks at "(", its text index,
    # the finished alternatives' positions and added positions, the enclosing sequence's (to restore at ")")
    F = np.zeros((MAX_NEST + 2, 10), np.int64)
    F[0, 1] = -1
    d = 0
    seq_p = seq_a = 0  # the current sequence's positions and added positions (compile_budget._positions)
    kind = 0  # the last item: 0 nothing (a sequence's start), 1 an atom or a group, 2 a repeat
    ls = ln0 = le0 = lx0 = li0 = lp = la = 0  # the last atom: start, marks, text index, positions, added
    i = 0
    while i < L:
        c = cps[i]
        if c == 40:  # "(" or "(?:"
            j = i + 1
            if j < L and cps[j] == 63:
                if j + 1 < L and cps[j + 1] == 58:
                    j += 2
                else:
                    return UNSUPPORTED, 0, 0, none4, none2  # flags, lookaround, named groups ...
            if d >= MAX_NEST:
                return UNSUPPORTED, 0, 0, none4, none2
            d += 1
            F[d, 0], F[d, 1], F[d, 2], F[d, 3], F[d, 4] = cur, -1, n, ne, nx
            F[d, 5], F[d, 6], F[d, 7], F[d, 8], F[d, 9] = i, 0, 0, seq_p, seq_a
            seq_p = seq_a = 0
            kind = 0
            i = j
            continue
        if c == 41:  # ")"
            if d == 0:
                return UNSUPPORTED, 0, 0, none4, none2
            if F[d, 1] >= 0:
                X, nx = _eps(X, nx, cur, F[d, 1])
                cur = F[d, 1]
            lp, la = F[d, 6] + seq_p, F[d, 7] + seq_a
            ls, ln0, le0, lx0, li0 = F[d, 0], F[d, 2], F[d, 3], F[d, 4], F[d, 5]
            seq_p, seq_a = F[d, 8] + lp, F[d, 9] + la
            d -= 1
            kind = 1
            i += 1
            continue
        if c == 124:  # "|": the next alternative starts from the group's start
            if F[d, 1] < 0:
                F[d, 1] = n
                n += 1
            X, nx = _eps(X, nx, cur, F[d, 1])
            cur = F[d, 0]
            F[d, 6] += seq_p
            F[d, 7] += seq_a
            seq_p = seq_a = 0
            kind = 0
            i += 1
            continue
        lo, hi, j = -1, -1, i
        if c == 42:
            lo, hi, j = 0, -1, i + 1
        elif c == 43:
            lo, hi, j = 1, -1, i + 1
        elif c == 63:
            lo, hi, j = 0, 1, i + 1
        elif c == 123:
            lo, hi, j = _counts(cps, i)
            if lo == -2:
                return UNSUPPORTED, 0, 0, none4, none2
        if lo >= 0:  # a repeat of the last atom
            if j < L and cps[j] == 63:
                j += 1  # lazy: the same language
            elif j < L and cps[j] == 43:
                return UNSUPPORTED, 0, 0, none4, none2  # possessive
            if kind != 1 or hi == 0:
                return UNSUPPORTED, 0, 0, none4, none2  # nothing to repeat, a multiple repeat, X{0}
            count = lo if hi < 0 else hi
            if count > max_count:
                return OVER, 0, 0, none4, none2
            size = n - ln0
            if size == 0:
                return UNSUPPORTED, 0, 0, none4, none2  # an empty group repeated
            if lo > _MAX_EXACT_REPEAT:
                for q in range(li0, i):
                    if cps[q] == 124:
                        return UNSUPPORTED, 0, 0, none4, none2  # _emit's refusal decides
            copies = max(lo, 1) if hi < 0 else max(hi, 1)
            na = la * copies + lp * (copies - 1)
            if na > cap or size * (count + 1) > _STATE_LIMIT:
                return OVER, 0, 0, none4, none2
            seq_a += na - la
            TE = E[le0:ne].copy()  # the template: the atom's edges, cut off the tails
            TX = X[lx0:nx].copy()
            ne, nx, n = le0, lx0, ln0
            cur, E, ne, X, nx, n = _repeat(TE, TX, ls, ln0, size, cur, lo, hi, E, ne, X, nx, n)  # cur: X's end
            if cur < 0:
                return UNSUPPORTED, 0, 0, none4, none2
            kind = 2
            i = j
            continue
        s, m0, e0, x0 = cur, n, ne, nx  # an atom: a class or one character
        if c == 91:
            k, neg, j = _class(cps, i, R)
            if k < 0:
                return UNSUPPORTED, 0, 0, none4, none2
            w = _class_ranges(R, k, neg, RR)
            if w < 0:
                return UNSUPPORTED, 0, 0, none4, none2
            ms = 0
            for q in range(w):
                seqs, ms = utf8_sequences(RR[q, 0], RR[q, 1], seqs, ms)
            cur, E, ne, n = _put_class(seqs, ms, cur, E, ne, n)
        else:
            if c == 92:
                v, j = _escape(cps, i, False)
                if v < 0:
                    return UNSUPPORTED, 0, 0, none4, none2
            elif c == 46 or c == 94 or c == 36:
                return UNSUPPORTED, 0, 0, none4, none2  # ".", "^", "$"
            else:
                v, j = c, i + 1
            if v == _SENTINEL or _SURR_LO <= v <= _SURR_HI:
                return UNSUPPORTED, 0, 0, none4, none2
            nb = _encode(v, buf)
            for q in range(nb):
                E, ne = _edge(E, ne, cur, buf[q], buf[q], n)
                cur = n
                n += 1
        ls, ln0, le0, lx0, li0, lp, la = s, m0, e0, x0, i, 1, 0
        seq_p += 1
        kind = 1
        i = j
    if d != 0:
        return UNSUPPORTED, 0, 0, none4, none2  # an unterminated group
    if F[0, 1] >= 0:
        X, nx = _eps(X, nx, cur, F[0, 1])
        cur = F[0, 1]
    if F[0, 7] + seq_a > cap:
        return OVER, 0, 0, none4, none2
    return OK, n, cur, E[:ne], X[:nx]
