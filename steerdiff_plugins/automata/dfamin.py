"""DFA minimisation: Moore's partition refinement, revisiting only the states whose successors moved.

The byte automata the regex engine builds for JSON Schema are far from minimal: an optional property's
value automaton is copied once per context (which properties came before it), and so are the string and
number automata inside it. Minimising shrinks them 10-30 times (``wp_23``: 18,204 -> 623 states), and
every later stage (the token walk over the vocabulary, the per-step mask work) scales with the states.

Algorithm. Moore's refinement splits blocks by the blocks of their successors until nothing changes. A
plain Moore pass recomputes every state's signature per round, and the engine's automata need up to
thousands of rounds (a counted run ``.{0,2000}`` is distinguished one state per round). Here a round
only recomputes the *dirty* states: the predecessors of states that moved to a new block in the round
before. This is exact because of one invariant: after a round, the members of a block share the
successor row of the round before, so a member whose successors kept their ids keeps its signature, and
a dirty member always differs from every clean one. Block ids are stable: the clean members keep their
id; where a block has only dirty members its largest group keeps it. Each round costs the dirty rows,
read sparsely (the entries not into the sink, a tenth or less of the table). Automata of a few hundred
states are refined in plain Python with exact signatures (numpy's per-call cost dominates there).

Signatures are 64-bit hashes of successor-id rows. A collision could only merge states, never split
them, so the result is checked exactly (the partition must be a congruence that respects acceptance)
and :func:`minimise` returns ``None`` when it is not; the caller then keeps the automaton as it was.
"""

from __future__ import annotations

import numpy as np

from steerdiff_plugins.compile_budget import check_deadline

_MIX = np.int64(0x9E3779B97F4A7C15 - (1 << 64))  # an odd 64-bit constant (golden ratio), as int64


SMALL_ROUND = 48  # rounds over at most this many dirty states run in plain Python (_small_round)
PY_STATES, PY_ENTRIES = 256, 2048  # automata up to this size are refined in plain Python (_minimise_py)


_WEIGHTS: dict = {}  # k -> its weights (read-only)


def _weights(k: int) -> np.ndarray:
    """``(K,)`` fixed odd random int64 weights of the row hashes, kept per ``k`` (a generator's set-up costs
    more than a small automaton's refinement)."""
    w = _WEIGHTS.get(k)
    if w is None:
        w = np.random.default_rng(0x5EED).integers(1, 1 << 62, size=k, dtype=np.int64) | 1
        w.flags.writeable = False
        _WEIGHTS[k] = w
    return w


def minimise(trans: np.ndarray, accept: np.ndarray, sink: int) -> np.ndarray | None:
    """Block id of every state of the DFA ``trans (N, K)`` / ``accept (N,)``: the coarsest partition that
    respects acceptance, successors and the ``sink`` (a non-accepting state whose row is all ``sink``,
    alone in its block), or ``None`` if the hashed refinement failed its exactness check (astronomically
    unlikely). With every other state able to reach acceptance this is the Myhill-Nerode partition;
    states that cannot (but are not the sink) end in blocks of their own, which :func:`quotient` drops.
    Block ids are arbitrary non-negative ints.

    Rows are read sparsely: only the entries not into the sink (a tenth or less of the table for the
    engine's automata: o61609 20,777 of 191,664), since the sink never moves (block 2, alone)."""
    N, K = trans.shape
    w = _weights(K)
    bid = np.where(accept, 0, 1).astype(np.int64)  # (N,) block of each state
    bid[sink] = 2
    cnt = np.bincount(bid, minlength=3).astype(np.int64)  # (n_blocks,) members per block
    src, col = np.nonzero(trans != sink)  # (E,) entries not into the sink, by source then class
    dst = trans[src, col].astype(np.int64)  # (E,)
    if N <= PY_STATES and len(src) <= PY_ENTRIES:
        return _minimise_py(N, src, col, dst, accept, sink)
    wcol = w[col]  # (E,) each entry's class weight
    sptr = np.zeros(N + 1, dtype=np.int64)  # (N+1,) CSR offsets by source
    np.cumsum(np.bincount(src, minlength=N), out=sptr[1:])
    # predecessors (CSR, grouped by destination)
    order = np.argsort(dst, kind="stable")
    pred = src[order]  # (E,) sources grouped by destination
    ptr = np.zeros(N + 1, dtype=np.int64)  # (N+1,) CSR offsets
    np.cumsum(np.bincount(dst, minlength=N), out=ptr[1:])
    dirty = np.arange(N)
    cnt = np.concatenate([cnt, np.zeros(N + 1, dtype=np.int64)])  # room for every block a split can make
    nb = 3  # blocks in use
    with np.errstate(over="ignore"):
        while len(dirty):
            check_deadline("byte automaton", "regex")  # the whole compile's clock (compile_budget)
            if len(dirty) <= SMALL_ROUND:
                changed, nb = _small_round(dirty, trans, bid, cnt, nb)
            else:
                changed, nb = _round(dirty, (sptr, dst, wcol), bid, cnt, nb)
            if not len(changed):
                break
            mark = np.zeros(N, dtype=bool)  # (N,) the predecessors of the states that moved
            mark[pred[_segments(ptr, changed)]] = True
            dirty = np.flatnonzero(mark)
    _, rep, inv = np.unique(bid, return_index=True, return_inverse=True)
    rep = rep[inv.reshape(-1)]  # (N,) one member of each state's block
    # exact check, sparsely: each state's entries not into the sink lead where its block's representative's
    # do, and both have as many such entries (so the representative's other entries go to the sink too)
    deg = np.diff(sptr)  # (N,)
    if not (np.array_equal(accept, accept[rep]) and np.array_equal(deg, deg[rep])
            and np.array_equal(bid[dst], bid[trans[rep[src], col]])):
        return None
    return bid


