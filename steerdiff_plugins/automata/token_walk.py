"""Compiling a token DFA: the vocabulary walked through a byte DFA (stage 3 of the pipeline).

Bytes are grouped into classes (identical DFA columns), every token's bytes are mapped to class strings
over a flat per-tokenizer byte array, the (state, token) pairs are walked through the DFA for all states at
once (numpy, one gather per byte level, see ``_walk_pairs`` for the shortcuts that keep this near the
number of surviving pairs), and tokens with identical next-state columns become one token class. Special
tokens, tokens that write nothing and ids beyond the table belong to class 0 (never allowed). Class 1 is
the padding token ``fill_id``: allowed only from an accepting state into the absorbing state ``PAD``,
which only allows more padding, so a value may end early with a run of padding to the end of its span.
For tokenizers whose decode drops one leading space (WordPiece, SentencePiece) the start state also
accepts one optional leading space, so the decoded span text is exactly in the language.

Two walks give the same automaton: with numba installed, ``token_trie`` walks the vocabulary's prefix tree
in compiled code (3-10x faster; its hash grouping is verified exactly and hands over to numpy on a
collision); without it (or ``STEERDIFF_TOKEN_WALK=numpy``), the numpy walk below.

Public surface: ``compile_token_dfa(pattern, vocab, fill_id, n_ids)`` (cached), ``warm_up(vocab, fill_id)``
and ``cache_clear()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from steerdiff.vocab import TokenVocab
from steerdiff_plugins.automata.byte_level import _hash_weights, byte_dfa, check_regex
from steerdiff_plugins.automata.engine_regex import parse_regex, to_engine_regex
from steerdiff_plugins.automata import byte_build, token_trie
from steerdiff_plugins.automata.token_dfa import FILL, TokenDFA
from steerdiff_plugins.compile_budget import check_deadline, expansion

DENSE_STATES = 2048  # up to this many states, masked steps may be one dense (N, N) product ...
DENSE_RATIO = 16  # ... when the distinct (state, next state) pairs are over 1/16 of N * N (else: the edge list)
RUN_STATES = 512  # automata with at least this many states look for counted runs (see _counted_runs)
TRIE_PAIRS = 100_000  # (state, string) groups larger than this are walked over the prefix tree (see _walk_pairs)


_vocab_keep: dict[int, TokenVocab] = {}


def compile_token_dfa(pattern: str, vocab: TokenVocab, fill_id: int | None, n_ids: int | None = None) -> TokenDFA:
    """The cached :class:`TokenDFA` of ``pattern`` over ``vocab`` (``n_ids``: logits width, default vocab size)."""
    _vocab_keep[id(vocab)] = vocab  # keep the id stable for the cache key
    n_ids = max(n_ids or vocab.size, vocab.size)
    return _compile_cached(pattern, id(vocab), fill_id, n_ids)


def _within(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: row ``a[i]`` of 256-bit sets ``(n, 4) uint64`` has no bit outside ``b`` (``(4,)`` or
    ``(n, 4)``). OR-ing the four words is 2.5x faster than ``.any(axis=1)``."""
    m = a & ~b
    return ((m[:, 0] | m[:, 1]) | (m[:, 2] | m[:, 3])) == 0


