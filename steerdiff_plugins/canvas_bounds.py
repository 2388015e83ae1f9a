"""Repetition bounds a canvas cannot reach, compiled as if absent: the same language on the canvas.

A canvas of ``L`` tokens, each writing at most ``k`` bytes, holds a text of at most ``C = L * k`` bytes
(the *capacity*). A repetition ``X{m,n}`` whose every copy of ``X`` takes at least ``d >= 1`` bytes can
hold at most ``C // d`` copies there, so on texts of at most ``C`` bytes:

* ``X{m,n}`` with ``n >= C // d`` accepts exactly what ``X{m,}`` accepts (a text with more than ``n``
  copies would need ``(C // d + 1) * d > C`` bytes);
* ``X{m,n}`` with ``m > C // d`` accepts nothing (``m`` copies need more than ``C`` bytes);
* a nullable ``X`` (``d = 0``): ``X{m,n}`` is ``X{0,n}`` (the ``m`` required copies may be empty), and
  ``X{0,n}`` with ``n >= C`` accepts exactly what ``X*`` accepts (a text of ``C`` bytes splits into at
  most ``C`` non-empty copies).

So a schema's ``maxLength: 65535`` or ``maxItems: 10000`` costs nothing on a 64-token canvas, where
building its counted automaton would take minutes. The unit ``d`` is counted in bytes of the canonical
JSON text: a string character writes at least one byte, an array item after the first at least two
(the comma and one byte), a map entry at least five (``,"":0``). Any capacity at least the real one keeps
the language on the canvas unchanged, so compiles use :func:`capacity_bucket` (the next power of two):
canvases of similar sizes share one cached automaton.
"""

from __future__ import annotations

from steerdiff.vocab import canvas_capacity, capacity_bucket, max_token_bytes  # noqa: F401  (the core computes capacities)

__all__ = ["canvas_capacity", "capacity_bucket", "fit_count", "max_token_bytes"]


def fit_count(lo: int, hi: int | None, unit: int, capacity: int | None) -> tuple[int, int | None]:
    """``(lo, hi)`` of a repetition of a piece of at least ``unit`` bytes, with the bounds a text of at most
    ``capacity`` bytes cannot reach removed (see the module docstring). ``hi`` None is unbounded. The result
    has ``hi < lo`` (``(1, 0)``) when no text within the capacity has ``lo`` copies; ``capacity`` None: the
    bounds unchanged."""
    if capacity is None:
        return lo, hi
    if unit <= 0:  # a nullable piece: X{m,n} is X{0,n}
        if hi is not None and hi >= capacity:
            hi = None
        return (0 if lo > capacity else lo), hi
    top = capacity // unit  # the most copies that fit
    if lo > top:
        return 1, 0
    if hi is not None and hi >= top:
        hi = None
    return lo, hi