def _minimise_py(N: int, src: np.ndarray, col: np.ndarray, dst: np.ndarray, accept: np.ndarray,
                 sink: int) -> np.ndarray:
    """:func:`minimise` for small automata (``PY_STATES``, ``PY_ENTRIES``) in plain Python: the same dirty-state
    refinement with exact signatures (a state's block, its classes not into the sink, their successors'
    blocks), where numpy's per-call cost (a dozen calls a round) outweighs the work. ``src, col, dst (E,)``:
    the entries not into the sink. Returns the block ids ``(N,)``."""
    cols: list = [[] for _ in range(N)]
    dsts: list = [[] for _ in range(N)]
    preds: list = [[] for _ in range(N)]
    for s, c, d in zip(src.tolist(), col.tolist(), dst.tolist()):
        cols[s].append(c)
        dsts[s].append(d)
        preds[d].append(s)
    shape = [tuple(c) for c in cols]  # (N,) each state's classes not into the sink
    bid = [0 if a else 1 for a in accept.tolist()]
    bid[sink] = 2
    cnt = [bid.count(0), bid.count(1), 1] + [0] * N  # members per block
    nb = 3
    dirty = [s for s in range(N) if s != sink]  # the sink never moves (nothing into it is an entry)
    while dirty:
        check_deadline("byte automaton", "regex")  # the whole compile's clock (compile_budget)
        groups: dict = {}
        for s in dirty:
            groups.setdefault((bid[s], shape[s], tuple([bid[d] for d in dsts[s]])), []).append(s)
        per_block: dict = {}
        for key, members in groups.items():
            per_block.setdefault(key[0], []).append(members)
        nd: dict = {}
        for s in dirty:
            nd[bid[s]] = nd.get(bid[s], 0) + 1
        changed: list = []
        for b, gl in per_block.items():
            kept = -1 if cnt[b] > nd[b] else max(range(len(gl)), key=lambda j: len(gl[j]))  # clean members keep b
            for j, members in enumerate(gl):
                if j == kept:
                    continue
                cnt[b] -= len(members)
                cnt[nb] = len(members)
                for s in members:
                    bid[s] = nb
                changed += members
                nb += 1
        if not changed:
            break
        dirty = sorted({p for s in changed for p in preds[s]})
    return np.array(bid, dtype=np.int64)


