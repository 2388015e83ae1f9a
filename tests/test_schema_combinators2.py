"""Combinators the schema compiler distributes or rewrites (issue 23 item 4): two ``anyOf`` (or two ``oneOf``)
lists in one ``allOf`` distributed into their pairs (libman, tson), an ``if`` that fixes no constant
written as the union it equals (size-limit), and a schema dependency on a required
property merged into ``allOf`` (calculate_area; draft 7's ``dependencies`` and 2020-12's ``dependentSchemas``). The compiled language must be a subset of the valid
instances: checked by brute force over every object of a small key/value alphabet (written in the
compiler's key order, no whitespace: its documented narrowing) against python-jsonschema, where the
compile is also complete, and by sampled texts."""

from __future__ import annotations

import itertools
import json

import pytest

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema
from schema_checks import assert_samples_valid, validator

KEYS = ["a", "b", "c", "d"]
PROPS = {k: {"type": ["integer", "string"]} for k in KEYS}
ANY_ANY = {"type": "object", "properties": PROPS, "allOf": [  # libman's shape: provider x destination
    {"anyOf": [{"required": ["a"]}, {"properties": {"b": {"type": "integer"}}, "not": {"required": ["a"]}}]},
    {"anyOf": [{"required": ["c"]}, {"required": ["d"]}]}]}
