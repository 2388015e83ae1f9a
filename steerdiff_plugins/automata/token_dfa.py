"""Regular languages over token ids: the token DFA and its per-span analysis, exact over any unmasking order.

Pipeline (each stage cached): ``engine_regex.to_engine_regex`` (Python regex -> explicit code-point
sets), ``byte_level.byte_dfa`` (minimal byte DFA), ``token_walk.compile_token_dfa`` (the vocabulary walked
through it: a :class:`TokenDFA`), ``regular_hooks.RegularHooks`` (the automaton applied at every step).

Over a span with some positions fixed and others masked, :class:`TokenDFA` computes forward state sets
(reachable from the start) and backward sets (can still reach acceptance in the remaining positions). The
tokens allowed at a masked position are exactly those joining a live state at the position to a backward
state at the next one; :meth:`TokenDFA.completable` checks a joint assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NEVER, FILL = 0, 1  # reserved token classes
SPARSE_SETS = None  # allowed sets over the table's non-DEAD entries (True), its live rows (False), or the cheaper (None)


@dataclass(eq=False)
class TokenDFA:
    """A regular language over token ids.

    States ``0..S-1`` come from the byte DFA, ``PAD = S`` is the absorbing padding state, ``DEAD = S+1``.
    ``table (S+2, C)`` int32: next state per token class (class 0 never allowed, class 1 the padding token).
    ``tok2cls (V,)`` int: class of each token id. ``accept (S+2,)`` bool (PAD accepts).
    ``step_any (S+2, S+2)`` float32: 1 where some token class moves the row state to the column state.
    ``min_tokens``: fewest tokens of an accepted text (padding excluded).
    """

    pattern: str
    table: np.ndarray
    tok2cls: np.ndarray
    accept: np.ndarray
    start: int
    step_any: np.ndarray
    min_tokens: int
    cls_size: np.ndarray
    _torch: dict = field(default_factory=dict, repr=False)

    @property
    def n_states(self) -> int:
        return self.table.shape[0]

    @property
    def dead(self) -> int:
        return self.table.shape[0] - 1

    @property
    def pad(self) -> int:
        return self.table.shape[0] - 2

    @property
    def n_classes(self) -> int:
        return self.table.shape[1]

    # -- per-span analysis ---------------------------------------------------------------------------

    def _mask_step(self, cur: np.ndarray, forward: bool) -> np.ndarray:
        """One masked position: the states reachable from ``cur`` (forward) or reaching ``cur`` (backward)."""
        if self.step_any is not None:
            f = cur.astype(np.float32)
            return ((f @ self.step_any) if forward else (self.step_any @ f)) > 0
        src, dst = self._pairs()[:2]  # a masked step over the pairs costs P, far less than N * C
        nxt = np.zeros(self.n_states, dtype=bool)
        if forward:
            nxt[dst[cur[src]]] = True
        else:
            nxt[src[cur[dst]]] = True
        return nxt

    def _state_sets(self) -> "_StateSets":
        """This DFA's interned state sets and the memos keyed by their ids; started afresh (all memos
        together, so no id outlives its set) once the sets pass ``_STATE_SET_BYTES``. Call it once per
        public method, never inside a sweep: ids from before a reset mean nothing after it."""
        ss = self._torch.get("state_sets")
        if ss is None or ss.nbytes > _STATE_SET_BYTES:
            ss = self._torch["state_sets"] = _StateSets()
        return ss

    def _sweep(self, ss: "_StateSets", cls_row: np.ndarray, masked: np.ndarray, forward: bool,
               prev: "_Sweep | None" = None) -> "_Sweep":
        """Ids (in ``ss``) of the state sets along the span, ``n+1`` of them: forward (reachable from the
        start) or backward (can still finish the rest of the span).

        Sets are interned, so a position costs one dict lookup once its (set, class) pair has been seen,
        as nearly all have, position after position and step after step. A run of masks goes through a
        memo of the sets after 1, 2, ... masks from the set it starts from (a shorter run is a prefix;
        the run stops at a fixed point, after which every set is the same).

        ``prev``: an earlier sweep of the same span in the same direction (the last step's, or the
        configuration a trial differs from). Only what the changed positions can reach is walked: from
        the first change on, stopping at each run's end where the set is the one ``prev`` had there,
        and going on from the next change (between changes the rows are the same, so the sets are too)."""
        n = len(cls_row)
        cls_list = cls_row.tolist()
        m_list = masked.tolist()
        if prev is not None and prev.ss is ss and len(prev.ids) == n + 1:
            diff = np.flatnonzero((masked != prev.masked) | (~masked & (cls_row != prev.cls)))  # a mask's class is moot
            if not len(diff):
                return _Sweep(ss, cls_row.copy(), masked.copy(), prev.ids)
            old = prev.ids
            out = list(old)
            changes = diff.tolist() if forward else (n - 1 - diff[::-1]).tolist()  # in crossing order
            p = changes[0]
        else:
            old = changes = None
            out = [0] * (n + 1)
            if forward:
                first = np.zeros(self.n_states, dtype=bool)
                first[self.start] = True
            else:
                first = self.accept
            out[0 if forward else n] = ss.intern(first)
            p = 0
        cur = out[p if forward else n - p]
        table, dead = self.table, self.dead
        step, runs = (ss.fwd1, ss.fwdrun) if forward else (ss.bwd1, ss.bwdrun)
        ci = 0  # the next change not crossed yet
        while p < n:
            i = p if forward else n - 1 - p  # the position being crossed
            if m_list[i]:
                k = 1
                while p + k < n and m_list[i + k if forward else i - k]:
                    k += 1
                blk = runs.get(cur)  # [ids after 1, 2, ... masks], fixed point reached?
                if blk is None:
                    blk = runs[cur] = [[], False]
                ids, fixed = blk
                x = ids[-1] if ids else cur
                while len(ids) < k and not fixed:
                    y = ss.intern(self._mask_step(ss.rows[x], forward))
                    if y == x:
                        fixed = blk[1] = True
                        break
                    ids.append(y)
                    ss.nbytes += 8
                    x = y
                got = ids[:k] + [x] * (k - len(ids)) if len(ids) < k else ids[:k]
                if forward:
                    out[i + 1 : i + k + 1] = got
                else:
                    out[i + 1 - k : i + 1] = got[::-1]
                cur = got[-1]
                p += k
            else:
                key = (cur, cls_list[i])
                nxt = step.get(key)
                if nxt is None:
                    s = ss.rows[cur]
                    c = key[1]
                    if forward:
                        y = np.zeros(self.n_states, dtype=bool)
                        y[table[np.flatnonzero(s), c]] = True
                        y[dead] = False
                    else:
                        y = s[table[:, c]]
                    nxt = step[key] = ss.intern(y)
                    ss.nbytes += 100
                out[i + 1 if forward else i] = cur = nxt
                p += 1
            if changes is not None:
                while ci < len(changes) and changes[ci] < p:
                    ci += 1
                if cur == old[p if forward else n - p]:  # back on the old sets: skip to the next change
                    if ci == len(changes):
                        break
                    p = changes[ci]
                    cur = out[p if forward else n - p]
        return _Sweep(ss, cls_row.copy(), masked.copy(), out)  # copies: the caller's arrays may be views it changes

    def forward(self, cls_row: np.ndarray, masked: np.ndarray) -> np.ndarray:
        """Forward state sets ``(n+1, S+2)`` bool for a span: ``cls_row (n,)`` classes, ``masked (n,)``."""
        ss = self._state_sets()
        return ss.stack(self._sweep(ss, cls_row, masked, forward=True).ids)

    def backward(self, cls_row: np.ndarray, masked: np.ndarray) -> np.ndarray:
        """Backward sets ``(n+1, S+2)``: states from which the rest of the span can still be accepted."""
        ss = self._state_sets()
        return ss.stack(self._sweep(ss, cls_row, masked, forward=False).ids)

    def _sweep_with(self, ss: "_StateSets", cls_row, masked, forward: bool, span: dict | None) -> "_Sweep":
        """A sweep walked from the one kept in ``span`` (a dict the caller keeps for one canvas span, or
        None), which then keeps the new one: the next step's canvas differs in a few positions."""
        key = "fwd" if forward else "bwd"
        sw = self._sweep(ss, cls_row, masked, forward, None if span is None else span.get(key))
        if span is not None:
            span[key] = sw
        return sw

    def _accepting(self, ss: "_StateSets", sid: int) -> bool:
        ok = ss.accepting.get(sid)
        if ok is None:
            ok = ss.accepting[sid] = bool((ss.rows[sid] & self.accept).any())
        return ok

    def completable(self, cls_row: np.ndarray, masked: np.ndarray, span: dict | None = None) -> bool:
        """Whether the span (fixed tokens and masks) can still be completed into an accepted text.
        ``span``: see :meth:`allowed_class_sets`."""
        ss = self._state_sets()
        return self._accepting(ss, self._sweep_with(ss, cls_row, masked, True, span).ids[-1])

    def select_jointly(self, cls_row: np.ndarray, masked: np.ndarray, order, prop_cls: np.ndarray,
                       span: dict | None = None) -> np.ndarray:
        """Keep proposals in ``order`` (most confident first) while the span stays completable.

        ``cls_row``/``masked``: the span before this step (proposal positions masked); ``prop_cls[q]``:
        the proposed class at position ``q``. Returns the bool keep mask ``(n,)``. The first proposal is
        kept whenever it is individually valid (it was drawn from the exact allowed set). Each trial
        differs from the kept configuration in one position, so its sweep is walked from that one's.
        """
        ss = self._state_sets()
        keep = np.zeros(len(cls_row), dtype=bool)
        base = self._sweep_with(ss, cls_row, masked, True, span)
        for q in order:
            trial_cls, trial_masked = base.cls.copy(), base.masked.copy()
            trial_cls[q] = prop_cls[q]
            trial_masked[q] = False
            sw = self._sweep(ss, trial_cls, trial_masked, True, base)
            if self._accepting(ss, sw.ids[-1]):
                base = sw
                keep[q] = True
        if span is not None:
            span["fwd"] = base
        return keep

    def allowed_classes(self, cls_row: np.ndarray, masked: np.ndarray, span: dict | None = None):
        """``(positions (M,), allowed (M, C) bool)`` for the masked positions of the span, or None when
        the span cannot be completed at all. ``span``: see :meth:`allowed_class_sets`."""
        res = self.allowed_class_sets(cls_row, masked, span)
        if res is None:
            return None
        pos, uniq, inv = res
        return pos, uniq[inv]

    def allowed_class_sets(self, cls_row: np.ndarray, masked: np.ndarray, span: dict | None = None):
        """Like :meth:`allowed_classes`, factorised: ``(positions (M,), sets (U, C) bool, which (M,))``
        with ``allowed[i] = sets[which[i]]``. A masked position's set depends only on its (reachable
        states, states that can finish the rest) pair; the pairs repeat along a run of masks and step
        after step, so each is worked out once (memoised by the two set ids).

        ``span``: a dict the caller keeps for one canvas span across steps (or None). The sweeps are
        kept in it and the next call walks only what its changed positions reach (a step commits a few
        tokens; the rest of the span's sets stay)."""
        ss = self._state_sets()
        fid = np.array(self._sweep_with(ss, cls_row, masked, True, span).ids, dtype=np.int64)  # (n+1,) set ids
        bid = np.array(self._sweep_with(ss, cls_row, masked, False, span).ids, dtype=np.int64)  # (n+1,)
        if not ss.rows[bid[0]][self.start]:
            return None
        pos = np.flatnonzero(masked)
        if len(pos) == 0:
            return pos, np.zeros((0, self.n_classes), dtype=bool), np.zeros(0, dtype=np.int64)
        pair = (fid[pos] << 32) | bid[pos + 1]  # (M,) one number per (reachable, finishing) pair
        upair, first, kinv = np.unique(pair, return_index=True, return_inverse=True)  # K distinct pairs
        memo = ss.pair_set
        kids = np.array([memo.get(p, -1) for p in upair.tolist()], dtype=np.int64)  # (K,) class-set ids
        todo = np.flatnonzero(kids < 0)
        if len(todo):
            at = pos[first[todo]]  # a position of each new pair
            f_ids, b_ids, b1_ids = fid[at].tolist(), bid[at].tolist(), bid[at + 1].tolist()
            fresh = self._fresh_sets(np.stack([ss.rows[f] & ss.rows[b] for f, b in zip(f_ids, b_ids)]),  # (K', N) live
                                     np.stack([ss.rows[b1] for b1 in b1_ids]))  # (K', N) finishing
            for k, p, row in zip(todo.tolist(), upair[todo].tolist(), fresh):
                kids[k] = memo[p] = ss.class_set(row)
                ss.nbytes += 100
        uniq_ids, which = np.unique(kids[kinv.reshape(-1)], return_inverse=True)
        sets = np.stack([ss.class_rows[i] for i in uniq_ids.tolist()])  # (U, C)
        return pos, sets, which.reshape(-1)

    def _fresh_sets(self, live: np.ndarray, fin: np.ndarray) -> np.ndarray:
        """``(K, C)`` bool: the classes that move some state of ``live[k]`` into ``fin[k]`` (``(K, N)`` each)."""
        K = len(live)
        fresh = np.zeros((K, self.n_classes), dtype=bool)
        ki, si = np.nonzero(live)  # pairs (key, live state)
        p_src, p_dst, e_pair, g_start, g_cls = self._pairs()
        sparse = SPARSE_SETS if SPARSE_SETS is not None else len(e_pair) + K * len(p_src) < len(ki) * self.n_classes
        if not sparse:  # dense: every class from every live state
            ok = fin[ki[:, None], self.table[si]]  # (P', C): finishing state after each class
            _or_reduce(fresh, ki, ok)
            return fresh
        # sparse: which (state, next state) pairs each key hits, as bits over the keys; a class is allowed
        # for the keys that hit any of its pairs (one OR over the table's E non-DEAD entries, K/8 bytes each)
        hit = np.packbits(live[:, p_src] & fin[:, p_dst], axis=0, bitorder="little")  # (ceil(K/8), P)
        if len(e_pair):
            per_cls = np.bitwise_or.reduceat(hit.T[e_pair], g_start, axis=0)  # (G, ceil(K/8))
            fresh[:, g_cls] = np.unpackbits(per_cls, axis=1, count=K, bitorder="little").T  # (K, G)
        return fresh

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The distinct (state, next state) pairs some token class joins, DEAD left out: ``src (P,)``,
        ``dst (P,)``; and the table's E non-DEAD entries grouped by class: the pair of each ``(E,)``, group
        starts ``(G,)`` and the class of each group ``(G,)``."""
        got = self._torch.get("pairs")
        if got is None:
            live = self.table.T != self.dead  # (C, N)
            live[:, self.dead] = False
            live[0] = False  # class 0 is never allowed
            cls, src = np.nonzero(live)  # (E,) each, sorted by class
            N = np.int64(self.n_states)
            upair, inv = np.unique(src * N + self.table[src, cls], return_inverse=True)  # (P,), (E,)
            starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]]) if len(cls) else np.zeros(0, dtype=np.int64)
            got = self._torch["pairs"] = (upair // N, upair % N, inv.reshape(-1), starts, cls[starts])
        return got


@dataclass(frozen=True)
class _Sweep:
    """One sweep's result: the span it was taken over (``cls (n,)``, ``masked (n,)``) and the ids in
    ``ss`` of its ``n+1`` state sets (a list: shared between sweeps, never changed)."""

    ss: "_StateSets"
    cls: np.ndarray
    masked: np.ndarray
    ids: list


_STATE_SET_BYTES = 64 << 20  # a DFA's interned state and class sets start afresh past this size


class _StateSets:
    """Interned state sets ``(N,)`` bool and allowed-class sets ``(C,)`` bool of one DFA, with the memos
    the per-step analysis keys by their ids: one fixed token (``fwd1``/``bwd1``: (set, class) -> set), a
    run of masks (``fwdrun``/``bwdrun``: set -> [sets after 1, 2, ... masks], fixed point reached),
    ``pair_set`` ((reachable, finishing) -> class set) and ``accepting`` (set -> holds an accepting state)."""

    def __init__(self):
        self.ids: dict[bytes, int] = {}
        self.rows: list[np.ndarray] = []
        self.class_ids: dict[bytes, int] = {}
        self.class_rows: list[np.ndarray] = []
        self.fwd1: dict = {}
        self.bwd1: dict = {}
        self.fwdrun: dict = {}
        self.bwdrun: dict = {}
        self.pair_set: dict = {}
        self.accepting: dict = {}
        self.nbytes = 0

    def intern(self, s: np.ndarray) -> int:
        """The id of state set ``s (N,)`` (kept as it is: never change it afterwards)."""
        return self._add(self.ids, self.rows, s)

    def class_set(self, row: np.ndarray) -> int:
        """The id of allowed-class set ``row (C,)``."""
        return self._add(self.class_ids, self.class_rows, row)

    def _add(self, index: dict, rows: list, row: np.ndarray) -> int:
        key = row.tobytes()
        i = index.get(key)
        if i is None:
            i = index[key] = len(rows)
            rows.append(row)
            self.nbytes += 2 * row.nbytes + 100
        return i

    def stack(self, ids: list[int]) -> np.ndarray:
        return np.stack([self.rows[i] for i in ids])


def _or_reduce(out: np.ndarray, groups: np.ndarray, rows: np.ndarray) -> None:
    """``out[g] |= OR of rows with group g`` for sorted ``groups``."""
    if len(groups) == 0:
        return
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    red = np.logical_or.reduceat(rows, starts, axis=0)
    out[groups[starts]] |= red

