"""Length bounds a ``pattern`` already implies (issue 23 item 4): ``minLength`` at most the pattern's
shortest match and ``maxLength`` at least its longest (anchored at both ends) need no intersection, so the
schema compiles to the pattern's language; bounds the pattern does not imply are still refused by name.
The language is checked against python-jsonschema on random strings (hypothesis): accepted exactly when
valid."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema, sample_text
from steerdiff_plugins.schema.pattern import pattern_length_bounds

EXACT = [
    {"type": "string", "pattern": "^(http|https)://", "minLength": 6},
    {"type": "string", "pattern": "^(0|[1-9][0-9]*)[.](0|[1-9][0-9]*)$", "minLength": 3},
    {"type": "string", "pattern": "^(ab|c)(d|ef)$", "minLength": 2, "maxLength": 4},
    {"type": "string", "pattern": "^(x|[a-c]{2,3})$", "maxLength": 3},
]


@pytest.mark.parametrize("pattern,bounds", [
    ("^(http|https)://", (7, None)), ("^a{2,5}$", (2, 5)), ("a{2,5}", (2, None)), ("^x$|^[a-c]{2,3}$", (1, None)), ("^(x|[a-c]{2,3})$", (1, 3)),
    ("^(ab)+$", (2, None)), ("^$", (0, 0)),
])
def test_pattern_length_bounds(pattern, bounds):
    assert pattern_length_bounds(pattern) == bounds


@pytest.mark.parametrize("schema", EXACT, ids=range(len(EXACT)))
def test_samples_validate(schema):
    comp = compile_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    rng = random.Random(0)
    for _ in range(200):
        text = sample_text(comp.regex, rng)
        assert v.is_valid(json.loads(text)), text


@settings(max_examples=500, deadline=None)
@given(s=st.text(alphabet="abcdefhtps:/.0123x", max_size=12), case=st.sampled_from(range(len(EXACT))))
def test_language_is_exactly_the_valid_strings(s, case):
    schema = EXACT[case]
    comp = compile_schema(schema)
    valid = jsonschema.Draft202012Validator(schema).is_valid(s)
    assert comp.fullmatch(json.dumps(s, ensure_ascii=False)) == valid, (s, schema)


@pytest.mark.parametrize("schema", [
    {"type": "string", "pattern": "^(ab)+$", "maxLength": 4},
    {"type": "string", "pattern": "^(http|https)://", "minLength": 9},
    {"type": "string", "pattern": "a(bc)+", "maxLength": 40},
])
def test_bounds_not_implied_are_intersected(schema):
    """Bounds the pattern does not imply: intersected by ``schema/pattern.py, length bounds`` (tested there); samples valid."""
    comp = compile_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    rng = random.Random(1)
    for _ in range(100):
        text = sample_text(comp.regex, rng)
        assert v.is_valid(json.loads(text)), text


def test_bounds_not_split_are_refused():
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema({"type": "string", "pattern": "^(a|bb)+$", "minLength": 3, "maxLength": 3})
    assert e.value.keyword == "minLength" and e.value.pointer == "#/minLength"
