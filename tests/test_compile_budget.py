"""Every compile stage has a budget and stops with a named error (steerdiff_plugins/compile_budget.py): inputs
that used to run for minutes (a byte automaton of a {0,65535} repetition, interegular on a counted terminal)
are refused or routed within seconds. Time bounds here are generous (30 s); the point is the named error."""

from __future__ import annotations

import random
import re
import time

import pytest

from steerdiff.testing import tiny_model  # noqa: E402

import steerdiff as sd  # noqa: E402
from steerdiff.errors import UnsupportedSchemaError  # noqa: E402
from steerdiff_plugins import compile_budget  # noqa: E402
from steerdiff_plugins.compile_budget import CompileBudgetExceeded, expansion  # noqa: E402
from steerdiff_plugins.automata.byte_level import byte_dfa  # noqa: E402
from steerdiff_plugins.schema.compiled import compile_schema, largest_count  # noqa: E402
from steerdiff_plugins.schema.fragments import STRCHAR  # noqa: E402


@pytest.fixture(scope="module")
def model():
    import torch

    torch.set_num_threads(1)
    return tiny_model("masked", "bytelevel", max_positions=1024)


def test_expansion_counts_what_counted_repetitions_add():
    assert expansion("abc") == 0 and expansion("a*b+") == 0
    assert expansion("a{5}") == 4 and expansion("(?:ab){3}") == 4
    assert expansion("(?:a{3}){4}") == 2 * 4 + 1 * 3  # nested: inner copies times outer copies, plus outer copies
    assert expansion('"' + STRCHAR + '{0,1000}"') > 10_000


def test_expansion_counts_shared_literal_prefixes_of_an_alternation_once():
    """The JSON escapes a string pattern's class lists (``\\u0000|\\u0001|...``) share their prefixes in the
    automaton: counted as a prefix tree. o21135/o21137/o62058's word-count patterns (``(?:\\S+\\s+){0,49}\\S+``
    in a string, 56k positions counted per character, 10k byte-DFA states, 0.6-2 s to build) were refused
    by the old count."""
    assert expansion(r"(?:x|\\u0000|\\u0001){10}") == 9 * 8  # x; \\, u, 0, 0, 0 shared; 0 and 1 (was 9 * 13)
    assert expansion(r"(?:ab|ac|d){3}") == 2 * 4  # a, ab, ac, d
    assert expansion(r"(?:ab|cd){3}") == 2 * 4  # nothing shared
    esc = "|".join(rf"\\u00{i:02x}" for i in range(0x1c))
    word = rf"(?:[^ \\]|{esc})"
    rx = rf'"(?:{word}{{1,3}} {{1,2}}){{0,49}}{word}{{1,3}}"'
    assert 3_000 < expansion(rx, 10**9) < compile_budget.MAX_EXPANSION
    bd = byte_dfa(rx)  # within the budget now, and exact
    assert bd.accepts(b'"ab cd"') and bd.accepts(b'"\\u0001"') and not bd.accepts(b'"ab  cd  "')
    assert not bd.accepts(('"' + " ".join(["a"] * 51) + '"').encode()) and bd.accepts(('"' + " ".join(["a"] * 50) + '"').encode())


def test_byte_automaton_of_a_huge_count_is_refused_quickly():
    t0 = time.perf_counter()
    with pytest.raises(CompileBudgetExceeded) as exc:
        byte_dfa('"' + STRCHAR + '{0,65535}"')  # ran for minutes before the state limit refused it
    assert exc.value.stage == "byte automaton" and "above the limit of" in exc.value.what
    assert time.perf_counter() - t0 < 30


def test_the_schema_pointer_of_the_largest_count_is_named():
    schema = {"type": "object", "properties": {"id": {"type": "integer"},
                                               "note": {"type": "string", "minLength": 2, "maxLength": 1800}}}
    c = sd.JSONSchema(schema)
    with pytest.raises(CompileBudgetExceeded):
        byte_dfa(c.regex())
    assert largest_count(c._compiled.node) == ("#/properties/note", "string length bounds 2..1800")


