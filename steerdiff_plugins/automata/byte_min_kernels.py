"""numba kernels of :mod:`byte_build` after the subset construction: :func:`minimise` (Valmari's partition
refinement), :func:`canonical` (the quotient by its blocks in ``byte_level.canonical``'s form) and
:func:`bfs_order`, the breadth-first numbering it and ``byte_level.canonical`` use. Imported through
``byte_build_kernels``; hashes there are confirmed entry by entry as in that module."""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV = 1099511628211  # the FNV-1a prime

# --- minimisation: Valmari's partition refinement over the live transitions ---------------------------------
# (A. Valmari, "Fast brief practical DFA minimization", Information Processing Letters 112, 2012): blocks of
# states and "cords" of transitions (first by label, then by target block) refine each other; each step uses
# the smaller half of a split, so the whole costs O(m log n) for m transitions not into the sink, whatever
# the number of byte classes. A partition is ``E`` (elements in set order), ``L`` (each element's place),
# ``S`` (its set), ``F``/``P`` (a set's first place and one past its last), ``M`` (marked elements of a set,
# moved to its front), ``W`` the sets with marks, ``st = [sets, sets with marks]``.


@njit(cache=True, nogil=True)
def _mark(e, E, L, S, F, M, W, st):
    s = S[e]
    i = L[e]
    j = F[s] + M[s]
    E[i] = E[j]
    L[E[i]] = i
    E[j] = e
    L[e] = j
    if M[s] == 0:
        W[st[1]] = s
        st[1] += 1
    M[s] += 1


@njit(cache=True, nogil=True)
def _split(E, S, F, P, M, W, st):
    while st[1] > 0:
        st[1] -= 1
        s = W[st[1]]
        j = F[s] + M[s]
        if j == P[s]:  # every element marked: no split
            M[s] = 0
            continue
        z = st[0]
        if M[s] <= P[s] - j:  # the new set is the smaller part
            F[z] = F[s]
            P[z] = j
            F[s] = j
        else:
            P[z] = P[s]
            F[z] = j
            P[s] = j
        for i in range(F[z], P[z]):
            S[E[i]] = z
        M[s] = 0
        M[z] = 0
        st[0] += 1


@njit(cache=True, nogil=True)
def _partition(n, nsets):
    E = np.arange(n).astype(np.int32)
    L = np.arange(n).astype(np.int32)
    S = np.zeros(n, np.int32)
    F = np.zeros(n + 1, np.int32)
    P = np.zeros(n + 1, np.int32)
    M = np.zeros(n + 1, np.int32)
    W = np.zeros(n + 1, np.int32)
    st = np.zeros(2, np.int32)
    st[0] = nsets
    return E, L, S, F, P, M, W, st


@njit(cache=True, nogil=True)
def minimise(table, accept):
    """Block of each state of the DFA ``table (N, K)`` / ``accept (N,)``, whose last state ``N-1`` is the dead
    sink and whose other states are all reachable and able to reach acceptance: the Myhill-Nerode partition
    ``(N,)`` int64, the sink alone in the last block. Transitions are numbered by their target state (a
    state's incoming transitions are consecutive: the refinement's hot loop reads memory in order)."""
    N, K = table.shape
    n = N - 1
    sink = N - 1
    Fa = np.zeros(n + 1, np.int32)  # incoming transitions of each state: Fa[q] .. Fa[q+1]-1
    lab = np.zeros(K + 1, np.int32)  # transitions per label
    for s in range(n):
        for c in range(K):
            t = table[s, c]
            if t != sink:
                Fa[t + 1] += 1
                lab[c + 1] += 1
    for q in range(n):
        Fa[q + 1] += Fa[q]
    for c in range(K):
        lab[c + 1] += lab[c]
    m = Fa[n]
    Tt = np.empty(m, np.int32)  # tail of each transition
    Ll = np.empty(m, np.int32)  # label of each transition
    pos = Fa[:n].copy()
    for s in range(n):
        for c in range(K):
            t = table[s, c]
            if t != sink:
                Tt[pos[t]] = s
                Ll[pos[t]] = c
                pos[t] += 1
    # states: one block, then the accepting ones split off
    BE, BL, BS, BF, BP, BM, BW, bst = _partition(n, 1)
    BP[0] = n
    for s in range(n):
        if accept[s]:
            _mark(s, BE, BL, BS, BF, BM, BW, bst)
    _split(BE, BS, BF, BP, BM, BW, bst)
    # transitions: one cord per label
    CE, CL, CS, CF, CP, CM, CW, cst = _partition(m, 0)
    fill = lab[:K].copy()
    for t in range(m):
        c = Ll[t]
        CE[fill[c]] = t
        CL[t] = fill[c]
        fill[c] += 1
    z = 0
    for c in range(K):
        if lab[c + 1] > lab[c]:
            CF[z] = lab[c]
            CP[z] = lab[c + 1]
            for i in range(lab[c], lab[c + 1]):
                CS[CE[i]] = z
            z += 1
    cst[0] = z
    b = 1
    c = 0
    while c < cst[0]:
        for i in range(CF[c], CP[c]):
            _mark(Tt[CE[i]], BE, BL, BS, BF, BM, BW, bst)
        _split(BE, BS, BF, BP, BM, BW, bst)
        c += 1
        while b < bst[0]:
            for i in range(BF[b], BP[b]):
                q = BE[i]
                for j in range(Fa[q], Fa[q + 1]):
                    _mark(j, CE, CL, CS, CF, CM, CW, cst)
            _split(CE, CS, CF, CP, CM, CW, cst)
            b += 1
    out = np.empty(N, np.int64)
    out[:n] = BS
    out[sink] = bst[0]
    return out


