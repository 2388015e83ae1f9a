"""numba kernels of :mod:`token_trie` (imported only when numba is installed; compiled once, cached on disk).

Integer arithmetic on the hashes wraps (numba compiles int64 arithmetic without overflow checks): they are
hashes, and every grouping they suggest is verified exactly in :func:`classes_and_table`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from steerdiff_plugins.automata.token_class_kernels import (  # noqa: F401 - token_trie._run finds kernels here
    add_term, classes_and_table, distinct_count, distinct_edges, min_steps, run_ends)
from steerdiff_plugins.automata.token_share_kernels import (  # noqa: F401 - likewise
    body_keys, group_term, group_weights, record_group, share_groups)


@njit(cache=True, nogil=True)
def build_trie(slots, starts, lens, order):
    """Prefix tree of the tokens ``order`` (sorted by bytes; token ``t`` is ``slots[starts[t]:starts[t]+lens[t]]``).
    Returns ``(first_child, next_sib, byte, parent, lo, endhi, hi, depth, height, below)`` (see ``token_trie._Trie``)."""
    n = len(order)
    total = 1
    maxlen = 0
    for t in range(len(lens)):
        total += lens[t]
        maxlen = max(maxlen, lens[t])
    first_child = np.full(total, -1, np.int32)
    next_sib = np.full(total, -1, np.int32)
    last_child = np.full(total, -1, np.int32)
    byte = np.zeros(total, np.uint8)
    parent = np.full(total, -1, np.int32)
    lo = np.zeros(total, np.int32)
    endhi = np.zeros(total, np.int32)
    hi = np.zeros(total, np.int32)
    depth = np.zeros(total, np.int32)
    height = np.zeros(total, np.int32)
    path = np.zeros(maxlen + 1, np.int32)  # the previous token's node at each depth (path[0]: the root)
    nn = 1
    prev_o, prev_l = 0, 0
    for p in range(n):
        t = order[p]
        o, ln = starts[t], lens[t]
        k = 0
        if p > 0:
            m = min(ln, prev_l)
            while k < m and slots[o + k] == slots[prev_o + k]:
                k += 1
        for d in range(k, ln):  # new nodes below the shared prefix (a prefix sorts before its extensions)
            par = path[d]
            c = nn
            nn += 1
            byte[c] = slots[o + d]
            parent[c] = par
            depth[c] = d + 1
            lo[c] = p
            endhi[c] = p
            if last_child[par] == -1:
                first_child[par] = c
            else:
                next_sib[last_child[par]] = c
            last_child[par] = c
            path[d + 1] = c
        endhi[path[ln]] = p + 1
        for d in range(ln + 1):
            hi[path[d]] = p + 1
        prev_o, prev_l = o, ln
    below = np.zeros((nn, 4), np.uint64)
    for c in range(nn - 1, 0, -1):  # children come after their parents in preorder
        p = parent[c]
        height[p] = max(height[p], height[c] + 1)
        b = byte[c]
        for i in range(4):
            below[p, i] |= below[c, i]
        below[p, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    return (first_child[:nn].copy(), next_sib[:nn].copy(), byte[:nn].copy(), parent[:nn].copy(), lo[:nn].copy(),
            endhi[:nn].copy(), hi[:nn].copy(), depth[:nn].copy(), height[:nn].copy(), below)


@njit(cache=True, nogil=True)
def state_groups(ctrans, bcls, dead, max_run):
    """Per state of the byte DFA ``ctrans (S+1, K)`` over byte classes (``bcls (256,)``: each byte's class):
    the byte set it loops on and the counted run it steps down.

    A *loop* state stays in place on two or more bytes: ``grp[q]`` the id of that byte set. Any other
    state *steps* when two or more bytes lead to one successor ``succ[q]`` (neither ``q`` nor dead; the
    successor most bytes lead to, the smallest on a tie): ``rgrp[q]`` the id of that byte set ``A``. A string
    of ``j`` bytes of ``A`` read from ``q`` ends ``j`` states down the chain ``q, succ[q], ...`` while every
    state on the way steps on the same set: ``reach[q]`` (capped at ``max_run``) is how many, ``P[j, q]``
    where it ends. ``stops[q]``: every byte of the set leads to dead from the chain's last state
    ``P[reach[q], q]`` (a bound such as ``{0,64}`` ends there), so a longer string of the set dies.
    Returns ``(grp, rgrp, reach, stops, P (max_run+1, S+1), sets (G, 4) uint64)``: ids index ``sets`` (in
    order of first use by state), byte ``b`` of set ``g`` is bit ``b & 63`` of ``sets[g, b >> 6]``. Bytes of
    one class go alike from every state, so each set is a union of classes: the work is per class, not
    per byte."""
    S = dead
    K = ctrans.shape[1]
    size = np.zeros(K, np.int64)  # bytes per class
    cmask = np.zeros((K, 4), np.uint64)  # each class's bytes as a 256-bit set
    first = np.full(K, -1, np.int64)  # each class's smallest byte
    for b in range(256):
        c = bcls[b]
        size[c] += 1
        cmask[c, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
        if first[c] < 0:
            first[c] = b
    grp = np.full(S + 1, -1, np.int32)
    rgrp = np.full(S + 1, -1, np.int32)
    succ = np.full(S + 1, dead, np.int32)
    sets = np.zeros((16, 4), np.uint64)
    G = 0
    cnt = np.zeros(S + 1, np.int64)
    for q in range(S):
        own = 0
        for c in range(K):
            t = ctrans[q, c]
            if t == q:
                own += size[c]
            elif t != dead:
                cnt[t] += size[c]
        best, best_n = -1, 1  # the successor most bytes lead to (two at least), the smallest on a tie
        for c in range(K):
            t = ctrans[q, c]
            if t != q and t != dead and (cnt[t] > best_n or (cnt[t] == best_n and best >= 0 and t < best)):
                best, best_n = t, cnt[t]
        for c in range(K):
            cnt[ctrans[q, c]] = 0
        if own >= 2:
            tgt = q
        elif best >= 0:
            tgt = best
            succ[q] = best
        else:
            continue
        k0 = np.uint64(0)
        k1 = np.uint64(0)
        k2 = np.uint64(0)
        k3 = np.uint64(0)
        for c in range(K):
            if ctrans[q, c] == tgt:
                k0 |= cmask[c, 0]
                k1 |= cmask[c, 1]
                k2 |= cmask[c, 2]
                k3 |= cmask[c, 3]
        g = -1  # the set's id: a state's sets are few (tens), a scan finds it
        for x in range(G):
            if sets[x, 0] == k0 and sets[x, 1] == k1 and sets[x, 2] == k2 and sets[x, 3] == k3:
                g = x
                break
        if g < 0:
            g = G
            G += 1
            if G > sets.shape[0]:
                bigger = np.zeros((2 * sets.shape[0], 4), np.uint64)
                bigger[: sets.shape[0]] = sets
                sets = bigger
            sets[g, 0], sets[g, 1], sets[g, 2], sets[g, 3] = k0, k1, k2, k3
        if tgt == q:
            grp[q] = g
        else:
            rgrp[q] = g
    reach = np.zeros(S + 1, np.int32)
    for q in range(S):
        if rgrp[q] >= 0:
            reach[q] = 1
    for _ in range(max_run):
        changed = False
        for q in range(S):
            g = rgrp[q]
            if g >= 0:
                n = succ[q]
                r = 1 + (reach[n] if n < S and rgrp[n] == g else 0)
                r = min(r, max_run)
                if r != reach[q]:
                    reach[q] = r
                    changed = True
        if not changed:
            break
    P = np.empty((max_run + 1, S + 1), np.int32)
    for q in range(S + 1):
        P[0, q] = q
    for j in range(1, max_run + 1):
        for q in range(S + 1):
            P[j, q] = succ[P[j - 1, q]] if P[j - 1, q] < S else dead
    stops = np.zeros(S + 1, np.bool_)
    for q in range(S):
        g = rgrp[q]
        if g >= 0:
            e = P[reach[q], q]
            stops[q] = True
            for c in range(K):
                b = first[c]
                if (sets[g, b >> 6] >> np.uint64(b & 63)) & np.uint64(1) and ctrans[e, c] != dead:
                    stops[q] = False
                    break
    return grp, rgrp, reach, stops, P, sets[:G].copy()


@njit(cache=True, nogil=True)
def utf8_nodes(U, u0, udead, byte, parent, lo, endhi):
    """Per tree node, the state of the UTF-8 automaton ``U (nU+1, 256)`` (every valid UTF-8 text; ``u0`` its
    start, where each character ends; ``udead`` its sink) after the node's prefix: ``uat (nodes,)``, ``-1``
    once invalid; ``clean (nodes,)``: every token below (the node's own included) is a valid UTF-8 prefix;
    ``uend (T,)`` the state after each token (sorted positions), ``-1`` when invalid."""
    N = len(byte)
    uat = np.full(N, -1, np.int32)
    uat[0] = u0
    for c in range(1, N):  # parents first (preorder)
        u = uat[parent[c]]
        if u >= 0:
            v = U[u, byte[c]]
            uat[c] = v if v != udead else -1
    clean = np.empty(N, np.bool_)
    for n in range(N):
        clean[n] = uat[n] >= 0
    for c in range(N - 1, 0, -1):
        if not clean[c]:
            clean[parent[c]] = False
    T = 0
    for n in range(N):
        T = max(T, endhi[n])
    uend = np.full(T, -1, np.int32)
    for n in range(N):
        for t in range(lo[n], endhi[n]):
            uend[t] = uat[n]
    return uat, clean, uend


@njit(cache=True, nogil=True)
def utf8_maps(trans, dead, grp, U, u0, udead):
    """``M (S+1, nU)``: for a loop state ``q`` that takes every UTF-8 character above ASCII back to itself,
    ``M[q, u]`` is the state ``q`` is in when the UTF-8 automaton is in ``u`` (``M[q, u0] = q``); ``-1`` rows
    for other states. Checked over every non-ASCII byte from every UTF-8 state the text can be in: the walk
    never dies while the text stays valid, and each UTF-8 state maps to one state of ``trans``. So a token of
    loop-set ASCII bytes and valid UTF-8, read from ``q`` at a character boundary, ends in ``M[q, U(token)]``.
    ``invq, invu (S+1,)``: one ``(q, u)`` with ``M[q, u] = x`` for each state ``x`` (``-1``: none; a loop state
    maps to itself at ``u0``): a walk in ``x`` with the text in UTF-8 state ``invu[x]`` is inside ``invq[x]``'s
    loop."""
    S = dead
    nU = U.shape[0]
    M = np.full((S + 1, nU), -1, np.int32)
    queue = np.empty(nU, np.int32)
    for q in range(S):
        if grp[q] < 0:
            continue
        row = M[q]
        row[u0] = q
        queue[0] = u0
        head, tail = 0, 1
        ok = True
        while head < tail and ok:
            u = queue[head]
            head += 1
            x = row[u]
            for b in range(128, 256):
                v = U[u, b]
                if v == udead:
                    continue
                y = trans[x, b]
                if y == dead:
                    ok = False
                    break
                if row[v] == -1:
                    row[v] = y
                    queue[tail] = v
                    tail += 1
                elif row[v] != y:
                    ok = False
                    break
        if not ok:
            row[:] = -1
    invq = np.full(S + 1, -1, np.int32)
    invu = np.full(S + 1, -1, np.int32)
    for q in range(S):
        if M[q, u0] == q:
            invq[q], invu[q] = q, u0
    for q in range(S):
        if M[q, u0] == q:
            for u in range(nU):
                x = M[q, u]
                if x >= 0 and invq[x] < 0:
                    invq[x], invu[x] = q, u
    return M, invq, invu


@njit(cache=True, nogil=True, inline="always")
def _inside(below, n, sets, g):
    """Every byte below node ``n`` is in set ``g``: one subset test on 256-bit sets."""
    m = (below[n, 0] & ~sets[g, 0]) | (below[n, 1] & ~sets[g, 1]) | (below[n, 2] & ~sets[g, 2]) | (below[n, 3] & ~sets[g, 3])
    return m == np.uint64(0)


@njit(cache=True, nogil=True)
def walk_states(trans, dead, s0, s1, kid_ptr, kid_node, kid_byte, lb_ptr, lb_byte, lo, endhi, hi, depth, height, below,
                grp, rgrp, reach, stops, sets, invq, invu, uat, uclean, w, hdiff, cdiff, bm, lead, loc, row, phi, cut,
                gid, msize, W, stack_n, stack_q, seed_n, seed_q, ex_n, ex_q, given, grec, gex):
    """Walk the tree from every state ``s0 <= s < s1`` of ``trans (S+1, 256)``. Returns the records as five
    int32 arrays ``(state, lo, hi, end, d)``: with ``d < 0`` every token of ``[lo, hi)`` ends in ``end``
    from ``state`` (its hash and live count are added to the difference arrays ``hdiff``/``cdiff (T+1,)``,
    marked in ``bm``: ``token_class_kernels.add_term``);
    with ``d >= 0`` (a counted run entered at a node of depth ``d``) a token of length ``len`` ends ``len - d``
    states down the run from ``end`` (``P[len - d, end]``) when ``len - d <= reach[end]``, and dies when
    longer (then ``stops[end]``); :func:`classes_and_table` adds its hash and live count.
    With ``d == -2`` (the walk inside the UTF-8 loop of state ``end``: ``invq``/``invu`` of :func:`utf8_maps`
    match the text's UTF-8 state ``uat``, and every token below is clean UTF-8 whose ASCII bytes stay in the
    loop) a token ends in ``M[end, U(token)]``; added there too.
    ``below (nodes, 4)``: the bytes below each node, as 256-bit sets like ``sets``; ``kid_*`` the children
    (:func:`child_index`), ``lb_*`` each state's live bytes (:func:`live_bytes`): a node's children are
    matched against a state's live bytes from whichever side is shorter.

    Shared walks (``token_share_kernels.share_groups``: ``lead``, ``loc``, ``row``, ``phi``): a group's leader
    walks up to the byte ``cut`` only; those records stand for every member's (the same ranges, end states
    renamed through ``phi``) and carry state ``-1 - leader``: their hash terms and live counts are the whole
    group's (``group_weights``: ``gid``, ``msize``, ``W``), and :func:`classes_and_table` derives the members'
    table rows from the leader's. Each member (the leader too) then walks on from the nodes where the
    leader's walk met ``cut``, from its own state there. Members are walked with their leader, whatever the
    range.
    ``stack_n``, ``stack_q``, ``seed_n``, ``seed_q``, ``ex_n``, ``ex_q``: int32 work arrays of one entry per
    node (the walk's stack, its seeds, and where the leader's walk met ``cut``: the node after it, the state
    before).

    Walks up to ``cut`` kept from an earlier compile (``token_trie``'s walk cache): for a leader ``p`` with
    ``given[p, 0] >= 0``, its records are ``grec[given[p, 0]:given[p, 1]]`` (``lo, hi, end, d``) and where it
    met ``cut`` ``gex[given[p, 2]:given[p, 3]]`` (node, state): it is not walked. Returns ``(rec, exits,
    walked)``: the records, the exits of the leaders walked here (``(X, 2)`` int32: node, state) and for each
    such leader ``walked[p]`` = its records' rows (up to ``cut``) and its exits' rows, -1 for the others."""
    S = dead
    mem_ptr = np.zeros(S + 2, np.int64)  # the members of leader L: mem[mem_ptr[L]:mem_ptr[L+1]], L first
    for q in range(S):
        if lead[q] >= 0:
            mem_ptr[lead[q] + 1] += 1
    for q in range(S):
        mem_ptr[q + 1] += mem_ptr[q]
    mem = np.empty(mem_ptr[S], np.int32)
    fill = mem_ptr[:S].copy()
    for q in range(S):
        if lead[q] >= 0:
            mem[fill[lead[q]]] = q
            fill[lead[q]] += 1
    rec = np.empty((1024, 5), np.int32)
    nr = 0
    walked = np.full((S + 1, 4), -1, np.int64)
    out_ex = np.empty((64, 2), np.int32)
    nx = 0
    s = s0
    while s < s1:
        L = lead[s]
        if L >= 0 and L != s:  # walked with its leader
            s += 1
            continue
        if L == s and given[s, 0] >= 0:  # kept from an earlier compile: copied, not walked
            a, b = given[s, 0], given[s, 1]
            if nr + b - a > rec.shape[0]:
                rec = _grown(rec, nr, b - a)
            r0 = nr
            for i in range(a, b):
                rec[nr, 1] = grec[i, 0]
                rec[nr, 2] = grec[i, 1]
                rec[nr, 3] = grec[i, 2]
                rec[nr, 4] = grec[i, 3]
                nr += 1
            nex = 0
            for i in range(given[s, 2], given[s, 3]):
                ex_n[nex] = gex[i, 0]
                ex_q[nex] = gex[i, 1]
                nex += 1
        else:
            seed_n[0] = 0  # the root, in state s (no token ends there; a loop state may take every token at once)
            seed_q[0] = s
            c = cut if L == s else -1
            got, nex = _walk_one(s, seed_n, seed_q, 1, c, ex_n, ex_q, trans, dead, kid_ptr, kid_node,
                                 kid_byte, lb_ptr, lb_byte, lo, endhi, hi, depth, height, below, grp, rgrp, reach, stops,
                                 sets, invq, invu, uat, uclean, stack_n, stack_q, rec, nr)
            if got < 0:  # full: grow and walk again (the buffer is not reassigned inside the hot loop)
                rec = _grown(rec, nr, 0)
                continue
            r0, nr = nr, got
            if L == s:  # a fresh walk up to cut: its rows and exits, for the caller to keep
                if nx + nex > out_ex.shape[0]:
                    bigger = np.empty((max(2 * out_ex.shape[0], nx + nex), 2), np.int32)
                    bigger[:nx] = out_ex[:nx]
                    out_ex = bigger
                walked[s, 0], walked[s, 1], walked[s, 2] = r0, nr, nx
                for i in range(nex):
                    out_ex[nx, 0] = ex_n[i]
                    out_ex[nx, 1] = ex_q[i]
                    nx += 1
                walked[s, 3] = nx
        if L == s:
            for r in range(r0, nr):  # the leader's records up to cut stand for every member's: tagged -1 - leader
                rec[r, 0] = -1 - s
            for j in range(mem_ptr[s], mem_ptr[s + 1]):
                k = mem[j]
                m = 0
                for i in range(nex):  # each member walks on from where the leader met cut, in its own state there
                    qk = ex_q[i] if k == s else phi[row[k], loc[ex_q[i]]]
                    q2 = trans[qk, cut]
                    if q2 != dead:
                        seed_n[m] = ex_n[i]
                        seed_q[m] = q2
                        m += 1
                while m > 0:
                    got2, _ = _walk_one(k, seed_n, seed_q, m, -1, ex_n, ex_q, trans, dead, kid_ptr, kid_node, kid_byte,
                                        lb_ptr, lb_byte, lo, endhi, hi, depth, height, below, grp, rgrp, reach, stops,
                                        sets, invq, invu, uat, uclean, stack_n, stack_q, rec, nr)
                    if got2 >= 0:
                        nr = got2
                        break
                    rec = _grown(rec, nr, 0)
        s += 1
    for r in range(nr):  # plain records: their hash and live count, as difference arrays
        if rec[r, 4] == -1:
            st, g, n = record_group(rec[r, 0], gid, msize)  # a leader's: every member of its group, through phi
            v = group_term(w, st, rec[r, 3], g, W, loc)
            add_term(hdiff, cdiff, bm, rec[r, 1], v, n)
            add_term(hdiff, cdiff, bm, rec[r, 2], -v, -n)
    return rec[:nr].copy(), out_ex[:nx].copy(), walked


@njit(cache=True, nogil=True)
def _grown(rec, nr, extra):
    """``rec`` with room for at least ``extra`` more rows after ``nr`` (and at least twice the rows)."""
    bigger = np.empty((max(2 * rec.shape[0], nr + extra), 5), np.int32)
    bigger[:nr] = rec[:nr]
    return bigger


@njit(cache=True, nogil=True)
def _walk_one(s, seed_n, seed_q, n_seeds, cut, ex_n, ex_q, trans, dead, kid_ptr, kid_node, kid_byte, lb_ptr, lb_byte,
              lo, endhi, hi, depth, height, below, grp, rgrp, reach, stops, sets, invq, invu, uat, uclean, stack_n,
              stack_q, rec, nr):
    """The records of the walk for state ``s`` from the ``n_seeds`` (node, state) pairs ``seed_n``/``seed_q``
    (see :func:`walk_states`), written into ``rec`` from row ``nr``. With ``cut >= 0`` a live step on byte
    ``cut`` is not taken but noted in ``ex_n``/``ex_q`` (the node it leads to, the state before it).
    Children are pushed last first, so a walk from one seed writes its ranges in position order, and a range
    that continues the last one written with the same end and kind extends it (JSON string content at Dream's
    152k tokens: 2,276 records instead of 5,821).
    Returns ``(rows, exits)``, rows -1 when ``rec`` is full (rows from ``nr`` on are then garbage)."""
    cap = rec.shape[0]
    first = nr  # rows before are other walks'
    nex = 0
    for i in range(n_seeds):
        stack_n[i] = seed_n[i]
        stack_q[i] = seed_q[i]
    top = n_seeds
    while top > 0:
        top -= 1
        n = stack_n[top]
        q = stack_q[top]
        a = lo[n]
        b = endhi[n]
        d = -1
        whole = False
        g = grp[q]
        if g >= 0 and _inside(below, n, sets, g):
            b = hi[n]  # every token below ends in q: it loops on all their remaining bytes
            whole = True
        elif (invq[q] >= 0 and invu[q] == uat[n] and uclean[n]
              and ((below[n, 0] & ~sets[grp[invq[q]], 0]) | (below[n, 1] & ~sets[grp[invq[q]], 1])) == np.uint64(0)):
            b = hi[n]  # every token below: loop-set ASCII and whole UTF-8 characters, then maybe part of one
            d = -2
            q = invq[q]
            whole = True
        else:
            g = rgrp[q]
            if g >= 0 and (height[n] <= reach[q] or stops[q]) and _inside(below, n, sets, g):
                b = hi[n]  # every token below goes down the run, one state per byte
                d = depth[n]
                whole = True
        if b > a:
            if nr > first and rec[nr - 1, 2] == a and rec[nr - 1, 3] == q and rec[nr - 1, 4] == d:
                rec[nr - 1, 2] = b  # the range right after the last one, alike: one record
            else:
                if nr == cap:
                    return -1, 0
                rec[nr, 0] = s
                rec[nr, 1] = a
                rec[nr, 2] = b
                rec[nr, 3] = q
                rec[nr, 4] = d
                nr += 1
        if whole:
            continue
        k0, k1 = kid_ptr[n], kid_ptr[n + 1]
        l0, l1 = lb_ptr[q], lb_ptr[q + 1]
        if 4 * (l1 - l0) < k1 - k0:  # few live bytes, many children: look each live byte up, the last first
            for j in range(l1 - 1, l0 - 1, -1):
                b = lb_byte[j]
                x, y = k0, k1
                while x < y:  # the first child with a byte >= b (children in byte order)
                    m = (x + y) >> 1
                    if kid_byte[m] < b:
                        x = m + 1
                    else:
                        y = m
                if x < k1 and kid_byte[x] == b:
                    if b == cut:
                        ex_n[nex] = kid_node[x]
                        ex_q[nex] = q
                        nex += 1
                    else:
                        stack_n[top] = kid_node[x]
                        stack_q[top] = trans[q, b]
                        top += 1
                k1 = x
        else:
            for j in range(k1 - 1, k0 - 1, -1):  # pushed last first: popped, and written, in position order
                q2 = trans[q, kid_byte[j]]
                if q2 != dead:
                    if kid_byte[j] == cut:
                        ex_n[nex] = kid_node[j]
                        ex_q[nex] = q
                        nex += 1
                    else:
                        stack_n[top] = kid_node[j]
                        stack_q[top] = q2
                        top += 1
    return nr, nex


@njit(cache=True, nogil=True)
def child_index(first_child, next_sib, byte):
    """The children of every node as arrays: ``kid_ptr (nodes+1,)``, ``kid_node``/``kid_byte (nodes-1,)``,
    node ``n``'s children at ``kid_ptr[n]:kid_ptr[n+1]`` in byte order (the order of the sibling lists)."""
    N = len(byte)
    kid_ptr = np.zeros(N + 1, np.int64)
    kid_node = np.empty(max(N - 1, 0), np.int32)
    kid_byte = np.empty(max(N - 1, 0), np.int32)
    k = 0
    for n in range(N):
        kid_ptr[n] = k
        c = first_child[n]
        while c != -1:
            kid_node[k] = c
            kid_byte[k] = byte[c]
            k += 1
            c = next_sib[c]
    kid_ptr[N] = k
    return kid_ptr, kid_node, kid_byte


@njit(cache=True, nogil=True)
def live_bytes(trans, dead):
    """The bytes that do not lead to ``dead`` from each state of ``trans (S+1, 256)``, ascending:
    ``lb_ptr (S+2,)``, ``lb_byte``."""
    S1 = trans.shape[0]
    lb_ptr = np.zeros(S1 + 1, np.int64)
    for q in range(S1):
        c = 0
        for b in range(256):
            if trans[q, b] != dead:
                c += 1
        lb_ptr[q + 1] = lb_ptr[q] + c
    lb_byte = np.empty(lb_ptr[S1], np.int32)
    k = 0
    for q in range(S1):
        for b in range(256):
            if trans[q, b] != dead:
                lb_byte[k] = b
                k += 1
    return lb_ptr, lb_byte
