"""Our own regex -> byte DFA builder (stage 2's fast path, in place of outlines_core's ``Index``).

``subset_dfa(pattern)`` reads Python's parse of the pattern (``engine_regex.parse_regex``) and builds:

1. a byte-level Thompson NFA: every item's code points as ``engine_regex._emit`` computes them (flags, case
   folding, ``\\d \\w \\s``, ``.``, negated classes, the ``SENTINEL`` left out), each class split into UTF-8
   byte-range sequences (the standard utf8-ranges split; surrogates are not Unicode scalar values and are
   left out, and a class bounded by a surrogate is refused, as the Rust builder refuses it); alternation,
   ``?``, ``*``, ``+``, ``{m,n}`` (lazy repeats alike: a full match's language is the same) by epsilon edges;
2. the subset construction over the bytes' global classes, in a numba kernel (``byte_build_kernels.subset``),
   resumable in chunks so the compile deadline is checked between them, and stopped past a state cap
   (``byte_level`` passes ``RAW_FACTOR * MAX_STATES``; ``MAX_STATES`` itself bounds the minimal automaton);
3. the states that cannot reach acceptance merged into the dead sink.

The NFA of step 1 comes first from ``regex_nfa_kernels.build`` (:func:`_fast_nfa`): one numba pass over the
pattern's text for the dialect the schema compiler writes (literals, ``\\x``/``\\u`` escapes, classes, groups,
alternation, repeats), the same language without Python's parse. It leaves every other pattern, and counts near
the compile budget, to the path above (``STEERDIFF_NFA_FRONT=python`` takes that path always).

``byte_level.byte_dfa`` minimises the result and numbers it canonically. The language is exactly
``re.fullmatch``'s on UTF-8 text, as on the outlines_core path (``STEERDIFF_BYTE_BUILD=outlines``, or without
numba); tests/test_byte_build.py compares both paths array for array. The refusals of ``_emit`` are kept,
with their messages (non-regular features, the ``_MAX_EXACT_REPEAT`` limit, counts over ``MAX_STATES``).

Construction invariant (``_Nfa.seq``): building an item from state ``cur`` adds edges only out of ``cur`` and
out of fresh states, never into ``cur``, and returns an end state every path from which back to itself
spells nothing that leaves the item's language: so a continuation may add edges out of the end directly.
(An alternation's leading literals share a prefix tree, ``_Nfa.branch``: each alternative's rest is built
from its tree node, which the invariant allows, as alternatives share ``cur``.) So a whole item's fragment
(a group, an alternation, a repeat) has edges out of its start or its fresh states into its fresh states only,
and building the same item again from another state gives the same edges with the fresh states shifted:
``_Nfa.again`` copies it (the fast parser shares the sequence of every repeated group, ``engine_regex``).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

import numpy as np

from steerdiff.errors import AutomatonTooLarge, ConstraintError
from steerdiff_plugins.automata import engine_regex as er
from steerdiff_plugins.compile_budget import check_deadline, numba_importable, outside_budget, run_kernel
from steerdiff_plugins.memos import memo

_C = er._C
_LIT, _NOT_LIT, _ANY, _IN, _BRANCH, _SUB, _AT = (_C.LITERAL, _C.NOT_LITERAL, _C.ANY, _C.IN, _C.BRANCH,
                                                 _C.SUBPATTERN, _C.AT)
_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT)
_MAXREPEAT = _C.MAXREPEAT
WORK = 4096  # automaton states expanded per kernel call (the compile deadline is checked between calls)
BULK = 3  # a counted repeat's copies are written in one go (``_Nfa.bulk``) when at least this many remain

_nb = None


def available() -> bool:
    """Whether this builder runs: numba importable and ``STEERDIFF_BYTE_BUILD`` not ``outlines``."""
    return os.environ.get("STEERDIFF_BYTE_BUILD", "").lower() != "outlines" and numba_importable()


def _kernels():
    global _nb
    if _nb is None:
        with outside_budget():  # importing numba and loading the kernels: once per process
            from steerdiff_plugins.automata import byte_build_kernels as k

        _nb = k
    return _nb


def run(name: str, *args):
    """Call kernel ``name`` (its JIT, when a call compiles one, kept off the budget: ``compile_budget.run_kernel``)."""
    return run_kernel(getattr(_kernels(), name), *args)


# --- code points -> UTF-8 byte-range sequences ---------------------------------------------------------------

def utf8_sequences(a: int, b: int) -> list[tuple[tuple[int, int], ...]]:
    """The code points ``a..b`` (no surrogates inside) as UTF-8 byte-range sequences: each a tuple of
    ``(lo, hi)`` byte ranges whose product is a set of encodings, together exactly the range's encodings.
    The numba front end's own split (``regex_nfa_kernels.utf8_sequences``), so both front ends cut alike."""
    rows, m = run("utf8_sequences", a, b, np.empty((16, 9), dtype=np.int64), 0)  # (m, 9): length, lo0, hi0, ...
    return [tuple((int(r[1 + 2 * q]), int(r[2 + 2 * q])) for q in range(r[0])) for r in rows[:m]]


