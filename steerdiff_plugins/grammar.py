"""Lark grammar constraints, exact in any unmasking order.

    sd.Grammar(open("calc.lark").read(), start="start")

Every finished output parses with ``lark.Lark(grammar, start=start, parser="lalr")``. How:

- The leftmost masked position of the span (the *frontier*) gets the exact allowed set: the tokens
  whose bytes the grammar's lexer/parser model accepts from the text so far AND that leave a verified
  completion fitting in the positions after it (see ``steerdiff_plugins.grammars``). The padding token
  ``run.fill_id`` is allowed there only where the text so far is a complete sentence, and then only
  padding may follow.
- Positions right of the frontier may be committed by the schedule (speculation). ``check_commit``
  checks a run of commits contiguous with the frontier exactly and drops the ones that do not fit;
  ``on_commit`` advances the frontier over committed tokens that fit once it reaches them and
  re-masks the first that does not. The invariant after every step: the text up to the frontier has a
  verified completion no longer than the positions left, so the frontier always has an allowed token
  and generation never dead-ends.
- Counts (``run.state["grammar_stats"]`` and ``result.grammar``): commits ahead of the frontier,
  how many survived, how many were re-masked; forward passes versus one token per step.
"""

from __future__ import annotations

import os

import torch

from steerdiff.constraints import Constraint
from steerdiff.edits import LogitsEdit
from steerdiff.errors import ConstraintError, GrammarError, ValidationFailed
from steerdiff.hookspecs import hookimpl
from steerdiff.vocab import vocab_for

from steerdiff_plugins.compile_budget import compile_deadline
from steerdiff_plugins.grammars.compiled import compile_grammar
from steerdiff_plugins.grammars.loader import load_lark

__all__ = ["Grammar", "GrammarError"]


class Grammar(Constraint):
    """Output must be a sentence of a lark grammar (LALR(1), contextual lexer, ``%ignore``, ``%import common``).

    ``grammar``: the grammar text. ``start``: the start rule. ``import_paths``: directories ``%import``
    may read grammars from; without them a grammar imports lark's bundled grammars only (``common``, ...),
    never files of the current directory. Raises :class:`GrammarError` naming the rule or line for a
    grammar lark cannot load, an undefined rule or terminal, a missing start rule, a refused import,
    a reduce/reduce conflict, or an empty language.
    """

    type_name = "grammar"
    guarantee = "exact"

    def __init__(self, grammar: str, start: str = "start", import_paths=()):
        if not isinstance(grammar, str):
            raise GrammarError(f"grammar must be the text of a lark grammar (a str), got {type(grammar).__name__}")
        if not isinstance(start, str) or not start:
            raise GrammarError(f"start must be a rule name, got {start!r}")
        if isinstance(import_paths, (str, bytes)) or not all(isinstance(p, str) and os.path.isdir(p) for p in import_paths):
            raise GrammarError(f"import_paths must be a list of existing directories, got {import_paths!r:.80}")
        self.grammar = grammar
        self.start = start
        self.import_paths = tuple(os.path.abspath(p) for p in import_paths)
        load_lark(grammar, start, self.import_paths)  # fail fast with a clear error, before any model runs

    def __eq__(self, other):
        return isinstance(other, Grammar) and (self.grammar, self.start, self.span, self.import_paths) == (
            other.grammar, other.start, other.span, other.import_paths)

    def __hash__(self):
        return hash((self.grammar, self.start, self.span, self.import_paths))

    def shortest_tokens(self, vocab, fill_id: int | None) -> int:
        """Bytes of the shortest completion the compiled grammar knows from its start: an upper bound on its
        tokens, so a canvas this long can hold it (cached engine)."""
        with compile_deadline():
            cg = compile_grammar(self.grammar, self.start, vocab, self.import_paths)
            w = cg.witness_at_start(cg.initial)
        return len(w) if w is not None else 0

    def result_value(self, text: str, tree):
        """What ``finalize`` stores in ``result.value`` for an output ``text`` that lark parsed into ``tree``:
        the tree. A subclass may validate further (raising :class:`ValidationFailed`) and return another
        value (``json_schema``'s grammar-backed constraint returns the validated JSON value)."""
        return tree

    def __repr__(self):
        head = self.grammar.strip().splitlines()[0][:40] if self.grammar.strip() else ""
        return f"Grammar({head!r}..., start={self.start!r}" + (f", span={self.span}" if self.span else "") + ")"


def validator(grammar: str, start: str, import_paths: tuple = ()):
    """lark's own ``lark.Lark(grammar, start=start, parser="lalr")`` parser (contextual lexer, lark's default
    for LALR), cached; finished outputs are checked with it. Raises GrammarError like ``load_lark``."""
    return load_lark(grammar, start, import_paths)


