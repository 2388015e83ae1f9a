"""Completion witnesses: shortest completions of a parser configuration, checked through the model, so
every allowed token keeps the text completable within the canvas."""

from __future__ import annotations

from collections import deque

import numpy as np

from steerdiff_plugins.grammars.terminals import (
    _ROOT,
    INF,
)


class _Witnesses:
    """``CompiledGrammar`` methods for completions and witnesses (mixed into
    :class:`steerdiff_plugins.grammars.compiled.CompiledGrammar`)."""


    # ---------------------------------------------------------------- completions (witnesses)
    def completion_terms(self, stack: tuple) -> list[str] | None:
        """Terminals of a shortest (by canonical byte length) derivation that completes ``stack``."""
        memo: dict = {}
        busy = set()
        n = len(stack)

        def best(i: int, s: int):
            key = (i, s)
            if key in memo:
                return memo[key]
            if key in busy:
                return (INF, None)
            busy.add(key)
            res = (INF, None)
            for rule, k in self.items[s]:
                beta = rule.expansion[k:]
                c = sum(self.symcost.get(x.name, INF) for x in beta)
                if c >= res[0]:
                    continue
                if rule.origin.name.startswith(_ROOT):
                    res = (c, (beta, None))
                    continue
                if k > i:
                    continue
                below = stack[i - k]
                g = self.actions[below].get(rule.origin.name)
                if g is None:
                    continue
                sub = best(i - k + 1, g[1])
                if c + sub[0] < res[0]:
                    res = (c + sub[0], (beta, (i - k + 1, g[1])))
            busy.discard(key)
            memo[key] = res
            return res

        top = best(n - 1, stack[-1])
        if top[0] >= INF:
            return None
        out: list[str] = []
        node = (n - 1, stack[-1])
        guard = 0
        while node is not None and guard < 10_000:
            guard += 1
            c, link = memo[node]
            beta, nxt = link
            for x in beta:
                self.expand(x.name, out)
            node = nxt
        return out

    def _write_terms(self, stack: tuple, terms: list[str], always_sep: bool):
        """Write terminals' canonical strings from a lexeme start, inserting separators when needed."""
        cfg = (stack, 0)
        out = bytearray()
        for t in terms:
            s = self.tstr.get(t)
            if s is None:
                return None
            nxt = None
            if not always_sep or not out:
                nxt = self.feed_bytes(cfg[0], cfg[1], s)
                if nxt is not None:
                    out += s
            if nxt is None and self.sep is not None and out:
                nxt = self.feed_bytes(cfg[0], cfg[1], self.sep + s)
                if nxt is not None:
                    out += self.sep + s
            if nxt is None:
                return None
            cfg = nxt
        if not self.accepts_eof(*cfg):
            if self.sep is not None:
                nxt = self.feed_bytes(cfg[0], cfg[1], self.sep)
                if nxt is not None and self.accepts_eof(*nxt):
                    return bytes(out + self.sep)
            return None
        return bytes(out)

    def witness_at_start(self, stack: tuple) -> bytes | None:
        """A verified completion of ``stack`` with no pending lexeme (cached per stack)."""
        hit = self._memo_wit.get(stack, 0)
        if hit != 0:
            return hit
        res = None
        terms = self.completion_terms(stack)
        if terms is not None:
            res = self._write_terms(stack, terms, False)
            if res is None:
                res = self._write_terms(stack, terms, True)
        if res is None:
            res = self._search(stack, 0)
        if len(self._memo_wit) > 200_000:
            self._memo_wit.clear()
        self._memo_wit[stack] = res
        return res

    def _search(self, stack: tuple, q: int, budget: int = 3000) -> bytes | None:
        """Fallback: best-first search over bytes for a completion (bounded)."""
        import heapq

        def h(st):
            terms = self.completion_terms(st[0])
            return 0 if terms is None else sum(len(self.tstr.get(t) or b"") for t in terms)

        start = (stack, q)
        heap = [(h(start), 0, b"", start)]
        seen = set()
        n = 0
        while heap and n < budget:
            _, g, path, cfg = heapq.heappop(heap)
            if cfg in seen:
                continue
            seen.add(cfg)
            n += 1
            if self.accepts_eof(*cfg):
                return path
            for b in self._pref:
                nxt = self.feed_bytes(cfg[0], cfg[1], bytes([b]))
                if nxt is not None and nxt not in seen:
                    heapq.heappush(heap, (g + 1 + h(nxt), g + 1, path + bytes([b]), nxt))
        return None

    def _dist(self, cid: int, target: str, kill: int):
        """Distances (and next bytes) from each product state of context ``cid`` to a lexeme of type
        ``target`` that the byte ``kill`` ends (``kill = -1``: the text ends there)."""
        key = (cid, target, kill)
        hit = self._memo_dist.get(key)
        if hit is not None:
            return hit
        ctx = self.context(cid)
        P = len(ctx.emit)
        dist = np.full(P, INF, dtype=np.int64)
        nxt = np.full(P, -1, dtype=np.int32)
        dq = deque()
        for p in range(1, P):
            if ctx.emit[p] == target and (kill < 0 or ctx.trans[p, kill] < 0):
                dist[p] = 0
                dq.append(p)
        while dq:
            p = dq.popleft()
            for pred, b in ctx.rev[p]:
                if dist[pred] >= INF:
                    dist[pred] = dist[p] + 1
                    nxt[pred] = b
                    dq.append(pred)
        self._memo_dist[key] = (dist, nxt)
        return dist, nxt

    def _options(self, stack: tuple):
        """For a stack: [(terminal, continuation after it, dist array, next array)] to complete a pending lexeme."""
        hit = self._memo_costvec.get(stack)
        if hit is not None:
            return hit
        cid = self.ctx_of_state[stack[-1]]
        main, unless = self._ctx_specs[cid]
        names = set(main) | {s for lst in unless.values() for s in lst}
        opts = []
        for t in names:
            st2 = stack if t in self.ignore else self.feed(stack, t)
            if st2 is None:
                continue
            rest = self.witness_at_start(st2)
            if rest is None:
                continue
            rests = [rest]
            if self.sep is not None:  # the same continuation after a separator, for lexemes it would extend
                alt = self.sep + rest
                cfg = self.feed_bytes(st2, 0, alt)
                if cfg is not None and self.accepts_eof(*cfg):
                    rests.append(alt)
            for r in rests:
                d, nx = self._dist(cid, t, r[0] if r else -1)
                opts.append((t, r, d, nx))
        cost = np.full(len(self.context(cid).emit), INF, dtype=np.int64)
        for t, rest, d, nx in opts:
            cost = np.minimum(cost, d + len(rest))
        w0 = self.witness_at_start(stack)
        if w0 is not None:
            cost[0] = min(cost[0], len(w0))
        res = (opts, cost)
        if len(self._memo_costvec) > 100_000:
            self._memo_costvec.clear()
        self._memo_costvec[stack] = res
        return res

    def witness(self, stack: tuple, q: int) -> bytes | None:
        """A verified completion of configuration ``(stack, q)`` of minimal length among the candidates."""
        if q == 0:
            return self.witness_at_start(stack)
        opts, cost = self._options(stack)
        best = None
        for t, rest, d, nx in opts:
            if d[q] >= INF:
                continue
            if best is None or d[q] + len(rest) < best[0]:
                best = (int(d[q]) + len(rest), t, rest, nx)
        if best is None:
            return None
        _, t, rest, nx = best
        d = self._dist(self.ctx_of_state[stack[-1]], t, rest[0] if rest else -1)[0]
        path = bytearray()
        p = q
        ctx = self.ctx_for(stack)
        while d[p] > 0:
            b = int(nx[p])
            path.append(b)
            p = int(ctx.trans[p, b])
        return bytes(path) + rest

    def cost(self, stack: tuple, q: int) -> int:
        return int(self._options(stack)[1][q])

