"""Maps (objects without declared properties) with ``minProperties: 1``, ``maxProperties`` and
``propertyNames`` (issue 23 item 4, ``containers._map``): sampled texts validate with python-jsonschema,
random maps the language accepts are valid (hypothesis), and counts duplicate keys could break are refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema
from schema_checks import assert_samples_valid, validator as _validator

CASES = [
    {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
    {"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {"type": "integer"}},
    {"type": "object", "propertyNames": {"pattern": "^[a-c]+$", "maxLength": 2},
     "additionalProperties": {"type": "integer"}},
    {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {"type": "string"}},
    {"type": "object", "propertyNames": {"enum": ["a", "bc"]}, "patternProperties": {".*": {"type": "integer"}}},
    # python-jsonschema: the joined patterns are "", which finds no key, so every key is additional: only {}
    {"type": "object", "additionalProperties": False, "propertyNames": {"enum": ["a", "bc"]},
     "patternProperties": {"": {"type": "integer"}}},
    {"type": "object", "minProperties": 1, "patternProperties": {"^[a-c]+$": {"type": "integer"}}},
]


@pytest.mark.parametrize("schema", CASES, ids=range(len(CASES)))
def test_samples_validate(schema):
    comp = compile_schema(schema)
    assert_samples_valid(schema, comp, 200)


@settings(max_examples=800, deadline=None)
@given(case=st.sampled_from(range(len(CASES))),
       entries=st.lists(st.tuples(st.text(alphabet="abcd", max_size=3), st.integers(-3, 3)), max_size=4))
def test_accepted_maps_are_valid(case, entries):
    schema = CASES[case]
    text = "{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in entries) + "}"
    if compile_schema(schema).fullmatch(text):
        assert _validator(schema).is_valid(json.loads(text)), (text, schema)


def test_min_properties_without_any_allowed_key_is_empty():
    comp = compile_schema({"type": "object", "properties": {"m": {"type": "object", "minProperties": 1,
                                                                  "additionalProperties": False}}})
    assert comp.fullmatch("{}") and not comp.fullmatch('{"m":{}}')


def test_counts_are_kept():
    assert not compile_schema(CASES[0]).fullmatch("{}") and compile_schema(CASES[0]).fullmatch('{"a":"b"}')
    assert not compile_schema(CASES[1]).fullmatch('{"a":1,"b":2,"c":3}')
    assert compile_schema(CASES[2]).fullmatch('{"ab":1}') and not compile_schema(CASES[2]).fullmatch('{"abc":1}')
    assert compile_schema(CASES[4]).fullmatch('{"bc":1}') and not compile_schema(CASES[4]).fullmatch('{"b":1}')
    assert compile_schema(CASES[5]).fullmatch("{}") and not compile_schema(CASES[5]).fullmatch('{"bc":1}')


@pytest.mark.parametrize("schema,kw", [
    ({"type": "object", "minProperties": 2, "additionalProperties": {"type": "string"}}, "minProperties"),
    ({"type": "object", "propertyNames": {"maxLength": 2}, "patternProperties": {"^a": {"type": "integer"}}},
     "propertyNames"),
])
def test_refused_by_name(schema, kw):
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema({"type": "object", "properties": {"m": schema}, "required": ["m"]})
    assert e.value.keyword == kw and e.value.pointer.startswith("#/properties/m")


GRAMMAR_CASES = CASES + [{"type": "object", "maxProperties": 2, "additionalProperties": {"type": "integer"}},
                         {"anyOf": [{"type": "object", "properties": {"z": {"type": "integer"}}},
                                    {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "integer"}}]}]


@pytest.mark.parametrize("schema", GRAMMAR_CASES, ids=range(len(GRAMMAR_CASES)))
def test_grammar_engine_keeps_the_counts(schema):
    """The grammar fallback never loosens these maps: it refuses the count keywords by name (to_lark's own
    keyword check), or parses exactly the regex's texts."""
    import lark

    from steerdiff_plugins.grammar import Grammar
    from steerdiff_plugins.schema.to_lark import schema_to_lark

    try:
        grammar = schema_to_lark(schema)
    except UnsupportedSchemaError as e:
        assert e.keyword in ("minProperties", "maxProperties", "propertyNames")
        return
    Grammar(grammar)  # loads in the exact engine (LALR, no conflicts)
    parser = lark.Lark(grammar, start="start", parser="lalr")
    comp = compile_schema(schema)
    for text in ["{}", '{"a":1}', '{"a":1,"b":2}', '{"a":1,"b":2,"c":3}', '{"ab":1}', '{"bc":1}', '{"a":"x"}',
                 '{"z":1}']:
        try:
            parser.parse(text)
            parsed = True
        except lark.exceptions.LarkError:
            parsed = False
        assert parsed == comp.fullmatch(text), (text, schema)



@pytest.mark.parametrize("schema", GRAMMAR_CASES, ids=range(len(GRAMMAR_CASES)))
def test_tree_grammar_keeps_the_counts(schema):
    """fill's grammar fallback builds from the node tree (tree_to_lark): it parses exactly the regex's maps."""
    import lark

    from steerdiff_plugins.grammar import validator
    from steerdiff_plugins.schema.compiled import compile_tree
    from steerdiff_plugins.schema.tree_to_lark import tree_to_lark

    parser = validator(tree_to_lark(compile_tree(schema)[0]), "start")
    comp = compile_schema(schema)
    for text in ["{}", '{"a":1}', '{"a":1,"b":2}', '{"a":1,"b":2,"c":3}', '{"ab":1}', '{"bc":1}', '{"a":"x"}',
                 '{"z":1}']:
        try:
            parser.parse(text)
            parsed = True
        except lark.exceptions.LarkError:
            parsed = False
        assert parsed == comp.fullmatch(text), (text, schema)


def test_tree_grammar_refuses_a_large_map_bound_by_name():
    from steerdiff_plugins.schema.compiled import compile_tree
    from steerdiff_plugins.schema.tree_to_lark import tree_to_lark

    with pytest.raises(UnsupportedSchemaError) as e:
        tree_to_lark(compile_tree({"type": "object", "maxProperties": 40, "additionalProperties": {"type": "integer"}})[0])
    assert e.value.keyword == "maxProperties"