def _walk_pairs(ctrans: np.ndarray, dead: int, cs: "_ClassStrings"):
    """Every (state, string) pair whose walk survives, with its end state: ``(s, u, end, bulk)``.

    ``ctrans (S1, K)`` next state per byte class; ``cs`` the tokens as class strings. ``s, u, end`` are
    int arrays of pairs; ``bulk`` is a list of ``(states, ends, strings)``: state ``states[i]`` reads every
    string of the index array ``strings`` and ends in ``ends[i]`` (these pairs are not in the arrays).
    Shortcuts keep the cost near the number of surviving pairs rather than ``S1 * U * maxlen``:
    - a free-text state (several classes keep it in place) reads every string made only of those classes
      and stays put; states with the same looping classes share one test per string (``bulk``);
    - a state whose first byte leads into a free-text state ends there for every string whose other bytes
      all loop there (``bulk``: the first byte of a string value, after an opening quote);
    - a pair is dropped the moment it reaches ``dead`` (most die on their first or second byte: a state
      inside a key or a number allows a handful of bytes);
    - a group of more than ``TRIE_PAIRS`` pairs is walked over the strings' prefix tree (:func:`_trie_walk`):
      strings that share a prefix share its walk; smaller groups are walked pair by pair (less numpy
      overhead), where a pair that enters a free-text state later finishes at once when its remaining bytes
      all loop there;
    - in automata of ``RUN_STATES`` states or more, when a string's first byte enters a counted run
      (``x{0,255}``: each byte of a set moves one state down a chain), its other ``n`` bytes, all of that
      set, go ``n`` states down the run in bulk (:func:`_counted_runs`).
    The first byte is done per byte class: the states that survive class ``b`` times the strings that
    start with ``b``."""
    S1, K = ctrans.shape
    fc, start, lens = cs.fc, cs.start, cs.lens
    stays = ctrans[:dead] == np.arange(dead, dtype=ctrans.dtype)[:, None]  # (S, K)
    isloop = np.zeros(S1, dtype=bool)
    isloop[:dead] = stays.sum(axis=1) > 1  # a free-text state: several classes keep it in place
    suf = loop = sets = None
    group = np.full(S1, -1, dtype=np.int64)  # loop group of each free-text state
    bulk, inside = [], []
    if isloop.any():  # loop[s]: the bytes that keep s in place, as a 256-bit set (like cs.suf)
        suf = cs.suf
        loop = np.zeros((S1, 4), dtype=np.uint64)
        loop[:dead] = _byte_sets(stays[:, cs.bcls])  # (S, 4)
        ls = np.flatnonzero(isloop)
        sets, g_of = np.unique(loop[ls], axis=0, return_inverse=True)
        group[ls] = g_of.reshape(-1)
        for g in range(len(sets)):
            ins = _within(cs.whole, sets[g])  # (U,) the string only uses looping bytes
            gs = ls[group[ls] == g]
            bulk.append((gs, gs, np.flatnonzero(ins)))
            inside.append(ins)
    runs = _counted_runs(ctrans, dead, cs, isloop) if dead >= RUN_STATES else None
    first = fc[start]  # (U,)
    order = np.argsort(first, kind="stable")
    counts = np.bincount(first, minlength=K)
    bounds = np.r_[0, np.cumsum(counts)]
    ss, uu, walked = [], [], []  # pairs to walk one by one; (s, u, end) of the parts walked by _trie_walk
    for b in np.flatnonzero(counts):
        check_deadline("token automaton", "regex")  # the whole compile's clock (compile_budget)
        us = order[bounds[b]: bounds[b + 1]]
        src = np.flatnonzero(ctrans[:dead, b] != dead)
        if not len(src):
            continue
        tgt = ctrans[src, b]
        enters = np.where(isloop[tgt] & (tgt != src), group[tgt], -1)  # loop group the first byte enters
        key = (group[src] + 1) * (len(inside) + 1) + enters + 1  # (n,) one id per (own group, entered group)
        for kk in np.unique(key):
            gs, ge = int(kk) // (len(inside) + 1) - 1, int(kk) % (len(inside) + 1) - 1
            pick = key == kk
            sg = src[pick]
            ug = us if gs < 0 else us[~inside[gs][us]]  # loop-bulk pairs are not walked
            if ge >= 0 and len(ug):
                rest = _within(cs.tail[ug], sets[ge])  # the other bytes all loop in the state entered
                if rest.any():
                    bulk.append((sg, tgt[pick], ug[rest]))
                    ug = ug[~rest]
            if len(sg) and len(ug):
                tg = tgt[pick]
                parts = [(sg, tg, ug, -1)]
                if runs is not None:  # the first byte enters a counted run: the other bytes go down it in bulk
                    rg, reach, tail_in, P = runs
                    eg = rg[tg]
                    parts = [(sg[eg < 0], tg[eg < 0], ug, -1)]
                    for g in np.unique(eg[eg >= 0]):
                        sel = eg == g
                        a, t_ = sg[sel], tg[sel]
                        tin = tail_in[g][ug]
                        ins, n_in = ug[tin], lens[ug[tin]]
                        for n in np.unique(n_in):
                            ok = reach[t_] >= n - 1
                            if ok.any():
                                bulk.append((a[ok], P[n - 1][t_[ok]], ins[n_in == n]))
                        full = reach[t_] >= (int(n_in.max()) - 1 if len(n_in) else 0)
                        parts.append((a[full], t_[full], ug[~tin], -1))
                        parts.append((a[~full], t_[~full], ug, g))  # walked, less the pairs bulk covers
                for a, t_, us_, g in parts:
                    if not len(a) or not len(us_):
                        continue
                    # every pair of a x us_ (less, for g >= 0, the pairs the run's bulk entries cover)
                    if len(a) * len(us_) > TRIE_PAIRS:
                        walked.append(_trie_walk(a, t_, us_, cs, ctrans, dead,
                                                 None if g < 0 else (tail_in[g], reach[t_])))
                        continue
                    s2, u2 = _second_byte_pairs(a, t_, us_, cs, ctrans, dead)
                    if g >= 0:
                        drop = tail_in[g][u2] & (lens[u2] - 1 <= reach[ctrans[s2, b]])
                        s2, u2 = s2[~drop], u2[~drop]
                    ss.append(s2)
                    uu.append(u2)
    z = np.zeros(0, dtype=np.int32)
    done = [x for x in walked if len(x[0])]
    if ss:
        s, u = np.concatenate(ss), np.concatenate(uu)  # (P,)
        e = ctrans[s, first[u]]
        prev = s  # the state before the last byte: staying put on a looping byte cannot finish a pair
        for k in range(1, int(lens.max()) + 1):
            check_deadline("token automaton", "regex")
            fin = lens[u] <= k  # (P,) the string has ended
            if suf is not None:
                lp = np.flatnonzero(isloop[e] & ~fin & (e != prev))  # pairs that just entered a free-text state
                fin[lp] = _within(suf[start[u[lp]] + k], loop[e[lp]])  # the rest keeps e where it is
            if fin.any():
                done.append((s[fin], u[fin], e[fin]))
                s, u, e = s[~fin], u[~fin], e[~fin]
            if len(s) == 0:
                break
            prev = e
            e = ctrans[e, fc[start[u] + k]]
            keep = e != dead
            s, u, e, prev = s[keep], u[keep], e[keep], prev[keep]
    if not done:
        return z, z, z, bulk
    s, u, e = (np.concatenate(x) for x in zip(*done))
    return s, u, e, bulk


