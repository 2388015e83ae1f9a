"""numba kernels of :mod:`token_trie` after the walk: token classes and their table from the walk's records
(verified exactly), and the shortest path and distinct edges over a token table. Imported through
``token_trie_kernels``; see its notes on hashes."""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from steerdiff_plugins.automata.token_share_kernels import group_term, record_group


@njit(cache=True, nogil=True)
def run_ends(a, b):
    """``(T,)``: for each position, the end (exclusive) of its run of positions with equal ``a`` and ``b``."""
    T = len(a)
    out = np.empty(T, np.int64)
    end = T
    for t in range(T - 1, -1, -1):
        if t + 1 < T and (a[t] != a[t + 1] or b[t] != b[t + 1]):
            end = t + 1
        out[t] = end
    return out


@njit(cache=True, nogil=True, inline="always")
def mark(bm, t):
    """Mark position ``t`` in the bitmap ``bm`` (:func:`classes_and_table` reads only marked positions)."""
    bm[t >> 6] |= np.uint64(1) << np.uint64(t & 63)


@njit(cache=True, nogil=True, inline="always")
def add_term(hdiff, cdiff, bm, t, v, n):
    """Add hash term ``v`` and live count ``n`` at sorted position ``t`` of the difference arrays, and mark ``t``
    in the bitmap ``bm`` of positions that hold something."""
    hdiff[t] += v
    cdiff[t] += n
    mark(bm, t)


