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
id; where a block has only dirty members its largest group keeps it. Each round costs the dirty rows.

Signatures are 64-bit hashes of successor-id rows. A collision could only merge states, never split
them, so the result is checked exactly (the partition must be a congruence that respects acceptance)
and :func:`minimise` returns ``None`` when it is not; the caller then keeps the automaton as it was.
"""

from __future__ import annotations

import numpy as np

_MIX = np.int64(0x9E3779B97F4A7C15 - (1 << 64))  # an odd 64-bit constant (golden ratio), as int64


def _weights(k: int) -> np.ndarray:
    return np.random.default_rng(0x5EED).integers(1, 1 << 62, size=k, dtype=np.int64) | 1  # (K,) odd


def minimise(trans: np.ndarray, accept: np.ndarray, sink: int) -> np.ndarray | None:
    """Block id of every state of the DFA ``trans (N, K)`` / ``accept (N,)``: the coarsest partition that
    respects acceptance, successors and the ``sink`` (a non-accepting state whose row is all ``sink``,
    alone in its block), or ``None`` if the hashed refinement failed its exactness check (astronomically
    unlikely). With every other state able to reach acceptance this is the Myhill-Nerode partition;
    states that cannot (but are not the sink) end in blocks of their own, which :func:`quotient` drops.
    Block ids are arbitrary non-negative ints."""
    N, K = trans.shape
    w = _weights(K)
    bid = np.where(accept, 0, 1).astype(np.int64)  # (N,) block of each state
    bid[sink] = 2
    cnt = np.bincount(bid, minlength=3).astype(np.int64)  # (n_blocks,) members per block
    # predecessors (CSR, grouped by destination) over the entries not into the sink (it never moves)
    src, col = np.nonzero(trans != sink)  # (E,) entries not into the sink
    dst = trans[src, col]
    order = np.argsort(dst, kind="stable")
    pred = src[order]  # (E,) sources grouped by destination
    ptr = np.searchsorted(dst[order], np.arange(N + 1))  # (N+1,) CSR offsets
    dirty = np.arange(N)
    with np.errstate(over="ignore"):
        while len(dirty):
            blk = bid[dirty]  # (D,)
            sig = (bid[trans[dirty]] * w).sum(axis=1) ^ (blk * _MIX)  # (D,) wrapping hash of (block, row)
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
            new[fresh] = len(cnt) + np.arange(len(fresh))
            moved = np.flatnonzero(new[inv] != blk)
            if not len(moved):
                break
            np.subtract.at(cnt, blk[moved], 1)
            cnt = np.concatenate([cnt, size[fresh]])
            changed = dirty[moved]
            bid[changed] = new[inv[moved]]
            lo, n = ptr[changed], ptr[changed + 1] - ptr[changed]
            idx = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(int(n.sum()))
            dirty = np.unique(pred[idx])
    _, rep, inv = np.unique(bid, return_index=True, return_inverse=True)
    rep = rep[inv.reshape(-1)]  # (N,) one member of each state's block
    if not (np.array_equal(accept, accept[rep]) and np.array_equal(bid[trans], bid[trans[rep]])):
        return None
    return bid


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