ONE_ONE = {"type": "object", "properties": PROPS, "allOf": [  # tson's shape: exactly one of each pair
    {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    {"oneOf": [{"required": ["c"]}, {"required": ["d"]}]}]}
DEPENDENCY = {"type": "object", "required": ["a"], "properties": {"a": {"enum": [0, "x"]}, "b": {"type": "integer"},
                                                                    "c": {"type": "string"}},
              "dependentSchemas": {"a": {"oneOf": [{"properties": {"a": {"const": 0}, "b": {"maximum": 0}}},
                                               {"properties": {"a": {"const": "x"}}, "required": ["c"]}]}}}
ONE_ONE_PROPS = {"type": "object", "properties": PROPS, "allOf": [
    {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    {"oneOf": [{"required": ["c"]}, {"properties": {"c": {"type": "string"}}, "required": ["d"]}]}]}
NOT_PROPS = {"type": "object", "properties": {"a": {"type": "array"}, "b": {"type": "array"}, "c": {"type": "integer"}},
             "not": {"properties": {"a": {"maxItems": 0}, "b": {"maxItems": 0}}}}  # o10347: a or b non-empty
ONEOF_OVERLAP = {"oneOf": [{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
                           {"type": "object", "properties": {"a": {"type": "string"}, "c": {"type": "integer"}},
                            "required": ["c"]}]}  # packer, o9817: objects valid under one branch only
ONEOF_REQUIRED = {"type": "object", "properties": PROPS, "required": ["a"], "oneOf": [  # o12453
    {"anyOf": [{"required": ["b", "c"]}, {"required": ["b", "d"]}]},
    {"anyOf": [{"required": ["c", "d"]}, {"required": ["a", "b", "d"]}]}]}
ONEOF_VACUOUS = {"oneOf": [{"type": ["string", "null"], "minLength": 2},  # o65417: a string satisfies both
                           {"oneOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
                                      {"properties": {"b": {"type": "integer"}}, "additionalProperties": False}]}]}
ONEOF_CLOSED = {"oneOf": [{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
                           "required": ["a"]},  # o21840: a map of one false value, or a described object
                          {"type": "object", "properties": {"b": {"type": "boolean"}},
                           "additionalProperties": {"type": "boolean", "enum": [False]},
                           "minProperties": 1, "maxProperties": 1}]}
ONEOF_EMPTY_BRANCH = {"oneOf": [{"type": ["boolean", "null"]},  # o48661: booleans satisfy both, so fail
                                {"properties": {"a": {"type": "boolean"}}}]}
IF_THEN = {"type": "object", "properties": PROPS, "allOf": [  # size-limit's shape: an if that fixes no constant
    {"if": {"properties": {"a": {"type": "integer"}}}, "then": {"required": ["b"]}},
    {"if": {"not": {"properties": {"c": {"type": "string"}}}}, "then": {"properties": {"d": {"type": "integer"}}}}]}
IF_ELSE = {"type": "object", "properties": PROPS, "if": {"required": ["a"]},
           "then": {"properties": {"b": {"type": "string"}}}, "else": {"properties": {"b": {"type": "integer"}}}}
NOT_RANGE = {"type": ["integer", "string", "null"], "not": {"minimum": 1, "exclusiveMaximum": 3}}  # below or above
CASES = {"not-range": NOT_RANGE, "if-then": IF_THEN, "if-else": IF_ELSE, "anyOf-x-anyOf": ANY_ANY, "oneOf-x-oneOf": ONE_ONE, "dependency-on-required": DEPENDENCY,
         "oneOf-x-oneOf-props": ONE_ONE_PROPS, "not-props": NOT_PROPS, "oneOf-overlap": ONEOF_OVERLAP,
         "oneOf-required": ONEOF_REQUIRED, "oneOf-vacuous": ONEOF_VACUOUS, "oneOf-closed": ONEOF_CLOSED,
         "oneOf-empty-branch": ONEOF_EMPTY_BRANCH}
EXACT = {"not-range", "anyOf-x-anyOf", "dependency-on-required", "not-props", "if-then", "if-else"}  # complete too, on objects of declared keys


def _instances():
    """Some non-objects, and every object over keys a-d with values 0, "x", [], [1], false (each key order)."""
    yield from [0, 1, 2, 3, -3, 1.5, "x", "xy", None, True, [], [1]]
    for mask in itertools.product([False, True], repeat=4):
        present = [k for k, m in zip("abcd", mask) if m]
        for vals in itertools.product([0, "x", [], [1], False], repeat=len(present)):
            yield dict(zip(present, vals))


@pytest.mark.parametrize("name", list(CASES))
def test_sound_on_every_small_instance(name):
    """Every small instance the compiled regex accepts (in any key order, no whitespace) validates; where the
    compile is exact (EXACT), every valid one whose keys the schema declares is accepted in some order."""
    schema = CASES[name]
    comp, v = compile_schema(schema), validator(schema)
    accepted = 0
    for x in _instances():
        texts = [json.dumps(x, separators=(",", ":"))] if not isinstance(x, dict) else \
            [json.dumps(dict(p), separators=(",", ":")) for p in itertools.permutations(x.items())]
        hit = any(comp.fullmatch(t) for t in texts)
        accepted += hit
        if hit:
            assert v.is_valid(x), texts[0]
        elif name in EXACT and v.is_valid(x) and all(f'"{k}"' in json.dumps(schema) for k in x):
            raise AssertionError(f"valid but not accepted: {texts[0]}")
    assert accepted > 0


@pytest.mark.parametrize("name", list(CASES))
def test_sampled_texts_validate(name):
    schema = CASES[name]
    assert_samples_valid(schema, compile_schema(schema), n=200)


def test_too_many_pairs_refused_by_name_and_pointer():
    many = [[{"required": [f"{c}{i}"]} for i in range(17)] for c in "kl"]
    schema = {"type": "object", "properties": {"x": {"allOf": [{"anyOf": many[0]}, {"anyOf": many[1]}]}}}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "allOf" and e.value.pointer == "#/properties/x/allOf", str(e.value)
    assert "289 branches" in str(e.value)


@pytest.mark.parametrize("name,accepted,rejected", [
    ("oneOf-vacuous", ["xy", None, {"a": 1}], ["x", {"a": 1, "b": 1}, 3]),
    ("oneOf-overlap", [{"a": 1}, {"a": "s", "c": 1}, {"a": 1, "b": "s"}], [{"c": 1}, {"a": "s"}]),
    ("oneOf-closed", [{"a": "s"}, {"a": "s", "b": True}, {"b": True}], [{"a": 1}, {}, {"a": "s", "b": 1}]),
    ("oneOf-empty-branch", [{"a": True}, {}], [True, None, {"a": 1}]),
    ("not-props", [{"a": [1]}, {"a": [], "b": [1], "c": 1}], [{}, {"a": []}, {"c": 1}]),
    ("oneOf-required", [{"a": 0, "b": 0, "c": 0}], [{"a": 0, "b": 0, "c": 0, "d": 0}, {"a": 0}]),
])
def test_labelled_instances(name, accepted, rejected):
    """Instances told apart as python-jsonschema does (compact, the compiler's key order among the orders)."""
    schema = CASES[name]
    comp, v = compile_schema(schema), validator(schema)

    def hit(x):
        if not isinstance(x, dict):
            return comp.fullmatch(json.dumps(x, separators=(",", ":")))
        return any(comp.fullmatch(json.dumps(dict(p), separators=(",", ":"))) for p in itertools.permutations(x.items()))

    for x in accepted:
        assert v.is_valid(x) and hit(x), x
    for x in rejected:
        assert not v.is_valid(x) and not hit(x), x


def test_map_branch_exclusion_refused_by_name_and_pointer():
    """Excluding a branch from a map (no declared keys) would close the map: refused, not narrowed."""
    schema = {"oneOf": [{"type": "object", "additionalProperties": {"type": "boolean"}, "minProperties": 1},
                        {"type": "object", "properties": {"a": {"type": "string"}}}]}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "oneOf" and e.value.pointer == "#/oneOf" and "keys of a map" in str(e.value)
