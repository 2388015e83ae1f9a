"""Deeper any values (``compile_schema(any_depth=n)``, issue 23 MaskBench work): any-value nodes (the empty
schema, undeclared keys' values) nest up to ``n`` levels deeper than ``max_depth`` gives them, where the regex
stays under the size limits, else exactly as with ``any_depth=0``. Checked against python-jsonschema (FormatChecker
on): sampled texts, hypothesis instances (accepted => valid), the MaskBench labelled instances. ``max_depth=1``
keeps the regexes small (any_depth=2 over max_depth=3 is a 79k-character regex for one free-form property)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from schema_checks import assert_samples_valid, validator
from hypothesis import given, settings
from hypothesis import strategies as st

import steerdiff_plugins.schema.compiled as compiled
from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import ANY_DEPTH, compile_schema

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "maskbench_tests"

FREE = {"type": "object", "properties": {"id": {"type": "integer"}, "settings": {}}, "required": ["id"]}
TYPED = {"type": "object", "properties": {"p": {"type": "object", "additionalProperties": {"type": "array"}}}}
OPEN = {"type": "object", "properties": {"a": {"type": "integer"}}}


def _nested(depth: int):
    v = 1
    for i in range(depth):
        v = [v] if i % 2 else {"k": v}
    return v


def _clear():
    compiled._CACHE.clear()
    compiled._TREES.clear()


def test_default_unchanged():
    """The default is any_depth=0, with and without extra_keys: the same regex as asking for it."""
    for schema in (FREE, TYPED, OPEN, True, {}):
        for ek in (False, True):
            assert compile_schema(schema, max_depth=1, extra_keys=ek).regex == \
                compile_schema(schema, max_depth=1, extra_keys=ek, any_depth=0).regex


@pytest.mark.parametrize("extra_keys", [False, True])
def test_deeper_values_accepted_and_valid(extra_keys):
    """A free-form value nested max_depth + 2 deep is accepted with any_depth=2 (not with 0); sampled texts of
    the deeper languages validate."""
    v = validator(FREE)
    shallow = compile_schema(FREE, max_depth=1, extra_keys=extra_keys, any_depth=0)
    deep = compile_schema(FREE, max_depth=1, extra_keys=extra_keys, any_depth=2)
    for depth in range(6):
        x = {"id": 1, "settings": _nested(depth)}
        assert deep.fullmatch(deep.dumps(x)) == (depth <= 1 + 2 - 1), depth  # settings sits one level down
        assert shallow.fullmatch(shallow.dumps(x)) == (depth <= 1 - 1), depth
        assert v.is_valid(x)
    for schema in (FREE, TYPED, OPEN):
        comp = compile_schema(schema, max_depth=1, extra_keys=extra_keys, any_depth=2)
        assert_samples_valid(schema, comp, n=60, seed=3)


def test_undeclared_values_deeper():
    """extra_keys' undeclared values (EXTRA_DEPTH levels) nest any_depth levels deeper."""
    x = json.dumps({"q": _nested(2), "a": 1}, separators=(",", ":"))
    assert not compile_schema(OPEN, max_depth=1, extra_keys=True, any_depth=0).fullmatch(x)
    assert compile_schema(OPEN, max_depth=1, extra_keys=True, any_depth=ANY_DEPTH).fullmatch(x)


