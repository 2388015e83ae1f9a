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
from steerdiff.extractive import candidate_dates, candidate_numbers, candidate_spans, candidate_times  # noqa: E402
from steerdiff_plugins.schema.extractive import extractive_schema  # noqa: E402


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
    spans = candidate_spans("Receipt #966730 - Amanda Moore, phone (786)651-1739x93283 (the 6th).")
    assert "(786)651-1739x93283" in spans and "#966730" in spans and "Amanda Moore" in spans
    assert not [s for s in spans if s.startswith("-") or s.endswith("-")]  # no lone punctuation at the edges
    assert not [s for s in spans if s.count("(") != s.count(")")]  # brackets balanced, inside one word
    assert "(the 6th)" not in spans and "the 6th" in spans


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


def test_candidate_dates_and_times():
    text = ("Due the 8th of May 2027, shipped Nov. 6, 2027 (2025-03-02); paid 05/08/2027, filed 31/12/2024, "
            "no year on March 3rd, none on February 30, 2027. Doors at 10:45 am, talk 3pm, 12 am, 7 o'clock, "
            "noon, 14:05, 9:30 P.M.; not 14 pm.")
    # 05/08/2027 reads both ways; 31/12/2024 only day first; no year or no such day: nothing
    assert candidate_dates(text) == ["2027-05-08", "2027-11-06", "2025-03-02", "2027-08-05", "2024-12-31"]
    assert candidate_times(text) == ["10:45", "15:00", "00:00", "07:00", "12:00", "14:05", "21:30"]


_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December"]


@settings(max_examples=200, deadline=None)
@given(d=st.dates(min_value=__import__("datetime").date(1000, 1, 1)), form=st.integers(0, 4), h=st.integers(0, 23),
       mi=st.integers(0, 59))
def test_fuzz_written_dates_and_times_read_back(d, form, h, mi):
    """Every way the training data and common English write a date or a time reads back to its ISO form."""
    mon = _MONTH_NAMES[d.month - 1]
    suf = "th" if 11 <= d.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    said = [f"{mon} {d.day}, {d.year}", f"{d.day} {mon} {d.year}", f"{mon[:3]}. {d.day}, {d.year}",
            f"the {d.day}{suf} of {mon} {d.year}", d.isoformat()][form]
    h12, ap = (h % 12 or 12), ("am" if h < 12 else "pm")
    text = f"Booked for {said} at {h12}:{mi:02d} {ap}."
    assert d.isoformat() in candidate_dates(text)
    assert candidate_times(text) == [f"{h:02d}:{mi:02d}"]


def test_extractive_schema_reads_dates_and_times_into_fixed_forms():
    schema = {"type": "object", "properties": {
        "title": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
        "email": {"type": "string", "format": "email"}}}
    text = "The Autumn Kickoff (the 23rd of August 2026) starts at 3:30 pm; write to mail ana@x.org."
    props = extractive_schema(schema, text)["properties"]
    assert props["date"]["enum"] == ["2026-08-23"] and props["time"]["enum"] == ["15:30"]
    assert "2026-08-23" not in props["title"]["enum"]  # a free string only takes spans of the text
    # python-jsonschema accepts any string with an "@" as an email; the candidates must fit the exact format
    assert props["email"]["enum"] == ["ana@x.org"]


def test_extract_from_must_be_text():
    from steerdiff_plugins.json_schema import JSONSchema

    with pytest.raises(ConstraintError, match="extract_from"):
        JSONSchema(SCHEMA, extract_from=3)


def test_batch_canvas_fits_after_the_longest_prompt(model):
    """The canvas is sized once, after the longest prompt of the batch, so every row fits (extract or not)."""
    from steerdiff.fill import canvas_length
    from steerdiff_plugins.json_schema import JSONSchema

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
