"""Bounds a canvas cannot reach are not built (steerdiff_plugins/canvas_bounds.py), and the language on the
canvas stays exactly the same: proved by brute force on small capacities, with re.fullmatch, lark's own
parser and python-jsonschema as the judges; then sd.fill on a schema with maxLength 65535, in both engines."""

from __future__ import annotations

import itertools
import json
import re
import time

import jsonschema
import numpy as np
import pytest

from steerdiff.testing import tiny_model  # noqa: E402

import steerdiff as sd  # noqa: E402
from steerdiff.errors import ConstraintError, UnsupportedSchemaError  # noqa: E402
from steerdiff.vocab import TokenVocab  # noqa: E402
from steerdiff_plugins.automata.byte_level import byte_dfa  # noqa: E402
from steerdiff_plugins.automata.token_walk import compile_token_dfa  # noqa: E402
from steerdiff_plugins.canvas_bounds import capacity_bucket, fit_count  # noqa: E402
from steerdiff_plugins.schema.compiled import compile_tree, schema_to_regex  # noqa: E402

# (schema, alphabet of the brute force). Every bound is around or beyond the capacities tried (3..7 bytes).
CASES = [
    ({"type": "string", "maxLength": 6}, '"ab'),
    ({"type": "string", "minLength": 2, "maxLength": 40}, '"a\\'),
    ({"type": "string", "minLength": 6}, '"a'),
    ({"type": "string", "minLength": 9}, '"a'),  # empty on every canvas tried
    ({"type": "array", "items": {"enum": [1, 22]}, "maxItems": 3}, "[]12,"),
    ({"type": "array", "items": {"enum": [1]}, "minItems": 2, "maxItems": 50}, "[]1,"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 4}, "[]1,"),
    ({"type": "object", "additionalProperties": {"enum": [1]}, "maxProperties": 1}, '{}"a:1,'),
    ({"type": "string", "pattern": "^(ab?){1,3}$"}, '"ab'),
    ({"type": "string", "pattern": "^(a?){2,30}b$"}, '"ab'),  # a nullable repeat
    ({"type": "string", "pattern": "^(a{9}|b{1,20})$"}, '"ab'),  # one branch cannot fit
    ({"type": "string", "pattern": "a{3,40}"}, '"ab'),  # search semantics
    ({"type": "string", "format": "date", "maxLength": 100}, '"0'),  # dropped bound: format now compiles
]


