"""Schedules: which masked positions to commit at each step. Each always commits at least one per row.

A schedule is a small object with ``select(proposal, masked, step, steps, generator) -> (B, L) bool``.
``make_schedule(name, **options)`` builds one by name: ``low_confidence`` (LLaDA), ``random``,
``margin``, ``entropy``, ``threshold`` (Fast-dLLM confidence threshold), ``blocks`` (semi-autoregressive
blocks), ``left_to_right`` (one position per step: the causal special case).
"""

from __future__ import annotations

import torch

from .errors import ConfigError
from .sampling import Proposal


def per_step_counts(masked: torch.Tensor, steps_left: int) -> torch.Tensor:
    """LLaDA's even split: ``ceil(masks left / steps left)`` per row, at least 1 where masks remain. ``(B,)``."""
    n = masked.sum(dim=1)  # (B,)
    k = torch.div(n + steps_left - 1, max(steps_left, 1), rounding_mode="floor")  # (B,)
    return torch.where(n > 0, k.clamp_min(1), torch.zeros_like(k))


def top_k_per_row(scores: torch.Tensor, masked: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The ``k[b]`` highest-scoring masked positions of each row. ``scores (B, L)``, ``k (B,)`` -> ``(B, L)`` bool."""
    scores = scores.masked_fill(~masked, float("-inf"))  # (B, L)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)  # (B, L)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))  # (B, L)
    return (rank < k[:, None]) & masked


class Schedule:
    """Base: rank masked positions by ``score`` and commit LLaDA's even share of them each step."""

    name = "base"
    need: frozenset[str] = frozenset()

    def score(self, proposal: Proposal, masked: torch.Tensor, generator) -> torch.Tensor:
        raise NotImplementedError

    def select(self, proposal: Proposal, masked: torch.Tensor, step: int, steps: int, generator=None) -> torch.Tensor:
        k = per_step_counts(masked, max(steps - step, 1))  # (B,)
        return top_k_per_row(self.score(proposal, masked, generator), masked, k)


class LowConfidence(Schedule):
    """LLaDA's low-confidence remasking: commit the most probable proposals, keep the rest masked."""

    name = "low_confidence"

    def score(self, proposal, masked, generator):
        return proposal.confidence


class RandomOrder(Schedule):
    """Commit uniformly random masked positions (MDLM's ancestral order)."""

    name = "random"

    def score(self, proposal, masked, generator):
        return torch.rand(masked.shape, device=masked.device, generator=generator)  # (B, L)


class Margin(Schedule):
    """Commit where the top-1 probability leads the top-2 by most."""

    name = "margin"
    need = frozenset({"margin"})

    def score(self, proposal, masked, generator):
        return proposal.margin


class Entropy(Schedule):
    """Commit where the predictive distribution has the lowest entropy."""

    name = "entropy"
    need = frozenset({"entropy"})

    def score(self, proposal, masked, generator):
        return proposal.neg_entropy


class Threshold(Schedule):
    """Fast-dLLM: commit every proposal with confidence >= ``threshold``, and never fewer than one.

    ``steps`` only bounds the loop from below here: a row whose proposals are all uncertain still
    commits its single most confident one, so the canvas cannot freeze.
    """

    name = "threshold"

    def __init__(self, threshold: float = 0.9):
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold

    def select(self, proposal, masked, step, steps, generator=None):
        conf = proposal.confidence.masked_fill(~masked, float("-inf"))  # (B, L)
        best = top_k_per_row(conf, masked, masked.any(dim=1).long())  # (B, L): the top one per row
        return ((conf >= self.threshold) & masked) | best


class Blocks(Schedule):
    """Semi-autoregressive blocks (LLaDA): fill the canvas block by block, left to right.

    Only the leftmost block that still holds masks is eligible; within it, the most confident
    proposals are committed, with the steps shared evenly among blocks.
    """

    name = "blocks"

    def __init__(self, block_length: int = 32):
        if block_length < 1:
            raise ConfigError(f"block_length must be >= 1, got {block_length}")
        self.block_length = block_length

    def select(self, proposal, masked, step, steps, generator=None):
        B, L = masked.shape
        n_blocks = -(-L // self.block_length)
        pos = torch.arange(L, device=masked.device)  # (L,)
        first = torch.where(masked.any(1), torch.argmax(masked.int(), dim=1), torch.zeros(B, dtype=torch.long, device=masked.device))  # (B,)
        block = first // self.block_length  # (B,)
        in_block = (pos[None, :] // self.block_length) == block[:, None]  # (B, L)
        eligible = masked & in_block  # (B, L)
        per_block = max(steps // n_blocks, 1)
        steps_left_in_block = max(per_block - (step % per_block), 1)
        k = per_step_counts(eligible, steps_left_in_block)  # (B,)
        return top_k_per_row(proposal.confidence, eligible, k)


class LeftToRight(Schedule):
    """One position per step, the leftmost mask: the autoregressive special case and baseline."""

    name = "left_to_right"

    def select(self, proposal, masked, step, steps, generator=None):
        L = masked.shape[1]
        score = -torch.arange(L, device=masked.device, dtype=torch.float32).expand(masked.shape)  # (B, L)
        return top_k_per_row(score, masked, masked.any(dim=1).long())


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (LowConfidence, RandomOrder, Margin, Entropy, Threshold, Blocks, LeftToRight)
}


def make_schedule(schedule: str | Schedule, **options) -> Schedule:
    """A schedule object from its name (options go to its constructor) or itself."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}")
    cls = SCHEDULES[schedule]
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"schedule {schedule!r} does not take options {sorted(options)}: {exc}") from None
