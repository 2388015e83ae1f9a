"""Minimum counts above the automaton builder's limit (12 over a multi-byte alternation) are written as
nested counts (``fragments._nested_count``): the same language, built in well under a second, so
``minLength: 20`` or ``500`` strings compile instead of being refused (issue 23 item 4)."""

from __future__ import annotations

import re

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

import steerdiff as sd
from steerdiff_plugins.automata.byte_level import byte_dfa
from steerdiff_plugins.schema.fragments import STRCHAR, _group, _rep


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, 400), extra=st.one_of(st.none(), st.integers(0, 30)), n=st.integers(0, 440))
def test_nested_counts_are_the_same_language(lo, extra, n):
    hi = None if extra is None else lo + extra
    rx = _rep("a", lo, hi) if (lo, hi) != (0, 0) else ""
    assert bool(re.fullmatch(rx, "a" * n)) == (n >= lo and (hi is None or n <= hi))
    assert all(int(c) <= 12 for c in re.findall(r"\{(\d+)", rx))  # no single count above the limit


def test_long_minimum_string_builds_and_is_exact():
    rx = '"' + _rep(_group(STRCHAR), 500, None) + '"'
    dfa = byte_dfa(rx)
    assert dfa.trans.shape[0] > 500
    c = re.compile(rx)
    assert c.fullmatch('"' + "é" * 500 + '"') and not c.fullmatch('"' + "é" * 499 + '"')


def test_fill_with_min_length_20_validates(model):
    schema = {"type": "object", "properties": {"code": {"type": "string", "minLength": 20},
                                               "n": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["code", "n"]}
    assert sd.JSONSchema(schema).regex()
    for seed in (0, 1):
        value = sd.fill(model, schema, "code ABCDEFGHIJKLMNOPQRSTUV, n 3", seed=seed, temperature=1.0 if seed else 0.0)
        jsonschema.validate(value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        assert len(value["code"]) >= 20