@njit(cache=True, nogil=True)
def canonical(table, accept, bid, start, sink, bcls):
    """``byte_level.canonical`` of the quotient of ``table (N, K)`` / ``accept (N,)`` by the blocks ``bid (N,)``
    (``minimise``'s: dense ids ``0..B-1``), in one pass: equal columns of the block table merged (column hashes,
    every grouping confirmed entry by entry), classes numbered by their smallest byte of ``bcls (256,)``, blocks
    numbered breadth first from ``start``'s, ``sink``'s block last, unreached blocks dropped. Returns
    ``(ctrans (M+1, K2) int32, bcls (256,) int32, accept (M+1,) bool, B)``, ``B`` the blocks (the sink's included)."""
    N, K = table.shape
    B = 0
    for s in range(N):
        if bid[s] >= B:
            B = bid[s] + 1
    rep = np.full(B, -1, np.int64)  # the first state of each block
    for s in range(N):
        if rep[bid[s]] < 0:
            rep[bid[s]] = s
    q = np.empty((B, K), np.int32)  # (B, K) the block table
    h = np.zeros(K, np.int64)  # per-column polynomial hashes (wrapping)
    for b in range(B):
        r = rep[b]
        for c in range(K):
            x = np.int32(bid[table[r, c]])
            q[b, c] = x
            h[c] = (h[c] * np.int64(_FNV)) ^ np.int64(x)
    ccls = np.empty(K, np.int64)  # each column's first equal column
    for c in range(K):
        ccls[c] = c
        for d in range(c):
            if ccls[d] == d and h[d] == h[c]:
                same = True
                for b in range(B):
                    if q[b, c] != q[b, d]:
                        same = False
                        break
                if same:
                    ccls[c] = d
                    break
    newid = np.full(K, -1, np.int32)  # merged class (its first column) -> canonical class
    col = np.empty(K, np.int64)  # canonical class -> a column of q
    out_bcls = np.empty(256, np.int32)
    K2 = 0
    for x in range(256):
        m = ccls[bcls[x]]
        if newid[m] < 0:
            newid[m] = K2
            col[K2] = m
            K2 += 1
        out_bcls[x] = newid[m]
    qc = np.empty((B, K2), np.int32)  # (B, K2) the block table over the canonical classes
    for b in range(B):
        for c in range(K2):
            qc[b, c] = q[b, col[c]]
    rank = bfs_order(qc, bid[start], bid[sink])
    queue = np.empty(B, np.int32)  # the blocks in rank order
    M = 0
    for b in range(B):
        if rank[b] >= 0:
            queue[rank[b]] = b
            M += 1
    ctrans = np.full((M + 1, K2), M, np.int32)
    acc = np.zeros(M + 1, np.bool_)
    for i in range(M):
        s = queue[i]
        acc[i] = accept[rep[s]]
        for c in range(K2):
            t = qc[s, c]
            if rank[t] >= 0:
                ctrans[i, c] = rank[t]
    return ctrans, out_bcls, acc, B


@njit(cache=True, nogil=True)
def bfs_order(table, start, sink):
    """``(N,)`` int32 the breadth-first rank of each state of ``table (N, K)`` from ``start``, classes in
    order, ``sink`` left out (-1: not reached, and the sink)."""
    N, K = table.shape
    rank = np.full(N, -1, np.int32)
    queue = np.empty(N, np.int32)
    rank[start] = 0
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        s = queue[head]
        head += 1
        for c in range(K):
            t = table[s, c]
            if t != sink and rank[t] < 0:
                rank[t] = tail
                queue[tail] = t
                tail += 1
    return rank