def test_size_fallback_is_exactly_any_depth_0(monkeypatch):
    """Where the deeper regex passes EXTRA_MAX_CHARS, each shallower depth is tried, and at the end the compile
    is exactly that of any_depth=0 (the same regex), with the dropped tries in the notes."""
    _clear()
    base = compile_schema(FREE, max_depth=1, extra_keys=True, any_depth=0)
    one = compile_schema(FREE, max_depth=1, extra_keys=True, any_depth=1)
    assert len(one.regex) > len(base.regex)
    _clear()
    monkeypatch.setattr(compiled, "EXTRA_MAX_CHARS", len(one.regex))
    mid = compile_schema(FREE, max_depth=1, extra_keys=True, any_depth=2)
    assert mid.regex == one.regex and sum("any_depth=2 dropped" in n for n in mid.notes) == 1
    _clear()
    monkeypatch.setattr(compiled, "EXTRA_MAX_CHARS", len(base.regex))
    low = compile_schema(FREE, max_depth=1, extra_keys=True, any_depth=2)
    assert low.regex == base.regex and sum("dropped" in n for n in low.notes) == 2
    _clear()
    # without extra_keys the deeper try is held to the same limit, and falls back to today's regex
    plain = compile_schema(FREE, max_depth=1)
    monkeypatch.setattr(compiled, "EXTRA_MAX_CHARS", len(plain.regex))
    assert compile_schema(FREE, max_depth=1, any_depth=2).regex == plain.regex
    _clear()


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_bad_option(bad):  # None asks for unbounded any values: tests/test_unbounded_any.py
    with pytest.raises(ConstraintError, match="any_depth"):
        compile_schema(OPEN, any_depth=bad)


_JSON = st.recursive(st.one_of(st.integers(-3, 3), st.text("ab\"\\é", max_size=2), st.booleans(), st.none()),
                     lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.text("kq", max_size=1),
                                                                                            inner, max_size=2)),
                     max_leaves=12)
_SUB = st.sampled_from([{}, True, {"type": "object"}, {"type": "array"},
                        {"type": "object", "additionalProperties": {"type": ["integer", "array"]}},
                        {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}}])


@settings(max_examples=120, deadline=None)
@given(sub=_SUB, addl=st.one_of(st.none(), _SUB), extra=st.booleans(), xs=st.lists(_JSON, min_size=1, max_size=6))
def test_random_exact(sub, addl, extra, xs):
    """Random schemas with free-form parts and random (deep) instances: accepted => valid, as ``dumps`` writes it
    and as plain compact JSON; and whatever any_depth=0 accepts, any_depth=2 accepts."""
    schema = {"type": "object", "properties": {"v": sub}}
    if addl is not None:
        schema["additionalProperties"] = addl
    try:
        deep = compile_schema(schema, max_depth=1, extra_keys=extra, any_depth=2)
        shallow = compile_schema(schema, max_depth=1, extra_keys=extra, any_depth=0)
    except (ConstraintError, UnsupportedSchemaError):
        return
    v = validator(schema)
    for x in xs:
        for inst in ({"v": x}, {"q": x, "v": x}, {"v": {"k": x}}):
            text = deep.dumps(inst)
            if deep.fullmatch(text):
                assert v.is_valid(json.loads(text)), (schema, text)
            compact = json.dumps(inst, separators=(",", ":"), ensure_ascii=False)
            if deep.fullmatch(compact):
                assert v.is_valid(inst), (schema, compact)
            if shallow.fullmatch(shallow.dumps(inst)):
                assert deep.fullmatch(text), (schema, text)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata not present")
def test_maskbench_deep_values():
    """MaskBench schemas whose valid instances nest free-form values deeper than max_depth: with extra_keys (and
    any_depth=ANY_DEPTH) their valid instances are accepted and no invalid one is."""
    want = {"o84908", "wp_23_Normalized"}
    gained = invalid = 0
    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            if it["id"] not in want:
                continue
            comp = compile_schema(it["schema"], extra_keys=True, any_depth=ANY_DEPTH)
            base = compile_schema(it["schema"], extra_keys=True)
            for t in it["tests"]:
                text = comp.dumps(t["data"])
                if t["valid"]:
                    gained += comp.fullmatch(text) and not base.fullmatch(base.dumps(t["data"]))
                else:
                    invalid += 1
                    compact = json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False)
                    assert not comp.fullmatch(text) and not comp.fullmatch(compact), (it["id"], t["description"])
    assert gained >= 4 and invalid >= 3, (gained, invalid)
