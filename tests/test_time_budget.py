"""Wall-time budgets of the compile stages whose cost no size predicts (compile_budget.time_budget): lark's
LALR analysis and the schema compiler's string automata. Six public JSONSchemaBench schemas (eslintrc, o39532,
o9981 in lark; o9882, o9913, o9916 in a oneOf disjointness proof) ran past 30 s there with no named error."""

from __future__ import annotations

import threading
import time

import pytest

from steerdiff_plugins import compile_budget
from steerdiff_plugins.compile_budget import CompileBudgetExceeded, time_budget


def _spin(seconds: float) -> int:
    """Pure Python work for about ``seconds`` (a bounded loop: the test fails rather than hangs)."""
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def test_a_python_loop_past_its_budget_stops_with_a_named_error():
    t0 = time.perf_counter()
    with pytest.raises(CompileBudgetExceeded) as exc:
        with time_budget("grammar", "#/a/b", 0.2, "lark's LALR analysis"):
            _spin(20)
    took = time.perf_counter() - t0
    assert took < 5, took
    e = exc.value
    assert (e.stage, e.pointer) == ("grammar", "#/a/b")
    assert "lark's LALR analysis: over its time budget of 0.2 s" in e.what and "'grammar'" in str(e)


def test_except_exception_in_the_block_does_not_swallow_the_budget():
    def stubborn():
        while True:
            try:
                _spin(0.05)
            except Exception:  # what library code does; the budget is a BaseException inside the block
                pass

    with pytest.raises(CompileBudgetExceeded):
        with time_budget("schema", "#", 0.2):
            stubborn()


def test_a_block_within_its_budget_is_untouched_and_nothing_arrives_later():
    ran_out = 0
    for _ in range(50):  # ends close to the budget: the watchdog's exception arrives inside or never
        try:
            with time_budget("schema", "#", 0.01):
                _spin(0.009)
        except CompileBudgetExceeded:
            ran_out += 1
        _spin(0.02)  # a stray asynchronous exception would be raised here, outside the block
    assert ran_out < 50
    with time_budget("schema", "#", 5):
        value = _spin(0.01)
    assert value > 0
    _spin(0.3)  # a stray asynchronous exception would be raised here


def test_where_may_read_the_pointer_from_the_interrupted_frames():
    def node(ptr):  # like _Compiler.node
        _spin(20)

    def where(exc):
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        return tb.tb_frame.f_back.f_locals.get("ptr", "#") if tb.tb_frame.f_code.co_name == "_spin" else "#"

    with pytest.raises(CompileBudgetExceeded) as exc:
        with time_budget("schema", where, 0.1):
            node("#/properties/x")
    assert exc.value.pointer == "#/properties/x"


def test_the_budget_of_one_thread_leaves_another_alone():
    out = {}

    def worker():
        try:
            with time_budget("grammar", "grammar", 0.2):
                _spin(20)
        except CompileBudgetExceeded as e:
            out["worker"] = e.stage

    t = threading.Thread(target=worker)
    t.start()
    out["main"] = _spin(1.0)  # runs through the worker's budget expiring
    t.join(10)
    assert out["worker"] == "grammar" and out["main"] > 0


def test_nested_budgets_each_name_their_own_stage():
    with pytest.raises(CompileBudgetExceeded) as exc:
        with time_budget("outer", "#", 0.3):
            try:
                with time_budget("inner", "#/i", 5):
                    _spin(20)
            except CompileBudgetExceeded:  # pragma: no cover - the inner budget has not run out
                pytest.fail("the outer budget's expiry was read as the inner one's")
    assert exc.value.stage == "outer"
    with pytest.raises(CompileBudgetExceeded) as exc2:
        with time_budget("outer", "#", 5):
            with time_budget("inner", "#/i", 0.2):
                _spin(20)
    assert exc2.value.stage == "inner"


def test_an_inner_block_ending_does_not_clear_the_outer_budget():
    """The outer budget fires while an inner block is ending: the inner block's cancel of a pending exception
    must not swallow the outer one (it is set again), so the outer block still stops."""
    for _ in range(20):
        t0 = time.perf_counter()
        with pytest.raises(CompileBudgetExceeded) as exc:
            with time_budget("outer", "#", 0.05):
                while True:
                    with time_budget("inner", "#/i", 5):
                        _spin(0.0005)
        assert exc.value.stage == "outer" and time.perf_counter() - t0 < 5


def test_no_budget_when_seconds_is_not_positive():
    with time_budget("schema", "#", 0):
        assert _spin(0.05) > 0
    with time_budget("schema", "#", None):
        assert _spin(0.05) > 0


def test_lark_build_past_the_grammar_budget_is_a_named_error(monkeypatch):
    """grammars.loader runs lark's LALR analysis under GRAMMAR_SECONDS; a GrammarError wrapper must not hide it."""
    from steerdiff_plugins.grammars.loader import load_lark

    grammar = "start: " + " | ".join(f"r{i}" for i in range(400)) + "\n" + "".join(
        f'r{i}: "a{i}" r{(i + 1) % 400} | "b{i}"\n' for i in range(400))  # a fresh text: not in load_lark's cache
    monkeypatch.setattr(compile_budget, "GRAMMAR_SECONDS", 0.05)
    t0 = time.perf_counter()
    with pytest.raises(CompileBudgetExceeded) as exc:
        load_lark(grammar, "start")
    assert exc.value.stage == "grammar" and "LALR analysis of" in exc.value.what
    assert time.perf_counter() - t0 < 10
    monkeypatch.setattr(compile_budget, "GRAMMAR_SECONDS", 60.0)
    assert load_lark(grammar, "start").parse("a0b1") is not None  # the same grammar loads within a real budget


def test_schema_stage_interrupted_inside_one_subschema_names_its_pointer(monkeypatch):
    """The compiler checks its clock between subschemas only; a oneOf whose string automata take long (o9882's
    shape: counted patterns) is stopped from outside, naming the subschema being compiled."""
    from steerdiff_plugins.schema.compiled import compile_schema

    branches = [{"type": "string", "pattern": f"^(?:[a-z]{{1,40}}[0-9]{{0,40}}){{{i},{30 + i}}}$"} for i in range(1, 4)]
    schema = {"type": "object", "properties": {"x": {"type": "array", "items": {"oneOf": branches}}}, "required": ["x"]}
    monkeypatch.setattr(compile_budget, "SCHEMA_SECONDS", 0.3)
    t0 = time.perf_counter()
    with pytest.raises(CompileBudgetExceeded) as exc:
        compile_schema(schema)
    assert time.perf_counter() - t0 < 10
    assert exc.value.stage == "schema" and exc.value.pointer.startswith("#/properties/x/items")