_SURR_LO, _SURR_HI = 0xD800, 0xDFFF


class _Surrogate(Exception):
    """A class bounded by a surrogate code point (``args[0]``)."""


@memo
@lru_cache(maxsize=8192)
def _template(ranges: tuple) -> tuple:
    """The byte fragment of a code-point class (``ranges``: ``_emit``'s ranges, normalised, without the
    sentinel): ``(internal states, edges)`` with edges ``(from, lo, hi, to)`` over local ids (0 the start,
    1 the end, 2.. internal), a prefix tree of the class's UTF-8 sequences. Raises ``_Surrogate``."""
    seqs = []
    for a, b in ranges:
        for x in (a, b):
            if _SURR_LO <= x <= _SURR_HI:
                raise _Surrogate(x)
        if a < _SURR_LO <= b:  # the surrogates inside are not scalar values: no encoding
            seqs += utf8_sequences(a, _SURR_LO - 1) + (utf8_sequences(_SURR_HI + 1, b) if b > _SURR_HI else [])
        else:
            seqs += utf8_sequences(a, b)
    kids: dict = {}
    out: list = [[], []]  # node -> its edges (lo, hi, child); 0 the start, 1 the end
    for sq in sorted(seqs):  # a prefix tree of the sequences ...
        node = 0
        for k, (lo, hi) in enumerate(sq):
            if k == len(sq) - 1:
                out[node].append((lo, hi, 1))
            else:
                key = (node, lo, hi)
                child = kids.get(key)
                if child is None:
                    child = kids[key] = len(out)
                    out.append([])
                    out[node].append((lo, hi, child))
                node = child
    # ... with equal suffixes shared (nodes with the same edges merged, children first): after different
    # lead bytes the same continuation is one NFA state, so the subset construction does not tell them apart
    rep = list(range(len(out)))
    sig_of: dict = {}
    for node in range(len(out) - 1, 1, -1):  # children are numbered after their parents
        sig = tuple(sorted((lo, hi, rep[c]) for lo, hi, c in out[node]))
        rep[node] = sig_of.setdefault(sig, node)
    ids = {0: 0, 1: 1}
    edges = []
    for node in range(len(out)):
        if node > 1 and rep[node] != node:
            continue
        for lo, hi, c in out[node]:
            c = rep[c]
            if c not in ids:
                ids[c] = len(ids)
            edges.append((node, lo, hi, c))
    edges = [(ids[f], lo, hi, ids[t]) for f, lo, hi, t in edges]  # kept internal nodes: 2, 3, ...
    return len(ids) - 2, tuple(edges)


