"""numba kernels: which byte states walk the token prefix tree alike until a cut byte (see ``token_trie``).

A JSON schema's automaton has one copy of the string-content machine per string in the schema (content,
escape, ``\\u`` and UTF-8 states); the copies differ only in where the closing quote leads. The walk from
each copy's content state visits the same tree nodes in corresponding states and writes the same records
until a token reaches the quote. :func:`share_groups` finds such copies and the correspondence ``phi``
between their states, so that ``token_trie_kernels.walk_states`` walks one copy (the leader) up to the
quote and renames its records for the others, walking only what follows each quote per copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

MAX_BODY = 64  # states a shared copy may have (the JSON string machine has about ten)
_KEY = types.UniTuple(types.int64, 2)  # a candidate's signature: (loop set id, live byte count)


@njit(cache=True, nogil=True, inline="always")
def _has(sets, g, b):
    return g >= 0 and (sets[g, b >> 6] >> np.uint64(b & 63)) & np.uint64(1) != np.uint64(0)


@njit(cache=True, nogil=True)
def _lockstep(L, k, trans, dead, cut, grp, rgrp, reach, stops, sets, invq, invu, M, P, phi, body, pairs):
    """Walk the states reachable from ``L`` and from ``k`` without the byte ``cut`` side by side: every state
    ``p`` met from ``L`` must meet one ``phi[p]`` from ``k`` with the same loop and run sets, run reach and
    stop, UTF-8 loop map (``M`` rows, ``invq``/``invu``) and run successor, the same dead bytes and
    corresponding successors; on ``cut`` only the same deadness (the walk stops there), unless ``cut`` is in
    ``p``'s loop or run set (the walk takes those in bulk, so the successors must correspond). Returns the
    body size (``body[:n]`` the states from ``L`` in visiting order, ``pairs[:n]`` theirs from ``k``), or -1.
    ``phi`` (all -1 on entry) is reset before returning."""
    ok = True
    phi[L] = k
    body[0] = L
    pairs[0] = k
    n = 1
    head = 0
    nU = M.shape[1]
    while head < n and ok:
        p, p2 = body[head], pairs[head]
        head += 1
        if (grp[p] != grp[p2] or rgrp[p] != rgrp[p2] or reach[p] != reach[p2] or stops[p] != stops[p2]
                or invu[p] != invu[p2] or (invq[p] < 0) != (invq[p2] < 0)
                or (trans[p, cut] == dead) != (trans[p2, cut] == dead)):
            ok = False
            break
        for j in range(256 + nU + 2):  # successors by byte, then UTF-8 loop map, then invq, then run successor
            if j < 256:
                if j == cut and not (_has(sets, grp[p], cut) or _has(sets, rgrp[p], cut)):
                    continue  # an exit: the walk stops there (a loop or run on cut is taken in bulk: it must agree)
                a, b = trans[p, j], trans[p2, j]
            elif j < 256 + nU:
                a, b = M[p, j - 256], M[p2, j - 256]
                if a < 0 and b < 0:
                    continue
            elif j == 256 + nU:
                a, b = invq[p], invq[p2]
                if a < 0:
                    continue
            else:
                if rgrp[p] < 0:
                    continue
                a, b = P[1, p], P[1, p2]
            if a == dead or b == dead or a < 0 or b < 0:
                if a != b:
                    ok = False
                    break
                continue
            if phi[a] == -1:
                if n == MAX_BODY:
                    ok = False
                    break
                phi[a] = b
                body[n] = a
                pairs[n] = b
                n += 1
            elif phi[a] != b:
                ok = False
                break
    for i in range(n):
        phi[body[i]] = -1
    return n if ok else -1


@njit(cache=True, nogil=True)
def share_groups(trans, dead, cut, grp, rgrp, reach, stops, sets, invq, invu, M, P):
    """Groups of loop states of ``trans (S+1, 256)`` whose walks agree until byte ``cut`` (see
    :func:`_lockstep`). Candidates: loop states with a live ``cut`` byte that do not loop on it; each is
    tried against the first candidate of its signature (loop set, live byte count), the group's leader.

    A leader's whole body is shared, not just the loop state: every state ``p`` of it (escapes, ``\\u`` digits,
    unfinished UTF-8 characters) leads the group of its images ``phi_k(p)`` in the members' bodies (an image
    that already belongs to a group walks on its own).

    A candidate no other matched leads a group of its own (its body too) when its body is disjoint from every
    group's: its walk up to ``cut`` is then one a later schema with the same body can reuse
    (``token_trie``'s walk cache).

    Returns ``(lead (S+1,), loc (S+1,), row (S+1,), phi (R, MAX_BODY), owner (S+1,))``: ``lead[q]`` the leader
    of ``q``'s group (itself for a leader; -1 outside every group); ``loc[p]`` the index of state ``p`` in its
    loop leader's body (-1 outside every such body), ``owner[p]`` that loop leader (the body is the states
    reached from it without ``cut``, ``loc`` their visiting order); a member ``q`` maps body index ``i`` to
    state ``phi[row[q], i]``."""
    S = dead
    lead = np.full(S + 1, -1, np.int32)
    loc = np.full(S + 1, -1, np.int32)
    row = np.full(S + 1, -1, np.int32)
    phi_tmp = np.full(S + 1, -1, np.int32)
    body = np.empty(MAX_BODY, np.int32)
    pairs = np.empty(MAX_BODY, np.int32)
    first = Dict.empty(key_type=_KEY, value_type=types.int64)
    bsize = np.zeros(S + 1, np.int32)  # a leader's body size
    boff = np.zeros(S + 1, np.int64)  # where a leader's body starts in ``bodies``
    bodies = np.empty(S + 1, np.int32)  # the leaders' bodies, in body index order (disjoint)
    nb_all = 0
    phi = np.empty((16, MAX_BODY), np.int32)
    owner = np.full(S + 1, -1, np.int32)
    cand = np.zeros(S + 1, np.bool_)
    R = 0
    for q in range(S):
        if grp[q] < 0 or trans[q, cut] == dead or trans[q, cut] == q:
            continue
        cand[q] = True
        live = 0
        for b in range(256):
            if trans[q, b] != dead:
                live += 1
        key = (np.int64(grp[q]), np.int64(live))
        if key not in first:
            first[key] = q
            continue
        L = first[key]
        nb = _lockstep(L, q, trans, dead, cut, grp, rgrp, reach, stops, sets, invq, invu, M, P, phi_tmp, body, pairs)
        if nb < 0:
            continue
        if lead[L] < 0:  # L's first member: L becomes a leader and its body is indexed
            clash = False
            for i in range(nb):
                if loc[body[i]] >= 0:
                    clash = True  # a state in two bodies: L does not lead
            if clash:
                continue
            for i in range(nb):
                loc[body[i]] = i
                owner[body[i]] = L
                bodies[nb_all + i] = body[i]
            boff[L] = nb_all
            nb_all += nb
            lead[L] = L
            bsize[L] = nb
        elif nb != bsize[L]:
            continue
        if R == phi.shape[0]:
            bigger = np.empty((2 * R, MAX_BODY), np.int32)
            bigger[:R] = phi[:R]
            phi = bigger
        phi[R, :nb] = pairs[:nb]
        lead[q] = L
        row[q] = R
        R += 1
    image = np.zeros(S + 1, np.bool_)  # the states of the members' bodies
    for q in range(S):
        if row[q] >= 0 and lead[q] >= 0 and loc[q] < 0:
            for i in range(bsize[lead[q]]):
                image[phi[row[q], i]] = True
    for q in range(S):  # a candidate left alone: a group of its own, when its body touches no other
        if not cand[q] or lead[q] >= 0 or loc[q] >= 0 or image[q]:
            continue
        nb = _lockstep(q, q, trans, dead, cut, grp, rgrp, reach, stops, sets, invq, invu, M, P, phi_tmp, body, pairs)
        if nb < 0:
            continue
        clash = False
        for i in range(nb):
            if loc[body[i]] >= 0 or lead[body[i]] >= 0 or image[body[i]]:
                clash = True
        if clash:
            continue
        for i in range(nb):
            loc[body[i]] = i
            owner[body[i]] = q
        lead[q] = q
        bsize[q] = nb
    for q in range(S):  # every body state leads its images: the same renaming (row) as its loop state's
        if loc[q] >= 0:
            lead[q] = q
    for q in range(S):
        if row[q] >= 0 and q == phi[row[q], 0]:
            L = lead[q]
            for i in range(1, bsize[L]):
                x = phi[row[q], i]
                if lead[x] < 0:
                    lead[x] = bodies[boff[L] + i]
                    row[x] = row[q]
    return lead, loc, row, phi[:R].copy(), owner


@njit(cache=True, nogil=True)
def group_weights(lead, loc, row, phi, w):
    """Per group of :func:`share_groups`: ``gid (S+1,)`` each leader's group index (-1 for other states),
    ``msize (G,)`` the members (the leader included) and ``W (G, MAX_BODY)`` int64: ``W[g, i]`` the hash
    terms ``w[k] * (phi_k(i) + 1)`` of the members other than the leader, summed, for body index ``i``. A
    leader's record ending in ``e`` then adds ``w[leader] * (e + 1) + W[g, loc[e]]`` and ``msize[g]`` live
    pairs: what the members' renamed copies of it would add (the hashes wrap, as everywhere)."""
    S1 = len(lead)
    gid = np.full(S1, -1, np.int64)
    G = 0
    for q in range(S1):
        if lead[q] == q:
            gid[q] = G
            G += 1
    msize = np.zeros(G, np.int64)
    W = np.zeros((G, MAX_BODY), np.int64)
    nb = min(phi.shape[1], MAX_BODY)
    for q in range(S1):
        p = lead[q]
        if p < 0:
            continue
        g = gid[p]
        msize[g] += 1
        if q != p:
            for i in range(nb):
                W[g, i] += w[q] * (phi[row[q], i] + 1)
    return gid, msize, W


