"""The whole compile's time budget (steerdiff_plugins/compile_budget.py: compile_deadline / check_deadline):
every checked stage can fire and names its stage and the schema pointer; the budget is shared by fill's regular
try and its grammar fallback; a fill that would run long stops with the named error within about the budget;
the memoised string automata and the LALR stage's own includes/lookback loop give the same answers as before."""

from __future__ import annotations

import time

import pytest

from steerdiff.errors import ConstraintError
from steerdiff_plugins import compile_budget
from steerdiff_plugins.compile_budget import (
    CompileBudgetExceeded,
    CompileDeadlineExceeded,
    check_deadline,
    compile_deadline,
)


def _fires(stage: str, fn, clock, pointer: str | None = None) -> CompileDeadlineExceeded:
    """Run ``fn`` under a 1 s deadline whose clock is already 5 s on: the named error of ``stage``."""
    with compile_deadline(1.0):
        clock.now += 5
        with pytest.raises(CompileDeadlineExceeded) as exc:
            fn()
    e = exc.value
    assert isinstance(e, CompileBudgetExceeded) and isinstance(e, ConstraintError)
    assert e.stage == stage, str(e)
    if pointer is not None:
        assert e.pointer == pointer, str(e)
    assert e.elapsed == pytest.approx(5.0) and e.limit == 1.0
    assert f"compile stage {stage!r}" in str(e) and "5.0 s of compute, above the compile time budget of 1 s" in str(e)
    return e


# ---------------------------------------------------------------------------------------------- the clock itself

def test_without_a_deadline_checks_do_nothing(clock):
    clock.now += 1e9
    check_deadline("schema", "#")  # no deadline open: a direct engine call is the caller's to bound


def test_nested_deadlines_share_the_outer_clock(clock):
    with compile_deadline(10) as outer:
        clock.now += 4
        with compile_deadline(0.5) as tighter:  # an earlier end is taken for its block
            assert tighter is not outer and tighter.limit == 0.5
            clock.now += 1
            with pytest.raises(CompileDeadlineExceeded, match="1.0 s of compute, above the compile time budget of 0.5 s"):
                check_deadline("schema", "#")
        check_deadline("schema", "#")  # the outer one again: 5 s of 10
        with compile_deadline(10) as inner:  # a later end is ignored: the outer one goes on
            assert inner is outer
            clock.now += 4
            check_deadline("schema", "#")
            clock.now += 2  # 11 s since the outer one opened
            with pytest.raises(CompileDeadlineExceeded, match="11.0 s of compute, above the compile time budget of 10 s"):
                check_deadline("schema", "#/x")


def test_once_past_every_check_raises_again(clock):
    """A ``try`` that swallowed one check still stops at the next (fill_constraint also checks at the end)."""
    with compile_deadline(1):
        clock.now += 2
        for _ in range(3):
            with pytest.raises(CompileDeadlineExceeded):
                check_deadline("string automaton")


@pytest.mark.parametrize("bad", [0, -1, True, "10", float("nan")])
def test_bad_budget_is_a_named_error(bad):
    with pytest.raises(ConstraintError, match="compile_seconds must be a positive number"):
        with compile_deadline(bad):
            pass


# ------------------------------------------------------------------------------------ each stage's check fires

def test_schema_stage_names_the_pointer(clock):
    from steerdiff_plugins.schema.compiled import compile_schema

    schema = {"type": "object", "properties": {"deadline_a": {"type": "integer", "minimum": 3}}}
    _fires("schema", lambda: compile_schema(schema), clock, pointer="#")


def test_string_automaton_stage_names_the_subschema(clock, monkeypatch):
    """The schema stage's own check left out: the string automata of a ``not`` inside ``#/properties/word``
    fire, naming that subschema (the pointer the compiler keeps for deeper checks)."""
    from steerdiff_plugins.schema import compiler
    from steerdiff_plugins.schema.compiled import compile_schema

    monkeypatch.setattr(compiler, "check_deadline", lambda *a, **k: None)
    schema = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^[a-z]{2,9}$",
                                                        "not": {"pattern": "^deadline[0-9]q$"}}}}
    _fires("string automaton", lambda: compile_schema(schema), clock, pointer="#/properties/word")


def test_byte_automaton_stage(clock, monkeypatch):
    from steerdiff_plugins.automata import byte_level

    _fires("byte automaton", lambda: byte_level.byte_dfa("deadline-byte-[0-9]{3}"), clock)
    monkeypatch.setattr(byte_level, "check_deadline", lambda *a, **k: None)  # the minimisation rounds' own check
    _fires("byte automaton", lambda: byte_level.byte_dfa("deadline-rounds-[0-9]{3}x?"), clock)


def test_token_automaton_stage(clock):
    from steerdiff.testing import tiny_tokenizer
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.automata.byte_level import byte_dfa
    from steerdiff_plugins.automata.token_walk import compile_token_dfa

    from steerdiff_plugins.automata.token_walk import warm_up

    vocab = vocab_for(tiny_tokenizer("bytelevel"))
    warm_up(vocab, None)  # the tokenizer's own set-up (its prefix tree) is done before the clock runs out
    byte_dfa("deadline-token-[a-z]{1,4}")  # built (and cached) before the clock runs out
    _fires("token automaton", lambda: compile_token_dfa("deadline-token-[a-z]{1,4}", vocab, None), clock, pointer="regex")