def test_counted_terminal_skips_interegular_and_keeps_the_language():
    """interegular took 69 s on this terminal; the byte-automaton route is exact for re.fullmatch."""
    from steerdiff_plugins.grammars.terminals import regex_to_byte_dfa

    rx = '"' + STRCHAR + '{2,300}"'
    t0 = time.perf_counter()
    dfa = regex_to_byte_dfa(rx, "NOTE")
    assert time.perf_counter() - t0 < 30
    cre, rng = re.compile(rx), random.Random(0)

    def accepts(data: bytes) -> bool:
        s = dfa.initial
        for b in data:
            s = dfa.trans[s, b]
            if s < 0:
                return False
        return bool(dfa.accept[s])

    pieces = ["a", "é", "\\n", "\\u00e9", '"', "\\", "\\ud800", "\x01", "日"]
    for _ in range(600):
        n = rng.choice([0, 1, 2, 3, 150, 299, 300, 301])
        body = "".join(rng.choice(pieces[:4]) if rng.random() < 0.97 else rng.choice(pieces) for _ in range(n))
        for text in ('"' + body + '"', '"' + body, body + '"'):
            assert accepts(text.encode()) == (cre.fullmatch(text) is not None), text
    with pytest.raises(CompileBudgetExceeded) as exc:
        regex_to_byte_dfa('"' + STRCHAR + '{0,5000}"', "HUGE")
    assert exc.value.stage == "terminal automaton" and exc.value.pointer == "terminal HUGE"


def test_fill_on_a_bound_the_canvas_holds_stops_with_a_named_error(model, monkeypatch):
    """maxLength 1800 on a 900-token canvas is within reach: the regular engine's estimate refuses it, the
    grammar engine takes the tree, and its terminal stage refuses it by name, before any denoising step
    (under a limit of 20k positions: the string's 21.6k are under the default's 30k, and build in seconds)."""
    monkeypatch.setattr(compile_budget, "MAX_EXPANSION", 20_000)
    schema = {"type": "object", "properties": {"note": {"type": "string", "minLength": 2, "maxLength": 1800}},
              "required": ["note"]}
    t0 = time.perf_counter()
    with pytest.raises(CompileBudgetExceeded, match="terminal automaton") as exc:
        sd.fill(model, schema, "x", length=900)
    assert "above the limit of" in exc.value.what
    assert time.perf_counter() - t0 < 30


def test_schema_stage_time_budget(monkeypatch):
    monkeypatch.setattr(compile_budget, "SCHEMA_SECONDS", 0.0)
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer", "minimum": i} for i in range(600)}}
    with pytest.raises(UnsupportedSchemaError, match="compile stage 'schema' over its budget") as exc:
        compile_schema(wide, max_depth=2)
    assert exc.value.keyword == "size" and exc.value.pointer.startswith("#/properties/p")


def test_a_regex_over_the_character_budget_is_refused_before_parsing(monkeypatch):
    """Regexes of 0.3-1 MB (schemas that repeat subtrees) ran past 30 s in the uninterruptible builder: the
    byte stage refuses them by size, at once; just under the limit the same regex still compiles."""
    rx = "(?:" + "|".join(f"k{i:05d}" for i in range(400)) + ")"  # 2801 characters
    monkeypatch.setattr(compile_budget, "MAX_BYTE_REGEX_CHARS", len(rx) - 1)
    byte_dfa.cache_clear()
    with pytest.raises(CompileBudgetExceeded) as exc:
        byte_dfa(rx)
    assert exc.value.stage == "byte automaton" and f"a regex of {len(rx)} characters" in exc.value.what
    monkeypatch.setattr(compile_budget, "MAX_BYTE_REGEX_CHARS", len(rx))
    byte_dfa.cache_clear()
    assert byte_dfa(rx).accepts(b"k00399") and not byte_dfa(rx).accepts(b"k00400")


