"""numba kernels of :mod:`byte_build` (imported only when numba is installed; compiled once, cached on disk).

* :func:`nfa_tables` turns the NFA's edge lists into :func:`subset`'s arrays.
* :func:`subset` determinises a byte-level Thompson NFA (epsilon edges, byte-class-range edges) by the subset
  construction, resumable: it processes at most ``work`` automaton states a call and stops past ``cap``
  states, so the caller checks the compile deadline between calls and refuses oversized automata early.
* :func:`coreach` marks the states that can reach acceptance (the rest are the dead sink's), :func:`prune`
  merges the others into the sink.
* :func:`minimise`, :func:`canonical` and :func:`bfs_order` (in ``byte_min_kernels``, imported here) minimise
  and number the states canonically.
* ``nfa_build`` and :func:`utf8_sequences` (in ``regex_nfa_kernels``, imported here): the NFA read straight from a
  pattern's text, and the UTF-8 split of a code-point range.

Hashes wrap (numba's int64 arithmetic has no overflow checks); every hash hit is confirmed by comparing the
sets themselves, so the automaton does not depend on them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from steerdiff_plugins.automata.byte_min_kernels import _FNV, bfs_order, canonical, minimise  # noqa: F401 - byte_build.run finds them here
from steerdiff_plugins.automata.regex_nfa_kernels import OK as NFA_OK, build as nfa_build, utf8_sequences  # noqa: F401 - the same

_SEED = 1469598103934665603  # the FNV-1a offset basis


@njit(cache=True, nogil=True)
def _hash(a, lo, hi):
    h = np.int64(_SEED)
    for i in range(lo, hi):
        h = (h ^ np.int64(a[i])) * np.int64(_FNV)
    return h


@njit(cache=True, nogil=True)
def _closure(seeds, lo, hi, eptr, edst, important, mark, gen, stack, out):
    """The important NFA states (byte edges out, or final) reached from ``seeds[lo:hi]`` by epsilon edges,
    sorted into ``out[:count]``; returns ``count``. ``mark``/``gen``: visited stamps."""
    top = 0
    for i in range(lo, hi):
        s = seeds[i]
        if mark[s] != gen:
            mark[s] = gen
            stack[top] = s
            top += 1
    cnt = 0
    while top > 0:
        top -= 1
        s = stack[top]
        if important[s]:
            out[cnt] = s
            cnt += 1
        for j in range(eptr[s], eptr[s + 1]):
            t = edst[j]
            if mark[t] != gen:
                mark[t] = gen
                stack[top] = t
                top += 1
    out[:cnt].sort()
    return cnt


@njit(cache=True, nogil=True)
def _grow(a, need):
    if need <= len(a):
        return a
    b = np.empty(max(need, 2 * len(a)), a.dtype)
    b[: len(a)] = a
    return b


@njit(cache=True, nogil=True)
def _find(table, hs, pool, sptr, h, out, cnt):
    """The DFA state whose set is ``out[:cnt]`` (hash ``h``), or ``-(slot + 1)`` of the free slot for it."""
    mask = len(table) - 1
    i = h & mask
    while True:
        d = table[i]
        if d < 0:
            return -(i + 1)
        if hs[d] == h and sptr[d + 1] - sptr[d] == cnt:
            o = sptr[d]
            same = True
            for k in range(cnt):
                if pool[o + k] != out[k]:
                    same = False
                    break
            if same:
                return d
        i = (i + 1) & mask


@njit(cache=True, nogil=True)
def _save(meta, ns, head, plen, status):
    meta[0] = ns
    meta[1] = head
    meta[2] = plen
    meta[3] = status


@njit(cache=True, nogil=True)
def nfa_tables(n, src, lo, hi, dst, esrc, edst, final):
    """The NFA of ``n`` states from its edge lists (byte edges ``src --[lo, hi]--> dst``, epsilon edges
    ``esrc -> edst``, all int64) in :func:`subset`'s form: ``(bptr (n+1,) int64, bclo, bchi, bdst (E,) int32,
    eptr (n+1,) int64, edst (X,) int32, important (n,) uint8, bcls (256,) int32, K)``, edges grouped by source in
    their order (a stable counting sort), byte classes the intervals between the edges' range ends."""
    cut = np.zeros(257, np.bool_)
    cut[0] = True
    for e in range(len(lo)):
        cut[lo[e]] = True
        cut[hi[e] + 1] = True
    bcls = np.empty(256, np.int32)
    c = -1
    for b in range(256):
        if cut[b]:
            c += 1
        bcls[b] = c
    bptr = np.zeros(n + 1, np.int64)
    for e in range(len(src)):
        bptr[src[e] + 1] += 1
    for s in range(n):
        bptr[s + 1] += bptr[s]
    pos = bptr[:n].copy()
    bclo = np.empty(len(src), np.int32)
    bchi = np.empty(len(src), np.int32)
    bdst = np.empty(len(src), np.int32)
    for e in range(len(src)):
        i = pos[src[e]]
        pos[src[e]] += 1
        bclo[i] = bcls[lo[e]]
        bchi[i] = bcls[hi[e]]
        bdst[i] = dst[e]
    eptr = np.zeros(n + 1, np.int64)
    for e in range(len(esrc)):
        eptr[esrc[e] + 1] += 1
    for s in range(n):
        eptr[s + 1] += eptr[s]
    pos[:] = eptr[:n]
    eout = np.empty(len(esrc), np.int32)
    for e in range(len(esrc)):
        eout[pos[esrc[e]]] = edst[e]
        pos[esrc[e]] += 1
    important = np.zeros(n, np.uint8)  # byte edges out, or final
    for s in range(n):
        if bptr[s + 1] > bptr[s]:
            important[s] = 1
    important[final] = 1
    return bptr, bclo, bchi, bdst, eptr, eout, important, bcls, c + 1


