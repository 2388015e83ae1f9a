"""Fixtures shared by the test modules.

``model``: steerdiff's tiny random-weight masked LM (``steerdiff.testing.tiny_model("masked")``: BERT layout,
byte-level BPE), built once per test module so that no module sees another's state.
``clock``: a fake compile-budget clock (``compile_budget._clock``) at ``now`` seconds, moved by the test.
The repository root and ``tests/fixtures`` are on ``sys.path`` through ``pythonpath`` in ``pyproject.toml``
(``benchmarks.*`` and fixture modules import by name).
"""
from __future__ import annotations

import pytest

from steerdiff.testing import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("masked")


class _Clock:
    """A fake ``compile_budget._clock``: ``now`` seconds, moved by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from steerdiff_plugins import compile_budget

    c = _Clock()
    monkeypatch.setattr(compile_budget, "_clock", c)
    return c