def test_grammar_stages(clock):
    """tree_to_lark's walk (stage grammar, the node's pointer) and schema_to_lark's rules."""
    from steerdiff_plugins.schema.compiled import compile_tree
    from steerdiff_plugins.schema.to_lark import schema_to_lark
    from steerdiff_plugins.schema.tree_to_lark import tree_to_lark

    node, _ = compile_tree({"type": "object", "properties": {"deadline_g": {"type": "boolean"}}})
    _fires("grammar", lambda: tree_to_lark(node), clock, pointer="#")
    rec = {"$defs": {"t": {"type": "object", "properties": {"kid": {"$ref": "#/$defs/t"}, "deadline_r": {"type": "null"}}}},
           "$ref": "#/$defs/t"}
    _fires("grammar", lambda: schema_to_lark(rec), clock)


def test_terminal_and_lalr_stages(clock, monkeypatch):

    from steerdiff.testing import tiny_tokenizer
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.grammars import compiled, loader

    vocab = vocab_for(tiny_tokenizer("bytelevel"))
    g = 'start: "deadline" WORD\nWORD: /[a-z]{2,5}/\n'
    _fires("grammar", lambda: loader.load_lark(g + "\n", "start"), clock, pointer="LALR table")
    monkeypatch.setattr(compile_budget, "check_deadline", lambda *a, **k: None)  # past the LALR loop's check
    _fires("terminal automaton", lambda: compiled.CompiledGrammar(g, "start", vocab), clock, pointer="terminal WORD")


def test_prepare_of_a_regex_constraint_has_its_own_budget(clock):
    """A constraint's prepare (regex -> byte -> token automaton) runs under a deadline of its own."""
    import steerdiff as sd
    from steerdiff.testing import tiny_model

    model = tiny_model("masked", "bytelevel", max_positions=64)
    ticks = {"n": 0}

    def slow_clock():  # every reading 2 s later: the first check after opening is past 1 s
        ticks["n"] += 1
        return clock.now + 2.0 * ticks["n"]

    compile_budget._clock = slow_clock
    try:
        with pytest.raises(CompileDeadlineExceeded) as exc:
            sd.generate(model, "x", length=8, steps=2, constraints=[sd.Regex("deadline-prep-[0-9]{2}")])
    finally:
        compile_budget._clock = clock
    assert exc.value.stage in ("byte automaton", "token automaton")


# --------------------------------------------------------------------- shared by fill's tries; fill stops in time

_BIG = {"type": "object", "required": ["id", "note"],
        "properties": {"id": {"type": "integer"}, "note": {"type": "string", "maxLength": 65535},
                       "deadline_shared": {"type": "boolean"}}}


def _advance_in_fallback(monkeypatch, clock, regular_s: float, fallback_s: float):
    """The regular engine's try (refused: the automaton of maxLength 65535 is too large) takes ``regular_s``
    seconds of the fake clock, the grammar fallback's tree_to_lark ``fallback_s`` more before it works."""
    from steerdiff_plugins import json_schema

    real_init, real_tree = json_schema.JSONSchema.__init__, json_schema.tree_to_lark

    def init(self, *a, **kw):
        clock.now += regular_s
        return real_init(self, *a, **kw)

    def tree(*a, **kw):
        clock.now += fallback_s
        return real_tree(*a, **kw)

    monkeypatch.setattr(json_schema.JSONSchema, "__init__", init)
    monkeypatch.setattr(json_schema, "tree_to_lark", tree)


def test_the_budget_is_shared_by_the_regular_try_and_the_grammar_fallback(clock, monkeypatch):
    """15 s in the regular try and 6 s in the fallback: over a 20 s budget together, though each is under it
    (a budget per try would let it pass); 15 + 4 s compiles."""
    from steerdiff_plugins.json_schema import JSONSchemaGrammar, fill_constraint

    _advance_in_fallback(monkeypatch, clock, 15, 4)
    assert isinstance(fill_constraint(_BIG, compile_seconds=20), JSONSchemaGrammar)
    _advance_in_fallback(monkeypatch, clock, 15, 6)
    with pytest.raises(CompileDeadlineExceeded) as exc:
        fill_constraint(_BIG, compile_seconds=20)
    assert exc.value.stage == "grammar" and exc.value.elapsed >= 21 and exc.value.limit == 20


def _slow_one_of(n: int) -> dict:
    """A oneOf of ``n`` string branches whose disjointness is proved pairwise over string automata (distinct
    patterns, so the memo does not help): about n^2/2 automaton products."""
    return {"type": "object", "properties": {"code": {"oneOf": [
        {"type": "string", "pattern": f"^[a-z]{{{k % 5 + 1},{k % 5 + 4}}}{k:03d}[A-Z]{{0,{k % 7 + 2}}}$"}
        for k in range(n)]}}, "required": ["code"]}