@njit(cache=True, nogil=True, inline="always")
def record_group(st, gid, msize):
    """A record's state column decoded: ``(state, group, live pairs per token)``; a leader's record (``-1 -
    leader``, see ``token_trie_kernels.walk_states``) stands for its group ``gid[leader]`` and its ``msize``
    members, any other for its own state alone (group -1, one pair)."""
    if st < 0:
        g = gid[-1 - st]
        return -1 - st, g, msize[g]
    return st, -1, 1


@njit(cache=True, nogil=True, inline="always")
def group_term(w, st, e, g, W, loc):
    """The hash term of state ``st``'s record ending in ``e``; for a leader's record (group ``g >= 0``, see
    :func:`group_weights`) the whole group's, else ``st``'s alone."""
    return w[st] * (e + 1) + (W[g, loc[e]] if g >= 0 else 0)


@njit(cache=True, nogil=True, inline="always")
def _body_index(t, owner, loc, L):
    """State ``t``'s index in loop leader ``L``'s body, or -1 (none, or outside it)."""
    return loc[t] if 0 <= t < len(owner) and owner[t] == L else -1


@njit(cache=True, nogil=True)
def body_keys(trans, dead, cut, owner, loc, grp, rgrp, reach, stops, P, sets, invq, invu, M):
    """Each body of :func:`share_groups` (``owner``/``loc``) as a key for ``token_trie``'s walk cache, with
    every state named by its body index (-1: dead or outside): per state, its 256 successors (a live ``cut``
    -2), loop and run sets (4 words each, 0 when none), run reach, stop and successor, ``invq``, ``invu`` and
    its ``M`` row. Returns ``(states (m,), sptr (B+1,), keys (K,) int64, kptr (B+1,))``: body ``b``'s states in
    ``loc`` order ``states[sptr[b]:sptr[b+1]]``, its key ``keys[kptr[b]:kptr[b+1]]``, or an empty key when a
    byte other than ``cut`` leaves the body (not cached)."""
    S1 = trans.shape[0]
    nU = M.shape[1]
    B = 0
    m = 0
    for q in range(S1):
        if owner[q] == q:
            B += 1
        if owner[q] >= 0:
            m += 1
    bid = np.full(S1, -1, np.int64)
    sptr = np.zeros(B + 1, np.int64)
    b = 0
    for q in range(S1):
        if owner[q] == q:
            bid[q] = b
            b += 1
    for q in range(S1):
        if owner[q] >= 0:
            sptr[bid[owner[q]] + 1] += 1
    for b in range(B):
        sptr[b + 1] += sptr[b]
    states = np.empty(m, np.int32)
    for q in range(S1):
        if owner[q] >= 0:
            states[sptr[bid[owner[q]]] + loc[q]] = q
    per = 256 + 8 + 6 + nU
    keys = np.empty(m * per, np.int64)
    kptr = np.zeros(B + 1, np.int64)
    k = 0
    for b in range(B):
        L = states[sptr[b]]
        k0 = k
        ok = True
        for i in range(sptr[b], sptr[b + 1]):
            p = states[i]
            for x in range(256):
                t = trans[p, x]
                if t == dead:
                    v = -1
                elif x == cut:
                    v = -2
                elif owner[t] == L:
                    v = loc[t]
                else:
                    ok = False
                    v = -3
                keys[k] = v
                k += 1
            for g in (grp[p], rgrp[p]):
                for j in range(4):
                    keys[k] = np.int64(sets[g, j]) if g >= 0 else 0
                    k += 1
            keys[k] = reach[p]
            keys[k + 1] = stops[p]
            keys[k + 2] = _body_index(P[1, p], owner, loc, L)
            keys[k + 3] = _body_index(invq[p], owner, loc, L)
            keys[k + 4] = invu[p]
            keys[k + 5] = sptr[b + 1] - sptr[b]
            k += 6
            for u in range(nU):
                keys[k] = _body_index(M[p, u], owner, loc, L)
                k += 1
        if not ok:
            k = k0
        kptr[b + 1] = k
    return states, sptr, keys[:k].copy(), kptr