def _segments(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(T,)`` the positions ``ptr[r] .. ptr[r+1]-1`` of every row ``r`` of ``rows``, concatenated (CSR)."""
    lo, n = ptr[rows], ptr[rows + 1] - ptr[rows]
    return np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))


def _round(dirty, rows, bid, cnt, nb):
    """One refinement round over the ``dirty`` states, vectorised: each dirty state's signature (its block and
    its successors' blocks, hashed) splits its block; clean members keep the block id, and a block of dirty
    members only gives it to its largest group. ``rows``: ``(sptr, dst, wcol)``, the entries not into the
    sink by source (CSR offsets, destination, class weight). Updates ``bid`` and ``cnt`` in place; returns
    ``(changed states, blocks in use)``."""
    sptr, dst, wcol = rows
    blk = bid[dirty]  # (D,)
    n = sptr[dirty + 1] - sptr[dirty]  # (D,) entries per dirty state
    idx = _segments(sptr, dirty)  # (T,)
    # sum of w[class] * (block - 2) over the entries not into the sink (the sink's block is 2: its entries
    # add 0), the same as the full row's hash less a constant; wrapping
    part = np.cumsum(wcol[idx] * (bid[dst[idx]] - 2))  # (T,)
    ends = np.cumsum(n)  # (D,)
    tot = np.concatenate(([0], part))
    sig = (tot[ends] - tot[ends - n]) ^ (blk * _MIX)  # (D,) wrapping hash of (block, row)
    _, first, inv, size = np.unique(sig, return_index=True, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    gblk = blk[first]  # (G,) each group's block
    ub, nd = np.unique(blk, return_counts=True)  # dirty members per block
    clean = cnt[gblk] > nd[np.searchsorted(ub, gblk)]  # (G,) its block keeps clean members
    keep = np.zeros(len(first), dtype=bool)
    cand = np.flatnonzero(~clean)
    if len(cand):  # blocks of dirty members only: the largest group keeps the id
        o = cand[np.lexsort((-size[cand], gblk[cand]))]
        keep[o[np.r_[True, gblk[o][1:] != gblk[o][:-1]]]] = True
    fresh = np.flatnonzero(~keep)
    new = gblk.copy()
    new[fresh] = nb + np.arange(len(fresh))
    moved = np.flatnonzero(new[inv] != blk)
    if not len(moved):
        return moved, nb
    np.subtract.at(cnt, blk[moved], 1)
    cnt[nb: nb + len(fresh)] = size[fresh]
    changed = dirty[moved]
    bid[changed] = new[inv[moved]]
    return changed, nb + len(fresh)


def _small_round(dirty, trans, bid, cnt, nb):
    """:func:`_round` for a few dirty states, in plain Python (a counted run ``.{0,5000}`` is refined one state
    per round for thousands of rounds, where the vectorised round's dozen numpy calls cost 0.5 ms each time).
    Signatures are exact here (the successor blocks themselves, no hash); the partition each round makes is
    the vectorised round's (which group keeps a block id may differ; ids are arbitrary)."""
    blk = bid[dirty].tolist()
    rows = bid[trans[dirty]].tolist()  # (D, K) successor blocks
    groups: dict = {}
    for i, (b, row) in enumerate(zip(blk, rows)):
        groups.setdefault((b, tuple(row)), []).append(i)
    per_block: dict = {}
    for (b, _), members in groups.items():
        per_block.setdefault(b, []).append(members)
    nd: dict = {}
    for b in blk:
        nd[b] = nd.get(b, 0) + 1
    changed, ids = [], []
    for b, gl in per_block.items():
        kept = -1 if cnt[b] > nd[b] else max(range(len(gl)), key=lambda j: len(gl[j]))  # clean members keep b
        for j, members in enumerate(gl):
            if j == kept:
                continue
            cnt[b] -= len(members)
            cnt[nb] = len(members)
            changed += [int(dirty[i]) for i in members]
            ids += [nb] * len(members)
            nb += 1
    changed_a = np.array(changed, dtype=np.int64)
    bid[changed_a] = ids
    return changed_a, nb


def block_table(trans: np.ndarray, accept: np.ndarray, bid: np.ndarray):
    """The automaton of the blocks ``bid (N,)`` (from :func:`minimise`): ``(table (B, K) int32, accept (B,),
    block (N,))`` with blocks numbered by their first state and ``block`` each state's block."""
    _, rep, inv = np.unique(bid, return_index=True, return_inverse=True)
    order = np.argsort(rep, kind="stable")  # number blocks in the order of their first state
    rank = np.empty(len(rep), dtype=np.int32)
    rank[order] = np.arange(len(rep), dtype=np.int32)
    block = rank[inv.reshape(-1)]  # (N,)
    first = rep[order]  # (B,) the first state of each block
    return block[trans[first]], accept[first], block
