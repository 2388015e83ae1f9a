"""Undeclared object keys (``compile_schema(extra_keys=True)``, issue 23 MaskBench work): objects may hold keys
they do not declare where ``additionalProperties`` allows them, and the language must stay a subset of the
valid instances. Checked against python-jsonschema (FormatChecker on): sampled texts, random instances drawn by
hypothesis (accepted => valid; valid and inside the documented narrowing => accepted), the MaskBench labelled
instances, and the key-complement regex by brute force."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema, sample_text
from steerdiff_plugins.schema.compiler import KEY_DEPTH, keys_except

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "maskbench_tests"


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_keys_except_brute_force():
    """Accepted texts are never keys; every text that leaves the keys' trie within KEY_DEPTH+1 characters (or
    any non-key, with a deep enough trie cut) is accepted."""
    rng = random.Random(0)
    for _ in range(200):
        keys = ["".join(rng.choice("ab-]") for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(0, 5))]
        for depth in (0, 1, 2, 5):
            c = re.compile(keys_except(keys, depth))
            for n in range(6):
                for w in map("".join, itertools.product("ab-]x", repeat=n)):
                    if c.fullmatch(w):
                        assert w not in keys, (keys, depth, w)
                    elif depth >= 5 or not any(k.startswith(w[:depth + 1]) for k in keys):
                        assert w in keys, (keys, depth, w)


def test_keys_except_never_writes_escapes():
    c = re.compile(keys_except(["a"]))
    assert not c.fullmatch(r"\u0061") and not c.fullmatch('"') and not c.fullmatch("\n")
    assert c.fullmatch("é") and c.fullmatch("") and not c.fullmatch("a")


OPEN = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]}
TYPED = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "boolean"}}
DEPS = {"type": "object", "properties": {"a": {"type": "integer"}}, "dependentRequired": {"x": ["y"]}}
NOT_REQ = {"type": "object", "properties": {"a": {"type": "integer"}}, "not": {"required": ["z"]}}
ONE_OF = {"oneOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]}]}
ONE_OF_CONST = {"oneOf": [{"type": "object", "properties": {"kind": {"const": "x"}, "a": {}}, "required": ["kind"]},
                          {"type": "object", "properties": {"kind": {"const": "y"}}, "required": ["kind"]}]}
ALL_OF = {"allOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
                    {"properties": {"b": {"type": "boolean"}}}], "type": "object"}
NESTED = {"type": "object", "properties": {"inner": {"type": "object", "properties": {"k": {"type": "null"}},
                                                     "required": ["k"]}}}
DRAFT4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
          "properties": {"n": {"type": "number", "minimum": 0}}, "required": ["n"]}
PATTERNS = {"type": "object", "properties": {"a": {"type": "integer"}},
            "patternProperties": {"^q": {"type": "string"}, "^(q|z)": {"maxLength": 2}},
            "additionalProperties": {"type": ["string", "integer"]}}
FSTAB = {"type": "object", "required": ["/"], "properties": {"/": {"type": "string"}},
         "patternProperties": {"^(/[^/]+)+$": {"type": "object", "properties": {"d": {"type": "string"}},
                                                "required": ["d"]}},
         "additionalProperties": False}
CASES = {"fstab": FSTAB, "patterns": PATTERNS, "open": OPEN, "typed": TYPED, "deps": DEPS, "not-required": NOT_REQ, "oneOf": ONE_OF, "oneOf-const": ONE_OF_CONST, "allOf": ALL_OF,
         "nested": NESTED, "draft4": DRAFT4}


@pytest.mark.parametrize("name", list(CASES))
def test_sampled_texts_validate(name):
    schema = CASES[name]
    comp = compile_schema(schema, extra_keys=True)
    v = _validator(schema)
    rng = random.Random(1)
    for _ in range(300):
        text = sample_text(comp.regex, rng)
        assert v.is_valid(json.loads(text)), text


@pytest.mark.parametrize("schema,accepted,rejected", [
    (OPEN, [{"a": 1, "q": "x"}, {"q": None, "r": 2.5, "a": 0, "b": "s"}, {"a": 1, "": True}],
     [{"q": 1}, {"a": "1", "q": 1}, {"a": 1, "b": 2}]),
    (TYPED, [{"q": True}, {"a": 1, "q": False}], [{"q": 1}, {"a": True}]),
    # x needs y: x is never written as an extra key; nor z under not {required: [z]}
    (DEPS, [{"y": 1}, {"q": 1, "a": 2}], [{"x": 1}]),
    (NOT_REQ, [{"q": 1}], [{"z": 1}, {"a": 1, "z": 1}]),
    # a oneOf branch stays closed: {"a": 1, "b": 1} matches both branches
    (ONE_OF, [{"a": 1}, {"b": 1}], [{"a": 1, "b": 1}, {"a": 1, "q": 1}]),
    # ... but one told apart by a const discriminator (a schema-level proof) takes undeclared keys
    (ONE_OF_CONST, [{"kind": "x", "q": 1}, {"kind": "y", "a": True}], [{"kind": "z"}, {"q": 1}]),
    # b must be a string (additionalProperties of the first) and a boolean: never written; extras are strings
    (ALL_OF, [{"a": 1, "q": "s"}], [{"b": True}, {"q": 1}]),
    (NESTED, [{"inner": {"k": None, "q": 1}, "q": "x"}], [{"inner": {"q": 1}}]),
    # an undeclared key's value follows every pattern's schema and additionalProperties at once
    # additionalProperties false: undeclared keys come from a pattern no declared key matches
    (FSTAB, [{"/": "x", "/home": {"d": "a"}}, {"/": "x", "/a/b": {"d": "a", "e": 1}}],
     [{"/": "x", "/home": {"e": 1}}, {"/": "x", "home": {"d": "a"}}, {"/": "x", "/a/": {"d": "a"}}]),
    (PATTERNS, [{"q": "xy"}, {"a": 1, "z": "x"}], [{"q": 1}, {"z": 1}, {"q": "xyz"}, {"a": "s"}]),
])
def test_labelled(schema, accepted, rejected):
    comp = compile_schema(schema, extra_keys=True)
    v = _validator(schema)
    for x in accepted:
        assert v.is_valid(x) and comp.fullmatch(comp.dumps(x)), x
    for x in rejected:
        assert not comp.fullmatch(comp.dumps(x)), x
        assert not comp.fullmatch(json.dumps(x, separators=(",", ":"))), x


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
    {"type": "object", "properties": {"a": {}}, "propertyNames": {"maxLength": 3}},
    {"type": "object", "properties": {"a": {}}, "maxProperties": 2},
    {"type": "object", "properties": {"a": {}},
     "additionalProperties": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
])
def test_closed_objects(schema):
    """Where other keywords govern or count undeclared keys (or the additionalProperties schema is not
    expressible), the object stays closed: the same language as without extra_keys."""
    assert compile_schema(schema, extra_keys=True).regex == compile_schema(schema).regex
    assert not compile_schema(schema, extra_keys=True).fullmatch('{"q":"x"}')


def test_extra_values_under_a_negated_string_schema():
    """``not`` of a string schema is expressible (``char_languages``), so undeclared keys are written, and their
    values are held to it: one character at most here (this schema stayed closed before that work)."""
    schema = {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string", "not": {"minLength": 2}}}
    comp, v = compile_schema(schema, extra_keys=True), _validator(schema)
    for text, ok in [('{"q":"x"}', True), ('{"q":""}', True), ('{"q":"xy"}', False), ('{"q":1}', False)]:
        assert v.is_valid(json.loads(text)) == ok
        assert bool(comp.fullmatch(text)) == ok, text


def test_escaped_declared_key_is_not_an_extra_key():
    comp = compile_schema(OPEN, extra_keys=True)
    assert not comp.fullmatch('{"\\u0061":"s"}') and not comp.fullmatch('{"a":1,"\\u0062":3}')


def test_bad_option():
    with pytest.raises(ConstraintError, match="extra_keys"):
        compile_schema(OPEN, extra_keys="yes")


def test_nesting_bound_and_size_fallback(monkeypatch):
    """``extra_keys=n`` opens the objects nested at most n containers deep; a regex the undeclared keys take
    past EXTRA_MAX_CHARS falls back to extra_keys=1, then to closed objects."""
    import steerdiff_plugins.schema.compiled as compiled

    top = compile_schema(NESTED, extra_keys=0)
    assert top.fullmatch('{"q":"x","inner":{"k":null}}') and not top.fullmatch('{"inner":{"q":1,"k":null}}')
    full = compile_schema(NESTED, extra_keys=True)
    assert full.fullmatch('{"inner":{"q":1,"k":null}}') and full.regex != top.regex
    deep = {"type": "object", "properties": {"m": {"type": "object", "properties": {"n": {
        "type": "object", "properties": {"k": {"type": "null"}}}}}}}
    outer = compile_schema(deep, extra_keys=1)
    assert len(outer.regex) < len(compile_schema(deep, extra_keys=True).regex)
    compiled._CACHE.clear()
    compiled._TREES.clear()
    monkeypatch.setattr(compiled, "EXTRA_MAX_CHARS", len(outer.regex))
    assert compile_schema(deep, extra_keys=True).regex == outer.regex
    compiled._CACHE.clear()
    compiled._TREES.clear()
    monkeypatch.setattr(compiled, "EXTRA_MAX_CHARS", len(outer.regex) - 1)
    small = compile_schema(deep, extra_keys=True)
    assert small.regex == compile_schema(deep).regex and sum("dropped" in n for n in small.notes) == 2
    compiled._CACHE.clear()
    compiled._TREES.clear()


def test_default_unchanged():
    assert not compile_schema(OPEN).fullmatch('{"a":1,"q":2}')


_SUB = st.sampled_from([{"type": "integer"}, {"type": "string", "maxLength": 2}, {"type": "boolean"}, {},
                        {"enum": [1, "x"]}, {"type": "null"}])
_KEY = st.text("abq", min_size=0, max_size=3)
_VAL = st.one_of(st.integers(-3, 3), st.text("xy\"\\é", max_size=3), st.booleans(), st.none(),
                 st.lists(st.integers(0, 2), max_size=2), st.dictionaries(st.text("ab", max_size=1), st.none(), max_size=1))


@settings(max_examples=200, deadline=None)
@given(props=st.dictionaries(_KEY, _SUB, max_size=4), req=st.lists(_KEY, max_size=2),
       addl=st.one_of(st.none(), _SUB), deps=st.dictionaries(_KEY, st.lists(_KEY, max_size=1), max_size=1),
       instances=st.lists(st.dictionaries(_KEY, _VAL, max_size=4), min_size=1, max_size=8))
@example(props={"": {"type": "integer"}}, req=[], addl=None, deps={"": [""]}, instances=[{}])  # found on merge
def test_random_objects_exact(props, req, addl, deps, instances):
    """Random object schemas and random instances: an accepted instance validates; a valid instance whose
    undeclared keys are new within KEY_DEPTH+1 characters, with scalar values, and whose declared part the
    default (closed) language accepts, is accepted: undeclared keys add no narrowing of their own."""
    schema = {"type": "object", "properties": props, "required": req, "dependentRequired": deps}
    if addl is not None:
        schema["additionalProperties"] = addl
    try:
        comp = compile_schema(schema, extra_keys=True)
    except (ConstraintError, UnsupportedSchemaError):
        return
    v = _validator(schema)
    named = set(props) | set(req) | set(deps)
    for x in instances:
        text = comp.dumps(x)
        ok = comp.fullmatch(text)
        if ok:
            assert v.is_valid(json.loads(text)), (schema, text)
        compact = json.dumps(x, separators=(",", ":"), ensure_ascii=False)
        if comp.fullmatch(compact):
            assert v.is_valid(x), (schema, compact)
        extras = [k for k in x if k not in props]
        plain = all(not isinstance(val, (list, dict)) for val in x.values())
        new = all(not any(n.startswith(k[:KEY_DEPTH + 1]) for n in named) for k in extras)
        deps_hold = all(all(d in x for d in deps[t]) for t in deps if t in x)
        closed = compile_schema(schema)  # the declared part must be in the default language (its own narrowings,
        declared = {k: val for k, val in x.items() if k in props}  # e.g. a key that depends on itself is written)
        if v.is_valid(x) and plain and new and deps_hold and not set(req) - set(props) and \
                closed.fullmatch(closed.dumps(declared)):
            assert ok, (schema, text)


def _maskbench(names, per_file):
    for name in names:
        for it in json.loads((DATA / name).read_text())["items"][:per_file]:
            yield it


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata not present")
def test_maskbench_labelled():
    """MaskBench instances of two categories: no invalid instance is accepted (as written by ``dumps`` or in
    plain compact JSON), and undeclared keys make valid instances accepted that the closed objects reject."""
    gained = invalid = 0
    for it in _maskbench(["Snowplow.json", "Github_medium.json"], 40):
        try:
            comp = compile_schema(it["schema"], extra_keys=True)
            closed = compile_schema(it["schema"])
        except (ConstraintError, UnsupportedSchemaError):
            continue
        if len(comp.regex) > 200_000:
            continue
        for t in it.get("tests", []):
            text = comp.dumps(t["data"])
            if t["valid"]:
                gained += comp.fullmatch(text) and not closed.fullmatch(closed.dumps(t["data"]))
            else:
                invalid += 1
                compact = json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False)
                assert not comp.fullmatch(text) and not comp.fullmatch(compact), (it["id"], t["description"])
    assert invalid > 20 and gained >= 5, (invalid, gained)


def test_json_schema_constraint_option(model):
    """``sd.JSONSchema(schema, extra_keys=True)``: the constraint's language holds undeclared keys (the regex its
    token automaton is built from), generation through it validates, and a bad value is named."""
    import steerdiff as sd
    from steerdiff.vocab import vocab_for

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    open_c, closed_c = sd.JSONSchema(schema, extra_keys=True), sd.JSONSchema(schema)
    assert re.fullmatch(open_c.regex(), '{"zz":true,"a":1}') and not re.fullmatch(closed_c.regex(), '{"zz":true,"a":1}')
    assert re.fullmatch(open_c.regex_on(48, vocab_for(model.tokenizer)), '{"zz":true,"a":1}')
    v = _validator(schema)
    for seed in range(3):
        out = sd.generate(model, "x", length=24, steps=8, constraints=[sd.JSONSchema(schema, extra_keys=True)],
                          seed=seed, temperature=1.0)
        v.validate(json.loads(out.text))
    with pytest.raises(ConstraintError, match="extra_keys"):
        sd.JSONSchema(schema, extra_keys="yes")