def test_fill_stops_within_about_its_budget():
    import steerdiff as sd
    from steerdiff.testing import tiny_model

    model = tiny_model("masked", "bytelevel", max_positions=256)
    t0 = time.perf_counter()
    with pytest.raises(CompileDeadlineExceeded) as exc:
        sd.fill(model, _slow_one_of(120), "code abc007", compile_seconds=0.5)
    took = time.perf_counter() - t0
    assert exc.value.limit == 0.5 and exc.value.pointer.startswith("#/properties/code"), str(exc.value)
    assert took < 5, took  # the budget, and a check interval, on a loaded machine


# ---------------------------------------------------------------------------- same answers, less repeated work

def test_strings_meet_is_memoised_with_the_same_answers():
    from steerdiff_plugins.schema import char_languages as cl

    a, b = cl._pattern_tree("^deadline[0-9]+$", "sup"), cl._pattern_tree("^deadline1[a-z]*$", "sup")
    c = cl._pattern_tree("^deadlinex$", "sup")
    assert cl.strings_meet([a, b]) is True and cl._strings_meet([a, b]) is True
    assert cl.strings_meet([a, c]) is False and cl._strings_meet([a, c]) is False
    assert ("meet", repr([a, c])) in cl._MEMO
    n = len(cl._MEMO)
    assert cl.strings_meet([a, c]) is False and len(cl._MEMO) == n  # answered from the memo


def test_memo_is_bounded(monkeypatch):
    from steerdiff_plugins.schema import char_languages as cl

    monkeypatch.setattr(cl, "MEMO_SIZE", 3)
    for k in range(6):
        cl._memo(("test", k), lambda: k)
    assert len(cl._MEMO) <= 3 and ("test", 5) in cl._MEMO and ("test", 0) not in cl._MEMO


def test_key_patterns_too_large_to_compare_are_refused_not_read_as_apart(monkeypatch):
    """patternProperties: a key matching both patterns must satisfy both value schemas. A key automaton over
    the byte stage's budget used to read as "the patterns do not meet" (the value left to one schema, a
    superset); now it is a size refusal naming the subschema."""
    from steerdiff.errors import UnsupportedSchemaError
    from steerdiff_plugins.schema.combinators import _languages_meet

    assert _languages_meet("kp[a-c]{1,3}", "kpb+") and not _languages_meet("kp[a-c]{1,3}", "kpz+")
    monkeypatch.setattr(compile_budget, "MAX_EXPANSION", 10)
    with pytest.raises(UnsupportedSchemaError) as exc:
        _languages_meet("kq[a-c]{0,40}", "kqb+")
    assert exc.value.keyword == "size" and "whether two key patterns overlap cannot be checked" in str(exc.value)
    with compile_deadline(30):  # the compiler keeps the pointer: the refusal names the object
        from steerdiff_plugins.schema.compiled import compile_schema

        schema = {"type": "object", "properties": {"m": {"type": "object", "patternProperties": {
            "^kr[a-c]{0,40}$": {"type": "integer"}, "^krb+$": {"type": "integer", "minimum": 5}}}}}
        with pytest.raises(UnsupportedSchemaError) as exc:
            compile_schema(schema)
    assert exc.value.keyword == "size" and exc.value.pointer == "#/properties/m"


def test_set_up_time_is_not_charged_to_a_compile(clock):
    """One-time set-up (numba's JIT on a fresh install, a tokenizer's prefix tree) runs inside
    ``outside_budget`` or is taken off with ``exclude``: a compile is refused for its own time only."""
    with compile_deadline(1.0):
        with compile_budget.outside_budget():
            clock.now += 30  # a long set-up
            check_deadline("set-up")  # the budget clock stands still inside the block
            with compile_budget.outside_budget():  # nested blocks count once
                clock.now += 5
        clock.now += 0.5
        check_deadline("after")  # 0.5 s of the compile's own: within 1 s
        compile_budget.exclude(2.0)  # a kernel compiled during the call: taken off too
        clock.now += 2.2
        check_deadline("after exclude")
        clock.now += 1
        with pytest.raises(CompileDeadlineExceeded):
            check_deadline("over")


def test_a_kernel_call_that_compiles_is_set_up(clock, monkeypatch):
    """``token_trie._run``: a call after which the kernel has a new compiled specialisation (numba compiled or
    loaded it) is excluded from the budget; a call that compiled nothing is charged."""
    from types import SimpleNamespace

    from steerdiff_plugins.automata import token_trie

    def kernel(seconds, compiles):
        clock.now += seconds
        if compiles:
            kernel.overloads[len(kernel.overloads)] = object()  # numba's dispatcher: signature -> compiled code
        return seconds

    kernel.overloads = {}
    monkeypatch.setattr(token_trie, "_kernels", lambda: SimpleNamespace(k=kernel))
    with compile_deadline(1.0):
        token_trie._run("k", 25.0, True)  # a fresh install's JIT
        check_deadline("after the JIT")
        token_trie._run("k", 0.5, False)
        check_deadline("within")
        with pytest.raises(CompileDeadlineExceeded):
            token_trie._run("k", 1.0, False)
            check_deadline("over")
