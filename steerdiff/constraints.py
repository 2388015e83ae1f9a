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

    def describe(self) -> str:
        """A short human-readable form for error messages (``regex constraint '[a-z]+' ...``); the repr by default."""
        return repr(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class RegularConstraint(Constraint):
    """A constraint whose language is regular: a plugin's regular-language hooks compile :meth:`regex` to an
    exact token automaton and call :meth:`check_text` on every finished span (the built-in ``regex``,
    ``choice`` and ``json_schema`` types; see ``steerdiff_plugins.automata.regular_hooks``)."""

    def regex(self) -> str:
        """The span's language as a Python-dialect regex (full match, regular features only)."""
        raise NotImplementedError(f"{type(self).__name__} must define regex()")

    def check_text(self, text: str, result: Any) -> None:
        """Check a finished span's ``text`` independently of the automaton (``re.fullmatch``, a JSON validator)
        and raise :class:`steerdiff.errors.ValidationFailed` if it fails; may set ``result.value`` (the
        :class:`steerdiff.Result` of the row)."""
        raise NotImplementedError(f"{type(self).__name__} must define check_text()")
