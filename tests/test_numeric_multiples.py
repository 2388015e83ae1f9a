"""Float ``multipleOf`` in a bounded range (``numeric._enumerated_multiples``, issue 23 MaskBench work): exactly the
plain decimals python-jsonschema accepts (its check runs in doubles: ``0.07 / 0.01`` is not integral, ``99.99 /
0.01`` is), none it rejects. Exhaustive over 3-decimal texts, and hypothesis over decimals and bounds."""

from __future__ import annotations

import re
from decimal import Decimal

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import ConstraintError
from steerdiff_plugins.schema.compiled import compile_schema
from steerdiff_plugins.schema.numeric import MAX_ENUMERATED


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


def test_percent_to_two_places_is_exact():
    """MaskBench o46322's percent (0..99.99, multipleOf 0.01): 38.1 and 99.99 accepted, 0.07 not (jsonschema
    rejects it), every 3-decimal text in -10..110 as python-jsonschema says."""
    schema = {"type": "number", "minimum": 0, "maximum": 99.99, "multipleOf": 0.01}
    comp = compile_schema(schema)
    assert comp.fullmatch(comp.dumps(38.1)) and comp.fullmatch(comp.dumps(99.99))
    assert not comp.fullmatch("0.07") and not jsonschema.Draft202012Validator(schema).is_valid(0.07)
    _agrees(schema, [_text(k, 3) for k in range(-10_000, 110_000)])


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
    _agrees(schema, [_text(k, 3) for k in ks] + [_text(k, 4) for k in ks])
