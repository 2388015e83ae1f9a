"""``oneOf`` branches told apart exactly (issue 23 item 4): branch types known through nested
``anyOf``/``oneOf``, numeric ranges that do not meet, ``allOf``/``$ref`` branches compared flat, and an
optional discriminator key made required (a narrowing). Every text the compiled regex accepts must
validate with python-jsonschema (sampled texts, and random instances drawn by hypothesis), and labelled
instances are accepted/rejected as the narrowing says."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema, sample_text
from schema_checks import assert_samples_valid, validator as _validator

NESTED_TYPES = {"type": "object", "properties": {"v": {"oneOf": [
    {"type": "array", "items": {"type": "string"}},
    {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"type": "null"}]}}, "required": ["v"]}
RANGES = {"type": "integer", "oneOf": [{"minimum": -1, "maximum": -1}, {"minimum": 50, "maximum": 100}]}
DISCRIMINATOR = {"type": "object", "properties": {"shape": {"type": "string"}, "size": {"type": "integer"}},
                 "oneOf": [{"properties": {"shape": {"const": "circle"}, "r": {"type": "integer"}}},
                           {"properties": {"shape": {"const": "square"}, "side": {"type": "integer"}}}]}
ALLOF_BRANCH = {"$defs": {"ref": {"type": "object", "required": ["type", "id"], "additionalProperties": False,
                                  "properties": {"type": {"enum": ["reference"]}, "id": {"type": "string"}}},
                          "sec": {"type": "object", "required": ["type", "name"], "additionalProperties": False,
                                  "properties": {"type": {"enum": ["section"]}, "name": {"type": "string"}}}},
                "oneOf": [{"$ref": "#/$defs/sec"},
                          {"allOf": [{"$ref": "#/$defs/ref"}, {"properties": {"id": {"maxLength": 8}}}]}]}
# a required key whose string patterns do not meet (bundleconfig: the other branch's pattern has no type)
BY_PATTERN = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}},
              "oneOf": [{"properties": {"name": {"pattern": "\\.js$"}, "map": {"type": "boolean"}}},
                        {"properties": {"name": {"pattern": "\\.css$"}}}]}
# o10020: {} is valid under both; each branch always writes the key the other's additionalProperties rejects
BY_ABSENT_KEY = {"type": "object", "oneOf": [
    {"additionalProperties": False, "properties": {"key": {"type": "string"}}},
    {"additionalProperties": False, "properties": {"keys": {"type": "array", "items": {"type": "string"}}}}]}
# o11666: an enum branch keeps the values no other branch admits; the object branch never equals the enum's object
ENUM_OBJECT = {"oneOf": [{"enum": [{"type": "void"}, "v"]},
                         {"type": "object", "required": ["type"], "additionalProperties": False,
                          "properties": {"type": {"type": "string"}}},
                         {"type": "string", "pattern": "^v"}]}
IDENTICAL = {"oneOf": [{"type": "integer"}, {"type": "integer"}, {"type": "null"}]}
# the other branch's patternProperties give the written key a disjoint value schema
BY_PATTERN_PROPS = {"type": "object", "oneOf": [
    {"properties": {"ids": {"type": "array", "items": {"type": "string"}}}, "required": ["ids"]},
    {"properties": {"n": {"type": "integer"}}, "patternProperties": {"^[a-z]+$": {"type": ["string", "number", "null"]}}}]}
# o90940: one branch requires "b", the other forbids it (not {required: ["b"]})
NOT_REQUIRED = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {}, "c": {}}, "additionalProperties": False,
                "oneOf": [{"required": ["a", "b"]}, {"allOf": [{"not": {"required": ["b"]}}, {"required": ["a", "c"]}]}]}
CASES = [NESTED_TYPES, RANGES, DISCRIMINATOR, ALLOF_BRANCH, BY_PATTERN, BY_ABSENT_KEY, ENUM_OBJECT, IDENTICAL,
         BY_PATTERN_PROPS, NOT_REQUIRED]


@pytest.mark.parametrize("schema", CASES, ids=["nested-types", "ranges", "discriminator", "allOf-branch", "by-pattern",
                                                "by-absent-key", "enum-object", "identical", "by-pattern-props",
                                                "not-required"])
def test_sampled_texts_validate(schema):
    comp = compile_schema(schema)
    assert_samples_valid(schema, comp)


@pytest.mark.parametrize("schema,valid,invalid", [
    (NESTED_TYPES, [{"v": ["a"]}, {"v": "a"}, {"v": 3}, {"v": None}], [{"v": 1.5}, {"v": True}, {}]),
    (RANGES, [-1, 50, 77, 100], [0, -2, 49, 101]),
    # {} and {"size": 1} match both branches (invalid); the narrowing always writes "shape"
    (DISCRIMINATOR, [{"shape": "circle"}, {"shape": "square", "side": 2}, {"shape": "circle", "size": 1, "r": 2}],
     [{}, {"size": 1}, {"shape": "triangle"}, {"shape": "circle", "r": "x"}]),
    (ALLOF_BRANCH, [{"type": "section", "name": "x"}, {"type": "reference", "id": "abc"}],
     [{"type": "reference", "id": "abcdefghi"}, {"type": "section", "id": "a"}, {"type": "other", "name": "x"}]),
    (BY_PATTERN, [{"name": "a.js"}, {"name": "a.css"}, {"name": "a.js", "map": True}],
     [{"name": "a.txt"}, {"name": ""}, {}, {"name": "a.js", "map": 1}]),
    # {} matches both branches; the narrowing always writes "key" / "keys"
    (BY_ABSENT_KEY, [{"key": "a"}, {"keys": ["a"]}, {"keys": []}], [{}, {"key": "a", "keys": []}, {"key": 1}]),
    (ENUM_OBJECT, [{"type": "x"}, "va"], [{"type": "void"}, "v", "w", {}, {"type": "x", "y": 1}]),
    (IDENTICAL, [None], [1, 0, "a"]),
    (NOT_REQUIRED, [{"a": 1, "b": 1}, {"a": 1, "c": 1}, {"a": 1, "b": 2, "c": 3}], [{"a": 1}, {"c": 1}, {"a": "x", "b": 1}]),
    (BY_PATTERN_PROPS, [{"ids": ["a"]}, {"ids": []}, {"n": 1}, {}], [{"n": "x"}, {"ids": [1]}, {"n": 1.5}]),
])
def test_labelled_instances(schema, valid, invalid):
    comp = compile_schema(schema)
    v = _validator(schema)
    for x in valid:
        assert v.is_valid(x), x  # the labels themselves are right
        assert comp.fullmatch(comp.dumps(x)), x
    for x in invalid:
        assert not v.is_valid(x), x
        assert not comp.fullmatch(comp.dumps(x)), x
        assert not comp.fullmatch(json.dumps(x, separators=(",", ":"))), x


_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 120)
                       | st.sampled_from(["circle", "square", "a", "void", "v", "a.js", "b.css", ""]),
                       lambda c: st.lists(c, max_size=2)
                       | st.dictionaries(st.sampled_from(["shape", "size", "r", "side", "v", "type", "id", "name", "key",
                                                          "keys", "map", "ids", "n", "a", "b", "c"]), c,
                                         max_size=3), max_leaves=4)


@settings(max_examples=400, deadline=None)
@given(x=_values, case=st.sampled_from(range(len(CASES))))
def test_random_instances_never_accepted_when_invalid(x, case):
    """Soundness on random instances: whatever the language accepts validates."""
    schema = CASES[case]
    comp = compile_schema(schema)
    for text in {comp.dumps(x), json.dumps(x, separators=(",", ":"))}:
        if comp.fullmatch(text):
            assert _validator(schema).is_valid(json.loads(text)), text


def test_overlap_without_discriminator_still_refused():
    # (pattern "^a" against maxLength 3 is now excluded over characters: test_schema_string_not)
    schema = {"oneOf": [{"type": "string", "format": "email"}, {"type": "string", "maxLength": 3}]}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "oneOf" and e.value.pointer == "#/oneOf"


def test_numeric_ranges_without_type_are_not_disjoint():
    # strings satisfy both ranges (bounds apply to numbers only): no disjointness may be claimed
    schema = {"oneOf": [{"minimum": -1, "maximum": -1}, {"minimum": 50, "maximum": 100}]}
    try:
        comp = compile_schema(schema)
    except UnsupportedSchemaError:
        return
    assert_samples_valid(schema, comp, 200, seed=1)


# allOf of if/then whose ifs fix a key to constants (minecraft-loot-table, saucectl, typo3): one branch per if
IF_THEN = {"type": "object", "properties": {"kind": {"enum": ["a", "b", "c"]}, "x": {"type": "integer"}, "v": {}},
           "allOf": [{"if": {"properties": {"kind": {"const": "a"}}}, "then": {"required": ["x"]}},
                     {"if": {"properties": {"kind": {"const": "b"}, "v": {"const": 1}}},
                      "then": {"properties": {"x": {"maximum": 3}}}},
                     {"if": {"type": "object", "properties": {"v": {"const": 2}}}, "then": {"required": ["kind"]}}]}


def test_if_then_union_sampled_and_labelled():
    comp = compile_schema(IF_THEN)
    v = _validator(IF_THEN)
    rng = random.Random(0)
    for _ in range(300):
        text = sample_text(comp.regex, rng)
        assert v.is_valid(json.loads(text)), text
    for x in ({"kind": "a", "x": 5}, {"kind": "b", "v": 1, "x": 2}, {"kind": "b", "v": 1}, {"v": 2, "kind": "c", "x": 0}):
        assert v.is_valid(x) and comp.fullmatch(comp.dumps(x)), x
    for x in ({"kind": "a"}, {"kind": "b", "v": 1, "x": 4}, {"v": 2}):
        assert not v.is_valid(x) and not comp.fullmatch(comp.dumps(x)), x
    # narrowings: objects that match no if, or lack an if's key, are not written
    assert v.is_valid({"kind": "c"}) and not comp.fullmatch(comp.dumps({"kind": "c"}))
    assert any("if/then" in n for n in comp.notes)


@settings(max_examples=300, deadline=None)
@given(x=st.dictionaries(st.sampled_from(["kind", "x", "v"]),
                         st.sampled_from(["a", "b", "c", 1, 2, 3, 4, 5, None]), max_size=3))
def test_if_then_random_objects_sound(x):
    comp = compile_schema(IF_THEN)
    for text in {comp.dumps(x), json.dumps(x, separators=(",", ":"))}:
        if comp.fullmatch(text):
            assert _validator(IF_THEN).is_valid(json.loads(text)), text


def test_if_then_is_not_compared_or_negated_as_narrowed():
    """The union is a narrowing: a oneOf may not use it to prove branches apart (a string satisfies every if,
    so {"x": "s"} below matches both branches), and a not of it is refused."""
    cond = {"allOf": [{"if": {"properties": {"k": {"const": 1}}}, "then": {"minLength": 2}}]}
    schema = {"oneOf": [{"type": "string"}, cond]}
    try:
        comp = compile_schema(schema)
    except UnsupportedSchemaError:
        comp = None
    if comp is not None:
        assert_samples_valid(schema, comp, 200, seed=2)
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema({"type": "object", "not": cond})
    assert e.value.keyword == "not"


def test_other_conditionals_written_as_the_union_they_equal():
    """An if that fixes no constant is written as anyOf [not if, then] (exact); one whose negation is not
    expressible is refused by name (the not of a format)."""
    schema = {"allOf": [{"if": {"properties": {"k": {"minimum": 1}}}, "then": {"required": ["k"]}}]}
    comp = compile_schema(schema)
    assert_samples_valid(schema, comp, 200, seed=1)
    assert any("if/then/else written as the union" in n for n in comp.notes)
    schema = {"type": "object", "properties": {"k": {"type": "string"}},
              "allOf": [{"if": {"properties": {"k": {"format": "email"}}}, "then": {"required": ["x"]}}]}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "not", str(e.value)


IF_ELSE = {"type": "object", "properties": {"type": {"type": "string"}, "u": {"type": "string"}},  # typo3 staticRoutes
           "if": {"properties": {"type": {"const": "uri"}}}, "then": {"required": ["u"]},
           "else": {"properties": {"u": {"maxLength": 1}}}}


def test_direct_if_then_else():
    comp = compile_schema(IF_ELSE)
    v = _validator(IF_ELSE)
    rng = random.Random(0)
    for _ in range(300):
        text = sample_text(comp.regex, rng)
        assert v.is_valid(json.loads(text)), text
    for x in ({"type": "uri", "u": "long"}, {"type": "x", "u": "a"}, {"type": "x"}):
        assert v.is_valid(x) and comp.fullmatch(comp.dumps(x)), x
    for x in ({"type": "uri"}, {"type": "x", "u": "ab"}, {"type": 1}):
        assert not v.is_valid(x) and not comp.fullmatch(comp.dumps(x)), x
    for s in ({"u": "ab"}, {"type": "uri", "u": "ab"}, {"type": "uri\n"}):
        if comp.fullmatch(json.dumps(s, separators=(",", ":"))):
            assert v.is_valid(s), s


def test_else_with_several_conditionals_refused():
    schema = {"allOf": [{"if": {"properties": {"k": {"const": 1}}}, "then": {"required": ["a"]}, "else": {"required": ["b"]}},
                        {"if": {"properties": {"k": {"const": 2}}}, "then": {"required": ["c"]}}]}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "else", str(e.value)
