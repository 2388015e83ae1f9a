"""The per-call run context handed to every hook, and the per-row result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from .constraints import Constraint
from .forward import canvas_logits


@dataclass
class Result:
    """One generated row.

    ``text``: the output text (padding stripped; templates stitch fixed spans back verbatim).
    ``token_ids``: the canvas ``(L,)`` as a list, padding included. ``steps``: denoising steps run.
    ``forward_passes``: model calls spent on this batch (classifier-free guidance counts two a step).
    ``trace``: the :class:`steerdiff.trace.Trace` of the batch. ``value``: a parsed object when a plugin
    sets one (a dict for a JSON Schema, a pydantic model for ``fill``). ``fields``: named holes.
    """

    text: str
    token_ids: list[int]
    steps: int
    forward_passes: int
    trace: Any = None
    value: Any = None
    fields: dict[str, str] = field(default_factory=dict)
    row: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """Everything a hook may need about the current ``generate`` call.

    ``constraints[b]`` lists row b's constraints (guidance included). ``state`` is this run's scratch
    space for plugins. ``length`` is L, the canvas length; ``fill_id`` the padding token that may end a
    value early (stripped from the text); ``generator`` the seeded RNG every random choice must use.
    """

    model: Any
    tokenizer: Any
    mask_id: int
    fill_id: int
    device: torch.device
    length: int
    steps: int
    prompts: list[str]
    prompt_ids: list[list[int]]
    constraints: list[list[Constraint]]
    generator: torch.Generator
    state: dict[Any, Any] = field(default_factory=dict)
    forward_passes: int = 0
    masked: torch.Tensor | None = None  # (B, L) bool, the current mask (authoritative)
    frozen: torch.Tensor | None = None  # (B, L) bool, positions fixed by init_canvas
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "model" (forward passes), "total"

    def model_logits(self, canvas: torch.Tensor, prompt_ids: list[list[int]] | None = None) -> torch.Tensor:
        """Extra forward pass for plugins (classifier-free guidance): logits ``(B, L, V)`` of ``canvas``
        after ``prompt_ids`` (default: this run's prompts). Counted in ``forward_passes``."""
        self.forward_passes += 1
        return canvas_logits(self.model, prompt_ids if prompt_ids is not None else self.prompt_ids, canvas)

    @property
    def batch_size(self) -> int:
        return len(self.prompts)

    def constraints_of(self, cls: type | tuple[type, ...]) -> Iterator[tuple[int, Constraint]]:
        """Yield ``(row, constraint)`` for every constraint of type ``cls`` in this run."""
        for row, cs in enumerate(self.constraints):
            for c in cs:
                if isinstance(c, cls):
                    yield row, c
