"""numba kernels of :mod:`token_trie` after the walk: token classes and their table from the walk's records
(verified exactly), and the shortest path and distinct edges over a token table. Imported through
``token_trie_kernels``; see its notes on hashes."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def run_ends(a, b):
    """``(T,)``: for each position, the end (exclusive) of its run of positions with equal ``a`` and ``b``."""
    out = np.empty(len(a), np.int64)
    _run_ends_into(a, b, out)
    return out


@njit(cache=True, nogil=True)
def _run_ends_into(a, b, out):
    T = len(a)
    end = T
    for t in range(T - 1, -1, -1):
        if t + 1 < T and (a[t] != a[t + 1] or b[t] != b[t + 1]):
            end = t + 1
        out[t] = end


@njit(cache=True, nogil=True)
def classes_and_table(hdiff, cdiff, fill_pos, plen, rec, P, reach, M, uend, uend_run, w, S, h, live, cls, run):
    """Group tokens (sorted positions; ``plen (T,)`` their lengths) by column hash and lay out the table,
    verified exactly: every record agrees with its tokens' class columns, and every token has as many live
    pairs as its class column has live entries.

    ``fill_pos``: the fill token's position (left out, class 0 here), or -1. The UTF-8 records' terms are
    added into ``hdiff``/``cdiff`` (run by run of equal end states), so the caller's arrays change. Tables are
    filled and checked once per run of tokens with the same class and end state, not once per token.
    ``h``, ``live``, ``cls``, ``run (T,)`` int64: work arrays (overwritten); ``cls`` holds each token's class
    on return. Returns ``(ok, table (S+2, C) int32)``; ``ok`` False on a disagreement (a hash collision)."""
    T = len(plen)
    DEAD = S + 1
    for r in range(rec.shape[0]):  # UTF-8 records: the end depends on each token's end state, constant on runs
        if rec[r, 4] == -2:
            ws, q = w[rec[r, 0]], rec[r, 3]
            t, hi = rec[r, 1], rec[r, 2]
            while t < hi:
                b = min(uend_run[t], hi)
                v = ws * (M[q, uend[t]] + 1)
                hdiff[t] += v
                hdiff[b] -= v
                cdiff[t] += 1
                cdiff[b] -= 1
                t = b
    acc_h = np.int64(0)
    acc_c = np.int64(0)
    for t in range(T):
        acc_h += hdiff[t]
        acc_c += cdiff[t]
        h[t] = acc_h
        live[t] = acc_c
    for r in range(rec.shape[0]):  # run records: the end depends on each token's length
        d = rec[r, 4]
        if d >= 0:
            ws, q = w[rec[r, 0]], rec[r, 3]
            for t in range(rec[r, 1], rec[r, 2]):
                j = plen[t] - d
                if j <= reach[q]:
                    h[t] += ws * (P[j, q] + 1)
                    live[t] += 1
    distinct = 1  # at most this many distinct hashes: the changes between consecutive (kept) tokens, plus one
    prev = np.int64(0)
    for t in range(T):
        if t != fill_pos and live[t] != 0:
            if h[t] != prev:
                distinct += 1
            prev = h[t]
    size = 1
    while size < 2 * distinct + 2:
        size *= 2
    keys = np.zeros(size, np.int64)
    vals = np.full(size, -1, np.int64)
    cls[:] = 0
    C = 2
    prev_x, prev_c = np.int64(0), -1
    for t in range(T):
        if t == fill_pos or live[t] == 0:
            continue
        x = h[t]
        if x == prev_x and prev_c >= 0:  # sorted neighbours mostly share a class: no lookup
            cls[t] = prev_c
            continue
        i = (x ^ (x >> 29)) * np.int64(-7046029254386353131)  # a mix of the (already random) hash bits
        i = (i ^ (i >> 32)) & (size - 1)
        while vals[i] != -1 and keys[i] != x:
            i = (i + 1) & (size - 1)
        if vals[i] == -1:
            keys[i] = x
            vals[i] = C
            C += 1
        cls[t] = vals[i]
        prev_x, prev_c = x, vals[i]
    table = np.full((S + 2, C), DEAD, np.int32)
    _run_ends_into(cls, uend, run)  # (T,) end of each token's run of equal (class, UTF-8 end state)
    for r in range(rec.shape[0]):
        s, q, d = rec[r, 0], rec[r, 3], rec[r, 4]
        t, hi = rec[r, 1], rec[r, 2]
        while t < hi:
            if d < 0:  # every token of a run goes where its first one goes: check it once per run
                b = min(run[t], hi)
                e = q if d == -1 else M[q, uend[t]]
            else:
                b = t + 1
                if plen[t] - d > reach[q]:
                    t = b
                    continue  # past the run's end: dead
                e = P[plen[t] - d, q]
            c = cls[t]
            t = b
            if c == 0:
                continue
            cur = table[s, c]
            if cur == DEAD:
                table[s, c] = e
            elif cur != e:
                return False, table
    col_live = np.zeros(C, np.int64)
    for s in range(S):
        for c in range(2, C):
            if table[s, c] != DEAD:
                col_live[c] += 1
    for t in range(T):
        c = cls[t]
        if c > 0 and live[t] != col_live[c]:
            return False, table
    return True, table


@njit(cache=True, nogil=True)
def gather_classes(cls_pos, inv, fill_pos, tok2cls):
    """``tok2cls[i] = cls_pos[inv[i]]`` for every id ``i`` with a sorted position (``inv[i] >= 0``) but the fill
    token's, written in id order."""
    for i in range(min(len(inv), len(tok2cls))):
        p = inv[i]
        if p >= 0 and p != fill_pos:
            tok2cls[i] = cls_pos[p]


@njit(cache=True, nogil=True)
def min_steps(table, start, acc, dead, first):
    """The fewest transitions over the columns ``first..`` of ``table (N, C)`` from ``start`` to a state with
    ``acc``, or -1 when none is reachable (breadth first: states leave the queue in order of distance)."""
    N, C = table.shape
    dist = np.full(N, -1, np.int64)
    queue = np.empty(N, np.int64)
    dist[start] = 0
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        s = queue[head]
        head += 1
        if acc[s]:
            return dist[s]
        for c in range(first, C):
            d = table[s, c]
            if d != dead and dist[d] < 0:
                dist[d] = dist[s] + 1
                queue[tail] = d
                tail += 1
    return -1


@njit(cache=True, nogil=True)
def distinct_edges(table, dead, first):
    """The distinct pairs ``(s, table[s, c])`` over columns ``first..`` with neither end ``dead``: ``(src, dst)``,
    sources ascending. Counted first, then written: an output buffer grown inside the loop costs numba
    reference counting on every step (several times slower)."""
    N, C = table.shape
    stamp = np.full(N, -1, np.int64)
    n = 0
    for s in range(N):
        if s == dead:
            continue
        for c in range(first, C):
            d = table[s, c]
            if d != dead and stamp[d] != s:
                stamp[d] = s
                n += 1
    src = np.empty(n, np.int64)
    dst = np.empty(n, np.int64)
    stamp[:] = -1
    n = 0
    for s in range(N):
        if s == dead:
            continue
        for c in range(first, C):
            d = table[s, c]
            if d != dead and stamp[d] != s:
                stamp[d] = s
                src[n] = s
                dst[n] = d
                n += 1
    return src, dst
