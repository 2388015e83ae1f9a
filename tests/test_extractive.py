"""Extractive fill: free strings and numbers are copied from the text, outputs validate against the
original schema (python-jsonschema, pydantic), and fields the text cannot fill stay free."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).parent))
from tiny import tiny_model  # noqa: E402

import steerdiff as sd  # noqa: E402
from steerdiff.errors import ConstraintError  # noqa: E402
from steerdiff.extractive import candidate_numbers, candidate_spans, extractive_schema  # noqa: E402


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    email: str | None = None
    role: Literal["admin", "user"]


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "city": {"type": "string"},
        "when": {"type": "string", "format": "date"},
        "count": {"type": "integer", "minimum": 1},
        "price": {"type": "number"},
    },
    "required": ["name", "count"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def model():
    return tiny_model("masked", "bytelevel")


def test_candidate_spans_and_numbers():
    text = "Please add Evan Martinez (phone 001-218-969-8223x1355), mail evan@hart.net. Paid $1,299.99 for 3."
    spans = candidate_spans(text)
    for want in ["Evan Martinez", "001-218-969-8223x1355", "evan@hart.net", "evan@hart", "Please", "$1,299.99"]:
        assert want in spans, want
    assert "Martinez (phone" not in spans and "evan@hart.net." not in spans and "" not in spans
    assert all("\n" not in s and s == s.strip() for s in spans)
    assert candidate_numbers(text) == [1, 218, 969, 8223, 1355, 1299.99, 3]
    assert candidate_spans("Name:Zongrox\nAge: 4") == ["Name", "Name:Zongrox", "Zongrox", "Age", "4"]


def test_extractive_schema_narrows_free_fields_only():
    text = "Mia Wong from Lyon ordered 3 lamps on March 3rd for 19.5 euros."
    got = extractive_schema(SCHEMA, text)
    props = got["properties"]
    assert "Mia Wong" in props["name"]["enum"] and "Lyon" in props["city"]["enum"]
    assert all(len(s) <= 20 for s in props["name"]["enum"])  # maxLength still holds
    assert "enum" not in props["when"]  # no span is a date: the field stays free, not impossible
    assert props["count"]["enum"] == [3]  # 19.5 is no integer, nothing below 1
    assert props["price"]["enum"] == [3, 19.5]
    assert "enum" not in SCHEMA["properties"]["name"]  # the input is not modified


def test_extractive_fill_pydantic(model):
    texts = ["Maria Lopez, 34, maria@example.org, admin", "Jack Smith is a 27 year old user"]
    people = sd.fill(model, Person, texts, extract=True, seed=0)
    for p, text in zip(people, texts):
        assert isinstance(p, Person)
        assert p.name in candidate_spans(text) and p.age in candidate_numbers(text)
        assert p.email is None or p.email in candidate_spans(text)


_WORD = st.text(alphabet="abcdefghijXYZ@.-0123456789", min_size=1, max_size=8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(words=st.lists(_WORD, min_size=1, max_size=10), seed=st.integers(0, 1000))
def test_fuzz_extractive_outputs_copy_and_validate(model, words, seed):
    text = " ".join(words)
    try:
        value = sd.fill(model, SCHEMA, text, extract=True, seed=seed, temperature=1.0)
    except ConstraintError as exc:  # e.g. no integer >= 1 in the text and none would fit: refused up front
        assert "count" in str(exc) or "empty" in str(exc) or "no text" in str(exc), exc
        return
    jsonschema.validate(value, SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    spans, numbers = candidate_spans(text), candidate_numbers(text)
    for key in ("name", "city"):
        if key in value and any(len(s) <= 20 or key == "city" for s in spans):
            assert value[key] in spans, (key, value[key], text)
    if numbers and any(isinstance(n, int) and n >= 1 for n in numbers):
        assert value["count"] in numbers


def test_extract_from_must_be_text():
    from steerdiff_plugins.jsonschema import JSONSchema

    with pytest.raises(ConstraintError, match="extract_from"):
        JSONSchema(SCHEMA, extract_from=3)


def test_batch_canvas_fits_after_the_longest_prompt(model):
    """The canvas is sized once, after the longest prompt of the batch, so every row fits (extract or not)."""
    from steerdiff.fill import canvas_length
    from steerdiff_plugins.jsonschema import JSONSchema

    short = "Mia Wong, 3 lamps"
    want = canvas_length(model, JSONSchema(SCHEMA), len(model.prompt_ids(short)))
    n = 0
    while model.max_positions - len(model.prompt_ids("ab " * n + short)) >= want - 8:
        n += 1
    long_ = "ab " * n + short  # leaves fewer positions than the schema wants, but some
    room = model.max_positions - len(model.prompt_ids(long_))
    assert 0 < room < want
    for extract in (False, True):
        out = sd.fill(model, SCHEMA, [short, long_], extract=extract, seed=0)
        assert len(out) == 2
