"""The constraint base class. Concrete constraint types live in plugins and register themselves."""

from __future__ import annotations

from typing import Any, ClassVar

from .errors import ConstraintError


class Constraint:
    """A constraint on one row of the canvas.

    Subclasses set ``type_name`` (the name used in ``{"type": ...}`` dicts and the CLI) and
    ``guarantee``: ``"exact"`` (the output is always in the constraint's language) or ``"soft"``
    (guidance that shifts probabilities). ``span`` optionally limits the constraint to canvas positions
    ``[start, end)``; None means the whole canvas. Constraints are immutable values: plugins keep
    per-run state in ``run.state``, never on the constraint.
    """

    type_name: ClassVar[str] = ""
    guarantee: ClassVar[str] = "exact"
    span: tuple[int, int] | None = None

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "Constraint":
        """Build from a ``{"type": name, **params}`` dict; unknown parameters are a clear error."""
        params = {k: v for k, v in spec.items() if k != "type"}
        try:
            return cls(**params)
        except TypeError as exc:
            raise ConstraintError(f"constraint {cls.type_name!r}: bad parameters {sorted(params)}: {exc}") from None

    def with_span(self, start: int, end: int) -> "Constraint":
        """A copy limited to canvas positions ``[start, end)``."""
        import copy

        clone = copy.copy(self)
        clone.span = (start, end)
        return clone

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"
