"""Float ``multipleOf`` in a bounded range (``numeric._enumerated_multiples``, issue 23 MaskBench work): exactly the
plain decimals python-jsonschema accepts (its check runs in doubles: ``0.07 / 0.01`` is not integral, ``99.99 /
0.01`` is), none it rejects. Exhaustive over 3-decimal texts, and hypothesis over decimals and bounds."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import ConstraintError
from steerdiff_plugins.schema.compiled import compile_schema
from steerdiff_plugins.schema.numeric import MAX_ENUMERATED, MAX_ENUMERATED_CHARS, _enumerated_multiples


def _text(k: int, places: int) -> str:
    t = format(Decimal(k) / 10 ** places, "f")
    return t.rstrip("0").rstrip(".") if "." in t else t


def _agrees(schema, texts) -> None:
    v = jsonschema.Draft202012Validator(schema)
    try:
        rx = re.compile(compile_schema(schema).regex)
    except ConstraintError:  # an empty language: no text may be valid
        rx = re.compile("(?!)")
    for t in texts:
        if t == "-0":
            continue
        valid = v.is_valid(float(t) if "." in t else int(t))
        assert (rx.fullmatch(t) is not None) == valid, (schema, t)


def test_small_range_to_two_places_is_exact():
    """0..9.99 by 0.01: 1.07 and 9.99 accepted (python-jsonschema accepts them in doubles), 0.07 and 2.07 not (it
    rejects them), every 3-decimal text in -2..12 as python-jsonschema says."""
    schema = {"type": "number", "minimum": 0, "maximum": 9.99, "multipleOf": 0.01}
    comp = compile_schema(schema)
    assert comp.fullmatch(comp.dumps(1.07)) and comp.fullmatch(comp.dumps(9.99))
    v = jsonschema.Draft202012Validator(schema)
    assert not comp.fullmatch("0.07") and not comp.fullmatch("2.07") and not v.is_valid(0.07) and not v.is_valid(2.07)
    _agrees(schema, [_text(k, 3) for k in range(-2_000, 12_000)])


def test_wide_range_keeps_the_binary_steps():
    """0..99.99 by 0.01 would be a 4.1k-character number regex (over MAX_ENUMERATED_CHARS): the binary steps
    (quarters), a subset, as before; 99.99 is then left out though valid."""
    schema = {"type": "number", "minimum": 0, "maximum": 99.99, "multipleOf": 0.01}
    comp = compile_schema(schema)
    assert len(comp.regex) < MAX_ENUMERATED_CHARS and comp.fullmatch("99.75") and not comp.fullmatch("99.99")
    _agrees_subset(schema, [_text(k, 3) for k in range(-1_000, 101_000, 7)])


def _agrees_subset(schema, texts) -> None:
    v, rx = jsonschema.Draft202012Validator(schema), re.compile(compile_schema(schema).regex)
    for t in texts:
        if t != "-0" and rx.fullmatch(t):
            assert v.is_valid(float(t) if "." in t else int(t)), t


@settings(max_examples=40, deadline=None)
@given(step=st.sampled_from([0.1, 0.01, 0.05, 0.2, 0.001]), lo=st.integers(-3000, 3000), width=st.integers(0, 400),
       lo_excl=st.booleans(), hi_excl=st.booleans(), data=st.data())
def test_bounded_multiples_agree_with_jsonschema(step, lo, width, lo_excl, hi_excl, data):
    lo_v, hi_v = lo / 100, (lo + width) / 100
    schema = {"type": "number", "multipleOf": step, "exclusiveMinimum" if lo_excl else "minimum": lo_v,
              "exclusiveMaximum" if hi_excl else "maximum": hi_v}
    if (hi_v - lo_v) / step > MAX_ENUMERATED:
        return
    ks = data.draw(st.lists(st.integers(lo * 10 - 50, (lo + width) * 10 + 50), min_size=20, max_size=60))
    texts = [_text(k, 3) for k in ks] + [_text(k, 4) for k in ks]
    d = Fraction(repr(step))
    if _enumerated_multiples(step, d, lo_v, not lo_excl, hi_v, not hi_excl, False) is not None:
        _agrees(schema, texts)  # enumerated: exactly python-jsonschema's answers
    else:
        _agrees_subset(schema, texts)  # the binary steps: a subset
