"""The masked-diffusion (MDLM/LLaDA) training objective."""
from __future__ import annotations

import torch


def diffusion_loss(model, ids, att, cm, mask_id: int, eps: float, gen: torch.Generator):
    """LLaDA's masked-diffusion loss; logits are computed only at masked positions (cheaper)."""
    B, T = ids.shape
    t = torch.rand(B, 1, generator=gen, device=ids.device) * (1 - eps) + eps  # (B, 1)
    masked = (torch.rand(B, T, generator=gen, device=ids.device) < t) & cm  # (B, T) only canvas positions
    if not masked.any():  # rare: force one masked canvas position
        i, j = cm.nonzero()[0]
        masked[i, j] = True
    x = ids.masked_fill(masked, mask_id)
    h = model.base_model(input_ids=x, attention_mask=att).last_hidden_state  # (B, T, H)
    logits = model.cls(h[masked])  # (M, V)
    ce = torch.nn.functional.cross_entropy(logits.float(), ids[masked], reduction="none")  # (M,)
    w = (1.0 / t.expand(B, T))[masked]  # (M,) 1/t weight
    return (ce * w).sum() / cm.sum(), ce.mean()
