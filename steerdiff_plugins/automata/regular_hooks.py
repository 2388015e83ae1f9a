"""Hook helpers shared by the regular-language plugins (regex, json_schema): a token DFA applied to the
canvas at every step (``RegularHooks``: prepare, adjust_logits, check_commit, finalize)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from steerdiff.errors import ConstraintError
from steerdiff_plugins.automata.token_dfa import TokenDFA
from steerdiff_plugins.automata.token_walk import compile_token_dfa
from steerdiff_plugins.compile_budget import compile_deadline


@dataclass
class Slot:
    """One regular constraint on one row: its automaton and canvas span ``[start, end)``; ``sweeps``:
    the span's last state-set sweeps, walked incrementally the next step (see ``allowed_class_sets``)."""

    row: int
    constraint: object
    dfa: TokenDFA
    start: int
    end: int
    sweeps: dict = field(default_factory=dict, repr=False)


def span_of(constraint, length: int) -> tuple[int, int]:
    span = getattr(constraint, "span", None)
    if span is None:
        return 0, length
    try:
        s, e = (int(x) for x in span)
    except (TypeError, ValueError):
        raise ConstraintError(f"{constraint!r}: span must be (start, end), got {span!r}") from None
    if not 0 <= s < e <= length:
        raise ConstraintError(f"{constraint!r}: span [{s}, {e}) does not fit in a canvas of {length} positions")
    return s, e


def _check_capacity(constraint, positions: int, vocab) -> None:
    """A constraint compiled for a canvas capacity (``canvas_bounds``) may only run on spans it covers."""
    cap = getattr(constraint, "capacity", None)
    if cap is None:
        return
    from steerdiff_plugins.canvas_bounds import max_token_bytes

    need = positions * max_token_bytes(vocab)
    if need > cap:
        raise ConstraintError(f"{constraint.type_name} constraint {constraint.describe()} was compiled for a text of at most "
                              f"{cap} bytes, but its span of {positions} tokens can hold {need}; compile it with "
                              f"capacity >= {need} (or None)")


