"""Time and size budgets of the compile stages: a schema, regex or grammar a user sends either compiles
within them or stops with :class:`CompileBudgetExceeded` naming the stage, where and what was too large.

Stages and their budgets (module constants, so a server can tune them):

* ``schema`` (JSON Schema -> node tree, ``schema.compiler``): ``MAX_NODES`` subschemas visited there, and
  ``SCHEMA_SECONDS`` of wall time, checked every few hundred visits;
* ``regex`` (node tree -> regex text): ``MAX_REGEX_CHARS`` there;
* ``byte automaton`` (regex -> byte DFA, outlines_core's Rust builder): it cannot be interrupted, so the
  regex is *estimated* first: ``expansion(regex)`` counts the NFA positions that counted repetitions add
  (``X{m,n}`` costs about ``n - 1`` extra copies of ``X``). Measured on this machine, the builder takes
  about 0.3 ms per added position (``"STRCHAR{0,1000}"``: 13k positions, 3.7 s; ``{0,65535}`` would
  run for minutes and then be refused by the state limit), so ``MAX_EXPANSION`` (20k, about 5 s) bounds
  its time; a regex without large counts is bounded by ``MAX_BYTE_REGEX_CHARS`` (250k characters) instead:
  Python's parse, the engine-regex rewrite and the Rust builder (which cannot be interrupted) take about
  20-40 us per character on this machine (36k characters: 0.4-1.5 s), and regexes of 0.3-1 MB from schemas
  that repeat subtrees ran past 30 s there (they go to the grammar engine, which writes a subtree once:
  ``fill``'s fallback on ``size``); the regexes of 180k-216k characters that compile now (o12958, o15627,
  drupal-libraries: about 2 s each in the byte stage) stay under it. After the build,
  ``automata.byte_level.MAX_STATES`` bounds the states every later stage scales with;
* ``terminal automaton`` (grammar engine, a lark terminal -> byte DFA): interegular's FSM build is
  quadratic in counted copies (``"STRCHAR{0,100}"`` 6 s, ``{0,300}`` 69 s), so a terminal whose
  expansion is over ``INTEREGULAR_EXPANSION`` is built by the byte-automaton stage instead (the same
  ``re`` language), under the same ``MAX_EXPANSION``.

* ``grammar`` (the grammar ``schema_to_lark`` writes for a recursive schema -> lark's LALR table):
  ``grammars.loader.MAX_GRAMMAR_PRODUCTIONS`` (8000 rule lines and ``|``), refused as ``size`` so ``fill``'s
  fallback names both engines; the production count is a poor proxy (eslintrc's tree grammar has 2186
  productions and its LALR analysis ran past 30 s, o21135's 1927 build in 4 s), so every lark build also runs
  under ``GRAMMAR_SECONDS`` of wall time (:func:`time_budget`).

Wall-time budgets (:func:`time_budget`) bound the stages whose cost no size measured beforehand predicts:
the schema stage as a whole (``SCHEMA_SECONDS``: the compiler checks its clock between subschemas, and a
single subschema that runs long, e.g. the string automata of a ``oneOf`` disjointness proof, is stopped by
the same budget from outside) and lark's LALR analysis (``GRAMMAR_SECONDS``). Memory is not measured: each
stage's size limits (``MAX_NODES``, the regex and expansion limits, ``MAX_STATES``, the productions) bound
what it allocates, and the time budgets bound what it can allocate in its time.

Bounds the canvas cannot reach are dropped before any of this (``canvas_bounds``), so these budgets only
bite on bounds a canvas really holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
import time

from steerdiff.errors import ConstraintError

try:  # Python >= 3.11
    from re import _constants as _C
except ImportError:  # pragma: no cover
    import sre_constants as _C  # type: ignore

_MAXREPEAT = _C.MAXREPEAT

__all__ = ["GRAMMAR_SECONDS", "INTEREGULAR_EXPANSION", "MAX_BYTE_REGEX_CHARS", "MAX_EXPANSION", "SCHEMA_SECONDS",
           "CompileBudgetExceeded", "check_expansion", "expansion", "time_budget"]

MAX_BYTE_REGEX_CHARS = 250_000  # regex characters the byte-automaton stage takes (see the module docstring)
MAX_EXPANSION = 20_000  # NFA positions counted repetitions may add before the byte automaton is built
INTEREGULAR_EXPANSION = 200  # grammar terminals expanding by more are built through outlines_core, not interegular
SCHEMA_SECONDS = 10.0  # wall time of the schema -> tree stage
GRAMMAR_SECONDS = 10.0  # wall time of one lark LALR build (grammars.loader)


class CompileBudgetExceeded(ConstraintError):
    """A compile stage would exceed its budget. ``stage``: which (``schema``, ``byte automaton``, ...);
    ``pointer``: the JSON pointer (or ``terminal NAME`` / ``regex``) of the part responsible; ``what``: the
    measure that was too large, with its limit."""

    def __init__(self, stage: str, pointer: str, what: str):
        self.stage, self.pointer, self.what = stage, pointer, what
        super().__init__(f"compile stage {stage!r} over its budget at {pointer}: {what}")


def _positions(seq, cap: int) -> tuple[int, int]:
    """``(positions, added)`` of a parsed ``re`` sequence: single-character items count one position;
    ``added`` is what counted repetitions add beyond one copy (stops counting past ``cap``)."""
    total = added = 0
    for op, av in seq:
        name = str(op)
        if name == "BRANCH":
            p, a = _branch_positions(av[1], cap)
            total, added = total + p, added + a
        elif name == "SUBPATTERN":
            p, a = _positions(av[-1], cap)
            total, added = total + p, added + a
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            p, a = _positions(sub, cap)
            copies = max(lo, 1) if hi == _MAXREPEAT else max(hi, 1)
            total += p
            added += a * copies + p * (copies - 1)
        else:
            total += 1
        if added > cap:
            return total, added
    return total, added


def _branch_positions(alts, cap: int) -> tuple[int, int]:
    """:func:`_positions` of an alternation: the alternatives' leading literal runs count as the prefix tree
    they make (``\\u0000|\\u0001|...``, the JSON escapes a string pattern's class lists, shares ``\\u000``:
    the automaton builds each distinct prefix once), the rest of each alternative as it is."""
    prefixes: set = set()
    total = added = 0
    for alt in alts:
        items = list(alt)
        k = 0
        while k < len(items) and str(items[k][0]) == "LITERAL":
            k += 1
        lits = tuple(av for _, av in items[:k])
        prefixes.update(lits[:j] for j in range(1, k + 1))
        p, a = _positions(items[k:], cap)
        total, added = total + p, added + a
    return total + len(prefixes), added


def expansion(regex: str, cap: int = MAX_EXPANSION) -> int:
    """The NFA positions counted repetitions add to ``regex`` (Python ``re`` syntax), counted up to a little
    past ``cap``; 0 for a regex that does not parse (the builder reports that itself)."""
    from steerdiff_plugins.automata.engine_regex import parse_regex  # cached: the byte stage parses it again

    try:
        parsed = parse_regex(regex)
    except (re.error, RecursionError, OverflowError):
        return 0
    return _positions(list(parsed), cap)[1]


def check_expansion(regex: str, stage: str, where: str) -> None:
    """Raise :class:`CompileBudgetExceeded` when ``regex`` is over ``MAX_BYTE_REGEX_CHARS`` characters or its
    counted repetitions add over ``MAX_EXPANSION`` positions (see the module docstring)."""
    if len(regex) > MAX_BYTE_REGEX_CHARS:
        raise CompileBudgetExceeded(stage, where, f"a regex of {len(regex)} characters, above the limit of "
                                                  f"{MAX_BYTE_REGEX_CHARS}; the schema repeats too much to write out")
    n = expansion(regex)
    if n > MAX_EXPANSION:
        raise CompileBudgetExceeded(stage, where, f"counted repetitions (maxLength, maxItems, {{m,n}} in a pattern) add "
                                                  f"over {n} automaton positions, above the limit of {MAX_EXPANSION}; "
                                                  f"lower the bound or the canvas length")


class _Expired(BaseException):
    """Raised asynchronously in a thread whose :func:`time_budget` ran out (a ``BaseException``, so the
    ``except Exception`` handlers of the interrupted code do not swallow it). One subclass per budget, so a
    nested budget knows its own."""


@contextlib.contextmanager
def time_budget(stage: str, where, seconds: float, what: str = ""):
    """Run the ``with`` block under ``seconds`` of wall time; past it, raise :class:`CompileBudgetExceeded`
    (``stage``; ``where``: the pointer, or a callable ``where(exc)`` that reads it from the interrupted
    exception's traceback; ``what``: what was being built) in the thread running the block.

    A watchdog thread waits for the block to end; past the budget it raises an exception in the block's
    thread (``PyThreadState_SetAsyncExc``), delivered at that thread's next Python bytecode: pure Python code
    (lark's LALR analysis, the schema compiler's automata) stops within milliseconds; a native call that
    cannot be interrupted (outlines_core's builder) stops when it returns, so those stages keep their size
    limits. ``seconds`` None or <= 0: no budget."""
    if not seconds or seconds <= 0:
        yield
        return
    expired = type("_Expired", (_Expired,), {})
    tid = threading.get_ident()
    lock, state = threading.Lock(), {"done": False, "fired": False}

    def watch():
        if finished.wait(seconds):
            return
        with lock:
            if not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(expired))

    finished = threading.Event()
    watcher = threading.Thread(target=watch, name=f"compile budget {stage}", daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    caught = None
    try:
        try:
            yield
        finally:
            caught = _close(lock, state, finished, tid, expired)
    except expired as exc:
        caught = exc
    if caught is not None:
        pointer = where(caught) if callable(where) else where
        raise CompileBudgetExceeded(stage, pointer, f"{what + ': ' if what else ''}over its time budget of {seconds:g} s "
                                                    f"(stopped after {time.perf_counter() - t0:.2f} s)") from None


def _close(lock, state, finished, tid, expired):
    """End a :func:`time_budget` block: stop its watchdog, and clear an exception it set that the block's
    thread has not received yet (it arrives at the next bytecode, maybe inside this function: caught here).
    Returns that exception, or None."""
    caught = None
    while True:
        try:
            with lock:
                state["done"] = True
                finished.set()
                if state["fired"]:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)  # cancel if still pending
            return caught
        except expired as exc:  # delivered here, before the cancel
            caught = exc
