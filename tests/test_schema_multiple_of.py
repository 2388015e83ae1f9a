"""``multipleOf`` with a float step (issue 23 item 4, ``numeric.multiple_of_regex``): every text of the
compiled language is accepted by python-jsonschema's own float check (hypothesis over the whole claimed
range, its edges and powers of two), the language is all canonical multiples for a binary step (0.25, 0.5),
and steps whose quotient is not provably exact are refused by name and pointer."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema
from schema_checks import validator as _validator


def _canonical(x: Fraction) -> str:
    s = format(Decimal(x.numerator) / Decimal(x.denominator), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


SCHEMAS = [
    {"type": "number", "multipleOf": 0.01},
    {"type": "number", "multipleOf": 0.01, "minimum": -100000000.0, "maximum": 100000000.0},
    {"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 99.99},
    {"type": "number", "multipleOf": 0.25, "minimum": 0.25},
    {"type": "number", "multipleOf": 0.1, "exclusiveMinimum": -3.3, "exclusiveMaximum": 7},
    {"type": "number", "multipleOf": 0.05},
    {"type": "number", "multipleOf": 0.001},
    {"type": "integer", "multipleOf": 0.01, "maximum": 17},
    {"type": ["number", "null"], "multipleOf": 0.5, "minimum": -2.5, "maximum": 2.5},
]


@settings(max_examples=1500, deadline=None)
@given(case=st.sampled_from(range(len(SCHEMAS))), n=st.integers(0, 10 ** 16), j=st.integers(0, 15),
       neg=st.booleans())
@example(case=0, n=10 ** 13 - 1, j=12, neg=True)  # the largest magnitude kept for 0.01
@example(case=3, n=10 ** 15 - 1, j=4, neg=False)
@example(case=0, n=2 ** 40, j=0, neg=False)
def test_every_accepted_number_is_valid(case, n, j, neg):
    """Multiples of 1/16 (a superset of each step's kept set), any magnitude: accepted => valid."""
    schema = SCHEMAS[case]
    x = (Fraction(n) + Fraction(j, 16)) * (-1 if neg else 1)
    text = _canonical(x)
    if compile_schema(schema).fullmatch(text):
        assert _validator(schema).is_valid(json.loads(text)), (text, schema)


@settings(max_examples=800, deadline=None)
@given(n=st.integers(-10 ** 6, 10 ** 6), cents=st.integers(0, 99))
def test_decimal_cents_accepted_only_when_valid(n, cents):
    """Two-digit decimals (prices): 0.07 is rejected by python-jsonschema (7.000000000000001) and here."""
    schema = SCHEMAS[0]
    text = _canonical(Fraction(n) + Fraction(cents, 100))
    if compile_schema(schema).fullmatch(text):
        assert _validator(schema).is_valid(json.loads(text)), text


@settings(max_examples=800, deadline=None)
@given(case=st.sampled_from([3, 8]), n=st.integers(-10 ** 6, 10 ** 6), q=st.integers(0, 99))
def test_binary_steps_are_exact(case, n, q):
    """For 0.25 and 0.5 the language is every canonical valid number with two fraction digits at most."""
    schema = SCHEMAS[case]
    text = _canonical(Fraction(n) + Fraction(q, 100))
    assert compile_schema(schema).fullmatch(text) == _validator(schema).is_valid(json.loads(text)), text


def test_dumps_writes_the_language_s_form():
    """canonical_dumps (the writer the labelled checks use): 10000.0 and 2.50 are written 10000 and 2.5."""
    comp = compile_schema(SCHEMAS[1])
    assert comp.fullmatch(comp.dumps(10000.0)) and comp.fullmatch(comp.dumps(2.5)) and comp.dumps(2.0) == "2"


def test_prices_keep_quarters():
    comp = compile_schema(SCHEMAS[2])
    assert all(comp.fullmatch(t) for t in ["0", "12", "12.25", "99.5", "99.75"])
    assert not any(comp.fullmatch(t) for t in ["100", "-1", "12.07", "12.5e0", "99.99"])  # 99.99: narrowed away


@pytest.mark.parametrize("schema", [
    {"type": "number", "multipleOf": 0.03},
    {"type": "number", "multipleOf": 0.03125},  # 1/32: over the 4 bits kept
    {"type": "number", "multipleOf": 5},
    {"type": "number", "multipleOf": 2.5},
])
def test_other_steps_are_refused_by_name(schema):
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema({"type": "object", "properties": {"p": schema}})
    assert e.value.keyword == "multipleOf" and e.value.pointer == "#/properties/p/multipleOf"


def test_empty_range_is_empty():
    comp = compile_schema({"type": "object", "properties": {"p": {"type": "number", "multipleOf": 0.5,
                                                                  "minimum": 0.6, "maximum": 0.9}}})
    assert comp.fullmatch("{}") and not comp.fullmatch('{"p":0.75}')