@njit(cache=True, nogil=True)
def classes_and_table(hdiff, cdiff, bm, fill_pos, plen, rec, P, reach, M, uend, uend_run, w, S, n_ids, ids, absent,
                      tok2cls, keys, vals, used, rstart, rcls, ruend, rid, lead, loc, row, phi, gid, msize, W):
    """Group tokens (sorted positions; ``plen (T,)`` their lengths; ids below ``n_ids``) by column hash and
    lay out the table, verified exactly: every record agrees with its tokens' class columns, and every token
    has as many live pairs as its class column has live entries.

    ``fill_pos``: the fill token's position (left out: class 0 here, its ``tok2cls`` entry untouched), or -1.
    The UTF-8 and run records' terms are added into the difference arrays ``hdiff``/``cdiff (T+1,)``, marked in
    the bitmap ``bm``, like the walk's (:func:`add_term`). The sums change only at marked positions: one pass
    over the marks (not over the tokens) takes the ranges between them, assigns classes (a hash table
    ``keys``/``vals``, all -1 in ``vals`` on entry and on return, ``used`` its work list) and cuts the tokens
    into runs of equal class and UTF-8 end state (``rstart (T+1,)``, ``rcls``/``ruend (T,)`` work arrays; ``rid`` the
    run at each marked position). It clears every mark and the arrays under it on the way: ``hdiff``,
    ``cdiff`` and ``bm`` are all zero again on return, whatever the verdict. Tables are filled and checked once
    per run, not once per token.

    Returns ``(status, table (S+2, C) int32, size_of (C,))``: status 1 with every token's class written to
    ``tok2cls`` (by id; at least ``n_ids`` long; ``ids (T,)`` the id at each position, ``absent`` the ids below
    ``n_ids`` with no position, whose entries it leaves as they are, like the fill token's and those past
    ``n_ids``), ``size_of[c]`` how many ids it wrote with class ``c``;
    0 on a disagreement (a hash collision) and -1 when the hash table is too small (more than half its
    slots would fill), ``tok2cls`` untouched in both.

    A record of state ``-1 - p`` is leader ``p``'s and stands for its whole group (``token_trie_kernels.
    walk_states``; ``lead``, ``loc``, ``row``, ``phi`` of ``token_share_kernels.share_groups``, ``gid``, ``msize``,
    ``W`` of ``group_weights``): its terms are the group's, it fills the leader's row, and each member's row
    gets the leader's entries from such records renamed through ``phi``, checked against the member's own."""
    T = len(plen)
    DEAD = S + 1
    one = np.uint64(1)
    for r in range(rec.shape[0]):  # the terms that vary inside a record, as difference-array entries too
        d = rec[r, 4]
        if d == -1:
            continue
        st, g, n = record_group(rec[r, 0], gid, msize)  # a leader's record: the whole group's terms
        q = rec[r, 3]
        t, hi = rec[r, 1], rec[r, 2]
        mark(bm, t)  # every record starts a range (its run is looked up there)
        if d == -2:  # UTF-8 records: the end depends on each token's end state, constant on its runs (uend_run)
            while t < hi:
                b = min(uend_run[t], hi)
                v = group_term(w, st, M[q, uend[t]], g, W, loc)
                add_term(hdiff, cdiff, bm, t, v, n)
                add_term(hdiff, cdiff, bm, b, -v, -n)
                t = b
        else:  # run records: the end depends on each token's length
            for t in range(rec[r, 1], rec[r, 2]):
                j = plen[t] - d
                if j <= reach[q]:
                    v = group_term(w, st, P[j, q], g, W, loc)
                    add_term(hdiff, cdiff, bm, t, v, n)
                    add_term(hdiff, cdiff, bm, t + 1, -v, -n)
    for t in (fill_pos, fill_pos + 1, T):  # the fill token a range of its own; T closes the last range
        if t >= 0:
            mark(bm, t)
    size = len(keys)
    n_used = 0
    cls_live = np.zeros(size // 2 + 2, np.int64)  # live pairs of each class's tokens
    C = 2
    acc_h = np.int64(0)
    acc_c = np.int64(0)
    prev_x, prev_c = np.int64(0), -1
    nrun = 0
    run_c, run_u = -1, -2  # the last run's class and UTF-8 end state (-2: none yet)
    status = 1
    p = 0  # the open range's start: the sums are acc_h, acc_c on [p, next mark)
    for wi in range(len(bm)):
        bits = bm[wi]
        if bits == 0:
            continue
        bm[wi] = 0
        while bits != 0:
            t = (wi << 6) + trailing_zeros(bits)
            bits &= bits - one
            if status == 1 and t > p:  # close [p, t)
                if p == fill_pos or acc_c == 0:
                    c = 0
                elif acc_h == prev_x and prev_c >= 2:  # sorted neighbours mostly share a class: no lookup
                    c = prev_c
                else:
                    x = acc_h
                    i = (x ^ (x >> 29)) * np.int64(-7046029254386353131)  # a mix of the (already random) hash bits
                    i = (i ^ (i >> 32)) & (size - 1)
                    while vals[i] != -1 and keys[i] != x:
                        i = (i + 1) & (size - 1)
                    if vals[i] == -1 and 2 * (n_used + 1) > size:
                        status = -1
                    elif vals[i] == -1:
                        keys[i] = x
                        vals[i] = C
                        used[n_used] = i
                        n_used += 1
                        cls_live[C] = acc_c
                        C += 1
                    c = vals[i]
                    prev_x, prev_c = x, c
                if status == 1 and c >= 2 and acc_c != cls_live[c]:
                    status = 0  # two columns with one hash
                a = p
                while status == 1 and a < t:  # cut by UTF-8 end state
                    u = uend[a]
                    if c != run_c or u != run_u:
                        rstart[nrun] = a
                        rcls[nrun] = c
                        ruend[nrun] = u
                        nrun += 1
                        run_c, run_u = c, u
                    if a == p:
                        rid[a] = nrun - 1
                    a = min(uend_run[a], t)
            acc_h += hdiff[t]  # (at T: nothing follows; cleared all the same)
            acc_c += cdiff[t]
            hdiff[t] = 0
            cdiff[t] = 0
            p = t
    for k in range(n_used):
        vals[used[k]] = -1
    table = np.full((S + 2, C), DEAD, np.int32)
    none = np.zeros(0, np.int64)  # no class sizes: the verdict was not 1
    if status != 1:
        return status, table, none
    rstart[nrun] = T  # the end of the last run
    ins = np.full((len(msize), C), DEAD, np.int32)  # per group: the leader's entries from its shared records
    for r in range(rec.shape[0]):
        s, g, _ = record_group(rec[r, 0], gid, msize)
        q, d = rec[r, 3], rec[r, 4]
        t, hi = rec[r, 1], rec[r, 2]
        j = rid[t] if t < T else nrun
        while t < hi:
            b = rstart[j + 1]
            c = rcls[j]
            if d < 0:  # every token of a run goes where its first one goes: check it once per run
                e = q if d == -1 else M[q, ruend[j]]
                nxt = min(b, hi)
            else:
                nxt = t + 1
                e = DEAD if plen[t] - d > reach[q] else P[plen[t] - d, q]  # past the run's end: dead
            if c != 0 and e != DEAD:
                cur = table[s, c]
                if cur == DEAD:
                    table[s, c] = e
                elif cur != e:
                    return 0, table, none
                if g >= 0:
                    ins[g, c] = e
            t = nxt
            if t >= b:
                j += 1
    for k in range(S):  # the members' rows: the leader's shared entries renamed, against their own walks
        p = lead[k]
        if p < 0 or p == k:
            continue
        g = gid[p]
        for c in range(2, C):
            e = ins[g, c]
            if e != DEAD:
                ek = phi[row[k], loc[e]]
                cur = table[k, c]
                if cur == DEAD:
                    table[k, c] = ek
                elif cur != ek:
                    return 0, table, none
    col_live = np.zeros(C, np.int64)
    for s in range(S):
        for c in range(2, C):
            if table[s, c] != DEAD:
                col_live[c] += 1
    for c in range(2, C):
        if col_live[c] != cls_live[c]:
            return 0, table, none
    size_of = np.zeros(C, np.int64)  # the ids written per class, counted per run (a count bumped per id waits
    for j in range(nrun):             # on its own last store when neighbouring ids share a class)
        size_of[rcls[j]] += rstart[j + 1] - rstart[j]
    if fill_pos >= 0:
        size_of[0] -= 1
    # One class holds most tokens (plain string content: 87% of 152k): it is written over every id in one
    # sequential sweep, the entries that must stay restored, and only the other runs written id by id.
    big = 0
    for c in range(C):
        if size_of[c] > size_of[big]:
            big = c
    saved = np.empty(len(absent) + 1, tok2cls.dtype)  # (A+1,) the absent ids' entries, then the fill token's
    for k in range(len(absent)):
        saved[k] = tok2cls[absent[k]]
    fid = ids[fill_pos] if fill_pos >= 0 else -1
    if fid >= 0:
        saved[len(absent)] = tok2cls[fid]
    tok2cls[:n_ids] = big
    for k in range(len(absent)):
        tok2cls[absent[k]] = saved[k]
    if fid >= 0:
        tok2cls[fid] = saved[len(absent)]
    for j in range(nrun):
        c = rcls[j]
        if c != big:
            for t in range(rstart[j], rstart[j + 1]):
                if t != fill_pos:
                    tok2cls[ids[t]] = c
    return 1, table, size_of


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
def distinct_count(table, dead, first):
    """How many distinct pairs ``(s, table[s, c])`` there are over columns ``first..`` with neither end ``dead``."""
    none = np.empty(0, np.int64)
    return _distinct_pass(table, dead, first, none, none)


@njit(cache=True, nogil=True)
def distinct_edges(table, dead, first, n):
    """The ``n`` (:func:`distinct_count`) distinct pairs ``(s, table[s, c])`` over columns ``first..`` with neither
    end ``dead``: ``(src, dst)``, sources ascending. Counted first, then written: an output buffer grown inside
    the loop costs numba reference counting on every step (several times slower)."""
    src = np.empty(n, np.int64)
    dst = np.empty(n, np.int64)
    if n:
        _distinct_pass(table, dead, first, src, dst)
    return src, dst


@njit(cache=True, nogil=True)
def _distinct_pass(table, dead, first, src, dst):
    """How many distinct pairs :func:`distinct_edges` finds, written into ``src``/``dst`` unless they are empty."""
    N, C = table.shape
    stamp = np.full(N, -1, np.int64)
    write = len(src) > 0
    n = 0
    for s in range(N):
        if s == dead:
            continue
        for c in range(first, C):
            d = table[s, c]
            if d != dead and stamp[d] != s:
                stamp[d] = s
                if write:
                    src[n] = s
                    dst[n] = d
                n += 1
    return n
