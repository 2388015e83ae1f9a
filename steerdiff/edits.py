"""Logit edits returned by ``adjust_logits``, their checks, and their order-free application."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LogitsEdit:
    """What one plugin wants done to the logits of one step.

    ``allowed``: bool tensor broadcastable to ``(B, L, V)`` (or ``(R, L, V)`` with ``rows``): False
    bans a token at a position. ``bias``: float tensor with the same broadcasting, added to the logits.
    ``rows``: optional ``LongTensor (R,)`` of batch rows the edit covers; the other rows are untouched.
    """

    allowed: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    rows: torch.Tensor | None = None


def check_edit(edit: object, shape: tuple[int, int, int]) -> str | None:
    """Return why ``edit`` is malformed for logits of ``shape`` (B, L, V), or None when it is fine."""
    if not isinstance(edit, LogitsEdit):
        return f"adjust_logits must return a LogitsEdit or None, got {type(edit).__name__}"
    B, L, V = shape
    rows = B
    if edit.rows is not None:
        if edit.rows.dim() != 1 or edit.rows.dtype not in (torch.int64, torch.int32):
            return f"rows must be a 1-d integer tensor, got shape {tuple(edit.rows.shape)} {edit.rows.dtype}"
        rows = edit.rows.numel()
    for name in ("allowed", "bias"):
        t = getattr(edit, name)
        if t is None:
            continue
        if name == "allowed" and t.dtype != torch.bool:
            return f"allowed must be a bool tensor, got {t.dtype}"
        if name == "bias" and not t.is_floating_point():
            return f"bias must be a float tensor, got {t.dtype}"
        try:
            torch.broadcast_shapes(tuple(t.shape), (rows, L, V))
        except RuntimeError:
            return f"{name} has shape {tuple(t.shape)}, not broadcastable to {(rows, L, V)}"
        if torch.broadcast_shapes(tuple(t.shape), (rows, L, V)) != (rows, L, V):
            return f"{name} has shape {tuple(t.shape)}, which would grow the logits beyond {(rows, L, V)}"
    return None


def apply_edits(logits: torch.Tensor, edits: list[LogitsEdit]) -> torch.Tensor:
    """Apply edits to ``logits (B, L, V)`` in place: biases summed first and added once, then every
    ``allowed`` mask (a ban is -inf whichever plugin set it, so the result is the AND in any order).

    Equivalent to ANDing every mask and summing every bias into full ``(B, L, V)`` tensors and applying
    them once, without building those tensors.
    """
    B = logits.shape[0]
    everyone = torch.arange(B, device=logits.device)

    def full_rows(e: LogitsEdit) -> bool:
        return e.rows is None or (e.rows.numel() == B and bool((e.rows.to(logits.device) == everyone).all()))

    biased = [e for e in edits if e.bias is not None]
    if biased:
        total = None
        for e in biased:
            part = e.bias if full_rows(e) else torch.zeros(logits.shape, dtype=logits.dtype, device=logits.device).index_add_(0, e.rows, e.bias.expand(len(e.rows), *logits.shape[1:]).to(logits.dtype))
            total = part if total is None else total + part
        logits += total  # (B, L, V)
    for e in edits:
        if e.allowed is None:
            continue
        if full_rows(e):
            logits.masked_fill_(~e.allowed, float("-inf"))  # (B, L, V)
        else:
            sub = logits[e.rows]  # (R, L, V) copy
            sub.masked_fill_(~e.allowed, float("-inf"))
            logits[e.rows] = sub
    return logits