@memo
@lru_cache(maxsize=8192)
def _class_ranges(ranges: tuple) -> tuple:
    """``_emit``'s ``_class`` on code-point ranges, as ranges: normalised, the sentinel left out."""
    return tuple(er._without_sentinel(er._normalise(ranges)))


@memo
@lru_cache(maxsize=4096)
def _in_items(items: tuple, flags: int) -> tuple:
    """The ranges of a parsed ``[...]`` under ``flags`` (IGNORECASE, ASCII), as ``_emit`` computes them;
    raises ``engine_regex._Unsupported``."""
    return _class_ranges(tuple(er._in_ranges(items, flags, None)))


_ITEM_TPL: dict = memo({})  # (id(item), flags) -> (item, its class fragment): see _Nfa.item_template


# --- the NFA ----------------------------------------------------------------------------------------------

class _Nfa:
    """A byte-level Thompson NFA under construction: byte edges ``src --[lo, hi]--> dst`` and epsilon edges
    ``esrc -> edst`` as lists, ``n`` states."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.n = 1  # state 0: the start
        self.src: list = []
        self.lo: list = []
        self.hi: list = []
        self.dst: list = []
        self.esrc: list = []
        self.edst: list = []
        self.steps = 0
        self.built: dict = {}  # (kind, id of a parsed object, flags...) -> its first fragment (see again)

    def fresh(self) -> int:
        self.n += 1
        return self.n - 1

    def eps(self, a: int, b: int) -> None:
        self.esrc.append(a)
        self.edst.append(b)

    def again(self, key: tuple, cur: int, build, *args) -> int:
        """``build(*args, cur, ...)``'s end, the item built from ``cur``: built the first time ``key`` comes
        (``key`` names parsed objects by id: the parse outlives the build), copied afterwards with its fresh
        states shifted (the same states and edges in the same order as building it again would give)."""
        got = self.built.get(key)
        if got is None:
            n0, e0, x0, s0 = self.n, len(self.src), len(self.esrc), self.steps
            end = build(*args)
            self.built[key] = (cur, n0, self.n, e0, len(self.src), x0, len(self.esrc), end, self.steps - s0)
            return end
        s0, n0, n1, e0, e1, x0, x1, end, steps = got
        off = self.n - n0
        self.steps += steps
        if steps > 1023:
            check_deadline("byte automaton", "regex")
        src, dst = self.src, self.dst
        src.extend([f + off if f >= n0 else cur for f in src[e0:e1]])  # out of the start or fresh states
        dst.extend([t + off for t in dst[e0:e1]])  # into fresh states only
        self.lo.extend(self.lo[e0:e1])
        self.hi.extend(self.hi[e0:e1])
        if x1 > x0:
            self.esrc.extend([f + off if f >= n0 else cur for f in self.esrc[x0:x1]])
            self.edst.extend([t + off for t in self.edst[x0:x1]])
        self.n = n1 + off
        return end + off if end != s0 else cur

    def put(self, tpl: tuple, cur: int) -> int:
        """A class fragment (``_template``'s) from ``cur``; returns its end."""
        k, edges = tpl
        end = self.n
        src, lo, hi, dst = self.src, self.lo, self.hi, self.dst
        if not k:  # byte ranges only (an ASCII class): every edge from cur to end
            self.n = end + 1
            for f, a, b, t in edges:
                src.append(cur)
                lo.append(a)
                hi.append(b)
                dst.append(end)
            return end
        base = end - 1  # local id i >= 2 -> base + i
        self.n += 1 + k
        for f, a, b, t in edges:
            src.append(cur if f == 0 else base + f)
            lo.append(a)
            hi.append(b)
            dst.append(end if t == 1 else base + t)
        return end

    def item_template(self, op, av, flags: int, item) -> tuple:
        """The class fragment of a one-character item (a literal, ``[...]``, ``.``) under ``flags``, memoised
        per item object (the fast parser shares its items between parses) and flags."""
        key = (id(item), flags)
        got = _ITEM_TPL.get(key)
        if got is not None and got[0] is item:
            return got[1]
        ic = bool(flags & er._IC)
        if op is _LIT:
            rg = _class_ranges(tuple((c, c) for c in (er._fold(av) if ic else (av,))))
        elif op is _NOT_LIT:
            rg = _class_ranges(tuple(er._negate([(c, c) for c in (er._fold(av) if ic else {av})])))
        elif op is _ANY:
            rg = _class_ranges(((0, er.MAXCP),) if flags & er._DOTALL else ((0, 9), (11, er.MAXCP)))
        else:
            try:
                rg = _in_items(tuple(av), flags & (er._IC | er._ASCII))
            except er._Unsupported as exc:
                raise er._unsupported(self.pattern, exc.args[0]) from None
        try:
            tpl = _template(rg)
        except _Surrogate as exc:
            raise ConstraintError(f"regex {er._shown(self.pattern)} could not be compiled to an automaton: a character "
                                  f"class bounded by the surrogate U+{exc.args[0]:04X} (surrogates have no UTF-8 "
                                  f"encoding)") from None
        if len(_ITEM_TPL) >= 1 << 16:
            _ITEM_TPL.clear()
        _ITEM_TPL[key] = (item, tpl)
        return tpl

    def seq(self, items, cur: int, flags: int, top: bool) -> int:
        """The parsed sequence ``items`` from state ``cur`` under ``flags``; returns its end state."""
        items = getattr(items, "data", items)
        n = len(items)
        ic = bool(flags & er._IC)
        pattern = self.pattern
        self.steps += 1
        if not self.steps & 1023:
            check_deadline("byte automaton", "regex")
        src, lo, hi, dst = self.src, self.lo, self.hi, self.dst
        for i, item in enumerate(items):
            op, av = item
            if op is _LIT and not ic and av < 0x80:  # most of a schema's regex: one byte
                end = self.n
                self.n = end + 1
                src.append(cur)
                lo.append(av)
                hi.append(av)
                dst.append(end)
                cur = end
            elif op is _LIT or op is _IN or op is _NOT_LIT or op is _ANY:
                cur = self.put(self.item_template(op, av, flags, item), cur)
            elif op is _BRANCH:
                cur = self.again((0, id(av[1]), flags), cur, self.branch, av[1], cur, flags, ic)
            elif op is _SUB:
                _group, add, rem, sub = av
                f = (flags | add) & ~rem
                cur = self.again((1, id(sub), f), cur, self.seq, sub, cur, f, False)
            elif op in _REPEATS:
                cur = self.again((2, id(av[2]), av[0], av[1], flags), cur, self.repeat, av, cur, flags)
            elif op is _AT:
                if av in (_C.AT_BEGINNING, _C.AT_BEGINNING_STRING) and top and i == 0:
                    continue
                if av in (_C.AT_END, _C.AT_END_STRING) and top and i == n - 1:
                    continue
                raise er._unsupported(pattern, f"the anchor {av}" + (" inside the pattern" if av not in (
                    _C.AT_BOUNDARY, _C.AT_NON_BOUNDARY) else ""))
            else:
                raise er._unsupported(pattern, str(op))
        return cur

    def branch(self, alts, cur: int, flags: int, ic: bool) -> int:
        """An alternation from ``cur``; returns its join. The alternatives' leading literal runs (an enum's
        strings) share one prefix tree of bytes: after ``"0`` the automaton is in one tree node, not in a
        state of every alternative that starts so (the same language; the subset construction's sets stay
        small)."""
        join = self.fresh()
        kids: dict = {}  # (node, byte) -> child
        src, lo, hi, dst = self.src, self.lo, self.hi, self.dst
        for alt in alts:
            items = getattr(alt, "data", alt)
            node, k = cur, 0
            while not ic and k < len(items) and items[k][0] is _LIT:
                cp = items[k][1]
                if cp == er.SENTINEL or _SURR_LO <= cp <= _SURR_HI:
                    break  # no text (the sentinel) or refused (a surrogate): left to seq
                for b in (chr(cp).encode() if cp >= 0x80 else (cp,)):
                    child = kids.get((node, b))
                    if child is None:
                        child = kids[(node, b)] = self.n
                        self.n += 1
                        src.append(node)
                        lo.append(b)
                        hi.append(b)
                        dst.append(child)
                    node = child
                k += 1
            self.eps(self.seq(items[k:] if k else items, node, flags, False), join)
        return join

    def repeat(self, av, cur: int, flags: int) -> int:
        """``X{lo,hi}`` from ``cur`` (``hi`` is ``MAXREPEAT`` for no bound), with ``_emit``'s refusals."""
        lo, hi, sub = av
        if lo > er._MAX_EXACT_REPEAT:  # _emit's refusal, decided on the text it would write (kept alike)
            body = "(?:" + er._emit(list(getattr(sub, "data", sub)), flags, self.pattern, False) + ")"
            if "|" in body and re.search(r"\\x\{[0-9A-F]{3,}\}", body):
                raise ConstraintError(
                    f"regex {er._shown(self.pattern)}: a minimum repetition count of {lo} over an alternation with "
                    f"non-ASCII classes is beyond the automaton builder (limit {er._MAX_EXACT_REPEAT}); lower the "
                    f"minimum (e.g. minLength) or narrow the class")
        from steerdiff_plugins.automata.byte_level import MAX_STATES  # read at call time (tests lower it)

        unbounded = hi == _MAXREPEAT
        count = lo if unbounded else hi
        if count > MAX_STATES:
            raise AutomatonTooLarge(f"regex {er._shown(self.pattern)}: a repetition count of {count} needs more automaton "
                                    f"states than the limit of {MAX_STATES}; tighten the bounds (maxLength, maxItems, "
                                    f"minItems)", count, MAX_STATES)
        if not unbounded and hi == 0:
            self.seq(sub, self.fresh(), flags, False)  # X{0}: nothing, but X's refusals still apply
            return cur
        frag = None
        for i in range(lo):
            if frag is not None and lo - i >= BULK:
                cur = self.bulk(frag, lo - i)
                break
            n0, e0, x0 = self.n, len(self.src), len(self.esrc)
            end = self.seq(sub, cur, flags, False)
            frag = (cur, n0, self.n, e0, len(self.src), x0, len(self.esrc), end) if end != cur else None
            cur = end
        if unbounded:
            loop = self.fresh()
            self.eps(cur, loop)
            self.eps(self.seq(sub, loop, flags, False), loop)
            return loop
        if hi == lo:
            return cur
        # optional copies nested, (?:X(?:X(?:X)?)?)?: every copy's start may leave to one end; not X?X?X?,
        # whose chain of skips puts every later copy's start into a state's epsilon closure (sets of size
        # up to n along a run of n: quadratic in maxLength)
        out = self.fresh()
        frag = None
        for i in range(hi - lo):
            if frag is not None and hi - lo - i >= BULK:
                cur = self.bulk(frag, hi - lo - i)
                break
            n0, e0, x0 = self.n, len(self.src), len(self.esrc)
            self.eps(cur, out)
            end = self.seq(sub, cur, flags, False)
            frag = (cur, n0, self.n, e0, len(self.src), x0, len(self.esrc), end) if end != cur else None
            cur = end
        self.eps(cur, out)
        return out

    def bulk(self, frag: tuple, k: int) -> int:
        """``k`` more copies of the fragment just built, chained after it, written in one go (a counted
        repeat's copies differ only by their state numbers). ``frag``: ``(start, first fresh state, one past
        the last, its byte edges' and epsilon edges' slices (from, to), end)``; the fragment's edges leave its
        start or its fresh states (the construction invariant) and enter fresh states or states made before
        it (an optional run's common end: kept as they are in every copy), and its end is fresh. Copy ``j``
        starts at copy ``j-1``'s end. Returns the last copy's end."""
        s0, n0, n1, e0, e1, x0, x1, end = frag
        size = n1 - n0
        offs = (self.n - n0) + size * np.arange(k, dtype=np.int64)[:, None]  # (k, 1) fresh-state offset per copy
        starts = np.empty((k, 1), dtype=np.int64)  # (k, 1)
        starts[0] = end
        starts[1:] = end + offs[:-1]
        for a, b, src, dst, extra in ((e0, e1, self.src, self.dst, True), (x0, x1, self.esrc, self.edst, False)):
            if a == b:
                continue
            f = np.array(src[a:b], dtype=np.int64)  # (F,)
            t = np.array(dst[a:b], dtype=np.int64)  # (F,)
            src.extend(np.where(f == s0, starts, np.where((f >= n0) & (f < n1), f + offs, f)).ravel().tolist())  # (k, F)
            dst.extend(np.where((t >= n0) & (t < n1), t + offs, t).ravel().tolist())  # states before: kept
            if extra:
                self.lo.extend(self.lo[a:b] * k)
                self.hi.extend(self.hi[a:b] * k)
        self.n += size * k
        return int(end + offs[-1, 0])


_kept: dict = {}  # (pattern, MAX_STATES) -> (NFA, final): built by byte_level.check_regex for the byte_dfa after it
_declined: dict = {}  # (pattern, MAX_STATES) -> True: the numba front end just left it to Python's parser


def nfa_of(pattern: str, keep: bool = False, fast_only: bool = False):
    """The NFA of ``pattern`` (Python dialect, full match) and its final state; refusals as ``to_engine_regex``.
    ``keep``: hold it for the next call (a few patterns), which takes it instead of building it again.
    ``fast_only``: only the numba front end (:func:`_fast_nfa`); None where it leaves the pattern to Python."""
    if not isinstance(pattern, str):
        raise ConstraintError(f"a regex must be a str, got {type(pattern).__name__}")
    from steerdiff_plugins.automata.byte_level import MAX_STATES  # read at call time (tests lower it)

    key = (pattern, MAX_STATES)
    got = _kept.pop(key, None)
    if got is None:
        got = None if _declined.pop(key, False) else _fast_nfa(pattern)
        if got is None and fast_only:
            _hold(_declined, key, True)  # the build that follows goes to Python's parser directly
            return None
        if got is None:
            got = _build_nfa(pattern)
    if keep:
        _hold(_kept, key, got)
    return got


def _hold(d: dict, key, value) -> None:
    """``d[key] = value``, the oldest entries dropped to keep ``d`` at 4 (a handful of patterns in flight)."""
    while len(d) >= 4:
        d.pop(next(iter(d)), None)
    d[key] = value


class _Built:
    """An NFA from the numba front end, with what :func:`subset_dfa` reads of an ``_Nfa`` (edge arrays)."""

    __slots__ = ("n", "src", "lo", "hi", "dst", "esrc", "edst")

    def __init__(self, n: int, E: np.ndarray, X: np.ndarray):
        self.n = n
        self.src, self.lo, self.hi, self.dst = np.ascontiguousarray(E.T)  # (4, edges): rows contiguous
        self.esrc, self.edst = np.ascontiguousarray(X.T)


def _fast_nfa(pattern: str):
    """``(NFA, final)`` of ``pattern`` from ``regex_nfa_kernels.build`` (one numba pass over the text, for the
    dialect the schema compiler writes), or None where Python's parser must read it: a construct outside that
    dialect, or counted repetitions near the compile budget (that path measures them and names the limit).
    Turned off by ``STEERDIFF_NFA_FRONT=python``."""
    if os.environ.get("STEERDIFF_NFA_FRONT", "").lower() == "python":
        return None
    from steerdiff_plugins import compile_budget
    from steerdiff_plugins.automata.byte_level import MAX_STATES

    cps = np.frombuffer(pattern.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)  # (P,)
    status, n, final, E, X = run("nfa_build", cps, compile_budget.MAX_EXPANSION, MAX_STATES)
    if status != _kernels().NFA_OK:
        return None
    return _Built(int(n), E, X), int(final)


def _build_nfa(pattern: str) -> tuple[_Nfa, int]:
    """The NFA through Python's parse of ``pattern`` (``engine_regex.parse_regex``) and :class:`_Nfa`."""
    try:
        parsed = er.parse_regex(pattern)
    except (re.error, OverflowError, RecursionError) as exc:  # OverflowError: a count past re's MAXREPEAT
        raise ConstraintError(f"regex {er._shown(pattern)} does not compile: {exc}") from None
    flags = int(parsed.state.flags) & ~int(re.MULTILINE)  # only leading/trailing anchors are accepted
    nfa = _Nfa(pattern)
    final = nfa.seq(list(getattr(parsed, "data", parsed)), 0, flags, True)
    return nfa, final


def subset_dfa(pattern: str, cap: int):
    """The DFA of ``pattern`` by the subset construction, states that cannot reach acceptance merged into
    the sink: ``(table (M+1, K) int32 with the sink M last, accept (M+1,) bool, start, bcls (256,) int32)``, or
    raises: ``ConstraintError`` (refusals, an empty language), ``AutomatonTooLarge`` past ``cap`` states,
    ``CompileDeadlineExceeded`` (checked between chunks of ``WORK`` states)."""
    nfa, final = nfa_of(pattern)
    check_deadline("byte automaton", "regex")
    # byte classes (intervals of bytes between the edges' range ends), edges grouped by source, the states
    # a DFA state's set keeps (byte edges out, or final): one kernel
    bptr, bclo, bchi, bdst, eptr, edst, important, bcls, K = run(
        "nfa_tables", nfa.n, *(np.asarray(x, dtype=np.int64) for x in (nfa.src, nfa.lo, nfa.hi, nfa.dst, nfa.esrc,
                                                                     nfa.edst)), final)
    rows = 256
    pool = np.empty(1024, dtype=np.int32)
    sptr = np.zeros(rows + 1, dtype=np.int64)
    hs = np.zeros(rows, dtype=np.int64)
    trans = np.empty(rows * K, dtype=np.int32)
    acc = np.zeros(rows, dtype=np.bool_)
    table = np.full(2 * rows, -1, dtype=np.int32)
    meta = np.zeros(4, dtype=np.int64)
    while True:
        pool, sptr, hs, trans, acc, table, meta = run(
            "subset", bptr, bclo, bchi, bdst, eptr, edst, important, final, K, 0, cap, WORK,
            pool, sptr, hs, trans, acc, table, meta)
        status = int(meta[3])
        if status == 0:
            break
        if status == 3:
            raise ConstraintError(f"regex {er._shown(pattern)} matches no text at all (its language is empty)")
        if status == 2:
            from steerdiff_plugins.automata.byte_level import MAX_STATES

            raise AutomatonTooLarge(f"regex {er._shown(pattern)}: its automaton has over {cap} states before "
                                    f"minimising (the build stopped there), above the limit of {MAX_STATES}; tighten the "
                                    f"bounds (maxLength, maxItems, max_depth)", int(meta[0]), MAX_STATES)
        check_deadline("byte automaton", "regex")
    N = int(meta[0])
    dfa = trans[: N * K].reshape(N, K)  # (N, K), -1 the dead sink
    acc = acc[:N]
    out, accept, start_alive = run("prune", dfa, acc)  # (M+1, K), (M+1,): the dead states merged into the sink
    if not start_alive:
        raise ConstraintError(f"regex {er._shown(pattern)} matches no text at all (its language is empty)")
    return out, accept, 0, bcls
