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
  about 0.1 ms per added position, growing with the count (session fourteen, with the minimiser's later
  speed-ups: ``"STRCHAR{0,1000}"`` 12k positions 1.0 s, ``{0,2048}`` 24.6k positions 2.2 s, ``{0,4096}`` 49k
  positions 8.7 s and then over the state limit; ``{0,65535}`` would run for minutes), so ``MAX_EXPANSION``
  (30k, about 3-4 s; 20k before, which refused every JSON string of ``maxLength`` 2048 that the grammar
  engine writes as one terminal) bounds its time; a regex without large counts is bounded by ``MAX_BYTE_REGEX_CHARS`` (250k characters) instead:
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

* ``grammar`` (the grammar ``schema_to_lark`` writes for a recursive schema -> lark's LALR table, which
  cannot be interrupted): ``grammars.loader.MAX_GRAMMAR_PRODUCTIONS`` (8000 rule lines and ``|``), refused
  as ``size`` so ``fill``'s fallback names both engines.

Bounds the canvas cannot reach are dropped before any of this (``canvas_bounds``), so these budgets only
bite on bounds a canvas really holds.

**The whole compile's time** (``COMPILE_SECONDS``): one clock for all the work one user request triggers, so
tries and fallbacks cannot each restart it. :func:`compile_deadline` opens it (``fill``'s constraint build, with
the regular engine's try and the grammar fallback; a ``JSONSchema``'s construction; a constraint's ``prepare``
with its token tables); a nested ``compile_deadline`` joins the open one and never extends it. The long Python
loops call :func:`check_deadline` themselves (cooperative: no thread, signal or asynchronous exception), and
past the end it raises :class:`CompileDeadlineExceeded` naming the stage, the JSON pointer being compiled
(kept by the schema compiler, :func:`at_pointer`) and the seconds spent against the limit. Once past, every
later check raises again, so a ``try`` that swallowed one still stops at the next check. Without an open
deadline the checks do nothing (a direct call of an engine function is the caller's to bound).

The clock is the compiling thread's CPU time (``time.thread_time``), not the wall clock: the work a compile
does, the same on a busy machine (a server compiling in several threads, or the 2-core machine of the
coverage runs, where wall times of the same compile varied 2x between runs and a wall budget refused schemas
by chance). On an idle core the two agree. ``COMPILE_SECONDS`` (20 s) is about 1.75x the compute of the
slowest compile of the public set that succeeds (fill's path, SmolLM2's tokenizer, 2048 positions, after the
memoised string automata and the indexed LALR loop of ``grammars.loader``: eslintrc 11.4 s of CPU, o9981 8.1 s, o39532 7.7 s, o9882
5.1 s), and under the coverage benchmark's 30 s kill with room for the stages that cannot be interrupted (the
Rust byte-automaton builder, bounded to about 3-4 s by ``MAX_EXPANSION``; lark's LR(0) states and reads
relations before the loop checked there, about 7 s of eslintrc's compile).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import threading
import time

from steerdiff.errors import ConstraintError

try:  # Python >= 3.11
    from re import _constants as _C
except ImportError:  # pragma: no cover
    import sre_constants as _C  # type: ignore

_MAXREPEAT = _C.MAXREPEAT

__all__ = ["COMPILE_SECONDS", "INTEREGULAR_EXPANSION", "MAX_BYTE_REGEX_CHARS", "MAX_EXPANSION", "SCHEMA_SECONDS",
           "CompileBudgetExceeded", "CompileDeadlineExceeded", "at_pointer", "check_deadline", "check_expansion",
           "compile_deadline", "current_pointer", "expansion", "restore_pointer"]

MAX_BYTE_REGEX_CHARS = 250_000  # regex characters the byte-automaton stage takes (see the module docstring)
MAX_EXPANSION = 30_000  # NFA positions counted repetitions may add before the byte automaton is built
INTEREGULAR_EXPANSION = 200  # grammar terminals expanding by more are built through outlines_core, not interegular
SCHEMA_SECONDS = 10.0  # wall time of one schema -> tree compile (past it: a ``size`` refusal, so fill falls back)
COMPILE_SECONDS = 20.0  # compute time of a whole compile (compile_deadline): all tries, fallbacks and token tables


class CompileBudgetExceeded(ConstraintError):
    """A compile stage would exceed its budget. ``stage``: which (``schema``, ``byte automaton``, ...);
    ``pointer``: the JSON pointer (or ``terminal NAME`` / ``regex``) of the part responsible; ``what``: the
    measure that was too large, with its limit."""

    def __init__(self, stage: str, pointer: str, what: str):
        self.stage, self.pointer, self.what = stage, pointer, what
        super().__init__(f"compile stage {stage!r} over its budget at {pointer}: {what}")


class CompileDeadlineExceeded(CompileBudgetExceeded):
    """The whole compile ran past its time budget (:func:`compile_deadline`). ``elapsed`` and ``limit`` in
    seconds; ``stage`` and ``pointer`` say where the check fired."""

    def __init__(self, stage: str, pointer: str, elapsed: float, limit: float):
        self.elapsed, self.limit = elapsed, limit
        super().__init__(stage, pointer, f"{elapsed:.1f} s of compute, above the compile time budget of {limit:g} s "
                                         "(compile_budget.COMPILE_SECONDS, or the call's compile_seconds)")


class _Deadline:
    """An open compile deadline: ``start`` and ``end`` on :func:`_clock`, ``limit`` seconds, and ``where``, the
    JSON pointer being compiled (set by :func:`at_pointer`)."""

    __slots__ = ("start", "end", "limit", "where")

    def __init__(self, start: float, limit: float):
        self.start, self.limit, self.end, self.where = start, limit, start + limit, "#"


_DEADLINE: contextvars.ContextVar = contextvars.ContextVar("steerdiff_compile_deadline", default=None)
_clock = time.thread_time  # the compiling thread's CPU time (see the module docstring); tests use a fake clock
_set_up = threading.local()  # .seconds: this thread's set-up time, which no deadline counts (see exclude)


def _now() -> float:
    """The budget clock: the thread's CPU time less its set-up time (:func:`exclude`), standing still inside
    :func:`outside_budget`."""
    t = _set_up.t0 if getattr(_set_up, "depth", 0) else _clock()
    return t - getattr(_set_up, "seconds", 0.0)


def thread_seconds() -> float:
    """The clock budgets are kept on (the compiling thread's CPU time), for measuring set-up to :func:`exclude`."""
    return _clock()


def exclude(seconds: float) -> None:
    """Take ``seconds`` of this thread's time off every compile budget: one-time set-up that a process or a
    tokenizer pays once (compiling or loading numba kernels, a tokenizer's prefix tree), not the compile of
    what a user sent. Without it, a fresh install's first compile would be refused for the kernels' JIT."""
    if seconds > 0 and not getattr(_set_up, "depth", 0):  # inside outside_budget the block counts it
        _set_up.seconds = getattr(_set_up, "seconds", 0.0) + seconds


@contextlib.contextmanager
def outside_budget():
    """Run the block without it counting against an open compile deadline (:func:`exclude` of its time);
    nested blocks count once."""
    depth = getattr(_set_up, "depth", 0)
    t0 = _clock()
    if depth == 0:
        _set_up.t0 = t0
    _set_up.depth = depth + 1
    try:
        yield
    finally:
        _set_up.depth = depth
        if depth == 0:
            exclude(_clock() - t0)


_numba_ok: list = []  # [whether numba imports], once known


def numba_importable() -> bool:
    """Whether numba imports (tried once per process, outside every budget): the compiled automaton kernels'
    switch, beside each module's own environment switch."""
    if not _numba_ok:
        with outside_budget():
            try:
                import numba  # noqa: F401
            except ImportError:
                _numba_ok.append(False)
            else:
                _numba_ok.append(True)
    return _numba_ok[0]


def run_kernel(fn, *args):
    """Call the numba dispatcher ``fn``. A call after which it holds a new compiled specialisation (numba
    compiled it, or loaded it from its disk cache) is one-time set-up: its time is taken off the compile
    budget (a fresh install JIT-compiles for seconds). ``len(fn.overloads)``, not ``fn.signatures``: that one
    builds a list per call."""
    n = len(fn.overloads)
    t0 = thread_seconds()
    out = fn(*args)
    if len(fn.overloads) > n:
        exclude(thread_seconds() - t0)
    return out


def _check_seconds(seconds) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ConstraintError(f"compile_seconds must be a positive number of seconds, got {seconds!r}")
    return float(seconds)


@contextlib.contextmanager
def compile_deadline(seconds: float | None = None):
    """Run the block under a compile deadline of ``seconds`` (None: ``COMPILE_SECONDS``, read at entry). Inside
    an open deadline, a later end is ignored (the open one goes on: one budget for the whole request) and an
    earlier one is taken for the block. Yields the deadline in force."""
    limit = COMPILE_SECONDS if seconds is None else _check_seconds(seconds)
    outer = _DEADLINE.get()
    now = _now()
    if outer is not None and outer.end <= now + limit:
        yield outer
        return
    mine = _Deadline(now, limit)
    if outer is not None:
        mine.where = outer.where
    token = _DEADLINE.set(mine)
    try:
        yield mine
    finally:
        _DEADLINE.reset(token)


def check_deadline(stage: str, pointer: str | None = None) -> None:
    """Raise :class:`CompileDeadlineExceeded` when an open compile deadline has passed (a no-op without one).
    ``pointer``: where (None: the JSON pointer the schema compiler is at, ``#`` outside it). Cheap (a context
    variable and a clock read): called inside the long loops of every compile stage."""
    d = _DEADLINE.get()
    if d is not None:
        now = _now()
        if now > d.end:
            raise CompileDeadlineExceeded(stage, d.where if pointer is None else pointer, now - d.start, d.limit)


def at_pointer(pointer: str) -> str | None:
    """Record ``pointer`` as the place being compiled under the open deadline; returns the previous one for
    the caller to restore (None when no deadline is open)."""
    d = _DEADLINE.get()
    if d is None:
        return None
    prev, d.where = d.where, pointer
    return prev


def current_pointer() -> str:
    """The JSON pointer being compiled under the open deadline (``#`` without one)."""
    d = _DEADLINE.get()
    return "#" if d is None else d.where


def restore_pointer(prev: str | None) -> None:
    """Undo :func:`at_pointer` (``prev``: what it returned)."""
    if prev is not None:
        d = _DEADLINE.get()
        if d is not None:
            d.where = prev


_BRANCH, _SUBPATTERN, _LITERAL = _C.BRANCH, _C.SUBPATTERN, _C.LITERAL
_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT) + ((_C.POSSESSIVE_REPEAT,) if hasattr(_C, "POSSESSIVE_REPEAT") else ())


