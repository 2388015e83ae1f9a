"""Exact regular constraints: ``Regex(pattern)``, ``Choice(options)``, ``TokenSet(tokens)``.

    sd.generate(model, "Date:", length=16, constraints=[sd.Regex(r"\\d{4}-\\d{2}-\\d{2}")])

Patterns use Python's ``re`` dialect; the output text of the span always ``re.fullmatch``es (checked
again in ``finalize``). The span may end early with a run of the model's padding token, which the text
drops. Works over any unmasking order: see :mod:`steerdiff_plugins.automata.token_dfa`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

from steerdiff.constraints import Constraint, RegularConstraint
from steerdiff.edits import LogitsEdit
from steerdiff.errors import ConstraintError, ValidationFailed
from steerdiff.hookspecs import hookimpl
from steerdiff.vocab import vocab_for

from steerdiff_plugins.automata.byte_level import check_regex
from steerdiff_plugins.automata.regular_hooks import RegularHooks, span_of


def _span_arg(span):
    if span is None:
        return None
    try:
        s, e = (int(x) for x in span)
    except (TypeError, ValueError):
        raise ConstraintError(f"span must be a (start, end) pair of integers, got {span!r}") from None
    return (s, e)


class Regex(RegularConstraint):
    """The span's text must ``re.fullmatch(pattern)`` (Python dialect, regular features only)."""

    type_name = "regex"
    guarantee = "exact"

    def __init__(self, pattern: str, span=None):
        if not isinstance(pattern, str):
            raise ConstraintError(f"Regex pattern must be a string, got {type(pattern).__name__}")
        check_regex(pattern)  # bad or non-regular patterns fail here, with the reason
        self.pattern = pattern
        self.span = _span_arg(span)

    def regex(self) -> str:
        return self.pattern

    def describe(self) -> str:
        p = self.regex()
        return repr(p if len(p) <= 60 else p[:57] + "...")

    def shortest_tokens(self, vocab, fill_id: int | None) -> int:
        """The token automaton's minimum length (cached: ``prepare`` reuses the automaton)."""
        from steerdiff_plugins.automata.token_walk import compile_token_dfa

        return max(0, compile_token_dfa(self.regex(), vocab, fill_id).min_tokens)

    def check_text(self, text: str, result) -> None:
        if re.fullmatch(self.regex(), text) is None:
            raise ValidationFailed(f"{self.type_name} constraint {self.describe()} does not match the generated text (engine bug)", text)


class Choice(Regex):
    """The span's text is exactly one of ``options`` (literal strings)."""

    type_name = "choice"

    def __init__(self, options: Iterable[str], span=None):
        if isinstance(options, str) or not isinstance(options, Iterable):
            raise ConstraintError(f"Choice options must be a list of strings, got {options!r}")
        opts = list(dict.fromkeys(options))
        if not opts:
            raise ConstraintError("Choice needs at least one option")
        bad = [o for o in opts if not isinstance(o, str)]
        if bad:
            raise ConstraintError(f"Choice options must be strings; got {bad[:3]!r}")
        self.options = opts
        super().__init__("|".join(re.escape(o) for o in sorted(opts, key=len, reverse=True)), span)

    def describe(self) -> str:
        return repr(self.options if len(self.options) <= 6 else self.options[:6] + ["..."])

    def check_text(self, text: str, result) -> None:
        if text not in self.options:
            raise ValidationFailed(f"choice constraint {self.describe()}: the generated text is not one of the options (engine bug)", text)


class TokenSet(Constraint):
    """Each position of the span holds a token from a set: ``tokens`` is one collection for every
    position, or a list of collections, one per position of the span. Entries are token ids or strings
    (a token's vocabulary spelling, or a text that encodes to exactly one token)."""

    type_name = "tokens"
    guarantee = "exact"

    def __init__(self, tokens, span=None):
        if isinstance(tokens, (str, int)) or not isinstance(tokens, Iterable):
            raise ConstraintError(f"TokenSet tokens must be a collection of ids/strings or a list of them, got {tokens!r}")
        items = list(tokens)
        if not items:
            raise ConstraintError("TokenSet needs at least one token")
        self.per_position = all(isinstance(x, (list, tuple, set, frozenset)) for x in items)
        self.tokens = [list(x) for x in items] if self.per_position else items
        if self.per_position and any(not x for x in self.tokens):
            raise ConstraintError("TokenSet: a per-position set is empty")
        self.span = _span_arg(span)

    def describe(self) -> str:
        return repr(self.tokens[:6])

    def resolve(self, tokenizer) -> list[set[int]]:
        sets = self.tokens if self.per_position else [self.tokens]
        vocab = vocab_for(tokenizer)
        out = []
        for s in sets:
            ids = set()
            for x in s:
                ids.add(_token_id(x, tokenizer, vocab))
            out.append(ids)
        return out