class RegularHooks:
    """``prepare`` / ``adjust_logits`` / ``check_commit`` / ``finalize`` for constraints exposing
    ``regex() -> str`` and ``check_text(text, result)``. ``key``: this plugin's key in ``run.state``."""

    def __init__(self, key: str, classes):
        self.key = key
        self.classes = classes

    def prepare(self, run) -> None:
        from steerdiff.vocab import vocab_for

        slots = []
        vocab = None
        for row, c in run.constraints_of(self.classes):
            vocab = vocab or vocab_for(run.tokenizer)
            s, e = span_of(c, run.length)
            _check_capacity(c, e - s, vocab)
            with compile_deadline():  # each constraint's regex, byte and token automata under one clock
                pattern = c.regex_on(e - s, vocab) if hasattr(c, "regex_on") else c.regex()
                dfa = compile_token_dfa(pattern, vocab, run.fill_id)
            what = f"{c.type_name} constraint {c.describe()} on row {row}"
            if dfa.min_tokens < 0:
                raise ConstraintError(f"{what}: no sequence of this tokenizer's tokens spells a text in its language (empty at the token level)")
            n = e - s
            if dfa.min_tokens > n:
                raise ConstraintError(f"{what}: the shortest matching text takes {dfa.min_tokens} tokens but its span has only {n} positions; raise length")
            if not dfa.completable(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)):
                raise ConstraintError(f"{what}: no matching text fills exactly {n} tokens and no padding token can end it early")
            slots.append(Slot(row, c, dfa, s, e))
        by_row: dict[int, list[Slot]] = {}
        for sl in slots:
            by_row.setdefault(sl.row, []).append(sl)
        for row, group in by_row.items():
            group.sort(key=lambda x: x.start)
            for a, b in zip(group, group[1:]):
                if b.start < a.end:
                    raise ConstraintError(f"row {row}: regular constraints {a.constraint.describe()} and {b.constraint.describe()} overlap on canvas positions [{b.start}, {min(a.end, b.end)}); give them disjoint spans")
        if slots:
            run.state[self.key] = {"slots": slots}

    def adjust_logits(self, run, canvas, masked, logits):
        st = run.state.get(self.key)
        if not st:
            return None
        from steerdiff.edits import LogitsEdit

        B, L, V = logits.shape
        rows = sorted({sl.row for sl in st["slots"]})
        ridx = {r: i for i, r in enumerate(rows)}
        canvas_np = canvas.cpu().numpy()
        masked_np = masked.cpu().numpy()
        choice = np.full((len(rows), L), -1, dtype=np.int64)  # (R, L) row of the token-set table below
        pools = {}
        for sl in st["slots"]:  # each DFA's pool once, before any row number is handed out
            if id(sl.dfa) not in pools:
                pools[id(sl.dfa)] = _set_pool(sl.dfa, V, logits.device)
        used = []  # (pool, row numbers (M,), row index, canvas positions (M,)) per span
        for sl in st["slots"]:
            m = masked_np[sl.row, sl.start:sl.end]
            if not m.any():
                continue
            dfa = sl.dfa
            t2c = dfa.tok2cls
            toks = canvas_np[sl.row, sl.start:sl.end]
            cls_row = np.where(m, 0, _classes_of(t2c, toks))
            res = dfa.allowed_class_sets(cls_row, m, sl.sweeps)
            if res is None:
                raise ConstraintError(
                    f"row {sl.row}: the fixed tokens in canvas span [{sl.start}, {sl.end}) cannot be completed into "
                    f"{sl.constraint.type_name} constraint {sl.constraint.describe()} (text so far: {_span_text(run, toks, m)!r})")
            pos, uniq, inv = res  # (M,), (U, C), (M,): positions inside a span mostly share their sets
            if len(pos) == 0:
                continue
            pool = pools[id(dfa)]
            used.append((pool, pool.rows(uniq)[inv], ridx[sl.row], pos + sl.start))
        if not used:
            return None
        if len({id(u[0]) for u in used}) == 1:  # one automaton (the usual case, batch rows included): its pool
            table = used[0][0].tensor  # (cap, V)
            for _, prow, r, at in used:
                choice[r, at] = prow
        else:  # several automata: their rows in use, gathered into one table
            parts, off = [], 0
            for pool, prow, r, at in used:
                u, inv = np.unique(prow, return_inverse=True)
                parts.append(pool.tensor[torch.from_numpy(u).to(pool.device)])  # (U, V)
                choice[r, at] = inv.reshape(-1) + off
                off += len(u)
            table = torch.cat(parts)
        return LogitsEdit(classes=table, choice=torch.from_numpy(choice).to(logits.device),
                          rows=torch.tensor(rows, dtype=torch.long, device=logits.device))

    def check_commit(self, run, canvas, proposal, commit, masked=None, confidence=None) -> None:
        st = run.state.get(self.key)
        if not st:
            return
        for sl in st["slots"]:
            c_row = commit[sl.row, sl.start:sl.end]
            if not bool(c_row.any()):
                continue
            dfa = sl.dfa
            t2c = dfa.tok2cls
            toks = canvas[sl.row, sl.start:sl.end].cpu().numpy()
            prop = proposal[sl.row, sl.start:sl.end].cpu().numpy()
            cmask = c_row.cpu().numpy()
            row_masked = (masked if masked is not None else run.masked)[sl.row, sl.start:sl.end]
            masked_np = row_masked.cpu().numpy() & ~cmask
            merged = np.where(cmask, prop, toks)
            cls_row = _classes_of(t2c, merged)
            if dfa.completable(cls_row, masked_np, sl.sweeps):
                continue
            cand = np.flatnonzero(cmask)
            if confidence is not None:
                conf = confidence[sl.row, torch.as_tensor(cand + sl.start, device=confidence.device)].float().cpu().numpy()
                order = cand[np.argsort(-conf, kind="stable")]
            else:  # called without the sampler's scores: left to right
                order = cand
            keep_mask = dfa.select_jointly(np.where(cmask, 0, cls_row), masked_np | cmask, order, cls_row, sl.sweeps)
            drop = torch.as_tensor(cmask & ~keep_mask, device=commit.device)
            commit[sl.row, sl.start:sl.end] &= ~drop

    def finalize(self, run, results) -> None:
        st = run.state.get(self.key)
        if not st:
            return
        from steerdiff.vocab import vocab_for

        vocab = vocab_for(run.tokenizer)
        for sl in st["slots"]:
            res = results[sl.row]
            ids = [t for t in res.token_ids[sl.start:sl.end] if t != run.fill_id]
            raw = vocab.decode_bytes(ids)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                from steerdiff.errors import ValidationFailed

                raise ValidationFailed(f"{sl.constraint.type_name} constraint {sl.constraint.describe()}: span [{sl.start}, {sl.end}) is not valid UTF-8 (engine bug)", raw.decode("utf-8", "replace")) from None
            sl.constraint.check_text(text, res)


