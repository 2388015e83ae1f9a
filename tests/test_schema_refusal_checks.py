"""Three ConstraintError refusals of the public JSONSchemaBench set, checked (issue 23): two are right (a schema
that admits no instance, a schema its own metaschema rejects), one was a bug (a repetition count the regex
translator refuses escaped ``fill``'s grammar fallback as a bare ConstraintError)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema
import pytest

import steerdiff as sd
from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema

SCHEMAS = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"

# calculate_area_95058385 (Glaiveai2K), as published less its descriptions
AREA = {"type": "object", "required": ["shape", "dimensions"], "properties": {
    "shape": {"type": "string", "enum": ["rectangle", "circle", "triangle"]},
    "dimensions": {"type": "object", "required": ["length", "width", "radius", "base", "height"],
                   "properties": {k: {"type": "number"} for k in ["base", "height", "length", "radius", "width"]},
                   "oneOf": [{"not": {"required": ["radius", "base", "height"]}, "required": ["length", "width"]},
                             {"not": {"required": ["length", "width", "base", "height"]}, "required": ["radius"]},
                             {"not": {"required": ["length", "width", "radius"]}, "required": ["base", "height"]}]}}}


def _public(sid):
    for f in sorted(SCHEMAS.glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            if it["id"] == sid:
                return it["schema"]
    return None


def _plain(s):
    if isinstance(s, dict):
        return {k: _plain(v) for k, v in s.items() if k != "description"}
    return [_plain(v) for v in s] if isinstance(s, list) else s


def test_calculate_area_admits_no_instance():
    """``dimensions`` must be an object holding all five keys (``required``), and each ``oneOf`` branch says
    ``not`` all of some three or four of them are there: with all five present every branch fails. Whether a
    value validates depends on its type, which of the five keys it holds, and their values being numbers, so
    trying every subset of the keys (numbers, and a string in place of one), plus extra keys and non-objects,
    decides it: python-jsonschema rejects them all, and the compiler refuses the schema as empty."""
    keys = ["length", "width", "radius", "base", "height"]
    v = jsonschema.Draft202012Validator(AREA["properties"]["dimensions"])
    tried = 0
    for n in range(len(keys) + 1):
        for sub in itertools.combinations(keys, n):
            for bad in [None, *sub]:
                for extra in ({}, {"q": 1}):
                    d = {k: ("x" if k == bad else 1.5) for k in sub} | extra
                    assert not v.is_valid(d), d
                    tried += 1
    for other in (None, 1, "x", [], True):
        assert not v.is_valid(other)
    assert tried == 2 * sum(len(c) + 1 for n in range(6) for c in itertools.combinations(keys, n))
    with pytest.raises(ConstraintError, match="admits no instance"):
        compile_schema(AREA)
    public = _public("calculate_area_95058385")
    if public is not None:
        assert _plain(public) == AREA  # the same schema, less its descriptions
        with pytest.raises(ConstraintError, match="admits no instance"):
            compile_schema(public)


def test_duplicate_enum_under_draft4_is_an_invalid_schema():
    """o15286 lists GBP and USD twice in a draft-04 ``enum``; draft-04's metaschema requires ``uniqueItems``
    there, so the schema is invalid and the constraint says so, naming where."""
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
              "properties": {"c": {"$ref": "#/definitions/currency"}},
              "definitions": {"currency": {"type": "string", "enum": ["GBP", "USD", "AED", "GBP"]}}}
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft4Validator.check_schema(schema)
    with pytest.raises(ConstraintError, match="invalid at definitions/currency/enum"):
        sd.JSONSchema(schema)
    public = _public("o15286")
    if public is not None:  # currency and countryCode both repeat values
        with pytest.raises(ConstraintError, match=r"invalid at definitions/\w+(/properties/\w+)?/enum: .* has non-unique"):
            sd.JSONSchema(public)


BIG = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                        "referer": {"type": ["string", "null"], "maxLength": 65535}},
       "required": ["name"]}


def test_repetition_count_over_the_automaton_is_a_named_size_refusal():
    """sp_0_Normalized's ``maxLength: 65535`` on a canvas that can hold it: the regex translator refuses the count
    (AutomatonTooLarge); the constraint now raises that as ``UnsupportedSchemaError('size', pointer)`` naming the
    string, so ``fill``'s path hands the schema to the grammar engine, as for a too-large byte automaton."""
    from steerdiff.fill import _constraint
    from steerdiff_plugins.json_schema import JSONSchemaGrammar

    with pytest.raises(UnsupportedSchemaError) as exc:
        sd.JSONSchema(BIG)
    assert exc.value.keyword == "size" and exc.value.pointer == "#/properties/referer"
    assert "65535" in str(exc.value)
    assert isinstance(_constraint(BIG, capacity=131072), JSONSchemaGrammar)
