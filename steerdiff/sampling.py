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
    dead: torch.Tensor | None = None  # (B, L) bool: masked positions where every token was banned


def _filter_top_k_top_p(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Ban tokens outside the top-k / nucleus, in place on ``logits (..., V)``; the top token always stays."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (N, 1)
        logits.masked_fill_(logits < kth, float("-inf"))
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (N, V)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # (N, V)
        drop_sorted = cum - torch.softmax(sorted_logits, dim=-1) > top_p  # keep the token that crosses p
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)  # (N, V)
        logits.masked_fill_(drop, float("-inf"))
    return logits


def _max_and_lse(x: torch.Tensor, chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Max, argmax and logsumexp over the last dim of ``x (..., V)``.

    On the CPU the work is done in chunks of ``chunk`` positions so that each chunk (~4 MB at V=32k)
    stays in cache between the max and the exp-sum passes: 3-4x faster than ``torch.logsumexp`` on a
    (B, L, V) view. On a GPU one fused call of each is already memory-bound and fast.
    """
    if x.device.type != "cpu":
        top, arg = x.max(dim=-1)
        return top, arg, torch.logsumexp(x, dim=-1)
    lead = x.shape[:-1]
    top = torch.empty(lead, dtype=x.dtype)
    arg = torch.empty(lead, dtype=torch.long)
    lse = torch.empty(lead, dtype=x.dtype)
    rows2d = [(x, top, arg, lse)] if x.dim() == 2 else [(x[b], top[b], arg[b], lse[b]) for b in range(lead[0])]
    for xs, ts, as_, ls in rows2d:  # (n, V) each
        for i in range(0, xs.shape[0], chunk):
            c = xs[i : i + chunk]  # (c, V)
            t, a = c.max(dim=-1)  # (c,)
            ts[i : i + chunk], as_[i : i + chunk] = t, a
            ls[i : i + chunk] = t + torch.log(torch.exp(c - t[:, None]).sum(-1))  # all -inf rows give nan: dead
    return top, arg, lse


def _sample(x: torch.Tensor, top: torch.Tensor, temperature: float, generator: torch.Generator | None,
            chunk: int = 32) -> torch.Tensor:
    """One token per row of ``x (..., V)`` drawn from ``softmax(x / temperature)``: shape ``x.shape[:-1]``.
    ``top (...)``: each row's max (``_max_and_lse`` has it already).

    Inverse-CDF sampling, one float64 uniform per row and a float64 cumulative sum, over chunks of
    ``chunk`` rows. It draws from the same distribution as Gumbel-max with float64 noise (LLaDA's point:
    float32 Gumbel noise biases the tails) without ``V`` random numbers and two logs per row, and without a
    ``(N, V)`` float64 tensor (1 GB at B=8, L=128, V=126k). Weights are float32 relative to the row's top
    token (exact to 1e-7 relative; tokens below 1e-38 of the top get no mass). Banned tokens (-inf) have
    zero mass and are never drawn; a row with no allowed token gets 0."""
    lead, V = x.shape[:-1], x.shape[-1]
    rows, tops = x.reshape(-1, V), top.reshape(-1, 1)  # (N, V), (N, 1): views for contiguous input
    u = torch.rand(rows.shape[0], dtype=torch.float64, device=x.device, generator=generator)  # (N,)
    out = torch.zeros(rows.shape[0], dtype=torch.long, device=x.device)
    for i in range(0, rows.shape[0], chunk):
        c, t = rows[i : i + chunk], tops[i : i + chunk]  # (c, V), (c, 1)
        w = torch.exp((c - t) / temperature)  # (c, V) in (0, 1]; 0 for banned tokens (and below 1e-38)
        cdf = torch.cumsum(w, dim=-1, dtype=torch.float64)  # (c, V) summed in float64: no lost tail mass
        r = u[i : i + chunk, None] * cdf[:, -1:]  # (c, 1) uniform in [0, total)
        pick = torch.searchsorted(cdf, r, right=True).squeeze(-1)  # (c,) first index whose cdf exceeds r
        out[i : i + chunk] = torch.where(torch.isfinite(t.squeeze(-1)), pick.clamp_max(V - 1), 0)
    return out.reshape(lead)


def _propose_greedy_cpu(logits: torch.Tensor, masked: torch.Tensor, chunk: int = 32) -> Proposal:
    """Greedy proposal on the CPU reading masked positions only, in cache-sized chunks.

    Each chunk of up to ``chunk`` masked positions of a row (a view when they are consecutive, else a
    copy of those rows only) is read once from memory for its max and once more from cache for its
    exp-sum. Positions off the mask cost nothing, so the work shrinks as the canvas fills.
    """
    B, L, V = logits.shape
    tokens = torch.zeros((B, L), dtype=torch.long)
    confidence = torch.full((B, L), float("-inf"), dtype=logits.dtype)
    dead = torch.zeros((B, L), dtype=torch.bool)
    for b in range(B):
        pos = masked[b].nonzero().squeeze(1)  # (n,)
        n = len(pos)
        if n == 0:
            continue
        row = logits[b]  # (L, V)
        top = torch.empty(n, dtype=logits.dtype)
        arg = torch.empty(n, dtype=torch.long)
        se = torch.empty(n, dtype=logits.dtype)
        for i in range(0, n, chunk):
            p = pos[i : i + chunk]
            a, z = int(p[0]), int(p[-1])
            c = row[a : z + 1] if z - a + 1 == len(p) else row.index_select(0, p)  # (c, V)
            t, g = c.max(dim=-1)  # (c,)
            top[i : i + chunk], arg[i : i + chunk] = t, g
            se[i : i + chunk] = torch.exp(c - t[:, None]).sum(-1)  # (c,) >= 1 unless every token is banned
        tokens[b, pos] = arg
        confidence[b, pos] = 1.0 / se  # probability of the argmax token; nan where all are banned
        dead[b, pos] = torch.isneginf(top)
    return Proposal(tokens=tokens, confidence=confidence, dead=dead)


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

    Greedy when ``temperature == 0``; otherwise a draw from ``softmax(logits / temperature)`` by inverse CDF
    with a float64 cumulative sum (:func:`_sample`; float32 Gumbel noise would bias low-probability tokens,
    as LLaDA notes). Only masked positions matter: while most of the canvas is masked the work is done in place on ``logits`` (which
    it may modify: top-k/top-p filtering), later only on a copy of the masked rows.
    """
    B, L, V = logits.shape
    if not (temperature and temperature > 0) and top_k is None and top_p is None and not need and logits.device.type == "cpu":
        return _propose_greedy_cpu(logits, masked)
    dense = bool(masked.float().mean() > 0.5)  # mostly masked: work in place on (B, L, V), no copy
    if dense:
        sel = logits  # (B, L, V): "N" below is (B, L); positions off the mask are ignored
    else:
        idx = masked.nonzero(as_tuple=True)  # 2 x (N,)
        sel = logits[idx]  # (N, V), a copy of the masked rows only
    sel = _filter_top_k_top_p(sel, top_k, top_p)
    top, x0, lse = _max_and_lse(sel)  # (N,), (N,), (N,)
    if temperature and temperature > 0:
        x0 = _sample(sel, top, temperature, generator)  # (N,)
    conf = torch.exp(torch.gather(sel, -1, x0.unsqueeze(-1)).squeeze(-1) - lse)  # (N,) probability of x0
    dead = torch.isneginf(top)  # (N,) no token allowed at all

    if dense:
        tokens = x0  # (B, L)
        confidence = conf.masked_fill(~masked, float("-inf"))  # (B, L)
        dead_at = dead & masked  # (B, L)
    else:
        tokens = torch.zeros((B, L), dtype=torch.long, device=logits.device)
        tokens[idx] = x0
        confidence = torch.full((B, L), float("-inf"), device=logits.device)
        confidence[idx] = conf
        dead_at = torch.zeros((B, L), dtype=torch.bool, device=logits.device)
        dead_at[idx] = dead
    if need:
        probs = torch.softmax(sel, dim=-1)  # (N, V)
    out = Proposal(tokens=tokens, confidence=confidence, dead=dead_at)

    def place(v: torch.Tensor) -> torch.Tensor:  # (N,) -> (B, L), -inf off the mask
        if dense:
            return v.masked_fill(~masked, float("-inf"))
        full = torch.full((B, L), float("-inf"), device=logits.device)
        full[idx] = v
        return full

    if "margin" in need:
        top2 = torch.topk(probs, min(2, V), dim=-1).values  # (N, 2)
        out.margin = place(top2[..., 0] - (top2[..., 1] if V > 1 else 0))
    if "entropy" in need:
        out.neg_entropy = place((probs * torch.log(probs.clamp_min(1e-30))).sum(-1))  # (N,) minus entropy
    return out
