"""Combinators the schema compiler distributes or rewrites (issue 23 item 4): two ``anyOf`` (or two ``oneOf``)
lists in one ``allOf`` distributed into their pairs (libman, tson), and a schema dependency on a required
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
DEPENDENCY = {"type": "object", "required": ["a"], "properties": {"a": {"enum": [1, 2]}, "b": {"type": "integer"},
                                                                    "c": {"type": "string"}},
              "dependentSchemas": {"a": {"oneOf": [{"properties": {"a": {"const": 1}, "b": {"maximum": 0}}},
                                               {"properties": {"a": {"const": 2}}, "required": ["c"]}]}}}
CASES = {"anyOf-x-anyOf": ANY_ANY, "oneOf-x-oneOf": ONE_ONE, "dependency-on-required": DEPENDENCY}


def _objects(schema):
    """Every object over the schema's declared keys (in declared order) with values 0, 1, -1 and "x"."""
    keys = list(schema["properties"])
    for mask in itertools.product([False, True], repeat=len(keys)):
        present = [k for k, m in zip(keys, mask) if m]
        for vals in itertools.product([0, 1, -1, "x"], repeat=len(present)):
            yield dict(zip(present, vals))


@pytest.mark.parametrize("name", list(CASES))
def test_exact_on_every_small_object(name):
    """Sound on every small object; complete where no oneOf exclusion is narrowed (a missing key chosen)."""
    schema = CASES[name]
    comp, v = compile_schema(schema), validator(schema)
    n_valid = 0
    for x in _objects(schema):
        text = json.dumps(x, separators=(",", ":"))
        ok = v.is_valid(x)
        n_valid += ok
        if comp.fullmatch(text):
            assert ok, text
        elif ok and name != "oneOf-x-oneOf":
            raise AssertionError(f"valid but not accepted: {text}")
    assert n_valid > 0


@pytest.mark.parametrize("name", list(CASES))
def test_sampled_texts_validate(name):
    schema = CASES[name]
    assert_samples_valid(schema, compile_schema(schema), n=200)


def test_too_many_pairs_refused_by_name_and_pointer():
    many = [[{"required": [f"{c}{i}"]} for i in range(9)] for c in "kl"]
    schema = {"type": "object", "properties": {"x": {"allOf": [{"anyOf": many[0]}, {"anyOf": many[1]}]}}}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "allOf" and e.value.pointer == "#/properties/x/allOf", str(e.value)
    assert "81 branches" in str(e.value)
