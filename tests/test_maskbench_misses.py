"""benchmarks.maskbench_misses' unbounded modes (fill's ``any_depth=None`` through the grammar engine): an item's
labelled instances are counted by lark's parse of the engine's text; a deep free-form valid instance is accepted, an
invalid one is rejected (an accepted one would be listed as a bug), a miss is diagnosed."""

from __future__ import annotations

import collections

import pytest

pytest.importorskip("lark")

from benchmarks.maskbench_misses import _grammar_compile, _grammar_tests  # noqa: E402

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}, "meta": {}},
          "required": ["name"], "additionalProperties": {"type": "integer"}}


def _deep(n: int):
    v: object = [1]
    for _ in range(n):
        v = {"a": [v]}
    return v


@pytest.mark.parametrize("extra_keys", [False, True])
def test_grammar_mode_counts(extra_keys):
    node, parser = _grammar_compile(SCHEMA, extra_keys, 3)
    item = {"id": "t", "schema": SCHEMA, "tests": [
        {"valid": True, "description": "deep", "data": {"name": "ab", "meta": _deep(30)}},
        {"valid": True, "description": "undeclared", "data": {"name": "ab", "n": 4}},
        {"valid": False, "description": "long name", "data": {"name": "abcd", "meta": _deep(5)}},
        {"valid": False, "description": "undeclared string", "data": {"name": "ab", "n": "x"}}]}
    s, misses, bugs = collections.Counter(), [], []
    _grammar_tests(item, "f.json", node, parser, s, misses, bugs)
    assert (s["valid"], s["invalid"], bugs) == (2, 2, [])
    assert s["valid_accepted"] == (2 if extra_keys else 1)
    if not extra_keys:
        assert [m["group"] for m in misses] == ["object: key not declared (closed object: additionalProperties narrowing)"]
