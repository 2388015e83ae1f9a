"""The vocabulary walk: the exact set of tokens allowed at the frontier of a parser configuration."""

from __future__ import annotations

import numpy as np


class _VocabWalk:
    """``CompiledGrammar`` methods that walk the vocabulary (mixed into
    :class:`steerdiff_plugins.grammars.compiled.CompiledGrammar`)."""


    # ---------------------------------------------------------------- vocabulary walk
    def _build_vocab_matrix(self) -> None:
        tb = self.vocab.token_bytes
        V = len(tb)
        ok = np.array([len(b) > 0 and i not in self.vocab.special for i, b in enumerate(tb)], dtype=bool)
        lens = np.array([len(b) for b in tb], dtype=np.int64)
        Lmax = int(lens[ok].max()) if ok.any() else 1
        M = np.zeros((V, Lmax), dtype=np.int64)
        for i, b in enumerate(tb):
            if ok[i]:
                M[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        self.V, self.tok_ok, self.tok_len, self.tok_mat = V, ok, lens, M
        # first token of a text whose decode drops one leading space
        if self.vocab.leading_space:
            lens1 = lens.copy()
            M1 = M.copy()
            sp = ok & (M[:, 0] == 32)
            M1[sp, :-1] = M[sp, 1:]
            M1[sp, -1] = 0
            lens1[sp] -= 1
            ok1 = ok & (lens1 > 0)
            self.first = (ok1, lens1, M1)
            self.first_empty = np.nonzero(ok & (lens1 == 0))[0]  # a lone space: writes nothing as first token
        else:
            self.first = (ok, lens, M)
            self.first_empty = np.zeros(0, dtype=np.int64)

    def walk(self, stack: tuple, q: int, first: bool = False):
        """Walk every token from configuration ``(stack, q)``.

        Returns ``(ids, stacks, states)``: the token ids that survive, and for each the configuration it
        leads to (``stacks`` as a list of distinct stack tuples and an index per token). Cached per
        configuration (the result does not depend on the canvas budget).
        """
        key = (stack, q, first)
        hit = self._memo_walk.get(key)
        if hit is not None:
            return hit
        ok, lens, M = self.first if first else (self.tok_ok, self.tok_len, self.tok_mat)
        ids = np.nonzero(ok)[0]
        out_ids, out_stack, out_q = [], [], []
        stacks: list = []
        stack_idx: dict = {}
        work = [(stack, ids, np.full(len(ids), q, dtype=np.int64), 0)]
        if first and len(self.first_empty):  # tokens that write nothing keep the configuration
            stack_idx[stack] = 0
            stacks.append(stack)
            out_ids.append(self.first_empty)
            out_stack.append(np.zeros(len(self.first_empty), dtype=np.int64))
            out_q.append(np.full(len(self.first_empty), q, dtype=np.int64))
        while work:
            st, tid, s, off = work.pop()
            ctx = self.ctx_for(st)
            T = ctx.trans
            emit = ctx.emit
            L = lens[tid]
            died_at = np.full(len(tid), -1, dtype=np.int64)
            pre = s.copy()
            alive = np.ones(len(tid), dtype=bool)
            maxl = int(L.max()) if len(tid) else 0
            for k in range(off, maxl):
                act = alive & (k < L)
                if not act.any():
                    break
                cur = s[act]
                nx = T[cur, M[tid[act], k]]
                dead = nx < 0
                if dead.any():
                    ai = np.nonzero(act)[0]
                    di = ai[dead]
                    died_at[di] = k
                    pre[di] = cur[dead]
                    alive[di] = False
                s[act] = np.where(dead, s[act], nx)
            fin = alive
            if fin.any():
                if st not in stack_idx:
                    stack_idx[st] = len(stacks)
                    stacks.append(st)
                out_ids.append(tid[fin])
                out_stack.append(np.full(int(fin.sum()), stack_idx[st], dtype=np.int64))
                out_q.append(s[fin])
            di = np.nonzero(~alive)[0]
            if len(di):
                groups: dict = {}
                for j, p, k in zip(di.tolist(), pre[di].tolist(), died_at[di].tolist()):
                    name = emit[p]
                    if name is None:
                        continue
                    groups.setdefault((name, k), []).append(j)
                for (name, k), js in groups.items():
                    st2 = st if name in self.ignore else self.feed(st, name)
                    if st2 is None:
                        continue
                    js = np.array(js, dtype=np.int64)
                    work.append((st2, tid[js], np.zeros(len(js), dtype=np.int64), k))
        if out_ids:
            a, b, c = np.concatenate(out_ids), np.concatenate(out_stack), np.concatenate(out_q)
            o = np.argsort(a, kind="stable")
            res = (a[o], stacks, b[o], c[o])
        else:
            res = (np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        if len(self._memo_walk) > 20_000:
            self._memo_walk.clear()
        self._memo_walk[key] = res
        return res

    def allowed(self, stack: tuple, q: int, budget: int, first: bool = False, witness: bytes | None = None):
        """Token ids that can follow configuration ``(stack, q)`` and still complete in ``budget`` tokens.

        ``budget``: positions left after this token. ``witness``: a verified completion of the
        configuration; the tokens that write its prefix keep the rest of it as their completion, so the
        token writing its first byte is always allowed when the witness fits. Returns (ids, costs).
        """
        ids, stacks, sidx, qs = self.walk(stack, q, first)
        if not len(ids):
            return ids, ids
        cost = np.empty(len(ids), dtype=np.int64)
        for i, st in enumerate(stacks):
            sel = sidx == i
            cost[sel] = self._options(st)[1][qs[sel]]
        if witness:
            tid = self.byte_token.get(witness[0])
            if tid is not None:
                j = np.searchsorted(ids, tid)
                if j < len(ids) and ids[j] == tid:
                    cost[j] = min(cost[j], len(witness) - 1)
        ok = cost <= budget
        return ids[ok], cost[ok]

    def token_step(self, stack: tuple, q: int, tid: int, first: bool):
        """Configuration after token ``tid`` (scalar path), or None."""
        ok, lens, M = self.first if first else (self.tok_ok, self.tok_len, self.tok_mat)
        if not ok[tid]:
            if first and self.tok_ok[tid] and lens[tid] == 0:
                return stack, q
            return None
        return self.feed_bytes(stack, q, M[tid, : lens[tid]].astype(np.uint8).tobytes())