def _token_id(x, tokenizer, vocab) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, str)):
        raise ConstraintError(f"TokenSet entry {x!r} is neither a token id nor a string")
    if isinstance(x, int):
        if not 0 <= x < vocab.size:
            raise ConstraintError(f"TokenSet entry {x} is not a token id of this tokenizer (size {vocab.size})")
        tid = x
    else:
        tid = tokenizer.convert_tokens_to_ids(x)
        if tid is None or tid == tokenizer.unk_token_id and x != tokenizer.unk_token:
            ids = tokenizer.encode(x, add_special_tokens=False)
            if len(ids) != 1:
                raise ConstraintError(f"TokenSet entry {x!r} is {len(ids)} tokens for this tokenizer, not one token")
            tid = ids[0]
    if tid in vocab.special:
        raise ConstraintError(f"TokenSet entry {x!r} is a special token ({tid}); special tokens are never allowed inside a constrained span")
    return int(tid)


_HOOKS = RegularHooks("regex", Regex)
_TOKKEY = "regex.tokens"


@hookimpl
def register_constraints(register):
    register("regex", Regex)
    register("choice", Choice)
    register("tokens", TokenSet)


@hookimpl
def prepare(run):
    _HOOKS.prepare(run)
    slots = []
    for row, c in run.constraints_of(TokenSet):
        s, e = span_of(c, run.length)
        sets = c.resolve(run.tokenizer)
        if c.per_position and len(sets) != e - s:
            raise ConstraintError(f"TokenSet on row {row}: {len(sets)} per-position sets for a span of {e - s} positions")
        if not c.per_position:
            sets = sets * (e - s)
        slots.append((row, c, s, e, sets))
    if slots:
        run.state[_TOKKEY] = slots


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    edit = _HOOKS.adjust_logits(run, canvas, masked, logits)
    slots = run.state.get(_TOKKEY)
    if not slots:
        return edit
    B, L, V = logits.shape
    dev = logits.device
    have = edit.rows.tolist() if edit is not None else []
    rows = sorted(set(have) | {r for r, *_ in slots})
    ridx = {r: i for i, r in enumerate(rows)}
    choice = torch.full((len(rows), L), -1, dtype=torch.long, device=dev)  # (R, L)
    classes = []  # (V,) token sets
    if edit is not None:  # the rows of the regex edit's table that it uses (the table may be a larger pool)
        used, remap = torch.unique(edit.choice, return_inverse=True)  # (K,), choice's shape
        keep = used >= 0
        classes = list(edit.classes[used[keep].to(edit.classes.device)].to(dev))
        remap = remap - int((~keep).sum())  # -1 stays -1 (it sorts first when present)
        choice[[ridx[r] for r in have]] = remap.to(dev)
    for row, c, s, e, sets in slots:
        i = ridx[row]
        for p in range(s, e):
            if not bool(masked[row, p]):
                continue
            col = torch.zeros(V, dtype=torch.bool, device=dev)
            col[[t for t in sets[p - s] if t < V]] = True
            if choice[i, p] >= 0:  # a regex span covers it too: both must hold
                col &= classes[int(choice[i, p])]
            classes.append(col)
            choice[i, p] = len(classes) - 1
    if not classes:
        return None
    return LogitsEdit(classes=torch.stack(classes), choice=choice, rows=torch.tensor(rows, dtype=torch.long, device=dev))


@hookimpl
def check_commit(run, canvas, masked, proposal, commit, confidence):
    _HOOKS.check_commit(run, canvas, proposal, commit, masked=masked, confidence=confidence)  # TokenSet positions are independent: nothing to drop


@hookimpl
def finalize(run, results):
    _HOOKS.finalize(run, results)
    for row, c, s, e, sets in run.state.get(_TOKKEY, []):
        ids = results[row].token_ids[s:e]
        for p, (t, ok) in enumerate(zip(ids, sets)):
            if t not in ok:
                raise ValidationFailed(f"tokens constraint on row {row}: position {s + p} holds token {t}, outside its set (engine bug)", results[row].text)