@njit(cache=True, nogil=True)
def subset(bptr, bclo, bchi, bdst, eptr, edst, important, final, K, start, cap, work,
           pool, sptr, hs, trans, acc, table, meta):
    """Subset construction over ``K`` byte classes, resumable.

    NFA: ``n`` states; byte edges by source (CSR ``bptr (n+1,)``; edge ``e`` reads the classes
    ``bclo[e]..bchi[e]`` into ``bdst[e]``); epsilon edges by source (``eptr (n+1,)``, ``edst``);
    ``important (n,)`` uint8 (byte edges out, or ``final``); ``start``.
    DFA so far: ``meta (4,)`` int64 ``[states, next state to expand, pool entries used, status]``; state
    ``d``'s NFA set is ``pool[sptr[d]:sptr[d+1]]`` (sorted) with hash ``hs[d]``; ``trans (rows*K,)`` flat,
    -1 = the dead sink; ``acc (rows,)``; ``table`` an open-addressing hash table of state ids (-1 free, a
    power of two long). A fresh run passes ``meta[0] == 0``.
    Expands at most ``work`` states, then returns with status 1 (more to do); status 2 when the states
    reach past ``cap``; status 0 when done; status 3 when the start set is empty (no text at all).
    Returns the (maybe reallocated) ``(pool, sptr, hs, trans, acc, table, meta)``."""
    n = len(bptr) - 1
    mark = np.zeros(n, np.int64)
    stack = np.empty(n + 1, np.int32)
    out = np.empty(n + 1, np.int32)
    gen = 0
    if meta[0] == 0:
        seed = np.empty(1, np.int32)
        seed[0] = start
        gen += 1
        cnt = _closure(seed, 0, 1, eptr, edst, important, mark, gen, stack, out)
        if cnt == 0:
            meta[3] = 3
            return pool, sptr, hs, trans, acc, table, meta
        h = _hash(out, 0, cnt)
        pool = _grow(pool, cnt)
        pool[:cnt] = out[:cnt]
        sptr[0] = 0
        sptr[1] = cnt
        hs[0] = h
        a = False
        for k in range(cnt):
            if out[k] == final:
                a = True
        acc[0] = a
        trans[:K] = -1
        table[h & (len(table) - 1)] = 0
        meta[0] = 1
        meta[1] = 0
        meta[2] = cnt
    ns = meta[0]
    head = meta[1]
    plen = meta[2]
    segc = np.zeros(K + 2, np.int64)  # per segment: bucket offsets
    pos = np.zeros(K + 1, np.int64)
    segidx = np.zeros(K + 1, np.int64)  # boundary class -> its segment
    bstamp = np.zeros(K + 1, np.int64)
    blist = np.empty(K + 1, np.int64)
    bgen = 0
    buck = np.empty(64, np.int32)
    dh = np.empty(K + 1, np.int64)  # distinct buckets of the state being expanded: hash, segment, target
    dc = np.empty(K + 1, np.int64)
    dt = np.empty(K + 1, np.int64)
    done = 0
    while head < ns:
        if done >= work:
            _save(meta, ns, head, plen, 1)
            return pool, sptr, hs, trans, acc, table, meta
        d = head
        head += 1
        done += 1
        lo, hi = sptr[d], sptr[d + 1]
        # the classes where some member edge starts or ends: between two such, every class has the same targets
        bgen += 1
        nb = 0
        for i in range(lo, hi):
            m = pool[i]
            for e in range(bptr[m], bptr[m + 1]):
                x = bclo[e]
                if bstamp[x] != bgen:
                    bstamp[x] = bgen
                    blist[nb] = x
                    nb += 1
                x = bchi[e] + 1
                if bstamp[x] != bgen:
                    bstamp[x] = bgen
                    blist[nb] = x
                    nb += 1
        row = d * K
        trans[row: row + K] = -1
        if nb == 0:
            continue
        blist[:nb].sort()
        for j in range(nb):
            segidx[blist[j]] = j
        nseg = nb - 1  # segment j: classes blist[j] .. blist[j+1]-1
        segc[: nseg + 1] = 0
        for i in range(lo, hi):
            m = pool[i]
            for e in range(bptr[m], bptr[m + 1]):
                for j in range(segidx[bclo[e]], segidx[bchi[e] + 1]):
                    segc[j + 1] += 1
        for j in range(nseg):
            segc[j + 1] += segc[j]
        buck = _grow(buck, segc[nseg])
        for j in range(nseg):
            pos[j] = segc[j]
        for i in range(lo, hi):
            m = pool[i]
            for e in range(bptr[m], bptr[m + 1]):
                t = bdst[e]
                for j in range(segidx[bclo[e]], segidx[bchi[e] + 1]):
                    buck[pos[j]] = t
                    pos[j] += 1
        nd = 0
        for sg in range(nseg):
            b0, b1 = segc[sg], segc[sg + 1]
            if b0 == b1:
                continue
            rh = _hash(buck, b0, b1)
            tgt = -2
            for j in range(nd):  # the same raw targets as an earlier segment: the same successor
                if dh[j] == rh:
                    s2 = dc[j]
                    o0, o1 = segc[s2], segc[s2 + 1]
                    if o1 - o0 == b1 - b0:
                        same = True
                        for k in range(b1 - b0):
                            if buck[o0 + k] != buck[b0 + k]:
                                same = False
                                break
                        if same:
                            tgt = dt[j]
                            break
            if tgt == -2:
                gen += 1
                cnt = _closure(buck, b0, b1, eptr, edst, important, mark, gen, stack, out)
                if cnt == 0:
                    tgt = -1
                else:
                    h = _hash(out, 0, cnt)
                    f = _find(table, hs, pool, sptr, h, out, cnt)
                    if f >= 0:
                        tgt = f
                    else:
                        tgt = ns
                        ns += 1
                        if ns > cap:
                            _save(meta, ns, head, plen, 2)
                            return pool, sptr, hs, trans, acc, table, meta
                        pool = _grow(pool, plen + cnt)
                        pool[plen: plen + cnt] = out[:cnt]
                        plen += cnt
                        sptr = _grow(sptr, ns + 1)
                        sptr[ns] = plen
                        hs = _grow(hs, ns)
                        hs[tgt] = h
                        acc = _grow(acc, ns)
                        a = False
                        for k in range(cnt):
                            if out[k] == final:
                                a = True
                        acc[tgt] = a
                        if len(trans) < ns * K:
                            trans = _grow(trans, ns * K)
                        table[-f - 1] = tgt
                        if 2 * ns > len(table):  # keep the load at most 1/2
                            table = np.full(2 * len(table), -1, np.int32)
                            mask = len(table) - 1
                            for x in range(ns):
                                i = hs[x] & mask
                                while table[i] >= 0:
                                    i = (i + 1) & mask
                                table[i] = x
                dh[nd] = rh
                dc[nd] = sg
                dt[nd] = tgt
                nd += 1
            if tgt >= 0:
                for c in range(blist[sg], blist[sg + 1]):
                    trans[row + c] = tgt
    _save(meta, ns, head, plen, 0)
    return pool, sptr, hs, trans, acc, table, meta


