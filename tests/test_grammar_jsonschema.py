"""Recursive JSON Schemas through the lark grammar engine (steerdiff_plugins/grammar_jsonschema.py + fill fallback)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

lark = pytest.importorskip("lark")


import steerdiff as sd  # noqa: E402
from steerdiff.errors import UnsupportedSchemaError  # noqa: E402
from steerdiff_plugins.grammar import Grammar  # noqa: E402
from steerdiff_plugins.schema.to_lark import schema_to_lark  # noqa: E402

# every validation of generated output checks formats too (jsonschema[format-nongpl] is in the test extra)
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER

TREE = {"type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["name"]}
LIST = {"$defs": {"node": {"type": "object",
                           "properties": {"value": {"type": "integer"},
                                          "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
                           "required": ["value", "next"]}},
        "$ref": "#/$defs/node"}
# Optional keys around required ones, enum/const, numbers, booleans, nested definitions, minItems 1.
EXPR = {"definitions": {
    "expr": {"anyOf": [{"type": "integer"}, {"type": "boolean"}, {"$ref": "#/definitions/op"}]},
    "op": {"type": "object",
           "properties": {"tag": {"const": "op"}, "name": {"enum": ["add", "mul", "neg"]},
                          "weight": {"type": "number"}, "args": {"type": "array", "items": {"$ref": "#/definitions/expr"},
                                                                  "minItems": 1},
                          "note": {"type": ["string", "null"]}},
           "required": ["name", "args"]}},
    "$ref": "#/definitions/expr"}
# The regular engine refuses this one at the default max_depth (recursion on a required path).
CHAIN = {"type": ["object", "null"], "properties": {"v": {"type": "integer"}, "next": {"$ref": "#"}},
         "required": ["v", "next"]}

CASES = {
    "tree": (TREE,
             [{"name": "a"}, {"name": "a", "children": []},
              {"name": "r", "children": [{"name": "x", "children": [{"name": "y\n\"é"}]}, {"name": "z"}]}],
             ['{}', '{"children":[]}', '{"name":"a",}', '{"children":[],"name":"a"}', '{"name":"a","extra":1}',
              '{"name":"a","children":[{}]}', '{"name": "a"}', '{"name":1}']),
    "list": (LIST,
             [{"value": 1, "next": None}, {"value": -3, "next": {"value": 0, "next": {"value": 7, "next": None}}}],
             ['{"value":1}', '{"value":1,"next":{"value":2}}', '{"next":null,"value":1}', '{"value":1.5,"next":null}',
              'null']),
    "expr": (EXPR,
             [3, True, {"name": "add", "args": [1, 2]}, {"tag": "op", "name": "neg", "args": [False]},
              {"name": "mul", "weight": 0.5, "args": [{"name": "neg", "args": [-1]}, 2], "note": None},
              {"tag": "op", "name": "add", "weight": -2e-3, "args": [0], "note": "n"}],
             ['{"name":"add","args":[]}', '{"name":"sub","args":[1]}', '{"tag":"x","name":"add","args":[1]}',
              '{"args":[1],"name":"add"}', '{"name":"add","args":[1],"weight":1}', '1.5', 'null',
              '{"name":"add","args":[1],}']),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grammar_accepts_canonical_valid_and_rejects_invalid(name):
    schema, valid, invalid = CASES[name]
    grammar = schema_to_lark(schema)
    Grammar(grammar)  # loads in the exact engine (LALR, no conflicts)
    parser = lark.Lark(grammar, start="start", parser="lalr")
    for inst in valid:
        jsonschema.validate(inst, schema, format_checker=FORMATS)
        parser.parse(json.dumps(inst, ensure_ascii=False, separators=(",", ":")))
    for text in invalid:
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(text)


def test_regular_engine_refuses_chain_so_fill_falls_back():
    with pytest.raises(UnsupportedSchemaError) as exc:
        sd.JSONSchema(CHAIN)
    assert exc.value.keyword == "$ref"
    from steerdiff.fill import _constraint

    assert isinstance(_constraint(CHAIN), Grammar)
    assert not isinstance(_constraint(TREE), Grammar)  # non-recursive-failure path unchanged


@pytest.mark.parametrize("schema,max_depth", [(CHAIN, 3), (TREE, 0), (LIST, 0), (EXPR, 0)])
def test_fill_recursive_schema_always_validates(model, schema, max_depth):
    for seed in range(4):
        kw = {"temperature": 1.0} if seed else {}
        value = sd.fill(model, schema, "text", length=48, seed=seed, max_depth=max_depth, **kw)
        jsonschema.validate(value, schema, format_checker=FORMATS)


def test_fill_recursive_pydantic_model(model):
    from pydantic import BaseModel

    class Node(BaseModel):
        label: str
        kids: list["Node"] = []

    Node.model_rebuild()
    value = sd.fill(model, Node, "text", length=40, max_depth=0)
    assert isinstance(value, Node)


@pytest.mark.parametrize("schema,keyword,pointer", [
    # pattern: a $ref-free subschema the grammar builder refuses goes through compile_tree, which refuses
    # a lookahead; the pointer is the absolute one
    ({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?=a)a+$"}, "t": {"$ref": "#"}}},
     "pattern", "#/properties/s/pattern"),
    ({"type": "object", "properties": {"xs": {"type": "array", "items": {"$ref": "#"}, "uniqueItems": True}}},
     "uniqueItems", "#/properties/xs/uniqueItems"),
    ({"$defs": {"n": {"oneOf": [{"$ref": "#/$defs/n"}, {"type": "null"}]}}, "$ref": "#/$defs/n"},
     "oneOf", "#/$defs/n/oneOf"),
    ({"$ref": "https://example.org/s.json"}, "$ref", "#/$ref"),
])
def test_unsupported_keyword_is_refused_with_keyword_and_pointer(schema, keyword, pointer):
    with pytest.raises(UnsupportedSchemaError) as exc:
        schema_to_lark(schema)
    assert exc.value.keyword == keyword
    assert exc.value.pointer == pointer
    assert keyword in str(exc.value) and pointer in str(exc.value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_generate_under_schema_grammar_validates(model, name):
    schema = CASES[name][0]
    constraint = Grammar(schema_to_lark(schema))
    for seed in range(3):
        r = sd.generate(model, "text", length=48, steps=12, constraints=[constraint], seed=seed,
                        temperature=1.0 if seed else 0.0)
        jsonschema.validate(json.loads(r.text), schema, format_checker=FORMATS)


def _wide(levels: int, width: int = 12, leaf=None):
    """Objects of ``width`` optional properties nested ``levels`` deep (plus annotations the grammar
    engine ignores): the canonical regex writes each optional property's sub-expression twice (once
    as the first member, once after a comma), so its size grows like (2 width)^levels."""
    node = leaf or {"type": "string"}
    for i in range(levels):
        node = {"type": "object", "x-origin": f"level {i}", "properties": {f"p{j}": node for j in range(width)}}
    return node


def test_too_large_for_a_regex_so_fill_uses_the_grammar(model):
    wide = {"anyOf": [{"$ref": "#/$defs/w"}], "type": "object", "$defs": {"w": _wide(4, width=9)}}
    with pytest.raises(UnsupportedSchemaError) as exc:
        sd.JSONSchema(wide)
    assert exc.value.keyword == "size"
    from steerdiff.fill import _constraint

    assert isinstance(_constraint(wide), Grammar)
    for seed in range(3):
        value = sd.fill(model, wide, "text", length=40, seed=seed, temperature=1.0 if seed else 0.0)
        jsonschema.validate(value, wide, format_checker=FORMATS)


def test_automaton_over_the_state_limit_so_fill_uses_the_grammar(model, monkeypatch):
    """A regex that compiles but whose byte automaton is over the state limit: fill takes the grammar
    engine (the plain constraint still refuses, naming the state count); a schema neither engine can
    take is refused with both reasons."""
    from steerdiff_plugins.automata import byte_level, token_walk as tokendfa

    from steerdiff.fill import _constraint

    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"},
                                               "c": {"enum": ["x", "y"]}}, "required": ["a"]}
    tokendfa.cache_clear()
    monkeypatch.setattr(byte_level, "MAX_STATES", 10)
    with pytest.raises(sd.AutomatonTooLarge, match="above the limit of 10") as exc:
        tokendfa.byte_dfa(sd.JSONSchema(schema)._compiled.regex)
    assert exc.value.limit == 10 and exc.value.states > 10
    assert isinstance(_constraint(schema), Grammar)
    for seed in range(2):
        value = sd.fill(model, schema, "text", length=24, seed=seed, temperature=1.0)
        jsonschema.validate(value, schema, format_checker=FORMATS)
    # keywords only the compiled tree carries (maxLength, format, integer bounds) go through the grammar too
    bounded = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}, "d": {"type": "string", "format": "date"},
                                                "n": {"type": "integer", "minimum": 5, "maximum": 9}}, "required": ["a", "d", "n"]}
    assert isinstance(_constraint(bounded), Grammar)
    for seed in range(2):
        value = sd.fill(model, bounded, "text", length=40, seed=seed, temperature=1.0)
        jsonschema.validate(value, bounded, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    # overlapping array branches whose items collide in LALR(1), and no recursion to hand to schema_to_lark
    both = {"anyOf": [{"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string", "maxLength": 2}}}},
                      {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "string", "maxLength": 2}}}}]}
    with pytest.raises(UnsupportedSchemaError, match="above the limit of 10.*grammar engine cannot take it.*LALR") as exc:
        _constraint(both)
    assert exc.value.keyword == "size"
    tokendfa.cache_clear()


def test_embedded_id_is_refused_below_the_root():
    with pytest.raises(UnsupportedSchemaError) as exc:
        # (a $ref inside it would resolve against the embedded id; a $ref-free subschema with an id goes
        # through compile_tree, where the id changes nothing)
        schema_to_lark({"type": "object", "properties": {"a": {"id": "other.json", "type": "object",
                                                               "properties": {"b": {"$ref": "#"}}}}})
    assert exc.value.keyword == "id" and exc.value.pointer == "#/properties/a/id"


def test_overlapping_object_branches_get_one_grammar(model, monkeypatch):
    """A JSONSchemaBench schema whose anyOf object branches overlap (``{}`` and shared optional keys), made
    too large for a regex by lowering the size limit (its regex was 1.6M characters before object members
    were written linearly): the branches are merged into one deterministic rule set, LALR(1) builds, and
    fill's outputs validate."""
    from steerdiff_plugins.schema import compiled as jr, nodes

    monkeypatch.setattr(nodes, "MAX_REGEX_CHARS", 20_000)
    jr._CACHE.clear()
    jr._TREES.clear()
    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas" / "WashingtonPost.json"
    if not path.exists():
        pytest.skip(f"test data not found at {path}")
    schema = next(it["schema"] for it in json.loads(path.read_text())["items"] if it["id"] == "wp_28_Normalized")
    from steerdiff.fill import _constraint

    with pytest.raises(UnsupportedSchemaError) as exc:
        sd.JSONSchema(schema)
    assert exc.value.keyword == "size"
    assert isinstance(_constraint(schema), Grammar)
    value = sd.fill(model, schema, "text", length=48, seed=1, temperature=1.0)
    jsonschema.validate(value, schema, format_checker=FORMATS)


