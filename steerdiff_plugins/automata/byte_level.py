"""The minimal byte-level DFA of a regex (stage 2 of the regular-language pipeline).

``byte_dfa(pattern)``: the minimal byte-level DFA (UTF-8 expanded), over byte classes, in a canonical numbering
(:func:`canonical`). Two builders, the same arrays for the same language:

- ``byte_build`` (used whenever numba is importable): a UTF-8 Thompson NFA straight from Python's parse of the
  pattern, the subset construction and Valmari's minimisation in numba kernels (issue 23: 4-5x faster than
  the outlines path on the public set's regexes at the median, see ``benchmarks/byte_build.py``). It is
  interruptible (the compile deadline is checked between chunks) and bounds the *minimal* automaton by
  ``MAX_STATES`` (its subset construction stops at ``RAW_FACTOR`` times that, and the minimisation, which
  cannot be interrupted, takes at most ``TRANSITIONS_PER_STATE`` times that many transitions).
- :func:`outlines_dfa` (without numba, or ``STEERDIFF_BYTE_BUILD=outlines``): outlines_core's Rust ``Index`` over a
  256-token single-byte vocabulary, then minimised (``dfamin``) with its start/end markers removed; its raw
  automaton is bounded by ``MAX_STATES``. We never use outlines_core's own token index (its per-state Python
  dicts cost ~0.7 s on a 49k vocabulary) but walk tokens ourselves (``token_walk``).

Minimising matters: the automata the schema compiler's regexes give are 10-30 times larger than minimal, and
every later stage scales with the states.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import chain

import numpy as np

from steerdiff.errors import AutomatonTooLarge, ConstraintError
from steerdiff_plugins.automata import byte_build, dfamin
from steerdiff_plugins.compile_budget import check_deadline
from steerdiff_plugins.automata.engine_regex import (
    SENTINEL,
    SENTINEL_BYTES,
    _esc,
    _shown,
    to_engine_regex,
)

MAX_STATES = 60_000  # byte-DFA states beyond this are refused (per-step work and memory grow with it)
RAW_FACTOR = 2  # byte_build's subset construction stops past this many times MAX_STATES (before minimising)
# ... and its transitions not into the sink are bounded by this many per state of MAX_STATES before the
# (uninterruptible) minimisation, about 40 bytes each (the public set's most: o4826, 621,950 in 49,375 states)
TRANSITIONS_PER_STATE = 64


_byte_vocab = None
_lock = threading.Lock()


def _byte_vocabulary():
    global _byte_vocab
    if _byte_vocab is None:
        import outlines_core

        _byte_vocab = outlines_core.Vocabulary(256, {bytes([b]): [b] for b in range(256)})
    return _byte_vocab


@dataclass(frozen=True)
class ByteDFA:
    """A minimal byte DFA over byte classes: ``ctrans (S+1, K)`` next state per class (``S`` = dead sink),
    ``bcls (256,)`` the class of each byte, ``accept (S+1,)``, ``start``. ``trans (S+1, 256)`` is the
    per-byte table, built on first use."""

    ctrans: np.ndarray
    bcls: np.ndarray
    accept: np.ndarray
    start: int

    @property
    def dead(self) -> int:
        return self.ctrans.shape[0] - 1

    @cached_property
    def trans(self) -> np.ndarray:
        return np.ascontiguousarray(self.ctrans[:, self.bcls])  # (S+1, 256)

    def accepts(self, data: bytes) -> bool:
        """Whether the whole of ``data`` is in the language (a byte-by-byte walk)."""
        s = self.start
        for b in data:
            s = self.ctrans[s, self.bcls[b]]
            if s == self.dead:
                return False
        return bool(self.accept[s])


_WEIGHTS: dict[int, np.ndarray] = {}  # seed -> weights drawn so far (read-only)


def _hash_weights(n: int, seed: int) -> np.ndarray:
    """``n`` fixed random int64 weights for the row hashes below (every grouping is verified exactly): the
    first ``n`` draws of ``seed``'s generator, kept per seed (a generator's set-up costs more than the hashing
    on small automata) and drawn again, twice as many, when a larger ``n`` comes. Read-only."""
    w = _WEIGHTS.get(seed)
    if w is None or len(w) < n:
        w = np.random.default_rng(seed).integers(1, 2**62, size=max(n, 2 * len(w) if w is not None else 0, 4096),
                                                 dtype=np.int64)
        w.flags.writeable = False
        _WEIGHTS[seed] = w
    return w[:n]


_DRAWS: np.ndarray | None = None  # uniform draws of _edge_classes's generator so far (read-only)


def _uniform_draws(n: int) -> np.ndarray:
    """The first ``n`` draws of ``np.random.default_rng(0xC1A55).random``: a generator's set-up (0.2 ms) costs
    more than small automata's hashing, so the draws are kept and drawn again, twice as many, when a larger
    ``n`` comes (a generator's doubles are one stream: the first ``n`` of a longer draw are the same)."""
    global _DRAWS
    d = _DRAWS
    if d is None or len(d) < n:
        d = np.random.default_rng(0xC1A55).random(max(n, 2 * len(d) if d is not None else 0, 8192))
        d.flags.writeable = False
        _DRAWS = d
    return d[:n]


@lru_cache(maxsize=1024)
def check_regex(pattern: str) -> None:
    """Raise what :func:`byte_dfa` raises for ``pattern`` before it builds any automaton: the pattern does not
    compile, uses a construct the engine does not take, or repeats more than ``MAX_STATES`` times
    (``AutomatonTooLarge``); nothing for a pattern the byte stage itself will refuse by size. A constraint's
    syntax check: its work is kept for the ``byte_dfa`` that follows (the parse, and the NFA where
    ``byte_build`` builds the automaton), so checking first costs nothing more. Cached like ``byte_dfa`` (a
    pattern that passed is not checked again: a constraint built again, or ``sd.fill`` called again with one
    schema, builds no NFA that no ``byte_dfa`` would take)."""
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded, check_expansion

    if byte_build.available():
        if _fast_kept(pattern):  # the numba front end built it within the budget
            return
        try:
            check_expansion(pattern, "byte automaton", "regex")
        except CompileBudgetExceeded:  # the NFA would be too large to build now: the refusals from the parse alone
            to_engine_regex(pattern)
            return
        byte_build.nfa_of(pattern, keep=True)
    else:
        to_engine_regex(pattern)  # outlines_dfa builds from it (cached)


@lru_cache(maxsize=1024)
def byte_dfa(pattern: str) -> ByteDFA:
    """The minimal byte-level DFA of a Python-dialect regex (full match): every state reachable from the
    start and able to reach acceptance, no two states with the same future (see ``dfamin``), numbered
    canonically (:func:`canonical`), so both builders give the same arrays for the same language.

    Built by ``byte_build`` (our subset construction in numba) when it is available, else (no numba, or
    ``STEERDIFF_BYTE_BUILD=outlines``) through outlines_core's Rust builder (:func:`outlines_dfa`)."""
    from steerdiff_plugins.compile_budget import check_expansion

    check_deadline("byte automaton", "regex")
    if not (byte_build.available() and _fast_kept(pattern)):
        check_expansion(pattern, "byte automaton", "regex")  # bounds the NFA's size (and the Rust builder's time)
    if byte_build.available():
        # the subset construction stops past RAW_FACTOR * MAX_STATES states (it is interruptible: a guard of
        # time and memory); the limit itself bounds the minimal automaton, which every later stage scales with
        table, accept, start, bcls = byte_build.subset_dfa(pattern, RAW_FACTOR * MAX_STATES)  # (M+1, K), (M+1,)
        sink = table.shape[0] - 1
        check_deadline("byte automaton", "regex")
        live = int(np.count_nonzero(table[:-1] != sink))  # the minimisation's memory and time scale with these
        if live > TRANSITIONS_PER_STATE * MAX_STATES:
            raise AutomatonTooLarge(f"regex {_shown(pattern)}: its automaton has {sink} states and {live} transitions "
                                    f"before minimising, above the limit of {int(TRANSITIONS_PER_STATE * MAX_STATES)} "
                                    f"transitions ({TRANSITIONS_PER_STATE} per state of the limit of {MAX_STATES}); "
                                    f"tighten the bounds (maxLength, maxItems, max_depth)", live,
                                    int(TRANSITIONS_PER_STATE * MAX_STATES))
        bid = byte_build.run("minimise", table, accept)  # (M+1,) Valmari's refinement, the sink alone
        # the quotient in canonical form in one kernel (what dfamin.block_table and canonical do in numpy)
        ctrans, cbcls, cacc, blocks = byte_build.run("canonical", table, accept, bid, start, sink, bcls)
        _check_states(pattern, int(blocks) - 1)
        return ByteDFA(ctrans, cbcls, cacc, 0)
    return outlines_dfa(pattern)


def _fast_kept(pattern: str) -> bool:
    """Whether ``pattern``'s NFA is kept for the byte stage, built by ``byte_build``'s numba front end now (or
    kept by an earlier check): its count of what counted repetitions add is at least ``check_expansion``'s
    and within the budget, so that check (Python's parse of the pattern) is not needed. False where the front
    end leaves the pattern to Python's parser (the checks then run as they did)."""
    from steerdiff_plugins.compile_budget import MAX_BYTE_REGEX_CHARS

    if len(pattern) > MAX_BYTE_REGEX_CHARS:
        return False
    return byte_build.nfa_of(pattern, keep=True, fast_only=True) is not None


def _check_states(pattern: str, n: int) -> None:
    if n > MAX_STATES:
        raise AutomatonTooLarge(f"regex {_shown(pattern)}: its automaton has {n} states, above the limit of "
                                f"{MAX_STATES}; tighten the bounds (maxLength, maxItems, max_depth)", n, MAX_STATES)


def outlines_dfa(pattern: str) -> ByteDFA:
    """:func:`byte_dfa` through outlines_core's Rust ``Index`` (a DFA of ``MARK + pattern + MARK`` over a
    256-token vocabulary of single bytes), minimised, the marker states removed. Checks as ``byte_dfa``."""
    # a start marker too: without it the engine's construction can blow up exponentially when the pattern
    # starts with a byte its body repeats (``"(?:[^"\\]|\\.){0,16}"`` took 4 s, ``{0,20}`` 80 s; 3 ms with it)
    from steerdiff_plugins.compile_budget import check_expansion

    check_deadline("byte automaton", "regex")
    check_expansion(pattern, "byte automaton", "regex")  # the Rust builder cannot be interrupted: estimate first
    engine = _esc(SENTINEL) + to_engine_regex(pattern)
    import outlines_core

    try:
        with _lock:
            index = outlines_core.Index(engine, _byte_vocabulary())
    except BaseException as exc:  # the Rust side raises ValueError or a panic exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        msg = str(exc)
        if "no transitions" in msg.lower() or "incompatible" in msg.lower():
            raise ConstraintError(f"regex {_shown(pattern)} matches no text at all (its language is empty)") from None
        raise ConstraintError(f"regex {_shown(pattern)} could not be compiled to an automaton: {msg[:300]}") from None
    trans_d = index.get_transitions()
    if len(trans_d) > MAX_STATES:
        raise AutomatonTooLarge(f"regex {_shown(pattern)}: its automaton has {len(trans_d)} states, above the limit of "
                                f"{MAX_STATES}; tighten the bounds (maxLength, maxItems, max_depth)", len(trans_d), MAX_STATES)
    finals = np.fromiter(index.get_final_states(), dtype=np.int64)
    init = index.get_initial_state()
    # the transitions as flat arrays (a Python loop per edge costs about 0.5 s for automata of 50k states)
    # (map over the dicts' methods, no Python-level generator per state: 0.2 s saved on 50k states)
    degree = np.fromiter(map(len, trans_d.values()), dtype=np.int64, count=len(trans_d))  # (states,)
    n = int(degree.sum())
    src = np.repeat(np.fromiter(trans_d.keys(), dtype=np.int64, count=len(trans_d)), degree)  # (n,)
    byte = np.fromiter(chain.from_iterable(map(dict.keys, trans_d.values())), dtype=np.int64, count=n)
    dst = np.fromiter(chain.from_iterable(map(dict.values, trans_d.values())), dtype=np.int64, count=n)
    every = np.concatenate([src, dst, finals, [init]])  # the engine's state ids -> 0..S-1 in their order
    # the engine's ids are spaced by a stride (its table row width): ids // g keep their order in a g times
    # smaller lookup array
    g = max(int(np.gcd.reduce(every)), 1)
    present = np.zeros(int(every.max()) // g + 1, dtype=bool)
    present[every // g] = True
    dense = np.cumsum(present, dtype=np.int64) - 1  # (max id // g + 1,) id // g -> dense state
    S = int(present.sum())
    ok = byte < 256
    src, byte, dst = dense[src[ok] // g], byte[ok], dense[dst[ok] // g]  # (E,) the edges, dense ids
    marked = np.zeros(S + 1, dtype=bool)  # the engine's final states: after the end marker
    marked[dense[finals // g]] = True
    # The engine's automaton D accepts MARK + pattern + MARK. It is minimised as it is: two states of the
    # pattern have the same future in D exactly when they have it in the pattern's language (the pattern
    # never contains the marker, a code point of its own), so D's minimal automaton, less its marker
    # states, is the pattern's.
    bcls, ctrans = _edge_classes(src, byte, dst, S)  # (256,), (S+1, K) with S the engine's missing edges
    bid = dfamin.minimise(ctrans, marked, S)
    if bid is None:  # a hash collision in the refinement: keep every state (still exact, only larger)
        bid = np.arange(S + 1)
    q, fin, inv = dfamin.block_table(ctrans, marked, bid)  # (B, K) blocks, (B,) the marked blocks
    sink = int(inv[S])
    mark = [int(bcls[b]) for b in SENTINEL_BYTES]
    on_mark = np.arange(len(q))
    for c in mark:
        on_mark = q[on_mark, c]
    accept = fin[on_mark]  # (B,) accepting in the pattern: the end marker can follow
    chain_ = [int(inv[dense[init // g]])]
    for c in mark:  # the start marker
        chain_.append(int(q[chain_[-1], c]))
    gone = _marker_only(q, fin, sink) | _start_only(q, chain_)
    gone[sink] = True
    keep = np.flatnonzero(~gone)
    remap = np.full(len(q), len(keep), dtype=np.int32)  # gone blocks -> the new sink
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    table = np.full((len(keep) + 1, q.shape[1]), len(keep), dtype=np.int32)  # (M+1, K) the sink last
    table[:-1] = remap[q[keep]]
    start = int(remap[chain_[-1]])
    if start == len(keep):
        raise ConstraintError(f"regex {_shown(pattern)} matches no text at all (its language is empty)")
    # the marker removal above can leave states with the same future in the pattern's language (the
    # engine's automaton told them apart by what the marker could do): minimised again, so the result is
    # the minimal automaton (e.g. ``(?:aa|a[^"\\][^a])``: 25 states before, 22 after)
    acc = np.append(accept[keep], False)  # (M+1,)
    live = _coreachable(table, acc)
    table = np.where(live[table], table, len(keep)).astype(np.int32)  # dead states' entries -> the sink
    table[~live] = len(keep)
    bid = dfamin.minimise(table, acc & live, len(keep))
    if bid is None:  # a hash collision in the refinement: keep every state (still exact, only larger)
        bid = np.arange(len(table))
    q, fin, inv = dfamin.block_table(table, acc & live, bid)
    return canonical(q, fin, int(inv[start]), int(inv[len(keep)]), bcls)


def _coreachable(table: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the states of ``table (N, K)`` from which an accepting state is reachable."""
    N = len(table)
    src = np.repeat(np.arange(N), table.shape[1])
    dst = table.reshape(-1)
    order = np.argsort(dst, kind="stable")
    pred = src[order]  # (N*K,) predecessors grouped by target
    ptr = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=N), out=ptr[1:])
    live = acc.copy()
    frontier = np.flatnonzero(acc)
    while len(frontier):
        cand = pred[dfamin._segments(ptr, frontier)]
        cand = np.unique(cand[~live[cand]])
        live[cand] = True
        frontier = cand
    return live


def canonical(q: np.ndarray, accept: np.ndarray, start: int, sink: int, bcls: np.ndarray) -> ByteDFA:
    """The :class:`ByteDFA` of the minimal DFA ``q (B, K)`` (every state but ``sink`` reachable from ``start``
    or dropped here, ``accept (B,)``, ``bcls (256,)`` each byte's column of ``q``) in its canonical form:
    columns that are equal merged into one class, classes numbered by their smallest byte, states numbered
    breadth first from the start (0) over the classes in order, the sink last. Minimal DFAs of one language
    are equal up to renumbering, so two builders of the same language give identical arrays."""
    ccls = _byte_classes(q)  # (K,) merged class of each column
    byte_c = ccls[bcls]  # (256,)
    _, first = np.unique(byte_c, return_index=True)  # (K2,) the smallest byte of each merged class
    order = np.argsort(first, kind="stable")  # new class j = merged class order[j]
    newid = np.empty(len(order), dtype=np.int32)
    newid[order] = np.arange(len(order), dtype=np.int32)
    col = np.empty(len(order), dtype=np.int64)
    col[ccls] = np.arange(len(ccls))  # a column of q for each merged class
    t = np.ascontiguousarray(q[:, col[order]], dtype=np.int32)  # (B, K2) classes in the canonical order
    rank = _bfs_rank(t, start, sink)  # (B,) -1: the sink (and any unreachable block)
    reached = np.flatnonzero(rank >= 0)
    M = len(reached)
    rank[rank < 0] = M
    table = np.full((M + 1, t.shape[1]), M, dtype=np.int32)  # (M+1, K2) the sink last
    table[rank[reached]] = rank[t[reached]]
    acc = np.zeros(M + 1, dtype=bool)
    acc[rank[reached]] = accept[reached]
    return ByteDFA(table, newid[byte_c].astype(np.int32), acc, 0)


def _bfs_rank(t: np.ndarray, start: int, sink: int) -> np.ndarray:
    """``(B,)`` int32 breadth-first rank of each state of ``t (B, K)`` from ``start``, classes in order, the
    sink left out (-1 there and for states not reached): the numba kernel, or plain Python without numba."""
    if byte_build.available():
        return byte_build.run("bfs_order", t, start, sink)
    rows = t.tolist()
    rank = [-1] * len(rows)
    rank[start] = 0
    queue = [start]
    for s in queue:
        for x in rows[s]:
            if x != sink and rank[x] < 0:
                rank[x] = len(queue)
                queue.append(x)
    return np.array(rank, dtype=np.int32)


def _edge_classes(src: np.ndarray, byte: np.ndarray, dst: np.ndarray, S: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bcls (256,), ctrans (S+1, K))`` from the edge list ``src --byte--> dst`` of ``S`` states (a
    missing edge goes to the sink ``S``): bytes with identical columns share a class. Columns are hashed
    (a float sum over each byte's edges in edge order, so equal columns give bit-equal sums) and the table
    is then checked against every edge exactly; on a collision the dense table is grouped exactly."""
    draws = _uniform_draws(2 * S + 2)  # the first 2S+2 draws of one seeded generator
    w = draws[: S + 1] + 0.5  # (S+1,) source weights
    v = draws[S + 1:] + 0.5  # (S+1,) destination weights
    h = np.bincount(byte, weights=w[src] * v[dst], minlength=256)  # (256,)
    _, first, bcls = np.unique(h, return_index=True, return_inverse=True)
    bcls = bcls.reshape(-1).astype(np.int32)
    K = len(first)
    ctrans = np.full((S + 1, K), S, dtype=np.int32)
    is_rep = np.zeros(256, dtype=bool)
    is_rep[first] = True
    m = is_rep[byte]
    ctrans[src[m], bcls[byte[m]]] = dst[m]
    c = bcls[byte]  # (E,)
    if (np.array_equal(ctrans[src, c], dst)  # every edge agrees, and each class has as many edges as the table says
            and np.array_equal(np.bincount(c, minlength=K), (ctrans != S).sum(axis=0) * np.bincount(bcls, minlength=K))):
        return bcls, ctrans
    trans = np.full((S + 1, 256), S, dtype=np.int32)
    trans[src, byte] = dst
    return _class_transitions(trans)


def _marker_only(q: np.ndarray, fin: np.ndarray, sink: int) -> np.ndarray:
    """``(B,)`` the blocks of the engine's minimal automaton that cannot reach an accepting state of the
    pattern: the marked blocks (after the end marker), the block of states with no future at all (its
    entries go to the sink or back to itself), and the blocks whose whole future is a piece of the end
    marker, 1 to 3 bytes long. Any other block has a future word of 4 bytes or more, and such a word
    is some pattern text followed by the marker, so the block can reach an accepting state."""
    own = np.arange(len(q))[:, None]  # (B, 1)
    gone = fin | ((q == sink) | (q == own)).all(axis=1)  # (B,) no future beyond the marker's end
    for _ in range(3):  # futures of at most 1, 2, 3 bytes, all into gone blocks
        gone = gone | gone[q].all(axis=1)
    gone[sink] = False
    return gone


def _start_only(q: np.ndarray, chain_: list[int]) -> np.ndarray:
    """``(B,)`` the blocks on the start marker (``chain_``: the engine's start, then one block per marker
    byte, the last the pattern's start) that the pattern's start never reaches: the engine's start has
    no predecessor, and each later one is dropped when its only predecessor is the dropped block before
    it. (A block the pattern's own text reaches too, such as the one after ``F4 8F BF`` when the pattern
    can follow ``E2 80`` with ``BF`` and then start over, is kept.)"""
    out = np.zeros(len(q), dtype=bool)
    for k, b in enumerate(chain_[:-1]):
        into = set(np.flatnonzero((q == b).any(axis=1)).tolist())  # blocks with an entry into b
        if into == (set() if k == 0 else {chain_[k - 1]}) and (k == 0 or out[chain_[k - 1]]):
            out[b] = True
    return out


_ROW_CHUNK = 4096  # rows of a (S1, 256) table handled at a time (a 4 MB int32 block stays in cache)


def _class_transitions(trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(bcls (256,), ctrans (S1, K))``: the byte classes of ``trans (S1, 256)`` and its next state per class."""
    bcls = _byte_classes(trans)
    rep = np.empty(int(bcls.max()) + 1, dtype=np.int64)
    rep[bcls] = np.arange(256)  # one byte of each class
    return bcls, np.take(trans, rep, axis=1)  # (S1, K)


def _byte_classes(trans: np.ndarray) -> np.ndarray:
    """``(256,)`` int32: bytes with identical columns of ``trans (S1, 256)`` share a class. Columns are
    hashed and the grouping verified exactly (``np.unique`` on the columns on a collision).

    Both passes go over blocks of rows (a whole-table transpose or gather costs page faults on tens of MB);
    the hash is the same wrapping sum ``sum_s w[s] * trans[s, j]`` in any block order."""
    S1, n = trans.shape
    w = _hash_weights(S1, 0xB17E)
    h = np.zeros(n, dtype=np.int64)
    with np.errstate(over="ignore"):
        for r in range(0, S1, _ROW_CHUNK):
            blk = trans[r: r + _ROW_CHUNK].astype(np.int64)  # (R, 256)
            blk *= w[r: r + _ROW_CHUNK, None]
            h += blk.sum(axis=0)  # (256,) wraps: a hash
    _, first, bcls = np.unique(h, return_index=True, return_inverse=True)
    bcls = bcls.reshape(-1)
    rep = first[bcls]  # (256,) the class representative of each byte's column
    if not all(np.array_equal(np.take(trans[r: r + _ROW_CHUNK], rep, axis=1), trans[r: r + _ROW_CHUNK])
               for r in range(0, S1, _ROW_CHUNK)):
        _, bcls = np.unique(trans.T, axis=0, return_inverse=True)
    return bcls.reshape(-1).astype(np.int32)

