"""Copy guidance: prefer tokens whose text occurs in a source (by default the row's prompt).

    sd.generate(model, text, constraints=[sd.JSONSchema(Person)], guidance=[sd.CopyGuidance(scale=2.0)])

Extraction copies values out of the text: a soft pointer prior helps a small model pick the right
tokens. Every token whose bytes (at least ``min_bytes`` long) occur in the source's bytes gets
``+scale`` on its logit at every masked position; nothing is banned, so exact constraints stay in
charge (their masks are applied after biases) and the output is as valid as without it. Guarantee:
``soft``. ``sd.fill(..., copy=scale)`` adds it (default ``fill.COPY_SCALE``; ``copy=0`` turns it off).
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

    def __init__(self, scale: float = 2.0, source: str | None = None, min_bytes: int = 2):
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ConstraintError(f"CopyGuidance scale must be a number, got {scale!r}")
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


@hookimpl
def prepare(run):
    items = list(run.constraints_of(CopyGuidance))
    if not items:
        return
    vocab = vocab_for(run.tokenizer)
    run.state[KEY] = [(row, c.scale, source_tokens(vocab, c.source if c.source is not None else run.prompts[row], c.min_bytes))
                      for row, c in items]


@hookimpl
def adjust_logits(run, logits):
    items = run.state.get(KEY)
    if not items:
        return None
    V = logits.shape[-1]
    bias = torch.zeros((len(items), 1, V), dtype=logits.dtype, device=logits.device)  # (R, 1, V)
    for i, (_, scale, toks) in enumerate(items):
        bias[i, 0, [t for t in toks if t < V]] = scale
    rows = torch.tensor([r for r, _, _ in items], dtype=torch.long, device=logits.device)
    return LogitsEdit(bias=bias, rows=rows)
