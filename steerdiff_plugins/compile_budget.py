"""Time and size budgets of the compile stages: a schema, regex or grammar a user sends either compiles
within them or stops with :class:`CompileBudgetExceeded` naming the stage, where and what was too large.

Stages and their budgets (module constants, so a server can tune them):

* ``schema`` (JSON Schema -> node tree, ``schema.compiler``): ``MAX_NODES`` subschemas visited there, and
  ``SCHEMA_SECONDS`` of wall time, checked every few hundred visits;
* ``regex`` (node tree -> regex text): ``MAX_REGEX_CHARS`` there;
* ``byte automaton`` (regex -> byte DFA, outlines_core's Rust builder): it cannot be interrupted, so the
  regex is *estimated* first: ``expansion(regex)`` counts the NFA positions that counted repetitions add
  (``X{m,n}`` costs about ``n - 1`` extra copies of ``X``; an alternation's leading literals count as the
  prefix tree they make, as the automaton shares them). Measured on this machine, the builder takes
  about 0.3 ms per added position (``"STRCHAR{0,1000}"``: 12k positions, 3.7 s; ``{0,65535}`` would
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
import heapq
import os
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


_BRANCH, _SUBPATTERN, _LITERAL = _C.BRANCH, _C.SUBPATTERN, _C.LITERAL
_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT) + ((_C.POSSESSIVE_REPEAT,) if hasattr(_C, "POSSESSIVE_REPEAT") else ())


def _items(seq) -> list:
    """The items of a parsed sequence (a ``SubPattern``'s list, read directly: its ``__getitem__`` is slow)."""
    return getattr(seq, "data", seq)


def _positions(seq, cap: int) -> tuple[int, int]:
    """``(positions, added)`` of a parsed ``re`` sequence: single-character items count one position;
    ``added`` is what counted repetitions add beyond one copy (stops counting past ``cap``)."""
    total = added = 0
    for op, av in _items(seq):
        if op is _BRANCH:
            p, a = _branch_positions(av[1], cap)
            total, added = total + p, added + a
        elif op is _SUBPATTERN:
            p, a = _positions(av[-1], cap)
            total, added = total + p, added + a
        elif op in _REPEATS:
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
    trie: dict = {}
    nodes = total = added = 0
    for alt in alts:
        items = _items(alt)
        k, node = 0, trie
        while k < len(items) and items[k][0] is _LITERAL:
            nxt = node.get(items[k][1])
            if nxt is None:
                nxt = node[items[k][1]] = {}
                nodes += 1
            node = nxt
            k += 1
        p, a = _positions(items[k:], cap)
        total, added = total + p, added + a
    return total + nodes, added


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
    ``except Exception`` handlers of the interrupted code do not swallow it). A block takes it as its own
    when its entry fired, and lets it through to the enclosing block otherwise."""


def _raise_in(tid: int, exc) -> None:
    """Set (``exc`` a class) or clear (None) the pending asynchronous exception of thread ``tid``."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc) if exc is not None else None)


class _Watchdog:
    """One daemon thread per process that raises each :func:`time_budget`'s exception at its deadline (a
    thread per budget cost 0.1-0.5 ms to start, a third of a small schema's whole compile). ``cv`` guards
    every entry's ``done``/``fired`` flags: an entry fires only while not done, and its block clears a fired
    exception that has not arrived yet under the same lock."""

    def __init__(self):
        self.cv = threading.Condition()
        self.heap: list = []  # (deadline, sequence, entry)
        self.seq = 0
        self.thread = None
        self.fired: list = []  # entries that fired (their blocks may not have ended yet)

    def add(self, entry: dict) -> None:
        with self.cv:
            self.seq += 1
            sooner = not self.heap or entry["deadline"] < self.heap[0][0]
            heapq.heappush(self.heap, (entry["deadline"], self.seq, entry))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="compile budgets", daemon=True)
                self.thread.start()
            elif sooner:  # otherwise the watchdog already wakes before this deadline
                self.cv.notify()

    def fired_open(self, tid: int) -> list:
        """The entries of thread ``tid`` that fired and whose blocks have not ended (under ``cv``)."""
        return [e for e in self.fired if e["tid"] == tid and not e["done"]]

    def _run(self) -> None:
        with self.cv:
            while True:
                now = time.monotonic()
                while self.heap and (self.heap[0][2]["done"] or self.heap[0][0] <= now):
                    entry = heapq.heappop(self.heap)[2]
                    if not entry["done"]:
                        entry["fired"] = True
                        self.fired = [e for e in self.fired if not e["done"]] + [entry]
                        _raise_in(entry["tid"], entry["exc"])
                self.cv.wait(self.heap[0][0] - now if self.heap else None)


_WATCHDOG = _Watchdog()


def _fresh_watchdog() -> None:  # a forked child has no watchdog thread, and its lock may be held
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_watchdog)


@contextlib.contextmanager
def time_budget(stage: str, where, seconds: float, what: str = ""):
    """Run the ``with`` block under ``seconds`` of wall time; past it, raise :class:`CompileBudgetExceeded`
    (``stage``; ``where``: the pointer, or a callable ``where(exc)`` that reads it from the interrupted
    exception's traceback; ``what``: what was being built) in the thread running the block.

    A watchdog thread (one per process, :class:`_Watchdog`) raises an exception in the block's thread at the
    deadline (``PyThreadState_SetAsyncExc``), delivered at that thread's next Python bytecode: pure Python code
    (lark's LALR analysis, the schema compiler's automata) stops within milliseconds; a native call that
    cannot be interrupted (outlines_core's builder) stops when it returns, so those stages keep their size
    limits. ``seconds`` None or <= 0: no budget."""
    if not seconds or seconds <= 0:
        yield
        return
    t0 = time.monotonic()
    entry = {"deadline": t0 + seconds, "tid": threading.get_ident(), "exc": _Expired, "done": False, "fired": False}
    dog = _WATCHDOG
    dog.add(entry)
    caught = None
    try:
        try:
            yield
        finally:
            caught = _close(dog, entry)
    except _Expired as exc:
        if not entry["fired"]:  # an enclosing budget's
            raise
        caught = exc
    if caught is not None:
        pointer = where(caught) if callable(where) else where
        raise CompileBudgetExceeded(stage, pointer, f"{what + ': ' if what else ''}over its time budget of {seconds:g} s "
                                                    f"(stopped after {time.monotonic() - t0:.2f} s)") from None


def _close(dog: _Watchdog, entry: dict):
    """End a :func:`time_budget` block: mark its entry done, and clear an exception the watchdog set that the
    block's thread has not received yet (it arrives at the next bytecode, maybe inside this function: caught
    here). Returns that exception, or None."""
    caught = None
    while True:
        try:
            with dog.cv:
                entry["done"] = True
                if entry["fired"]:
                    _raise_in(entry["tid"], None)  # cancel if still pending
                    outer = dog.fired_open(entry["tid"])
                    if outer:  # the cancel also cleared an enclosing budget's exception: set it again
                        _raise_in(entry["tid"], outer[-1]["exc"])
            return caught
        except _Expired as exc:  # delivered here, before the cancel
            if not entry["fired"]:  # an enclosing budget's: it must reach that block
                raise
            caught = exc
