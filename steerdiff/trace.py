"""Per-step records of what was committed, JSON-lines export, and the ``--watch`` terminal view."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import IO


@dataclass
class StepRecord:
    """One step: for each row, the positions committed and their token ids (re-masks listed apart)."""

    step: int
    positions: list[list[int]]
    tokens: list[list[int]]
    remasked: list[list[int]] = field(default_factory=list)
    masks_left: list[int] = field(default_factory=list)


@dataclass
class Trace:
    steps: list[StepRecord] = field(default_factory=list)

    def to_jsonl(self, path_or_file: str | IO[str]) -> None:
        """Write one JSON object per step and row: ``{"step", "row", "positions", "tokens", ...}``."""
        own = isinstance(path_or_file, str)
        f = open(path_or_file, "w", encoding="utf-8") if own else path_or_file
        try:
            for rec in self.steps:
                for row, (pos, tok) in enumerate(zip(rec.positions, rec.tokens)):
                    f.write(json.dumps({
                        "step": rec.step, "row": row, "positions": pos, "tokens": tok,
                        "remasked": rec.remasked[row] if rec.remasked else [],
                        "masks_left": rec.masks_left[row] if rec.masks_left else None,
                    }) + "\n")
        finally:
            if own:
                f.close()

    def __len__(self) -> int:
        return len(self.steps)


class Watcher:
    """Redraws the canvas of row 0 after every step: masks as ░, this step's tokens highlighted."""

    def __init__(self, vocab, stream: IO[str] | None = None, row: int = 0):
        self.vocab, self.stream, self.row = vocab, stream or sys.stderr, row
        self.color = self.stream.isatty()

    def render(self, canvas_row, masked_row, new_row) -> str:
        parts = []
        for tid, m, new in zip(canvas_row, masked_row, new_row):
            if m:
                parts.append("░")
                continue
            text = self.vocab.decode([tid]) or "·"
            text = text.replace("\n", "⏎")
            parts.append(f"\x1b[1;32m{text}\x1b[0m" if new and self.color else (f"[{text}]" if new else text))
        return "".join(parts)

    def __call__(self, step: int, canvas, masked, committed) -> None:
        line = self.render(canvas[self.row].tolist(), masked[self.row].tolist(), committed[self.row].tolist())
        prefix = "\x1b[2K\r" if self.color else ""
        self.stream.write(f"{prefix}step {step:3d} | {line}\n")
        self.stream.flush()