def _items(seq) -> list:
    """The items of a parsed sequence (a ``SubPattern``'s list, read directly: its ``__getitem__`` is slow)."""
    return getattr(seq, "data", seq)


def _memo(fn, obj, cap: int, memo: dict) -> tuple[int, int]:
    """``fn(obj, cap, memo)``, once per object of the parse (a pure function of both; ``memo`` keyed by ``id``,
    for objects the parse holds: the fast parser shares a repeated group's sequence, ``engine_regex``)."""
    got = memo.get(id(obj))
    if got is None:
        got = memo[id(obj)] = fn(obj, cap, memo)
    return got


def _positions(seq, cap: int, memo: dict | None = None) -> tuple[int, int]:
    """``(positions, added)`` of a parsed ``re`` sequence: single-character items count one position;
    ``added`` is what counted repetitions add beyond one copy (stops counting past ``cap``)."""
    if memo is None:
        memo = {}
    total = added = 0
    for op, av in _items(seq):
        if op is _BRANCH:
            p, a = _memo(_branch_positions, av[1], cap, memo)
            total, added = total + p, added + a
        elif op is _SUBPATTERN:
            p, a = _memo(_positions, av[-1], cap, memo)
            total, added = total + p, added + a
        elif op in _REPEATS:
            lo, hi, sub = av
            p, a = _memo(_positions, sub, cap, memo)
            copies = max(lo, 1) if hi == _MAXREPEAT else max(hi, 1)
            total += p
            added += a * copies + p * (copies - 1)
        else:
            total += 1
        if added > cap:
            return total, added
    return total, added


def _branch_positions(alts, cap: int, memo: dict) -> tuple[int, int]:
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
        p, a = _positions(items[k:] if k else items, cap, memo)  # a slice: not memoised (its id is reused)
        total, added = total + p, added + a
    return total + nodes, added


@functools.lru_cache(maxsize=16)
def expansion(regex: str, cap: int = MAX_EXPANSION) -> int:
    """The NFA positions counted repetitions add to ``regex`` (Python ``re`` syntax), counted up to a little
    past ``cap``; 0 for a regex that does not parse (the builder reports that itself). Cached: a constraint's
    syntax check (``byte_level.check_regex``) and then the byte stage ask for it."""
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