def _classes_of(tok2cls: np.ndarray, toks: np.ndarray) -> np.ndarray:
    """Token class of each id in ``toks`` (ids beyond the table: class 0, never allowed)."""
    return tok2cls.take(toks, mode="clip") * (toks < len(tok2cls))  # take(clip) is ~20x cheaper than np.clip here


def _span_text(run, toks, masked) -> str:
    from steerdiff.vocab import vocab_for

    vocab = vocab_for(run.tokenizer)
    return "".join("▒" if m else vocab.decode([int(t)]) for t, m in zip(toks, masked))


_SET_POOL_ROWS = 512  # expanded token sets kept per (DFA, device, V) before the pool starts afresh (25 MB at V = 49k)
_SET_POOL_START = _SET_POOL_ROWS + 64  # rows allocated up front: growing copies the pool


class _SetPool:
    """The ``(V,)`` token sets of one DFA's allowed class sets, expanded once and kept as rows of one
    ``(cap, V)`` bool tensor on one device: an edit can point into it (``classes = pool.tensor``,
    ``choice`` = row numbers) with no per-step copy. On the CPU the rows live in numpy (``np.take``
    is 2.5x faster than ``torch.gather`` here and single-threaded: torch's intra-op threads stall for
    tens of ms when another process holds a core) and the tensor shares their memory."""

    def __init__(self, dfa: TokenDFA, V: int, device):
        self.device = torch.device(device)
        self.cpu = self.device.type == "cpu"
        self.width = _tok2cls_width(dfa, V)  # (V,) class of each token id
        self.index: dict[bytes, int] = {}
        self._alloc(_SET_POOL_START)  # numpy zeros are lazily mapped pages: no cost until written

    def _alloc(self, cap: int) -> None:
        V = len(self.width)
        old = getattr(self, "tensor", None)
        if self.cpu:
            arr = np.zeros((cap, V), dtype=bool)
            if old is not None:
                arr[: len(self.index)] = self.array[: len(self.index)]
            self.array, self.tensor = arr, torch.from_numpy(arr)  # (cap, V), one memory
        else:
            t = torch.zeros((cap, V), dtype=torch.bool, device=self.device)
            if old is not None:
                t[: len(self.index)] = old[: len(self.index)]
            self.tensor = t

    def rows(self, sets: np.ndarray) -> np.ndarray:
        """Row numbers ``(U,)`` of ``sets (U, C)`` bool, expanding the sets not seen before."""
        keys = [row.tobytes() for row in sets]
        missing = [i for i, k in enumerate(keys) if k not in self.index]
        if missing:
            n = len(self.index)
            if n + len(missing) > self.tensor.shape[0]:
                self._alloc(max(2 * self.tensor.shape[0], n + len(missing)))
            # (m, V); gathering whole (m,) rows of the transposed sets is 2x faster than m gathers of (V,)
            new = np.take(sets[missing].T, self.width, axis=0, mode="clip").T
            if self.cpu:
                self.array[n : n + len(missing)] = new
            else:
                self.tensor[n : n + len(missing)] = torch.from_numpy(new).to(self.device)
            for j, i in enumerate(missing):
                self.index[keys[i]] = n + j
        return np.array([self.index[k] for k in keys], dtype=np.int64)


def _set_pool(dfa: TokenDFA, V: int, device) -> _SetPool:
    """The DFA's pool for ``(device, V)``; started afresh once past ``_SET_POOL_ROWS`` rows (call it
    before a step's first use: row numbers handed out earlier mean nothing after that)."""
    key = ("pool", str(device), V)
    pool = dfa._torch.get(key)
    if pool is None or len(pool.index) > _SET_POOL_ROWS:
        pool = dfa._torch[key] = _SetPool(dfa, V, device)
    return pool


def _tok2cls_width(dfa: TokenDFA, V: int) -> np.ndarray:
    """``(V,)`` the class of each token id below ``V`` (ids beyond the table: class 0, never allowed)."""
    key = ("tok2cls", V)
    got = dfa._torch.get(key)
    if got is None:
        got = np.zeros(V, dtype=np.int64)
        n = min(V, len(dfa.tok2cls))
        got[:n] = dfa.tok2cls[:n]
        dfa._torch[key] = got
    return got