# Recursion (only the grammar engine takes it) around $ref-free subschemas with keywords the grammar
# builder alone refuses (pattern, numeric bounds, format, oneOf, string bounds): those go through the
# regular engine's compile_tree and the tree grammar builder.
MIXED = {"$defs": {"n": {"type": "object", "properties": {
    "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]?$"},
    "w": {"type": "integer", "minimum": 3, "maximum": 17},
    "x": {"type": "number", "exclusiveMinimum": 0, "maximum": 2.5},
    "k": {"oneOf": [{"type": "string", "format": "date"}, {"type": "integer", "maximum": -1}]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
    "kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "required": ["code"]}},
    "$ref": "#/$defs/n"}
MIXED_VALID = [{"code": "AB"}, {"code": "ZZ9", "w": 3, "x": 2.5, "k": "2020-02-29", "tags": ["a", "xyz"]},
               {"code": "AB", "w": 17, "k": -15, "kids": [{"code": "CD", "x": 0.001, "kids": []}]}]
MIXED_INVALID = ['{"code":"ab"}', '{"code":"ABCD"}', '{"code":"AB","w":2}', '{"code":"AB","w":18}',
                 '{"code":"AB","x":0}', '{"code":"AB","x":2.6}', '{"code":"AB","k":"2021-02-29"}',
                 '{"code":"AB","k":7}', '{"code":"AB","tags":["abcd"]}', '{"code":"AB","tags":["a","b","c"]}',
                 '{"code":"AB","kids":[{"code":"A"}]}', '{"code":"AB","w":3.5}']


def test_ref_free_subschemas_the_builder_refuses_go_through_compile_tree():
    grammar = schema_to_lark(MIXED)
    Grammar(grammar)  # loads in the exact engine (LALR, no conflicts)
    parser = lark.Lark(grammar, start="start", parser="lalr")
    for inst in MIXED_VALID:
        jsonschema.validate(inst, MIXED, format_checker=FORMATS)
        parser.parse(json.dumps(inst, ensure_ascii=False, separators=(",", ":")))
    for text in MIXED_INVALID:
        assert not jsonschema.Draft202012Validator(MIXED, format_checker=FORMATS).is_valid(json.loads(text))
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(text)


# like CHAIN (the regular engine refuses its recursion), with keywords only compile_tree takes
MIXED_CHAIN = {"type": ["object", "null"], "properties": {
    "v": {"type": "string", "pattern": "^[a-c]{1,3}$"}, "n": {"type": "integer", "minimum": -2, "maximum": 40},
    "next": {"$ref": "#"}}, "required": ["v", "next"]}


def test_fill_mixed_recursive_schema_validates(model):
    from steerdiff.fill import _constraint

    with pytest.raises(UnsupportedSchemaError):
        sd.JSONSchema(MIXED_CHAIN)
    assert isinstance(_constraint(MIXED_CHAIN), Grammar)
    for seed in range(4):
        value = sd.fill(model, MIXED_CHAIN, "text", length=48, seed=seed, temperature=1.0 if seed else 0.0)
        jsonschema.validate(value, MIXED_CHAIN, format_checker=FORMATS)
