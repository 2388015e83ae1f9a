"""Turn (edited) logits into one proposed token and its scores per masked position."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Proposal:
    """The sampler's output for one step.

    ``tokens``: ``LongTensor (B, L)``, the proposed token at each masked position (unspecified elsewhere).
    ``confidence``: ``FloatTensor (B, L)``, probability of the proposed token; ``-inf`` off the mask.
    ``margin``: top-1 minus top-2 probability; ``neg_entropy``: minus the entropy of the distribution.
    Both are ``(B, L)`` with ``-inf`` off the mask, and None unless the schedule asked for them.
    """

    tokens: torch.Tensor
    confidence: torch.Tensor
    margin: torch.Tensor | None = None
    neg_entropy: torch.Tensor | None = None


def _filter_top_k_top_p(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Ban tokens outside the top-k / nucleus, in place on ``logits (N, V)``; the top token always stays."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits.masked_fill_(logits < kth, float("-inf"))
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (N, V)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # (N, V)
        drop_sorted = cum - torch.softmax(sorted_logits, dim=-1) > top_p  # keep the token that crosses p
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)  # (N, V)
        logits.masked_fill_(drop, float("-inf"))
    return logits


def propose(
    logits: torch.Tensor,
    masked: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    need: frozenset[str] = frozenset(),
) -> Proposal:
    """Sample a token for every masked position of ``logits (B, L, V)``.

    Greedy when ``temperature == 0``; otherwise Gumbel-max on ``logits / temperature`` with the noise in
    float64 (float32 Gumbel noise ties and biases low-probability tokens, as LLaDA notes). Only masked
    positions are computed: work shrinks as the canvas fills.
    """
    B, L, V = logits.shape
    idx = masked.nonzero(as_tuple=True)  # 2 x (N,)
    sel = logits[idx]  # (N, V), a copy
    sel = _filter_top_k_top_p(sel, top_k, top_p)
    probs = torch.softmax(sel.float(), dim=-1)  # (N, V)
    if temperature and temperature > 0:
        u = torch.rand(sel.shape, dtype=torch.float64, device=sel.device, generator=generator)  # (N, V)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))  # float64 keeps ties and tails honest
        x0 = torch.argmax(sel.double() / temperature + gumbel, dim=-1)  # (N,)
    else:
        x0 = torch.argmax(sel, dim=-1)  # (N,)
    conf = torch.gather(probs, -1, x0[:, None]).squeeze(-1)  # (N,)

    tokens = torch.zeros((B, L), dtype=torch.long, device=logits.device)
    tokens[idx] = x0
    confidence = torch.full((B, L), float("-inf"), device=logits.device)
    confidence[idx] = conf
    out = Proposal(tokens=tokens, confidence=confidence)
    if "margin" in need:
        top2 = torch.topk(probs, min(2, V), dim=-1).values  # (N, 2)
        margin = torch.full((B, L), float("-inf"), device=logits.device)
        margin[idx] = top2[:, 0] - (top2[:, 1] if V > 1 else 0)
        out.margin = margin
    if "entropy" in need:
        ent = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)  # (N,)
        neg = torch.full((B, L), float("-inf"), device=logits.device)
        neg[idx] = -ent
        out.neg_entropy = neg
    return out