class _Row:
    """Per-row state of one Grammar constraint (lives in ``run.state``)."""

    __slots__ = ("cg", "row", "s0", "s1", "f", "stack", "q", "w", "started", "strip", "done", "spec", "stats", "constraint")

    def __init__(self, cg, row, s0, s1, strip, constraint):
        self.cg, self.row, self.s0, self.s1, self.strip, self.constraint = cg, row, s0, s1, strip, constraint
        self.f = s0
        self.stack, self.q = cg.initial, 0
        self.w = cg.witness_at_start(cg.initial)
        self.started = False
        self.done = False
        self.spec: set[int] = set()
        self.stats = {"speculative_commits": 0, "speculative_survived": 0, "speculative_remasked": 0,
                      "dropped_in_check": 0, "frontier_commits": 0, "mask_seconds": 0.0, "mask_calls": 0}

    @property
    def first(self) -> bool:
        return self.strip and not self.started

    def token_bytes(self, tid: int) -> bytes:
        b = self.cg.vocab.token_bytes[tid]
        return b[1:] if self.first and b.startswith(b" ") else b

    def try_token(self, stack, q, w, tid: int, pos: int, first: bool):
        """(stack, q, witness) after token ``tid`` at canvas position ``pos``, or None when it does not fit."""
        cg = self.cg
        nxt = cg.token_step(stack, q, tid, first)
        if nxt is None:
            return None
        b = cg.vocab.token_bytes[tid]
        if first and b.startswith(b" "):
            b = b[1:]
        room = self.s1 - pos - 1
        if w is not None and w.startswith(b) and len(w) - len(b) <= room:
            return nxt[0], nxt[1], w[len(b):]
        if cg.cost(*nxt) > room:
            return None
        w2 = cg.witness(*nxt)
        if w2 is None or len(w2) > room:
            return None
        return nxt[0], nxt[1], w2


def _rows(run):
    return run.state.get("grammar_rows", [])


@hookimpl
def register_constraints(register):
    register("grammar", Grammar)


@hookimpl
def prepare(run):
    rows = []
    vocab = None
    for row, c in run.constraints_of(Grammar):
        vocab = vocab or vocab_for(run.tokenizer)
        s0, s1 = c.span if c.span is not None else (0, run.length)
        if not (0 <= s0 < s1 <= run.length):
            raise ConstraintError(f"grammar span {c.span} is outside the canvas [0, {run.length})")
        with compile_deadline():  # one clock per grammar's compile (compile_budget)
            cg = compile_grammar(c.grammar, c.start, vocab, getattr(c, "import_paths", ()))
            w = cg.witness_at_start(cg.initial)
        if len(w) > s1 - s0:
            raise ConstraintError(f"grammar (start rule {c.start!r}) needs at least {len(w)} tokens here (e.g. {w.decode('utf-8', 'replace')!r}), "
                                  f"but its span has {s1 - s0} positions")
        rows.append(_Row(cg, row, s0, s1, vocab.leading_space and s0 == 0, c))
    run.state["grammar_rows"] = rows
    run.state["grammar_stats"] = [r.stats for r in rows]


def _frontier_allowed(r: _Row, fill_id: int, V: int) -> torch.Tensor:
    import time

    t0 = time.perf_counter()
    out = torch.zeros(V, dtype=torch.bool)
    if r.done:
        out[fill_id] = True
        return out
    cg = r.cg
    ids, _ = cg.allowed(r.stack, r.q, r.s1 - r.f - 1, first=r.first, witness=r.w)
    ids = ids[ids < V]
    out[torch.from_numpy(ids)] = True
    if 0 <= fill_id < V:
        out[fill_id] = cg.accepts_eof(r.stack, r.q)
    r.stats["mask_seconds"] += time.perf_counter() - t0
    r.stats["mask_calls"] += 1
    if not bool(out.any()):  # cannot happen while the invariant holds; say so loudly if it does
        raise ConstraintError(f"grammar: no token fits at canvas position {r.f} of row {r.row} (text so far ends a dead configuration)")
    return out


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    rows = _rows(run)
    if not rows:
        return None
    B, L, V = logits.shape
    by_row: dict[int, list[_Row]] = {}
    for r in rows:
        by_row.setdefault(r.row, []).append(r)
    row_ids = sorted(by_row)
    st = run.state.setdefault("grammar_classes", {})
    classes: list[torch.Tensor] = []
    base: dict[int, int] = {}  # id(compiled grammar) -> index of its two classes in ``classes``

    def base_of(cg) -> int:
        """Class ``k``: any text token of this grammar or padding (speculative, beyond the frontier);
        ``k + 1``: padding only."""
        if id(cg) not in base:
            if (id(cg), V) not in st:
                spec_ok = torch.zeros(V, dtype=torch.bool)
                ok = cg.tok_ok[:V]
                spec_ok[: len(ok)] = torch.from_numpy(ok)
                only_fill = torch.zeros(V, dtype=torch.bool)
                if 0 <= run.fill_id < V:
                    spec_ok[run.fill_id] = True
                    only_fill[run.fill_id] = True
                st[(id(cg), V)] = (spec_ok, only_fill)
            base[id(cg)] = len(classes)
            classes.extend(st[(id(cg), V)])
        return base[id(cg)]

    choice = torch.full((len(row_ids), L), -1, dtype=torch.long)  # (R, L)
    for i, b in enumerate(row_ids):
        for r in by_row[b]:
            if r.f >= r.s1:
                continue
            k = base_of(r.cg)
            choice[i, r.s0 : r.s1] = k
            if r.done:
                choice[i, r.f : r.s1] = k + 1
            elif bool(masked[b, r.f]):
                classes.append(_frontier_allowed(r, run.fill_id, V))  # the exact set at the frontier
                choice[i, r.f] = len(classes) - 1
    if not classes:
        return None
    return LogitsEdit(classes=torch.stack(classes).to(logits.device), choice=choice.to(logits.device),
                      rows=torch.tensor(row_ids, dtype=torch.long, device=logits.device))