def test_fill_takes_the_grammar_for_a_regex_over_the_character_budget(model, monkeypatch):
    """fill's constraint for a schema whose regex is over the byte stage's character budget is the grammar
    engine's (fill_constraint's fallback on ``size``), and its outputs validate."""
    import jsonschema

    from steerdiff.fill import _constraint
    from steerdiff_plugins.grammar import Grammar

    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[a-c]{1,3}$"},
                                               "n": {"type": "integer", "minimum": -5, "maximum": 99}},
              "required": ["a", "n"]}
    monkeypatch.setattr(compile_budget, "MAX_BYTE_REGEX_CHARS", 20)
    byte_dfa.cache_clear()
    c = _constraint(schema)
    assert isinstance(c, Grammar)
    for seed in range(3):
        value = sd.fill(model, schema, "x", length=24, seed=seed, temperature=1.0 if seed else 0.0)
        jsonschema.validate(value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    byte_dfa.cache_clear()


def test_a_schema_grammar_over_the_production_budget_stops_before_lark(monkeypatch):
    """lark's LALR analysis ran past 20 s on a 9091-production grammar schema_to_lark wrote (a recursive
    vega-lite schema): over the budget, schema_to_lark stops before lark, by name, as ``size`` (so fill's
    fallback names both engines)."""
    from steerdiff_plugins.grammars import loader
    from steerdiff_plugins.schema.to_lark import schema_to_lark

    wide = "start: " + " | ".join(f'"k{i}"' for i in range(9000)) + "\n"
    assert loader.grammar_productions(wide) > loader.MAX_GRAMMAR_PRODUCTIONS
    assert loader.grammar_productions('start: a\na: "x" | "y"\n    | "z"\nT: /a|b|c/\n') == 4 + 2
    with pytest.raises(CompileBudgetExceeded) as exc:
        loader.check_grammar_size(wide)
    assert exc.value.stage == "grammar" and "above the limit of" in exc.value.what
    tree = {"type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}}}
    grammar = schema_to_lark(tree)  # within the budget
    monkeypatch.setattr(loader, "MAX_GRAMMAR_PRODUCTIONS", loader.grammar_productions(grammar) - 1)
    t0 = time.perf_counter()
    with pytest.raises(UnsupportedSchemaError) as exc2:
        schema_to_lark(tree)
    assert exc2.value.keyword == "size" and "compile stage 'grammar'" in str(exc2.value)
    assert time.perf_counter() - t0 < 5


def test_a_regex_over_the_character_budget_is_not_parsed_before_the_fallback(monkeypatch):
    """o9981's regex (979,704 characters, under the regex stage's 1M) was parsed by Python's re (15 s) in
    JSONSchema's syntax check before the byte stage refused it by length: the check now skips regexes the
    byte stage refuses, and fill's grammar fallback starts at once."""
    from steerdiff.fill import _constraint
    from steerdiff_plugins import json_schema
    from steerdiff_plugins.grammar import Grammar

    parsed = []
    real = json_schema.check_regex
    monkeypatch.setattr(json_schema, "check_regex", lambda rx: (parsed.append(len(rx)), real(rx))[1])
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[a-c]{1,3}$"}}, "required": ["a"]}
    monkeypatch.setattr(compile_budget, "MAX_BYTE_REGEX_CHARS", 20)
    byte_dfa.cache_clear()
    assert isinstance(_constraint(schema), Grammar)
    assert parsed == []
    monkeypatch.setattr(compile_budget, "MAX_BYTE_REGEX_CHARS", 250_000)
    byte_dfa.cache_clear()
    assert not isinstance(_constraint(schema), Grammar) and parsed  # within the budget: checked and regular
    byte_dfa.cache_clear()


def test_schema_stage_budget_leaves_out_one_time_set_up(monkeypatch):
    """The schema stage's own budget runs on the budget clock: set-up inside ``outside_budget`` (a process's
    first import of jsonschema takes 4-9 s, inside the first enum's check) is not charged to it. Before, a
    fresh process compiling sdf-schema under load was refused at 10 s of wall time."""
    from steerdiff_plugins.schema import compiler

    monkeypatch.setattr(compile_budget, "SCHEMA_SECONDS", 0.5)
    real = compiler._Compiler.validator

    def slow_first_import(self):
        if self._validator is None:
            with compile_budget.outside_budget():
                t0 = time.thread_time()
                while time.thread_time() - t0 < 0.8:  # a slow import's CPU time
                    pass
        return real(self)

    monkeypatch.setattr(compiler._Compiler, "validator", slow_first_import)
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string", "enum": [f"a{i}", f"b{i}"]} for i in range(300)}}
    rx = compile_schema(wide, max_depth=2).regex
    assert "a299" in rx and "b299" in rx
