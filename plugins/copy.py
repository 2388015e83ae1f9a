"""Copy guidance: prefer tokens whose text occurs in a source (by default the row's prompt).

    sd.generate(model, text, constraints=[sd.JSONSchema(Person)], guidance=[sd.CopyGuidance(scale=2.0)])

Extraction copies values out of the text: a soft pointer prior helps a small model pick the right
tokens. Two biases, nothing banned (exact constraints stay in charge: their masks are applied after
biases, so the output is as valid as without it). Guarantee: ``soft``.

- unigram: every token whose bytes (at least ``min_bytes`` long) occur in the source gets ``+scale``;
- continuation: at a masked position whose left neighbour is committed, tokens that follow that
  neighbour somewhere in the source get ``+follow`` (and symmetrically tokens that precede a committed
  right neighbour), so a copied span continues in source order. Tokens are compared without their
  leading space (``" Lopez"`` and ``"Lopez"`` are the same word), since a word is tokenized with a
  space inside a sentence and without one after a JSON quote. ``sd.fill(..., copy=scale)`` adds it (default ``fill.COPY_SCALE``; ``copy=0`` turns it off).
"""

from __future__ import annotations

import torch

from steerdiff.constraints import Constraint
from steerdiff.edits import LogitsEdit
from steerdiff.errors import ConstraintError
from steerdiff.hookspecs import hookimpl
from steerdiff.vocab import vocab_for

KEY = "copy"


class CopyGuidance(Constraint):
    """Bias toward tokens that occur in ``source`` (default: the row's prompt text)."""

    guarantee = "soft"

    def __init__(self, scale: float = 2.0, source: str | None = None, min_bytes: int = 2, follow: float | None = None):
        for name, v in (("scale", scale), ("follow", follow)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConstraintError(f"CopyGuidance {name} must be a number, got {v!r}")
        self.follow = float(scale if follow is None else follow)
        if source is not None and not isinstance(source, str):
            raise ConstraintError(f"CopyGuidance source must be a string, got {type(source).__name__}")
        self.scale, self.source, self.min_bytes = float(scale), source, int(min_bytes)


def source_tokens(vocab, source: str, min_bytes: int) -> list[int]:
    """Ids of tokens whose bytes (>= ``min_bytes`` long, not special) occur in ``source``."""
    src = source.encode("utf-8")
    return [t for t, b in enumerate(vocab.token_bytes) if len(b) >= min_bytes and t not in vocab.special and b in src]


@hookimpl
def register_constraints(register):
    register("copy", CopyGuidance)


def _word_index(vocab) -> tuple[list[bytes], dict[bytes, list[int]]]:
    """Each token's bytes without a leading space (a token of spaces only keeps them: tokenizers that
    split spaces off words spell ``"Maria Lopez"`` as ``Maria`` `` `` ``Lopez`` in prompt and canvas
    alike), and the ids sharing each such key."""
    keys = [(b.lstrip(b" ") or b) if t not in vocab.special else b"" for t, b in enumerate(vocab.token_bytes)]
    ids: dict[bytes, list[int]] = {}
    for t, k in enumerate(keys):
        if k:
            ids.setdefault(k, []).append(t)
    return keys, ids


@hookimpl
def prepare(run):
    items = list(run.constraints_of(CopyGuidance))
    if not items:
        return
    vocab = vocab_for(run.tokenizer)
    keys, ids = _word_index(vocab)
    rows = []
    for row, c in items:
        text = c.source if c.source is not None else run.prompts[row]
        seq = [keys[t] for t in run.tokenizer(text, add_special_tokens=False)["input_ids"] if keys[t]]
        after: dict[bytes, set[int]] = {}
        before: dict[bytes, set[int]] = {}
        for a, b in zip(seq, seq[1:]):
            after.setdefault(a, set()).update(ids[b])
            before.setdefault(b, set()).update(ids[a])
        rows.append((row, c, source_tokens(vocab, text, c.min_bytes), after, before))
    run.state[KEY] = {"rows": rows, "keys": keys}


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    st = run.state.get(KEY)
    if not st:
        return None
    items, keys = st["rows"], st["keys"]
    R, L, V = len(items), logits.shape[1], logits.shape[-1]
    bias = torch.zeros((R, L, V), dtype=logits.dtype)  # (R, L, V), built on the host, moved once
    for i, (row, c, toks, after, before) in enumerate(items):
        bias[i, :, [t for t in toks if t < V]] = c.scale
        if not c.follow:
            continue
        m = masked[row].tolist()
        cv = canvas[row].tolist()
        for p in range(L):
            if not m[p]:
                continue
            near = set()
            if p > 0 and not m[p - 1] and cv[p - 1] < len(keys):
                near |= after.get(keys[cv[p - 1]], set())
            if p + 1 < L and not m[p + 1] and cv[p + 1] < len(keys):
                near |= before.get(keys[cv[p + 1]], set())
            if near:
                bias[i, p, [t for t in near if t < V]] += c.follow
    rows = torch.tensor([it[0] for it in items], dtype=torch.long, device=logits.device)
    return LogitsEdit(bias=bias.to(logits.device), rows=rows)