def _trie_walk(src: np.ndarray, mid: np.ndarray, us: np.ndarray, cs: "_ClassStrings", ctrans: np.ndarray,
               dead: int, skip=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of ``src x us`` whose walk survives, with its end state: ``(s, u, end)`` int32 arrays.

    The strings ``us`` all start with one byte class, which takes ``src[i]`` to ``mid[i]``. Strings that share a
    prefix share its walk: the pairs walked are (state, prefix) pairs, one prefix per node of the strings'
    prefix tree (built level by level, only below prefixes some state still survives), so the cost is the
    number of surviving (state, prefix) pairs plus the strings, not (state, string) pairs times their length.
    A (state, string) pair is only made when the string ends, and then it is part of the result.

    ``skip = (tin (U,) bool, r (len(src),))``: leave out the pairs ``(src[i], u)`` with ``tin[u]`` and
    ``lens[u] - 1 <= r[i]`` (a counted run's bulk entries cover them, see :func:`_counted_runs`); a
    (state, prefix) pair all of whose strings are left out is not walked further."""
    K = ctrans.shape[1]
    fc, start, lens = cs.fc, cs.start, cs.lens
    ps, pe = src.astype(np.int32), mid.astype(np.int32)  # (P,) pairs: source state, state after the prefix
    pn = np.zeros(len(src), dtype=np.int64)  # (P,) the prefix's node (level 1: the one first byte class)
    if skip is not None:
        tin, pr = skip[0], np.asarray(skip[1], dtype=np.int64)  # pr (P,): each pair's run reach
    us = us.astype(np.int32)
    node = np.zeros(len(us), dtype=np.int64)  # (m,) each string's node at this level
    out = []
    d = 1  # bytes read
    while len(us) and len(ps):
        check_deadline("token automaton", "regex")
        ln = lens[us]  # (m,)
        end = ln == d
        if end.any():  # strings that end here: every pair on their node
            ue, ne = us[end], node[end]
            order = np.argsort(ne, kind="stable")
            ue, ne = ue[order], ne[order]
            n_nodes = int(max(ne.max(), pn.max())) + 1
            cnt_n = np.bincount(ne, minlength=n_nodes)  # (nodes,) strings ending at each node
            off_n = np.cumsum(cnt_n) - cnt_n
            cnt = cnt_n[pn]  # (P,)
            tot = int(cnt.sum())
            if tot:
                got = (np.repeat(ps, cnt), ue[np.repeat(off_n[pn] - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot)],
                       np.repeat(pe, cnt))
                if skip is not None:  # the strings end here: lens[u] - 1 = d - 1
                    ok = ~(tin[got[1]] & (np.repeat(pr, cnt) >= d - 1))
                    got = tuple(x[ok] for x in got)
                out.append(got)
            us, node = us[~end], node[~end]
        if not len(us):
            break
        alive = np.zeros(int(max(node.max(), pn.max())) + 1, dtype=bool)
        alive[pn] = True
        keep = alive[node]  # strings below a prefix no state survives are done
        us, node = us[keep], node[keep]
        if not len(us):
            break
        key = node * K + fc[start[us] + d]  # (m,) child node: (parent, next byte class)
        kids, node = np.unique(key, return_inverse=True)  # (N,) sorted by parent
        node = node.reshape(-1)
        par, kc = kids // K, kids % K
        lo = np.searchsorted(par, pn, "left")  # (P,) each pair's children: kids[lo : lo + cnt]
        cnt = np.searchsorted(par, pn, "right") - lo
        tot = int(cnt.sum())
        rep = np.repeat(np.arange(len(ps)), cnt)  # (P',) the pair each child pair comes from
        child = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot)
        ne_ = ctrans[pe[rep], kc[child]]
        ok = ne_ != dead
        if skip is not None:  # below the child, every string left out for this pair: not walked
            mixed = np.bincount(node[~tin[us]], minlength=len(kids)) > 0  # (N,) some string outside the run's set
            longest = np.zeros(len(kids), dtype=np.int64)
            np.maximum.at(longest, node, lens[us])  # (N,) the longest string below each child
            ok &= mixed[child] | (longest[child] - 1 > pr[rep])
            pr = pr[rep[ok]]
        ps, pe, pn = ps[rep[ok]], ne_[ok], child[ok]
        d += 1
    if not out:
        z = np.zeros(0, dtype=np.int32)
        return z, z, z
    return tuple(np.concatenate(x) for x in zip(*out))


class _TailIn:
    """``tail_in[g]``: ``(U,)`` bool, whether each string's bytes after its first all lie in byte set ``g``;
    computed per set on first use (there can be many sets and tens of thousands of strings)."""

    def __init__(self, tail: np.ndarray, sets: np.ndarray):
        self.tail, self.sets, self.rows = tail, sets, {}

    def __getitem__(self, g) -> np.ndarray:
        g = int(g)
        row = self.rows.get(g)
        if row is None:
            row = self.rows[g] = _within(self.tail, self.sets[g])
        return row


def _counted_runs(ctrans: np.ndarray, dead: int, cs: "_ClassStrings", isloop: np.ndarray):
    """Counted runs, the states a bounded repeat such as ``[^"]{0,255}`` unrolls into.

    A state ``q`` *steps* on the byte classes ``A(q)`` that lead to the successor ``nxt[q]`` most bytes lead to,
    when that is neither ``q``, nor dead, nor a free-text state (those have their own bulk rules). A run continues from
    ``q`` to ``nxt[q]`` when that state steps on the same byte set. Then a string made only of bytes of
    ``A(q)``, ``n`` bytes long, goes exactly ``n`` states down the run as long as ``n <= reach[q]`` (the
    steps left, capped at the longest string). Exact by induction on the bytes.

    Returns ``(rg (S1,), reach (S1,), tail_in, P (M+1, S1))``: ``rg[q]`` the byte-set group of run state
    ``q`` (``-1``: none, or a run of one step), ``reach[q]`` its steps, ``tail_in[g]`` ``(U,)`` bool: each
    string's bytes after its first are all in group ``g``'s set (computed on first use), ``P[m, q]`` the state ``m`` steps down from ``q`` (meaningful for
    ``m <= reach[q]``). :func:`_walk_pairs` uses them for strings whose first byte enters a run: the other
    bytes go down it in bulk. ``None`` when there are no runs."""
    S, K = dead, ctrans.shape[1]
    T = ctrans[:S]  # (S, K)
    q = np.arange(S, dtype=T.dtype)
    bad = (T == dead) | (T == q[:, None])
    cand = np.flatnonzero((~bad).any(axis=1) & ~isloop[:S])
    if not len(cand):
        return None
    vals = np.where(bad[cand], -1, T[cand])  # (n, K)
    order = np.argsort(vals, axis=1, kind="stable")
    srt = np.take_along_axis(vals, order, axis=1)  # (n, K) successors, sorted per state
    cw = np.cumsum(np.bincount(cs.bcls, minlength=K)[order], axis=1)  # (n, K) bytes of the classes so far
    col = np.arange(K)
    new = np.ones(srt.shape, dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    run_start = np.maximum.accumulate(np.where(new, col, 0), axis=1)  # (n, K) where each value's run began
    before = np.where(run_start > 0, np.take_along_axis(cw, np.maximum(run_start - 1, 0), axis=1), 0)
    count = np.where(srt >= 0, cw - before, 0)  # bytes so far that lead to this successor
    succ = srt[np.arange(len(cand)), count.argmax(axis=1)]  # every candidate has a live successor
    ok = ~isloop[succ]
    cand, succ = cand[ok], succ[ok]
    if not len(cand):
        return None
    nxt = np.full(S + 1, dead, dtype=np.int64)
    nxt[cand] = succ
    member = T[cand] == succ[:, None]  # (n, K) the classes of A(q)
    aset = np.zeros((S + 1, 4), dtype=np.uint64)
    aset[cand] = _byte_sets(member[:, cs.bcls])  # (n, 4) A(q) as a 256-bit byte set
    steps = np.zeros(S + 1, dtype=bool)
    steps[cand] = True
    same = steps & steps[nxt] & (aset == aset[nxt]).all(axis=1)  # the run goes on from nxt[q]
    cap = int(cs.lens.max()) if len(cs.lens) else 0
    reach = steps.astype(np.int64)
    for _ in range(cap):
        check_deadline("token automaton", "regex")
        r2 = np.where(same, np.minimum(1 + reach[nxt], cap), reach)
        if np.array_equal(r2, reach):
            break
        reach = r2
    long_ = np.flatnonzero(reach >= 2)  # a run of one step saves next to nothing
    if not len(long_):
        return None
    sets, g_of = np.unique(aset[long_], axis=0, return_inverse=True)
    rg = np.full(S + 1, -1, dtype=np.int64)
    rg[long_] = g_of.reshape(-1)
    tail_in = _TailIn(cs.tail, sets)
    top = int(reach.max())
    P = np.empty((top + 1, S + 1), dtype=np.int64)
    P[0] = np.arange(S + 1)
    for m in range(1, top + 1):
        P[m] = nxt[P[m - 1]]  # m steps down from every state (meaningful where reach >= m)
    return rg, reach, tail_in, P


def _second_byte_pairs(src: np.ndarray, mid: np.ndarray, us: np.ndarray, cs: "_ClassStrings", ctrans: np.ndarray,
                       dead: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``src x us`` that survive their string's second byte: ``(s, u)`` int32 arrays.

    ``mid[i]`` is the state ``src[i]`` reaches on the strings' (shared) first byte. One-byte strings pair with
    every state. The walk would drop the other pairs on that byte anyway; leaving them out first keeps the
    pair arrays near the survivors (a state inside a key literal allows one byte, and most strings that
    start with it die on the next)."""
    K = ctrans.shape[1]
    c2 = cs.fc[cs.start[us] + 1]  # (n,) second byte's class; a one-byte string reads its end slot: K (none)
    order = np.argsort(c2, kind="stable")  # int16 classes: a radix sort
    us = us[order]
    cnt_all = np.bincount(c2, minlength=K + 1)  # (K+1,) strings per second class
    vals = np.flatnonzero(cnt_all)
    cnt = cnt_all[vals]
    offs = np.cumsum(cnt) - cnt  # each value's first string in the sorted order
    ok = np.ones((len(src), len(vals)), dtype=bool)  # (n_src, n_vals) state survives that second byte
    real = vals < K
    ok[:, real] = ctrans[mid[:, None], vals[real][None, :]] != dead
    i, j = np.nonzero(ok)
    n = cnt[j]
    s_out = np.repeat(src[i].astype(np.int32), n)
    first = np.repeat(offs[j] - (np.cumsum(n) - n), n)  # ragged ranges: segment j's strings after each pair
    u_out = us[np.arange(int(n.sum())) + first].astype(np.int32)
    return s_out, u_out


def _present(x: np.ndarray, n: int) -> np.ndarray:
    """The sorted distinct values of ``x`` (ints in ``0..n-1``): ``np.unique`` without its sort."""
    m = np.zeros(n, dtype=bool)
    m[x] = True
    return np.flatnonzero(m)


def _token_table(s: np.ndarray, u: np.ndarray, e: np.ndarray, U: int, S: int, bulk=()):
    """Group strings with identical end-state columns into token classes and lay out their transitions:
    ``(table (S+2, 2+A) int32, cls (U,))``. Pairs and ``bulk`` groups come from :func:`_walk_pairs` (absent
    pairs are dead; live end states are byte states ``< S``). ``cls[u]`` is string ``u``'s class: ``0`` when
    it is dead in every state, else ``2..A+1``; ``table[q, cls[u]]`` is its end state from ``q`` or
    ``DEAD = S+1``. Columns 0 and 1 and rows ``S`` (PAD) and ``S+1`` (DEAD) are left DEAD for the caller.

    Columns are hashed (a wrapping sum of ``w[s] * (end + 1)`` over a string's pairs) and the grouping is
    then verified exactly: every pair agrees with its class's column and every string has as many live
    pairs as its class. On a hash collision it falls back to exact ``np.unique`` on the dense matrix.
    The table is written once, in place (it can be hundreds of MB for large objects: every extra copy
    costs seconds of page faults)."""
    DEAD = S + 1
    w = _hash_weights(S + 1, 0x5EED)
    h = np.zeros(U, dtype=np.int64)
    n_live = np.bincount(u, minlength=U)
    with np.errstate(over="ignore"):
        np.add.at(h, u, w[s] * (e.astype(np.int64) + 1))  # (U,) wraps: a hash, not arithmetic
        for st, en, idx in bulk:  # state st[i] ends in en[i] on every string of idx
            h[idx] += (w[st] * (en.astype(np.int64) + 1)).sum()
            n_live[idx] += len(st)
    _, inv = np.unique(h, return_inverse=True)
    inv = inv.reshape(-1)
    alive = np.zeros(int(inv.max()) + 1 if U else 0, dtype=bool)
    alive[inv[n_live > 0]] = True
    gcls = np.where(alive, np.cumsum(alive) + 1, 0)  # group -> class (0: dead everywhere)
    cls = gcls[inv]  # (U,)
    table = np.full((S + 2, 2 + int(alive.sum())), DEAD, dtype=np.int32)
    table[s, cls[u]] = e
    C = table.shape[1]
    bcols = [_present(cls[idx], C) for _, _, idx in bulk]  # the classes each bulk entry covers
    for (st, en, _), bc in zip(bulk, bcols):
        table[np.ix_(st, bc)] = en[:, None]
    ok = np.array_equal(table[s, cls[u]], e) and not n_live[cls == 0].any()
    # every string has as many live pairs as its class's column (a later bulk entry that overwrote an
    # earlier one in a shared class shows up on the pairs or on these counts)
    ok = ok and np.array_equal((table[:S] != DEAD).sum(axis=0)[cls], np.where(cls > 0, n_live, 0))
    ok = ok and all((table[np.ix_(st, bc)] == en[:, None]).all() for (st, en, _), bc in zip(bulk, bcols))
    if ok:
        return table, cls
    dense = np.full((U, S + 1), DEAD, dtype=np.int32)  # a collision: exact fallback
    dense[u, s] = e
    for st, en, idx in bulk:
        dense[np.ix_(idx, st)] = en
    cols, inv = np.unique(dense, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    alive = (cols != DEAD).any(axis=1)
    gcls = np.where(alive, np.cumsum(alive) + 1, 0)
    table = np.full((S + 2, 2 + int(alive.sum())), DEAD, dtype=np.int32)
    table[: S + 1, 2:] = cols[alive].T
    table[S] = DEAD  # the byte automaton's dead row is not PAD
    return table, gcls[inv]


_vocab_flat: dict[int, tuple] = {}
_vocab_sub: dict[tuple, tuple] = {}  # (id(_FlatVocab), fill_id) -> (that _FlatVocab, its tokens less fill_id)


@dataclass
class _FlatVocab:
    """The bytes of every token that writes something, one slot per byte plus an end slot per token.

    ``ids (T,)`` token ids; ``lens (T,)``; ``start (T,)`` first slot; ``slots (T + total,)`` uint8 bytes
    (end slots 0); ``by_k[k]``: the slots at position ``k`` of tokens longer than ``k``; ``suf (slots, 4)``
    uint64: the bytes from each slot to the end of its token as a 256-bit set (packed like
    :func:`_byte_sets`; end slots empty); ``whole (T, 4)``: every token's bytes, ``suf[start]``; ``tail (T, 4)``: its bytes after the first."""

    ids: np.ndarray
    lens: np.ndarray
    start: np.ndarray
    slots: np.ndarray
    by_k: list
    suf: np.ndarray
    whole: np.ndarray
    tail: np.ndarray
    ends: np.ndarray  # (T,) each token's end slot, start + lens


def _byte_sets(member: np.ndarray) -> np.ndarray:
    """``member (n, 256)`` bool -> ``(n, 4)`` uint64 bit sets (a fixed packing, so sets can be and-ed)."""
    return np.ascontiguousarray(np.packbits(member, axis=1)).view(np.uint64)  # (n, 32) uint8 -> (n, 4)


def _flat_vocab(vocab: TokenVocab) -> _FlatVocab:
    """Per tokenizer (cached): :class:`_FlatVocab`."""
    got = _vocab_flat.get(id(vocab))
    if got is None or got[0] is not vocab:
        ids = np.array([t for t, b in enumerate(vocab.token_bytes) if b and t not in vocab.special], dtype=np.int64)
        lens = np.array([len(vocab.token_bytes[t]) for t in ids], dtype=np.int64)
        flat = np.frombuffer(b"".join(vocab.token_bytes[t] for t in ids), dtype=np.uint8)
        offs = np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
        owner = np.repeat(np.arange(len(ids)), lens)
        start = offs + np.arange(len(ids))  # each token's bytes, then its end slot
        slots = np.zeros(len(flat) + len(ids), dtype=np.uint8)
        slots[start[owner] + np.arange(len(flat)) - offs[owner]] = flat
        by_k = [start[lens > k] + k for k in range(int(lens.max()) if len(lens) else 0)]
        one = _byte_sets(np.eye(256, dtype=bool))  # (256, 4) each byte alone
        suf = np.zeros((len(slots), 4), dtype=np.uint64)
        for idx in reversed(by_k):
            suf[idx] = suf[idx + 1] | one[slots[idx]]
        got = _vocab_flat[id(vocab)] = (vocab, _FlatVocab(ids, lens, start, slots, by_k, suf, suf[start], suf[start + 1],
                                                              start + lens))
    return got[1]


@dataclass
class _ClassStrings:
    """Tokens as strings of byte classes. String ``u`` is ``fc[start[u] : start[u] + lens[u]]``;
    ``fc`` is over the vocabulary's slots (``_FlatVocab``), so ``suf`` indexes it too; ``whole``/``tail``
    are the per-string byte sets of ``_FlatVocab``; ``bcls (256,)`` each byte's class."""

    fc: np.ndarray
    start: np.ndarray
    lens: np.ndarray
    suf: np.ndarray
    whole: np.ndarray
    tail: np.ndarray
    bcls: np.ndarray


def _class_strings(vocab: TokenVocab, bcls: np.ndarray, fill_id: int | None, n_classes: int | None = None):
    """The tokens that write something (not special, not ``fill_id``) as strings of byte classes:
    ``(tids (U,), strings)``; string ``u`` of ``strings`` (a :class:`_ClassStrings`) spells ``tids[u]``.

    Tokens that spell the same class string are not merged here: that saves less walking than it costs,
    and :func:`_token_table` groups tokens with identical columns anyway."""
    fv = _flat_vocab(vocab)
    key = (id(fv), fill_id)
    sub = _vocab_sub.get(key)
    if sub is None or sub[0] is not fv:  # the tokens less fill_id: per tokenizer and fill id, not per pattern
        keep = np.flatnonzero(fv.ids != fill_id) if fill_id is not None else np.arange(len(fv.ids))
        sub = _vocab_sub[key] = (fv, fv.ids[keep], fv.start[keep], fv.lens[keep], fv.whole[keep], fv.tail[keep])
    _, tids, start, lens, whole, tail = sub
    # int16 class ids (K <= 257 with the leading-space class): half the gather's bytes, and numpy sorts
    # 16-bit keys by radix. An end slot (byte 0 there) reads class K: no string reads past its end as a byte
    # (the walks stop on ``lens``), and _second_byte_pairs uses K as "no second byte".
    K = n_classes if n_classes is not None else int(bcls.max()) + 1
    fc = np.empty(len(fv.slots), dtype=np.int16)
    np.take(bcls.astype(np.int16), fv.slots, out=fc)  # (slots,)
    fc[fv.ends] = K
    return tids, _ClassStrings(fc, start, lens, fv.suf, whole, tail, bcls)


def _with_leading_space(bcls: np.ndarray, ctrans: np.ndarray, accept: np.ndarray, start: int):
    """The byte DFA with a new start state: decode drops one leading space, so a first space leads to the
    original start and any other byte behaves as from the original start. The space byte gets a class
    of its own (a copy of its old column) so that the new start row can differ on it alone."""
    S = ctrans.shape[0] - 1  # the dead sink; the new start takes its row number, the sink moves to S+1
    c = int(bcls[0x20])
    t = np.concatenate([ctrans, ctrans[:, c:c + 1]], axis=1)  # (S+1, K+1) class K: the space alone
    t = np.where(t == S, S + 1, t).astype(np.int32)
    t[S] = t[start]
    t[S, -1] = start
    t = np.vstack([t, np.full((1, t.shape[1]), S + 1, dtype=np.int32)])  # (S+2, K+1) the sink last
    bcls = bcls.copy()
    bcls[0x20] = t.shape[1] - 1
    return bcls, t, np.r_[accept[:S], accept[start], False], S


@lru_cache(maxsize=256)
def _compile_cached(pattern: str, vocab_key: int, fill_id: int | None, n_ids: int) -> TokenDFA:
    vocab = _vocab_keep[vocab_key]
    bd = byte_dfa(pattern)
    bcls, ctrans, accept, start = bd.bcls, bd.ctrans, bd.accept, bd.start
    if vocab.leading_space:
        bcls, ctrans, accept, start = _with_leading_space(bcls, ctrans, accept, start)
    dead_b = ctrans.shape[0] - 1
    S = dead_b  # live byte states
    tok2cls = np.zeros(n_ids, dtype=np.int32)  # int32: half the bytes a compile writes per token id
    if fill_id is not None and 0 <= fill_id < n_ids:
        tok2cls[fill_id] = FILL
    N = S + 2  # byte states, PAD, DEAD
    PAD, DEAD = S, S + 1
    got = None
    fv = _flat_vocab(vocab)
    if len(fv.ids) and token_trie.available():  # the compiled walk over the prefix tree (token_trie)
        got = token_trie.walk_classes(ctrans[:, bcls], dead_b, fv, fill_id, tok2cls, _hash_weights(S + 1, 0x5EED),
                                      (ctrans, bcls))
        if got is not None:
            table, cls_size = got  # cls_size: the ids it wrote; every other id is the fill or class 0
            cls_size[0] += n_ids - int(cls_size.sum())
            if fill_id is not None and 0 <= fill_id < n_ids:
                cls_size[0] -= 1
                cls_size[FILL] += 1
    if got is None:  # numpy's walk (no numba, or a hash collision there)
        tids, cstr = _class_strings(vocab, bcls, fill_id, ctrans.shape[1])
        if len(cstr.lens):
            ps, pu, pe, bulk = _walk_pairs(ctrans, dead_b, cstr)
            check_deadline("token automaton", "regex")
            table, cls = _token_table(ps, pu, pe, len(cstr.lens), S, bulk)  # token classes: identical columns
            tok2cls[tids] = cls  # class of each token
        else:
            table = np.full((N, 2), DEAD, dtype=np.int32)
    C = table.shape[1]
    acc = np.zeros(N, dtype=bool)
    acc[:S] = accept[:S]
    acc[PAD] = True
    if fill_id is not None:
        table[:S, FILL] = np.where(acc[:S], PAD, DEAD)
        table[PAD, FILL] = PAD
    step_any = None  # masked steps go through the edge list (see _edges) unless the dense product is cheaper
    if N <= DENSE_STATES:
        if token_trie.available():  # counted first: the pairs themselves only where the product is dense
            pairs = int(token_trie._run("distinct_count", table, DEAD, 1))
            if pairs * DENSE_RATIO > N * N:
                src, dst = token_trie._run("distinct_edges", table, DEAD, 1, pairs)  # (E,), (E,)
        else:
            live = table[:, 1:] != DEAD  # (N, C-1)
            live[DEAD] = False
            src = np.repeat(np.arange(N), C - 1)[live.reshape(-1)]
            dst = table[:, 1:][live]
            pairs = len(np.unique(src * N + dst))
        if pairs * DENSE_RATIO > N * N:  # JSON automata have about 3 successors per state: the edge list wins
            step_any = np.zeros((N, N), dtype=np.float32)
            step_any[src, dst] = 1.0
    if got is None:
        cls_size = np.bincount(tok2cls, minlength=C)
    min_tokens = _min_tokens(table, start, acc, DEAD)
    dfa = TokenDFA(pattern, table, tok2cls, acc, start, step_any, min_tokens, cls_size)
    return dfa


def _min_tokens(table: np.ndarray, start: int, acc: np.ndarray, dead: int) -> int:
    """The fewest tokens (classes 2.., not the fill) from ``start`` to an accepting state of ``table``, or -1."""
    if token_trie.available():
        return int(token_trie._run("min_steps", table, start, acc, dead, 2))
    dist = 0
    frontier = [start]
    seen = np.zeros(len(table), dtype=bool)
    seen[start] = True
    while frontier:  # breadth first, one level at a time
        check_deadline("token automaton", "regex")
        if acc[frontier].any():
            return dist
        nxt = np.unique(table[frontier, 2:])
        nxt = nxt[(nxt != dead) & ~seen[nxt]]
        seen[nxt] = True
        frontier = nxt.tolist()
        dist += 1
    return -1


def warm_up(vocab: TokenVocab, fill_id: int | None) -> None:
    """Build what a tokenizer keeps between compiles (its flat bytes, its prefix tree) and load the compiled
    walk's kernels (about a second, once per process), and walk JSON's string up to its closing quote (kept
    per tokenizer, as the first schema with a plain string would), so that the next compile pays only for its
    own automaton: benchmarks call it before timing cold compiles, a server may call it at start."""
    _flat_vocab(vocab)
    for pattern in warm_up_patterns():  # the last, JSON's string: its walk up to the closing quote is kept
        compile_token_dfa(pattern, vocab, fill_id)  # (token_trie._cached_walks)
    _compile_cached.cache_clear()


def warm_up_patterns() -> tuple[str, ...]:
    """The patterns :func:`warm_up` compiles: a small object with a string, and JSON's string as the schema
    compiler writes it."""
    from steerdiff_plugins.schema.fragments import STRING

    return r'\{"a":"[a-z]{0,3}[^"]*"\}', STRING


def cache_clear() -> None:
    """Forget every compiled automaton (benchmarks measure cold compiles)."""
    _compile_cached.cache_clear()
    byte_dfa.cache_clear()
    to_engine_regex.cache_clear()
    parse_regex.cache_clear()
    byte_build._kept.clear()
    byte_build._declined.clear()
    expansion.cache_clear()
    check_regex.cache_clear()