@hookimpl
def check_commit(run, canvas, masked, proposal, commit):
    fill_id = run.fill_id
    for r in _rows(run):
        b = r.row
        stack, q, w, done, started = r.stack, r.q, r.w, r.done, r.started
        pos = r.f
        while pos < r.s1:
            new = bool(commit[b, pos])
            tid = int(proposal[b, pos]) if new else int(canvas[b, pos])
            if not new and bool(masked[b, pos]):
                break
            if tid == fill_id:
                ok = done or r.cg.accepts_eof(stack, q)
                if ok:
                    done = True
            elif done:
                ok = False
            else:
                first = r.strip and not started
                nxt = r.try_token(stack, q, w, tid, pos, first)
                ok = nxt is not None
                if ok:
                    stack, q, w = nxt
                    started = True
            if not ok:
                if new and pos != r.f:
                    commit[b, pos] = False
                    r.stats["dropped_in_check"] += 1
                break
            pos += 1


@hookimpl
def on_commit(run, canvas, masked, committed):
    rows = _rows(run)
    if not rows:
        return None
    fill_id = run.fill_id
    remask = None
    for r in rows:
        b = r.row
        ahead = committed[b, r.f + 1 : r.s1].nonzero().flatten() + r.f + 1 if r.f + 1 < r.s1 else []
        for p in (ahead.tolist() if len(ahead) else []):
            if p not in r.spec:
                r.spec.add(p)
                r.stats["speculative_commits"] += 1
        if r.f < r.s1 and bool(committed[b, r.f]):
            r.stats["frontier_commits"] += 1
        while r.f < r.s1:
            tid = int(canvas[b, r.f])
            if bool(masked[b, r.f]):
                break
            was_spec = r.f in r.spec
            ok = False
            if tid == fill_id:
                ok = r.done or r.cg.accepts_eof(r.stack, r.q)
                if ok:
                    r.done = True
                    r.w = b""
            elif not r.done:
                nxt = r.try_token(r.stack, r.q, r.w, tid, r.f, r.first)
                if nxt is not None:
                    r.stack, r.q, r.w = nxt
                    r.started = True
                    ok = True
            if not ok:
                if remask is None:
                    remask = torch.zeros_like(committed)
                remask[b, r.f] = True
                r.spec.discard(r.f)
                r.stats["speculative_remasked"] += 1
                break
            if was_spec:
                r.stats["speculative_survived"] += 1
                r.spec.discard(r.f)
            r.f += 1
    return remask


@hookimpl
def finalize(run, results):
    vocab = None
    for r in _rows(run):
        vocab = vocab or vocab_for(run.tokenizer)
        res = results[r.row]
        ids = [t for t in res.token_ids[r.s0 : r.s1] if t != run.fill_id]
        raw = vocab.decode_bytes(ids) if r.strip else b"".join(vocab.token_bytes[t] for t in ids if t not in vocab.special)
        text = raw.decode("utf-8", errors="replace")
        if r.f < r.s1 and not r.done:
            raise ValidationFailed(f"grammar: row {r.row} ended with its frontier at {r.f} < {r.s1}", text)
        try:
            tree = validator(r.constraint.grammar, r.constraint.start, getattr(r.constraint, "import_paths", ())).parse(text)
        except Exception as exc:
            raise ValidationFailed(f"grammar: output does not parse with lark (start {r.constraint.start!r}): {type(exc).__name__}: {str(exc).splitlines()[0]}", text) from None
        res.value = r.constraint.result_value(text, tree)
        stats = dict(r.stats)
        stats["forward_passes"] = run.forward_passes
        stats["tokens"] = len(ids)
        stats["span_positions"] = r.s1 - r.s0
        stats["survival_rate"] = (stats["speculative_survived"] / stats["speculative_commits"]) if stats["speculative_commits"] else None
        stats["mask_ms_per_call"] = 1000 * stats["mask_seconds"] / max(1, stats["mask_calls"])
        res.grammar = stats
        r.stats.update(stats)