def _texts(alphabet: str, cap: int):
    for n in range(cap + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_fit_count_rules():
    assert fit_count(0, 65535, 1, 1024) == (0, None)
    assert fit_count(3, 1024, 1, 1024) == (3, None) and fit_count(3, 1023, 1, 1024) == (3, 1023)
    assert fit_count(1025, None, 1, 1024) == (1, 0)  # empty: hi < lo
    assert fit_count(5, 9, 2, 16) == (5, None) and fit_count(9, None, 2, 16) == (1, 0)
    assert fit_count(30, 40, 0, 16) == (0, None)  # nullable piece
    assert fit_count(4, 9, 1, None) == (4, 9)
    assert capacity_bucket(1) == 64 and capacity_bucket(65) == 128 and capacity_bucket(128) == 128


@pytest.mark.parametrize("case", range(len(CASES)))
def test_regular_language_on_the_canvas_is_unchanged(case):
    """Every text of at most ``cap`` bytes over the alphabet: the clamped regex, its byte automaton and the
    unclamped regex agree; what they accept validates under python-jsonschema (format checks on)."""
    schema, alphabet = CASES[case]
    v = _validator(schema)
    try:
        full = re.compile(schema_to_regex(schema))
    except UnsupportedSchemaError:
        full = None  # refused without a canvas (format with maxLength): the clamped one is judged by jsonschema
    for cap in (3, 5, 7):
        try:
            rx = schema_to_regex(schema, capacity=cap)
        except ConstraintError as exc:
            assert "fits a canvas" in str(exc)
            assert full is None or not any(full.fullmatch(t) for t in _texts(alphabet, cap) if len(t.encode()) <= cap)
            continue
        clamped, dfa = re.compile(rx), byte_dfa(rx)
        for t in _texts(alphabet, cap):
            got = clamped.fullmatch(t) is not None
            assert dfa.accepts(t.encode()) == got, (schema, cap, t)
            if full is not None:
                assert (full.fullmatch(t) is not None) == got, (schema, cap, t)
            if got:
                assert v.is_valid(json.loads(t)), (schema, t)


@pytest.mark.parametrize("case", [0, 1, 4, 5, 8, 9, 10])
def test_grammar_language_on_the_canvas_is_unchanged(case):
    """The grammar engine's inputs (tree_to_lark of the clamped tree; schema_to_lark with the capacity)
    accept, by lark's own parser, exactly what the unclamped regex accepts on texts of at most ``cap`` bytes."""
    from lark.exceptions import LarkError

    from steerdiff_plugins.grammar import validator
    from steerdiff_plugins.schema.to_lark import schema_to_lark
    from steerdiff_plugins.schema.tree_to_lark import tree_to_lark

    schema, alphabet = CASES[case]
    full = re.compile(schema_to_regex(schema))
    cap = 5
    grammars = [tree_to_lark(compile_tree(schema, capacity=cap)[0])]
    try:
        grammars.append(schema_to_lark(schema, capacity=cap))
    except UnsupportedSchemaError:
        pass  # enum items / patterns are the tree path's
    for g in grammars:
        parser = validator(g, "start")
        for t in _texts(alphabet, cap):
            try:
                parser.parse(t)
                got = True
            except LarkError:
                got = False
            assert got == (full.fullmatch(t) is not None), (schema, g, t)


def test_token_language_on_the_canvas_is_unchanged():
    """All token sequences of a small vocabulary over ``L`` positions (the padding token ends a text early):
    the token automaton of the clamped regex and of the unclamped one allow the same sequences."""
    toks = (b"", b'"', b"a", b"aa", b'a"', b'"aa', b"b")  # id 0: padding (writes nothing)
    vocab = TokenVocab(token_bytes=toks, special=frozenset({0}), kind="plain", leading_space=False)
    L = 3
    cap = L * 3  # three bytes at most per token
    for schema in ({"type": "string", "maxLength": 30}, {"type": "string", "minLength": 2, "maxLength": 7},
                   {"type": "string", "pattern": "^(a|b){1,50}$"}):
        a = compile_token_dfa(schema_to_regex(schema, capacity=cap), vocab, 0)
        b = compile_token_dfa(schema_to_regex(schema), vocab, 0)
        assert a.n_states < b.n_states or schema.get("maxLength") == 7
        masked = np.zeros(L, dtype=bool)
        for seq in itertools.product(range(len(toks)), repeat=L):
            ids = np.array(seq)
            assert a.completable(a.tok2cls[ids], masked) == b.completable(b.tok2cls[ids], masked), (schema, seq)


NOTE = {"type": "object",
        "properties": {"id": {"type": "integer"}, "note": {"type": "string", "maxLength": 65535},
                       "tags": {"type": "array", "items": {"type": "string", "maxLength": 100000}, "maxItems": 50000}},
        "required": ["id", "note"]}


def _capacity(model, positions: int) -> int:
    from steerdiff.vocab import canvas_capacity, vocab_for

    return canvas_capacity(positions, vocab_for(model.tokenizer))


@pytest.fixture(scope="module")
def model():
    import torch

    torch.set_num_threads(1)
    return tiny_model("masked", "bytelevel", max_positions=1024)


def test_fill_with_maxlength_65535_is_quick_and_valid(model):
    from steerdiff.fill import _constraint

    t0 = time.perf_counter()
    for seed in range(2):
        value = sd.fill(model, NOTE, "id 7, note: call back tomorrow", seed=seed, temperature=1.0 if seed else 0.0)
        jsonschema.validate(value, NOTE)
    assert time.perf_counter() - t0 < 30  # generous: it ran for minutes before the canvas bound
    assert isinstance(_constraint(NOTE, capacity=_capacity(model, 64)), sd.JSONSchema)  # the regular engine took it
    # a constraint compiled for a capacity refuses a span that holds more
    small = sd.JSONSchema(NOTE, capacity=64)
    with pytest.raises(ConstraintError, match="was compiled for a text of at most 64 bytes"):
        sd.generate(model, "x", length=40, constraints=[small])


def test_fill_grammar_fallbacks_with_maxlength_65535(model, monkeypatch):
    """Both grammar paths: recursion the regular engine refuses ($ref: schema_to_lark) and an automaton over
    the state limit (size: tree_to_lark of the compiled tree; the limit is lowered to force it), each with a
    maxLength 65535 string."""
    from steerdiff.fill import _constraint
    from steerdiff_plugins.automata import byte_level, token_walk as tokendfa
    from steerdiff_plugins.grammar import Grammar

    chain = {"type": "object", "properties": {"note": {"type": "string", "maxLength": 65535}, "next": {"$ref": "#/$defs/n"}},
             "required": ["note", "next"],
             "$defs": {"n": {"type": ["object", "null"], "properties": {"note": {"type": "string", "maxLength": 65535},
                                                                         "next": {"$ref": "#/$defs/n"}},
                             "required": ["note", "next"]}}}
    with pytest.raises(UnsupportedSchemaError) as exc:
        sd.JSONSchema(chain, capacity=_capacity(model, 48))
    assert exc.value.keyword == "$ref"
    tokendfa.cache_clear()
    monkeypatch.setattr(byte_level, "MAX_STATES", 10)
    t0 = time.perf_counter()
    for schema in (chain, NOTE):
        assert isinstance(_constraint(schema, capacity=_capacity(model, 48)), Grammar)
        for seed in range(2):
            value = sd.fill(model, schema, "a note", length=48, seed=seed, temperature=1.0 if seed else 0.0)
            jsonschema.validate(value, schema)
            assert isinstance(value["note"], str)
    assert time.perf_counter() - t0 < 60
    tokendfa.cache_clear()


def test_minimum_beyond_the_canvas_is_named():
    with pytest.raises(ConstraintError, match="minLength 5000 at #/properties/a/minLength needs more"):
        schema_to_regex({"type": "object", "properties": {"a": {"type": "string", "minLength": 5000}}, "required": ["a"]},
                        capacity=1024)
    # an optional one is simply absent on the canvas
    rx = schema_to_regex({"type": "object", "properties": {"a": {"type": "string", "minLength": 5000}}}, capacity=1024)
    assert rx == r"\{\}"
