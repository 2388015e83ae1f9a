"""Fixtures shared by the test modules.

``model``: steerdiff's tiny random-weight masked LM (``steerdiff.testing.tiny_model("masked")``: BERT layout,
byte-level BPE), built once per test module so that no module sees another's state.
The repository root and ``tests/fixtures`` are on ``sys.path`` through ``pythonpath`` in ``pyproject.toml``
(``benchmarks.*`` and fixture modules import by name).
"""
from __future__ import annotations

import pytest

from steerdiff.testing import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model("masked")
