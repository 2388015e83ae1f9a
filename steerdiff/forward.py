"""One forward pass of the model over a canvas: the input layout (prompt, canvas, closing tokens) and the
logits aligned to the canvas. Used by the loop, by ``Run.model_logits`` (extra passes for plugins) and by
``rewrite``; it imports neither, so the loop and the run context do not import each other."""

from __future__ import annotations

import torch

from .adapters import Adapter
from .errors import ConfigError

__all__ = ["canvas_logits"]


def _layout(model: Adapter, prompt_ids: list[list[int]], length: int):
    """Input ids ``(B, T)``, attention mask ``(B, T)`` and canvas columns ``(B, L)`` for these prompts."""
    suffix = model.suffix_ids
    B = len(prompt_ids)
    widths = [len(p) + length + len(suffix) for p in prompt_ids]
    T = max(widths)
    if T > model.max_positions:
        raise ConfigError(
            f"prompt ({max(len(p) for p in prompt_ids)} tokens) plus canvas ({length}) plus {len(suffix)} closing "
            f"tokens is {T} positions; the model has {model.max_positions}"
        )
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else model.fill_id
    base = torch.full((B, T), pad, dtype=torch.long)
    attn = torch.zeros((B, T), dtype=torch.long)
    cols = torch.empty((B, length), dtype=torch.long)
    for b, p in enumerate(prompt_ids):
        n = len(p)
        base[b, :n] = torch.tensor(p, dtype=torch.long)
        base[b, n + length: widths[b]] = torch.tensor(suffix, dtype=torch.long)
        attn[b, : widths[b]] = 1
        cols[b] = torch.arange(n, n + length)
    dev = model.device
    return base.to(dev), attn.to(dev), cols.to(dev)


def canvas_logits(model: Adapter, prompt_ids: list[list[int]], canvas: torch.Tensor) -> torch.Tensor:
    """One forward pass of ``canvas (B, L)`` after ``prompt_ids``: logits ``(B, L, V)`` aligned to the canvas."""
    B, L = canvas.shape
    base, attn, cols = _layout(model, prompt_ids, L)  # (B, T), (B, T), (B, L)
    base.scatter_(1, cols, canvas)
    raw = model.logits(base, attn)  # (B, T, V)
    idx = (cols - model.shift).clamp_min(0)[..., None].expand(B, L, raw.shape[-1])  # (B, L, V)
    return torch.gather(raw, 1, idx).float()