@njit(cache=True, nogil=True)
def coreach(trans, acc):
    """``(N,)`` bool: the states of ``trans (N, K)`` (-1 = dead) from which an accepting state is reachable."""
    N, K = trans.shape
    deg = np.zeros(N + 1, np.int64)
    for s in range(N):
        for c in range(K):
            t = trans[s, c]
            if t >= 0:
                deg[t + 1] += 1
    for s in range(N):
        deg[s + 1] += deg[s]
    pred = np.empty(deg[N], np.int32)
    fill = deg[:N].copy()
    for s in range(N):
        for c in range(K):
            t = trans[s, c]
            if t >= 0:
                pred[fill[t]] = s
                fill[t] += 1
    alive = np.zeros(N, np.bool_)
    stack = np.empty(N, np.int32)
    top = 0
    for s in range(N):
        if acc[s]:
            alive[s] = True
            stack[top] = s
            top += 1
    while top > 0:
        top -= 1
        t = stack[top]
        for j in range(deg[t], deg[t + 1]):
            s = pred[j]
            if not alive[s]:
                alive[s] = True
                stack[top] = s
                top += 1
    return alive


@njit(cache=True, nogil=True)
def prune(trans, acc):
    """The DFA ``trans (N, K)`` (-1 = dead) / ``acc (N,)`` with the states that cannot reach acceptance
    (:func:`coreach`) merged into a sink: ``(table (M+1, K) int32, accept (M+1,) bool, start_alive)``, the
    live states numbered in their order, the sink ``M`` last, state 0 (the start) kept as 0 when alive."""
    alive = coreach(trans, acc)
    N, K = trans.shape
    remap = np.empty(N, np.int32)
    M = 0
    for s in range(N):
        if alive[s]:
            remap[s] = M
            M += 1
    table = np.full((M + 1, K), M, np.int32)
    accept = np.zeros(M + 1, np.bool_)
    for s in range(N):
        if alive[s]:
            r = remap[s]
            accept[r] = acc[s]
            for c in range(K):
                t = trans[s, c]
                if t >= 0 and alive[t]:
                    table[r, c] = remap[t]
    return table, accept, alive[0]
