"""The regex stage's speed-ups keep its results (issue 23, item 3): linear enum deduplication and membership
(``nodes._json_key``) agree with the pairwise ``_json_equal`` they replace, and enum values are checked against
their schema without its ``enum`` keyword with python-jsonschema's own verdicts."""

import math

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff_plugins.schema.compiled import compile_tree
from steerdiff_plugins.schema.nodes import _json_equal, _json_key

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, -1.0, 2.5, math.nan]),
                     st.sampled_from(["", "a", "1", "true"]))
_JSON = st.recursive(_SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                      st.dictionaries(st.sampled_from(["a", "b", "1"]), kids,
                                                                      max_size=3)), max_leaves=8)


def _reference_unique(vals: list) -> list:
    """The deduplication the compiler did before (quadratic): the first of each ``_json_equal`` group."""
    out: list = []
    for v in vals:
        if not any(_json_equal(v, u) for u in out):
            out.append(v)
    return out


def _floated(v):
    """``v`` with its integers written as floats (``_json_equal`` to ``v``, a different Python value)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return float(v)
    if isinstance(v, list):
        return [_floated(x) for x in v]
    if isinstance(v, dict):
        return {k: _floated(x) for k, x in reversed(list(v.items()))}
    return v


@settings(max_examples=400, deadline=None)
@given(_JSON, _JSON, st.booleans())
def test_json_key_agrees_with_json_equal(a, b, related):
    if related:
        b = _floated(a)
    assert (_json_key(a) == _json_key(b)) == _json_equal(a, b)
    assert (_json_key(a) == _json_key(a)) == _json_equal(a, a)  # NaN inside: equal to nothing, itself included


def test_json_key_edge_cases():
    assert _json_key(1) == _json_key(1.0) and _json_key(True) != _json_key(1) and _json_key(False) != _json_key(0)
    assert _json_key({"a": [1, None]}) == _json_key({"a": [1.0, None]}) != _json_key({"a": [1, None], "b": 0})
    assert _json_key([1, 2]) != _json_key([2, 1]) and _json_key((1,)) != _json_key((1,))  # tuples: not JSON
    assert _json_key(2**60 + 1) != _json_key(float(2**60))  # exact int/float comparison, as _json_equal


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON.filter(lambda v: _json_equal(v, v)), min_size=1, max_size=12),
       st.sampled_from([None, "string", "integer", "number", "array", "object"]))
def test_enum_values_as_before(vals, typ):
    """An enum's compiled values: the first of each equal group, filtered by the schema's other keywords
    exactly as python-jsonschema validates the whole schema (``enum`` included)."""
    schema = {"enum": vals} if typ is None else {"enum": vals, "type": typ}
    check = jsonschema.Draft202012Validator(schema)
    want = [v for v in _reference_unique(vals) if check.is_valid(v)]
    try:
        node, _ = compile_tree(schema)
    except Exception as e:  # an empty language: nothing survives the filter
        assert not want, e
        return
    assert node.values == want


@settings(max_examples=100, deadline=None)
@given(st.lists(_JSON.filter(lambda v: _json_equal(v, v)), min_size=1, max_size=8),
       st.lists(_JSON.filter(lambda v: _json_equal(v, v)), min_size=1, max_size=8))
def test_enum_intersection_as_before(a, b):
    """``allOf`` of two enums keeps the values of the first that the second holds (``merge``)."""
    want = _reference_unique([x for x in a if any(_json_equal(x, y) for y in b)])
    try:
        node, _ = compile_tree({"allOf": [{"enum": a}, {"enum": b}]})
    except Exception as e:
        assert not want, e
        return
    assert node.values == want


def test_long_enum_with_type_keeps_every_value():
    """An enum of thousands of values under a ``type`` (o64556 has 22 such, 2189 values in all: 4 s before)."""
    vals = [f"v{i}" for i in range(3000)] + [7, "v5", None]
    node, _ = compile_tree({"enum": vals, "type": "string"})
    assert node.values == [f"v{i}" for i in range(3000)]


def test_unicode_categories_as_before():
    """``\\d \\w \\s`` over every code point through ``re`` equal the per-code-point predicates they replace."""
    from steerdiff_plugins.automata.engine_regex import codepoint_ranges
    from steerdiff_plugins.schema.char_sets import _norm, _unicode_set

    tests = {"digit": str.isdecimal, "word": lambda c: c.isalnum() or c == "_", "space": str.isspace}
    for kind, test in tests.items():
        want = codepoint_ranges(lambda c: not 0xD800 <= ord(c) <= 0xDFFF and test(c), 0x10FFFF)
        want += [(0xFEFF, 0xFEFF)] if kind == "space" else []
        assert _unicode_set.__wrapped__(kind) == tuple(_norm(want))


def test_lit_as_before():
    """``_lit`` through one ``str.translate`` escapes every code point as ``_lit_char`` does."""
    from steerdiff_plugins.schema.fragments import _lit, _lit_char

    every = "".join(chr(o) for o in range(0x110000) if not 0xD800 <= o <= 0xDFFF)
    assert _lit(every) == "".join(_lit_char(c) for c in every)
