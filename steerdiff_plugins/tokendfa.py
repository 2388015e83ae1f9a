"""Regular languages over a token vocabulary, exact over any unmasking order.

Pipeline (each stage cached):

1. ``to_engine_regex(pattern)``: the Python-dialect regex is parsed by Python's own parser
   (``re._parser``) and re-emitted with explicit code-point ranges (``\\d``, ``\\w``, ``\\s``, ``.`` and
   case folding expanded to the exact sets Python's ``re`` uses), so the language compiled below is
   exactly the language ``re.fullmatch`` accepts. Non-regular features (backreferences, lookaround,
   ``\\b``, possessive/atomic groups, anchors inside the pattern) raise :class:`ConstraintError`.
2. ``byte_dfa(pattern)``: the minimal byte-level DFA (UTF-8 expanded), over byte classes. Built by
   outlines_core's Rust ``Index`` over a 256-token single-byte vocabulary, then minimised (``dfamin``:
   the engine's automata for JSON Schema are 10-30 times larger than minimal, and every later stage
   scales with the states).
   Choice (outlines_core over interegular): its Rust regex-automata builds the UTF-8 byte DFA in
   milliseconds, while interegular is a character-level pure-Python FSM that would need our own UTF-8
   byte expansion and is slow on bounded repeats; we do NOT use outlines_core's own token index (its
   per-state Python dicts cost ~0.7 s on a 49k vocabulary) but walk tokens ourselves in numpy.
3. ``TokenDFA``: bytes are grouped into classes (identical DFA columns), every token's bytes are
   mapped to class strings over a flat per-tokenizer byte array, the (state, token) pairs are walked
   through the DFA for all states at once (numpy, one gather per byte level, see ``_walk_pairs`` for
   the shortcuts that keep this near the number of surviving pairs), and tokens with identical
   next-state columns become one token class. Special tokens, tokens that write
   nothing and ids beyond the table belong to class 0 (never allowed). Class 1 is the padding token
   ``fill_id``: allowed only from an accepting state into the absorbing state ``PAD``, which only
   allows more padding, so a value may end early with a run of padding to the end of its span.
   For tokenizers whose decode drops one leading space (WordPiece, SentencePiece) the start state also
   accepts one optional leading space, so the decoded span text is exactly in the language.

Over a span with some positions fixed and others masked, :meth:`TokenDFA.analyse` computes forward
state sets (reachable from the start) and backward sets (can still reach acceptance in the remaining
positions). The tokens allowed at a masked position are exactly those joining a live state at the
position to a backward state at the next one; :meth:`TokenDFA.completable` checks a joint assignment.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import chain, repeat

import numpy as np
import torch

from steerdiff.errors import AutomatonTooLarge, ConstraintError
from steerdiff.vocab import TokenVocab
from steerdiff_plugins import dfamin

try:  # Python >= 3.11
    from re import _constants as _C
    from re import _parser as _P
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _C  # type: ignore
    import sre_parse as _P  # type: ignore

MAXCP = 0x10FFFF
NEVER, FILL = 0, 1  # reserved token classes
_MAX_EXACT_REPEAT = 12
DENSE_STATES = 2048  # up to this many states, masked steps may be one dense (N, N) product ...
DENSE_RATIO = 16  # ... when the distinct (state, next state) pairs are over 1/16 of N * N (else: the edge list)
MAX_STATES = 60_000  # byte-DFA states beyond this are refused (per-step work and memory grow with it)
RUN_STATES = 512  # automata with at least this many states look for counted runs (see _counted_runs)
SPARSE_SETS = None  # allowed sets over the table's non-DEAD entries (True), its live rows (False), or the cheaper (None)
TRIE_PAIRS = 100_000  # (state, string) groups larger than this are walked over the prefix tree (see _walk_pairs)


# ----------------------------------------------------------------------------------------------------
# 1. Python regex -> engine regex with explicit code-point sets
# ----------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _category_ranges(cat: str, ascii_only: bool) -> tuple[tuple[int, int], ...]:
    """Exact code-point ranges of Python's ``\\d``/``\\s``/``\\w`` (and negations) for str patterns."""
    neg = cat.startswith("NOT_")
    base = cat[4:] if neg else cat
    hi = 0x7F if ascii_only else MAXCP
    if base == "DIGIT":
        test = str.isdecimal if not ascii_only else (lambda c: "0" <= c <= "9")
    elif base == "SPACE":
        test = str.isspace if not ascii_only else (lambda c: c in " \t\n\r\f\v")
    elif base == "WORD":
        test = (lambda c: c.isalnum() or c == "_")
    else:
        raise ConstraintError(f"regex category {cat} is not supported")
    pos = []
    start = None
    for cp in range(hi + 1):
        ok = test(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            pos.append((start, cp - 1))
            start = None
    if start is not None:
        pos.append((start, hi))
    ranges = tuple(pos)
    return tuple(_negate(ranges)) if neg else ranges


def _normalise(ranges) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _negate(ranges) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for a, b in _normalise(ranges):
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= MAXCP:
        out.append((nxt, MAXCP))
    return out


def _fold(cp: int) -> set[int]:
    """Code points ``re`` matches for ``chr(cp)`` under IGNORECASE (a checked subset of case variants)."""
    c = chr(cp)
    cands = {c, c.lower(), c.upper(), c.swapcase(), c.casefold(), c.title()}
    pat = re.compile(re.escape(c), re.IGNORECASE)
    out = {cp}
    for v in cands:
        if len(v) == 1 and pat.fullmatch(v):
            out.add(ord(v))
    return out


SENTINEL = 0x10FFFF  # end marker appended to every engine regex; never generated (a noncharacter)
SENTINEL_BYTES = tuple(chr(SENTINEL).encode())  # F4 8F BF BF


def _without_sentinel(ranges):
    out = []
    for a, b in ranges:
        if a <= SENTINEL <= b:
            if a < SENTINEL:
                out.append((a, SENTINEL - 1))
        else:
            out.append((a, b))
    return out


def _esc(cp: int) -> str:
    return f"\\x{{{cp:X}}}"


def _class(ranges) -> str:
    ranges = _without_sentinel(_normalise(ranges))
    if not ranges:
        return "[^\\x{0}-\\x{10FFFF}]"  # the empty set
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _esc(ranges[0][0])
    return "[" + "".join(_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}" for a, b in ranges) + "]"


def _shown(pattern: str, limit: int = 200) -> str:
    """``pattern`` for an error message: schema regexes run to megabytes, so long ones are cut."""
    return repr(pattern) if len(pattern) <= limit else repr(pattern[:limit]) + f"... ({len(pattern)} characters)"


def _unsupported(pattern: str, what: str):
    return ConstraintError(f"regex {_shown(pattern)}: {what} is not a regular-language feature the exact engine supports")


def _emit(items, flags: int, pattern: str, top: bool) -> str:
    out = []
    n = len(items)
    for i, (op, av) in enumerate(items):
        ic = bool(flags & re.IGNORECASE)
        if op is _C.LITERAL:
            out.append(_class([(c, c) for c in (_fold(av) if ic else {av})]))
        elif op is _C.NOT_LITERAL:
            cps = _fold(av) if ic else {av}
            out.append(_class(_negate([(c, c) for c in cps])))
        elif op is _C.ANY:
            out.append(_class([(0, MAXCP)] if flags & re.DOTALL else [(0, 9), (11, MAXCP)]))
        elif op is _C.IN:
            out.append(_class(_in_ranges(av, flags, pattern)))
        elif op is _C.BRANCH:
            out.append("(?:" + "|".join(_emit(list(alt), flags, pattern, False) for alt in av[1]) + ")")
        elif op is _C.SUBPATTERN:
            group, add, rem, sub = av
            out.append("(?:" + _emit(list(sub), (flags | add) & ~rem, pattern, False) + ")")
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT):
            lo, hi, sub = av
            body = "(?:" + _emit(list(sub), flags, pattern, False) + ")"
            if lo > _MAX_EXACT_REPEAT and "|" in body and re.search(r"\\x\{[0-9A-F]{3,}\}", body):
                # outlines_core's DFA builder takes time exponential in the count here (measured:
                # {12} 0.1 s, {14} 0.2 s, {20} 190 s): refuse instead of hanging
                raise ConstraintError(
                    f"regex {_shown(pattern)}: a minimum repetition count of {lo} over an alternation with non-ASCII "
                    f"classes is beyond the automaton builder (limit {_MAX_EXACT_REPEAT}); lower the minimum "
                    f"(e.g. minLength) or narrow the class")
            out.append(body + ("{%d,}" % lo if hi is _C.MAXREPEAT else "{%d,%d}" % (lo, hi)))
        elif op is _C.AT:
            if av in (_C.AT_BEGINNING, _C.AT_BEGINNING_STRING) and top and i == 0:
                continue
            if av in (_C.AT_END, _C.AT_END_STRING) and top and i == n - 1:
                continue
            raise _unsupported(pattern, f"the anchor {av}" + (" inside the pattern" if av not in (_C.AT_BOUNDARY, _C.AT_NON_BOUNDARY) else ""))
        else:
            raise _unsupported(pattern, str(op))
    return "".join(out)


def _in_ranges(items, flags: int, pattern: str) -> list[tuple[int, int]]:
    neg = False
    ranges: list[tuple[int, int]] = []
    ic = bool(flags & re.IGNORECASE)
    for op, av in items:
        if op is _C.NEGATE:
            neg = True
        elif op is _C.LITERAL:
            ranges.extend((c, c) for c in (_fold(av) if ic else {av}))
        elif op is _C.RANGE:
            a, b = av
            ranges.append((a, b))
            if ic:
                if b - a > 5000:
                    raise _unsupported(pattern, f"a case-insensitive range of {b - a + 1} code points")
                for cp in range(a, b + 1):
                    ranges.extend((c, c) for c in _fold(cp))
        elif op is _C.CATEGORY:
            ranges.extend(_category_ranges(str(av).replace("CATEGORY_", ""), bool(flags & re.ASCII)))
        else:
            raise _unsupported(pattern, f"{op} inside a character class")
    return _negate(ranges) if neg else _normalise(ranges)


@lru_cache(maxsize=4096)
def to_engine_regex(pattern: str) -> str:
    """The Python-dialect ``pattern`` as an engine regex with the same ``re.fullmatch`` language."""
    if not isinstance(pattern, str):
        raise ConstraintError(f"a regex must be a str, got {type(pattern).__name__}")
    try:
        parsed = _P.parse(pattern, 0)
    except re.error as exc:
        raise ConstraintError(f"regex {_shown(pattern)} does not compile: {exc}") from None
    flags = parsed.state.flags
    if flags & re.MULTILINE:
        flags &= ~re.MULTILINE  # only leading/trailing anchors are accepted, where MULTILINE changes nothing
    if flags & re.ASCII and flags & re.IGNORECASE:
        pass
    # The Rust DFA has leftmost-first semantics: once a higher-priority alternative matches, lower ones
    # are pruned, so `a|ab` would not accept "ab". An end marker makes every match end at the same
    # place, so no thread is pruned and the DFA accepts exactly the set-theoretic language.
    return "(?:" + _emit(list(parsed), flags, pattern, True) + ")" + _esc(SENTINEL)


# ----------------------------------------------------------------------------------------------------
# 2. Byte-level DFA
# ----------------------------------------------------------------------------------------------------

_byte_vocab = None
_lock = threading.Lock()


def _byte_vocabulary():
    global _byte_vocab
    if _byte_vocab is None:
        import outlines_core

        _byte_vocab = outlines_core.Vocabulary(256, {bytes([b]): [b] for b in range(256)})
    return _byte_vocab


@dataclass(frozen=True)
class ByteDFA:
    """A minimal byte DFA over byte classes: ``ctrans (S+1, K)`` next state per class (``S`` = dead sink),
    ``bcls (256,)`` the class of each byte, ``accept (S+1,)``, ``start``. ``trans (S+1, 256)`` is the
    per-byte table, built on first use."""

    ctrans: np.ndarray
    bcls: np.ndarray
    accept: np.ndarray
    start: int

    @property
    def dead(self) -> int:
        return self.ctrans.shape[0] - 1

    @cached_property
    def trans(self) -> np.ndarray:
        return np.ascontiguousarray(self.ctrans[:, self.bcls])  # (S+1, 256)

    def accepts(self, data: bytes) -> bool:
        """Whether the whole of ``data`` is in the language (a byte-by-byte walk)."""
        s = self.start
        for b in data:
            s = self.ctrans[s, self.bcls[b]]
            if s == self.dead:
                return False
        return bool(self.accept[s])


@lru_cache(maxsize=1024)
def byte_dfa(pattern: str) -> ByteDFA:
    """The minimal byte-level DFA of a Python-dialect regex (full match): every state reachable from the
    start and able to reach acceptance, no two states with the same future (see ``dfamin``)."""
    # a start marker too: without it the engine's construction can blow up exponentially when the pattern
    # starts with a byte its body repeats (``"(?:[^"\\]|\\.){0,16}"`` took 4 s, ``{0,20}`` 80 s; 3 ms with it)
    from steerdiff_plugins.compile_budget import check_expansion

    check_expansion(pattern, "byte automaton", "regex")  # the Rust builder cannot be interrupted: estimate first
    engine = _esc(SENTINEL) + to_engine_regex(pattern)
    import outlines_core

    try:
        with _lock:
            index = outlines_core.Index(engine, _byte_vocabulary())
    except BaseException as exc:  # the Rust side raises ValueError or a panic exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        msg = str(exc)
        if "no transitions" in msg.lower() or "incompatible" in msg.lower():
            raise ConstraintError(f"regex {_shown(pattern)} matches no text at all (its language is empty)") from None
        raise ConstraintError(f"regex {_shown(pattern)} could not be compiled to an automaton: {msg[:300]}") from None
    trans_d = index.get_transitions()
    if len(trans_d) > MAX_STATES:
        raise AutomatonTooLarge(f"regex {_shown(pattern)}: its automaton has {len(trans_d)} states, above the limit of "
                                f"{MAX_STATES}; tighten the bounds (maxLength, maxItems, max_depth)", len(trans_d), MAX_STATES)
    finals = np.fromiter(index.get_final_states(), dtype=np.int64)
    init = index.get_initial_state()
    # the transitions as flat arrays (a Python loop per edge costs about 0.5 s for automata of 50k states)
    n = sum(map(len, trans_d.values()))
    src = np.fromiter(chain.from_iterable(repeat(s, len(d)) for s, d in trans_d.items()), dtype=np.int64, count=n)
    byte = np.fromiter(chain.from_iterable(d.keys() for d in trans_d.values()), dtype=np.int64, count=n)
    dst = np.fromiter(chain.from_iterable(d.values() for d in trans_d.values()), dtype=np.int64, count=n)
    every = np.concatenate([src, dst, finals, [init]])  # the engine's state ids -> 0..S-1 in their order
    # the engine's ids are spaced by a stride (its table row width): ids // g keep their order in a g times
    # smaller lookup array
    g = max(int(np.gcd.reduce(every)), 1)
    present = np.zeros(int(every.max()) // g + 1, dtype=bool)
    present[every // g] = True
    dense = np.cumsum(present, dtype=np.int64) - 1  # (max id // g + 1,) id // g -> dense state
    S = int(present.sum())
    ok = byte < 256
    src, byte, dst = dense[src[ok] // g], byte[ok], dense[dst[ok] // g]  # (E,) the edges, dense ids
    marked = np.zeros(S + 1, dtype=bool)  # the engine's final states: after the end marker
    marked[dense[finals // g]] = True
    # The engine's automaton D accepts MARK + pattern + MARK. It is minimised as it is: two states of the
    # pattern have the same future in D exactly when they have it in the pattern's language (the pattern
    # never contains the marker, a code point of its own), so D's minimal automaton, less its marker
    # states, is the pattern's.
    bcls, ctrans = _edge_classes(src, byte, dst, S)  # (256,), (S+1, K) with S the engine's missing edges
    bid = dfamin.minimise(ctrans, marked, S)
    if bid is None:  # a hash collision in the refinement: keep every state (still exact, only larger)
        bid = np.arange(S + 1)
    q, fin, inv = dfamin.block_table(ctrans, marked, bid)  # (B, K) blocks, (B,) the marked blocks
    sink = int(inv[S])
    mark = [int(bcls[b]) for b in SENTINEL_BYTES]
    on_mark = np.arange(len(q))
    for c in mark:
        on_mark = q[on_mark, c]
    accept = fin[on_mark]  # (B,) accepting in the pattern: the end marker can follow
    chain_ = [int(inv[dense[init // g]])]
    for c in mark:  # the start marker
        chain_.append(int(q[chain_[-1], c]))
    gone = _marker_only(q, fin, sink) | _start_only(q, chain_)
    gone[sink] = True
    keep = np.flatnonzero(~gone)
    remap = np.full(len(q), len(keep), dtype=np.int32)  # gone blocks -> the new sink
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    table = np.full((len(keep) + 1, q.shape[1]), len(keep), dtype=np.int32)  # (M+1, K) the sink last
    table[:-1] = remap[q[keep]]
    start = int(remap[chain_[-1]])
    if start == len(keep):
        raise ConstraintError(f"regex {_shown(pattern)} matches no text at all (its language is empty)")
    ccls = _byte_classes(table)  # (K,) class columns that became equal once the marker blocks are gone
    rep = np.empty(int(ccls.max()) + 1, dtype=np.int64)
    rep[ccls] = np.arange(len(ccls))
    return ByteDFA(np.ascontiguousarray(table[:, rep]), ccls[bcls], np.append(accept[keep], False), start)


def _edge_classes(src: np.ndarray, byte: np.ndarray, dst: np.ndarray, S: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bcls (256,), ctrans (S+1, K))`` from the edge list ``src --byte--> dst`` of ``S`` states (a
    missing edge goes to the sink ``S``): bytes with identical columns share a class. Columns are hashed
    (a float sum over each byte's edges in edge order, so equal columns give bit-equal sums) and the table
    is then checked against every edge exactly; on a collision the dense table is grouped exactly."""
    rng = np.random.default_rng(0xC1A55)
    w = rng.random(S + 1) + 0.5  # (S+1,) source weights
    v = rng.random(S + 1) + 0.5  # (S+1,) destination weights
    h = np.bincount(byte, weights=w[src] * v[dst], minlength=256)  # (256,)
    _, first, bcls = np.unique(h, return_index=True, return_inverse=True)
    bcls = bcls.reshape(-1).astype(np.int32)
    K = len(first)
    ctrans = np.full((S + 1, K), S, dtype=np.int32)
    is_rep = np.zeros(256, dtype=bool)
    is_rep[first] = True
    m = is_rep[byte]
    ctrans[src[m], bcls[byte[m]]] = dst[m]
    c = bcls[byte]  # (E,)
    if (np.array_equal(ctrans[src, c], dst)  # every edge agrees, and each class has as many edges as the table says
            and np.array_equal(np.bincount(c, minlength=K), (ctrans != S).sum(axis=0) * np.bincount(bcls, minlength=K))):
        return bcls, ctrans
    trans = np.full((S + 1, 256), S, dtype=np.int32)
    trans[src, byte] = dst
    return _class_transitions(trans)


def _marker_only(q: np.ndarray, fin: np.ndarray, sink: int) -> np.ndarray:
    """``(B,)`` the blocks of the engine's minimal automaton that cannot reach an accepting state of the
    pattern: the marked blocks (after the end marker), the block of states with no future at all (its
    entries go to the sink or back to itself), and the blocks whose whole future is a piece of the end
    marker, 1 to 3 bytes long. Any other block has a future word of 4 bytes or more, and such a word
    is some pattern text followed by the marker, so the block can reach an accepting state."""
    own = np.arange(len(q))[:, None]  # (B, 1)
    gone = fin | ((q == sink) | (q == own)).all(axis=1)  # (B,) no future beyond the marker's end
    for _ in range(3):  # futures of at most 1, 2, 3 bytes, all into gone blocks
        gone = gone | gone[q].all(axis=1)
    gone[sink] = False
    return gone


def _start_only(q: np.ndarray, chain_: list[int]) -> np.ndarray:
    """``(B,)`` the blocks on the start marker (``chain_``: the engine's start, then one block per marker
    byte, the last the pattern's start) that the pattern's start never reaches: the engine's start has
    no predecessor, and each later one is dropped when its only predecessor is the dropped block before
    it. (A block the pattern's own text reaches too, such as the one after ``F4 8F BF`` when the pattern
    can follow ``E2 80`` with ``BF`` and then start over, is kept.)"""
    out = np.zeros(len(q), dtype=bool)
    for k, b in enumerate(chain_[:-1]):
        into = set(np.flatnonzero((q == b).any(axis=1)).tolist())  # blocks with an entry into b
        if into == (set() if k == 0 else {chain_[k - 1]}) and (k == 0 or out[chain_[k - 1]]):
            out[b] = True
    return out


_ROW_CHUNK = 4096  # rows of a (S1, 256) table handled at a time (a 4 MB int32 block stays in cache)


def _class_transitions(trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(bcls (256,), ctrans (S1, K))``: the byte classes of ``trans (S1, 256)`` and its next state per class."""
    bcls = _byte_classes(trans)
    rep = np.empty(int(bcls.max()) + 1, dtype=np.int64)
    rep[bcls] = np.arange(256)  # one byte of each class
    return bcls, np.take(trans, rep, axis=1)  # (S1, K)


def _byte_classes(trans: np.ndarray) -> np.ndarray:
    """``(256,)`` int32: bytes with identical columns of ``trans (S1, 256)`` share a class. Columns are
    hashed and the grouping verified exactly (``np.unique`` on the columns on a collision).

    Both passes go over blocks of rows (a whole-table transpose or gather costs page faults on tens of MB);
    the hash is the same wrapping sum ``sum_s w[s] * trans[s, j]`` in any block order."""
    S1, n = trans.shape
    w = _hash_weights(S1, 0xB17E)
    h = np.zeros(n, dtype=np.int64)
    with np.errstate(over="ignore"):
        for r in range(0, S1, _ROW_CHUNK):
            blk = trans[r: r + _ROW_CHUNK].astype(np.int64)  # (R, 256)
            blk *= w[r: r + _ROW_CHUNK, None]
            h += blk.sum(axis=0)  # (256,) wraps: a hash
    _, first, bcls = np.unique(h, return_index=True, return_inverse=True)
    bcls = bcls.reshape(-1)
    rep = first[bcls]  # (256,) the class representative of each byte's column
    if not all(np.array_equal(np.take(trans[r: r + _ROW_CHUNK], rep, axis=1), trans[r: r + _ROW_CHUNK])
               for r in range(0, S1, _ROW_CHUNK)):
        _, bcls = np.unique(trans.T, axis=0, return_inverse=True)
    return bcls.reshape(-1).astype(np.int32)


# ----------------------------------------------------------------------------------------------------
# 3. Token-level DFA
# ----------------------------------------------------------------------------------------------------

@dataclass(eq=False)
class TokenDFA:
    """A regular language over token ids.

    States ``0..S-1`` come from the byte DFA, ``PAD = S`` is the absorbing padding state, ``DEAD = S+1``.
    ``table (S+2, C)`` int32: next state per token class (class 0 never allowed, class 1 the padding token).
    ``tok2cls (V,)`` int: class of each token id. ``accept (S+2,)`` bool (PAD accepts).
    ``step_any (S+2, S+2)`` float32: 1 where some token class moves the row state to the column state.
    ``min_tokens``: fewest tokens of an accepted text (padding excluded).
    """

    pattern: str
    table: np.ndarray
    tok2cls: np.ndarray
    accept: np.ndarray
    start: int
    step_any: np.ndarray
    min_tokens: int
    cls_size: np.ndarray
    _torch: dict = field(default_factory=dict, repr=False)

    @property
    def n_states(self) -> int:
        return self.table.shape[0]

    @property
    def dead(self) -> int:
        return self.table.shape[0] - 1

    @property
    def pad(self) -> int:
        return self.table.shape[0] - 2

    @property
    def n_classes(self) -> int:
        return self.table.shape[1]

    def tok2cls_on(self, device) -> torch.Tensor:
        key = str(device)
        t = self._torch.get(key)
        if t is None:
            t = torch.as_tensor(self.tok2cls, dtype=torch.long).to(device)
            self._torch[key] = t
        return t

    # -- per-span analysis ---------------------------------------------------------------------------

    def _mask_step(self, cur: np.ndarray, forward: bool) -> np.ndarray:
        """One masked position: the states reachable from ``cur`` (forward) or reaching ``cur`` (backward)."""
        if self.step_any is not None:
            f = cur.astype(np.float32)
            return ((f @ self.step_any) if forward else (self.step_any @ f)) > 0
        src, dst = self._pairs()[:2]  # a masked step over the pairs costs P, far less than N * C
        nxt = np.zeros(self.n_states, dtype=bool)
        if forward:
            nxt[dst[cur[src]]] = True
        else:
            nxt[src[cur[dst]]] = True
        return nxt

    def _state_sets(self) -> "_StateSets":
        """This DFA's interned state sets and the memos keyed by their ids; started afresh (all memos
        together, so no id outlives its set) once the sets pass ``_STATE_SET_BYTES``. Call it once per
        public method, never inside a sweep: ids from before a reset mean nothing after it."""
        ss = self._torch.get("state_sets")
        if ss is None or ss.nbytes > _STATE_SET_BYTES:
            ss = self._torch["state_sets"] = _StateSets()
        return ss

    def _sweep(self, ss: "_StateSets", cls_row: np.ndarray, masked: np.ndarray, forward: bool,
               prev: "_Sweep | None" = None) -> "_Sweep":
        """Ids (in ``ss``) of the state sets along the span, ``n+1`` of them: forward (reachable from the
        start) or backward (can still finish the rest of the span).

        Sets are interned, so a position costs one dict lookup once its (set, class) pair has been seen,
        as nearly all have, position after position and step after step. A run of masks goes through a
        memo of the sets after 1, 2, ... masks from the set it starts from (a shorter run is a prefix;
        the run stops at a fixed point, after which every set is the same).

        ``prev``: an earlier sweep of the same span in the same direction (the last step's, or the
        configuration a trial differs from). Only what the changed positions can reach is walked: from
        the first change on, stopping at each run's end where the set is the one ``prev`` had there,
        and going on from the next change (between changes the rows are the same, so the sets are too)."""
        n = len(cls_row)
        cls_list = cls_row.tolist()
        m_list = masked.tolist()
        if prev is not None and prev.ss is ss and len(prev.ids) == n + 1:
            diff = np.flatnonzero((masked != prev.masked) | (~masked & (cls_row != prev.cls)))  # a mask's class is moot
            if not len(diff):
                return _Sweep(ss, cls_row.copy(), masked.copy(), prev.ids)
            old = prev.ids
            out = list(old)
            changes = diff.tolist() if forward else (n - 1 - diff[::-1]).tolist()  # in crossing order
            p = changes[0]
        else:
            old = changes = None
            out = [0] * (n + 1)
            if forward:
                first = np.zeros(self.n_states, dtype=bool)
                first[self.start] = True
            else:
                first = self.accept
            out[0 if forward else n] = ss.intern(first)
            p = 0
        cur = out[p if forward else n - p]
        table, dead = self.table, self.dead
        step, runs = (ss.fwd1, ss.fwdrun) if forward else (ss.bwd1, ss.bwdrun)
        ci = 0  # the next change not crossed yet
        while p < n:
            i = p if forward else n - 1 - p  # the position being crossed
            if m_list[i]:
                k = 1
                while p + k < n and m_list[i + k if forward else i - k]:
                    k += 1
                blk = runs.get(cur)  # [ids after 1, 2, ... masks], fixed point reached?
                if blk is None:
                    blk = runs[cur] = [[], False]
                ids, fixed = blk
                x = ids[-1] if ids else cur
                while len(ids) < k and not fixed:
                    y = ss.intern(self._mask_step(ss.rows[x], forward))
                    if y == x:
                        fixed = blk[1] = True
                        break
                    ids.append(y)
                    ss.nbytes += 8
                    x = y
                got = ids[:k] + [x] * (k - len(ids)) if len(ids) < k else ids[:k]
                if forward:
                    out[i + 1 : i + k + 1] = got
                else:
                    out[i + 1 - k : i + 1] = got[::-1]
                cur = got[-1]
                p += k
            else:
                key = (cur, cls_list[i])
                nxt = step.get(key)
                if nxt is None:
                    s = ss.rows[cur]
                    c = key[1]
                    if forward:
                        y = np.zeros(self.n_states, dtype=bool)
                        y[table[np.flatnonzero(s), c]] = True
                        y[dead] = False
                    else:
                        y = s[table[:, c]]
                    nxt = step[key] = ss.intern(y)
                    ss.nbytes += 100
                out[i + 1 if forward else i] = cur = nxt
                p += 1
            if changes is not None:
                while ci < len(changes) and changes[ci] < p:
                    ci += 1
                if cur == old[p if forward else n - p]:  # back on the old sets: skip to the next change
                    if ci == len(changes):
                        break
                    p = changes[ci]
                    cur = out[p if forward else n - p]
        return _Sweep(ss, cls_row.copy(), masked.copy(), out)  # copies: the caller's arrays may be views it changes

    def forward(self, cls_row: np.ndarray, masked: np.ndarray) -> np.ndarray:
        """Forward state sets ``(n+1, S+2)`` bool for a span: ``cls_row (n,)`` classes, ``masked (n,)``."""
        ss = self._state_sets()
        return ss.stack(self._sweep(ss, cls_row, masked, forward=True).ids)

    def backward(self, cls_row: np.ndarray, masked: np.ndarray) -> np.ndarray:
        """Backward sets ``(n+1, S+2)``: states from which the rest of the span can still be accepted."""
        ss = self._state_sets()
        return ss.stack(self._sweep(ss, cls_row, masked, forward=False).ids)

    def _sweep_with(self, ss: "_StateSets", cls_row, masked, forward: bool, span: dict | None) -> "_Sweep":
        """A sweep walked from the one kept in ``span`` (a dict the caller keeps for one canvas span, or
        None), which then keeps the new one: the next step's canvas differs in a few positions."""
        key = "fwd" if forward else "bwd"
        sw = self._sweep(ss, cls_row, masked, forward, None if span is None else span.get(key))
        if span is not None:
            span[key] = sw
        return sw

    def _accepting(self, ss: "_StateSets", sid: int) -> bool:
        ok = ss.accepting.get(sid)
        if ok is None:
            ok = ss.accepting[sid] = bool((ss.rows[sid] & self.accept).any())
        return ok

    def completable(self, cls_row: np.ndarray, masked: np.ndarray, span: dict | None = None) -> bool:
        """Whether the span (fixed tokens and masks) can still be completed into an accepted text.
        ``span``: see :meth:`allowed_class_sets`."""
        ss = self._state_sets()
        return self._accepting(ss, self._sweep_with(ss, cls_row, masked, True, span).ids[-1])

    def select_jointly(self, cls_row: np.ndarray, masked: np.ndarray, order, prop_cls: np.ndarray,
                       span: dict | None = None) -> np.ndarray:
        """Keep proposals in ``order`` (most confident first) while the span stays completable.

        ``cls_row``/``masked``: the span before this step (proposal positions masked); ``prop_cls[q]``:
        the proposed class at position ``q``. Returns the bool keep mask ``(n,)``. The first proposal is
        kept whenever it is individually valid (it was drawn from the exact allowed set). Each trial
        differs from the kept configuration in one position, so its sweep is walked from that one's.
        """
        ss = self._state_sets()
        keep = np.zeros(len(cls_row), dtype=bool)
        base = self._sweep_with(ss, cls_row, masked, True, span)
        for q in order:
            trial_cls, trial_masked = base.cls.copy(), base.masked.copy()
            trial_cls[q] = prop_cls[q]
            trial_masked[q] = False
            sw = self._sweep(ss, trial_cls, trial_masked, True, base)
            if self._accepting(ss, sw.ids[-1]):
                base = sw
                keep[q] = True
        if span is not None:
            span["fwd"] = base
        return keep

    def allowed_classes(self, cls_row: np.ndarray, masked: np.ndarray, span: dict | None = None):
        """``(positions (M,), allowed (M, C) bool)`` for the masked positions of the span, or None when
        the span cannot be completed at all. ``span``: see :meth:`allowed_class_sets`."""
        res = self.allowed_class_sets(cls_row, masked, span)
        if res is None:
            return None
        pos, uniq, inv = res
        return pos, uniq[inv]

    def allowed_class_sets(self, cls_row: np.ndarray, masked: np.ndarray, span: dict | None = None):
        """Like :meth:`allowed_classes`, factorised: ``(positions (M,), sets (U, C) bool, which (M,))``
        with ``allowed[i] = sets[which[i]]``. A masked position's set depends only on its (reachable
        states, states that can finish the rest) pair; the pairs repeat along a run of masks and step
        after step, so each is worked out once (memoised by the two set ids).

        ``span``: a dict the caller keeps for one canvas span across steps (or None). The sweeps are
        kept in it and the next call walks only what its changed positions reach (a step commits a few
        tokens; the rest of the span's sets stay)."""
        ss = self._state_sets()
        fid = np.array(self._sweep_with(ss, cls_row, masked, True, span).ids, dtype=np.int64)  # (n+1,) set ids
        bid = np.array(self._sweep_with(ss, cls_row, masked, False, span).ids, dtype=np.int64)  # (n+1,)
        if not ss.rows[bid[0]][self.start]:
            return None
        pos = np.flatnonzero(masked)
        if len(pos) == 0:
            return pos, np.zeros((0, self.n_classes), dtype=bool), np.zeros(0, dtype=np.int64)
        pair = (fid[pos] << 32) | bid[pos + 1]  # (M,) one number per (reachable, finishing) pair
        upair, first, kinv = np.unique(pair, return_index=True, return_inverse=True)  # K distinct pairs
        memo = ss.pair_set
        kids = np.array([memo.get(p, -1) for p in upair.tolist()], dtype=np.int64)  # (K,) class-set ids
        todo = np.flatnonzero(kids < 0)
        if len(todo):
            at = pos[first[todo]]  # a position of each new pair
            f_ids, b_ids, b1_ids = fid[at].tolist(), bid[at].tolist(), bid[at + 1].tolist()
            fresh = self._fresh_sets(np.stack([ss.rows[f] & ss.rows[b] for f, b in zip(f_ids, b_ids)]),  # (K', N) live
                                     np.stack([ss.rows[b1] for b1 in b1_ids]))  # (K', N) finishing
            for k, p, row in zip(todo.tolist(), upair[todo].tolist(), fresh):
                kids[k] = memo[p] = ss.class_set(row)
                ss.nbytes += 100
        uniq_ids, which = np.unique(kids[kinv.reshape(-1)], return_inverse=True)
        sets = np.stack([ss.class_rows[i] for i in uniq_ids.tolist()])  # (U, C)
        return pos, sets, which.reshape(-1)

    def _fresh_sets(self, live: np.ndarray, fin: np.ndarray) -> np.ndarray:
        """``(K, C)`` bool: the classes that move some state of ``live[k]`` into ``fin[k]`` (``(K, N)`` each)."""
        K = len(live)
        fresh = np.zeros((K, self.n_classes), dtype=bool)
        ki, si = np.nonzero(live)  # pairs (key, live state)
        p_src, p_dst, e_pair, g_start, g_cls = self._pairs()
        sparse = SPARSE_SETS if SPARSE_SETS is not None else len(e_pair) + K * len(p_src) < len(ki) * self.n_classes
        if not sparse:  # dense: every class from every live state
            ok = fin[ki[:, None], self.table[si]]  # (P', C): finishing state after each class
            _or_reduce(fresh, ki, ok)
            return fresh
        # sparse: which (state, next state) pairs each key hits, as bits over the keys; a class is allowed
        # for the keys that hit any of its pairs (one OR over the table's E non-DEAD entries, K/8 bytes each)
        hit = np.packbits(live[:, p_src] & fin[:, p_dst], axis=0, bitorder="little")  # (ceil(K/8), P)
        if len(e_pair):
            per_cls = np.bitwise_or.reduceat(hit.T[e_pair], g_start, axis=0)  # (G, ceil(K/8))
            fresh[:, g_cls] = np.unpackbits(per_cls, axis=1, count=K, bitorder="little").T  # (K, G)
        return fresh

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The distinct (state, next state) pairs some token class joins, DEAD left out: ``src (P,)``,
        ``dst (P,)``; and the table's E non-DEAD entries grouped by class: the pair of each ``(E,)``, group
        starts ``(G,)`` and the class of each group ``(G,)``."""
        got = self._torch.get("pairs")
        if got is None:
            live = self.table.T != self.dead  # (C, N)
            live[:, self.dead] = False
            live[0] = False  # class 0 is never allowed
            cls, src = np.nonzero(live)  # (E,) each, sorted by class
            N = np.int64(self.n_states)
            upair, inv = np.unique(src * N + self.table[src, cls], return_inverse=True)  # (P,), (E,)
            starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]]) if len(cls) else np.zeros(0, dtype=np.int64)
            got = self._torch["pairs"] = (upair // N, upair % N, inv.reshape(-1), starts, cls[starts])
        return got


@dataclass(frozen=True)
class _Sweep:
    """One sweep's result: the span it was taken over (``cls (n,)``, ``masked (n,)``) and the ids in
    ``ss`` of its ``n+1`` state sets (a list: shared between sweeps, never changed)."""

    ss: "_StateSets"
    cls: np.ndarray
    masked: np.ndarray
    ids: list


_STATE_SET_BYTES = 64 << 20  # a DFA's interned state and class sets start afresh past this size


class _StateSets:
    """Interned state sets ``(N,)`` bool and allowed-class sets ``(C,)`` bool of one DFA, with the memos
    the per-step analysis keys by their ids: one fixed token (``fwd1``/``bwd1``: (set, class) -> set), a
    run of masks (``fwdrun``/``bwdrun``: set -> [sets after 1, 2, ... masks], fixed point reached),
    ``pair_set`` ((reachable, finishing) -> class set) and ``accepting`` (set -> holds an accepting state)."""

    def __init__(self):
        self.ids: dict[bytes, int] = {}
        self.rows: list[np.ndarray] = []
        self.class_ids: dict[bytes, int] = {}
        self.class_rows: list[np.ndarray] = []
        self.fwd1: dict = {}
        self.bwd1: dict = {}
        self.fwdrun: dict = {}
        self.bwdrun: dict = {}
        self.pair_set: dict = {}
        self.accepting: dict = {}
        self.nbytes = 0

    def intern(self, s: np.ndarray) -> int:
        """The id of state set ``s (N,)`` (kept as it is: never change it afterwards)."""
        return self._add(self.ids, self.rows, s)

    def class_set(self, row: np.ndarray) -> int:
        """The id of allowed-class set ``row (C,)``."""
        return self._add(self.class_ids, self.class_rows, row)

    def _add(self, index: dict, rows: list, row: np.ndarray) -> int:
        key = row.tobytes()
        i = index.get(key)
        if i is None:
            i = index[key] = len(rows)
            rows.append(row)
            self.nbytes += 2 * row.nbytes + 100
        return i

    def stack(self, ids: list[int]) -> np.ndarray:
        return np.stack([self.rows[i] for i in ids])


def _or_reduce(out: np.ndarray, groups: np.ndarray, rows: np.ndarray) -> None:
    """``out[g] |= OR of rows with group g`` for sorted ``groups``."""
    if len(groups) == 0:
        return
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    red = np.logical_or.reduceat(rows, starts, axis=0)
    out[groups[starts]] |= red


_vocab_keep: dict[int, TokenVocab] = {}


def compile_token_dfa(pattern: str, vocab: TokenVocab, fill_id: int | None, n_ids: int | None = None) -> TokenDFA:
    """The cached :class:`TokenDFA` of ``pattern`` over ``vocab`` (``n_ids``: logits width, default vocab size)."""
    _vocab_keep[id(vocab)] = vocab  # keep the id stable for the cache key
    n_ids = max(n_ids or vocab.size, vocab.size)
    return _compile_cached(pattern, id(vocab), fill_id, n_ids)


def _hash_weights(n: int, seed: int) -> np.ndarray:
    """``n`` fixed random int64 weights for the row hashes below (every grouping is verified exactly)."""
    return np.random.default_rng(seed).integers(1, 2**62, size=n, dtype=np.int64)


def _within(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: row ``a[i]`` of 256-bit sets ``(n, 4) uint64`` has no bit outside ``b`` (``(4,)`` or
    ``(n, 4)``). OR-ing the four words is 2.5x faster than ``.any(axis=1)``."""
    m = a & ~b
    return ((m[:, 0] | m[:, 1]) | (m[:, 2] | m[:, 3])) == 0


def _walk_pairs(ctrans: np.ndarray, dead: int, cs: "_ClassStrings"):
    """Every (state, string) pair whose walk survives, with its end state: ``(s, u, end, bulk)``.

    ``ctrans (S1, K)`` next state per byte class; ``cs`` the tokens as class strings. ``s, u, end`` are
    int arrays of pairs; ``bulk`` is a list of ``(states, ends, strings)``: state ``states[i]`` reads every
    string of the index array ``strings`` and ends in ``ends[i]`` (these pairs are not in the arrays).
    Shortcuts keep the cost near the number of surviving pairs rather than ``S1 * U * maxlen``:
    - a free-text state (several classes keep it in place) reads every string made only of those classes
      and stays put; states with the same looping classes share one test per string (``bulk``);
    - a state whose first byte leads into a free-text state ends there for every string whose other bytes
      all loop there (``bulk``: the first byte of a string value, after an opening quote);
    - a pair is dropped the moment it reaches ``dead`` (most die on their first or second byte: a state
      inside a key or a number allows a handful of bytes);
    - a group of more than ``TRIE_PAIRS`` pairs is walked over the strings' prefix tree (:func:`_trie_walk`):
      strings that share a prefix share its walk; smaller groups are walked pair by pair (less numpy
      overhead), where a pair that enters a free-text state later finishes at once when its remaining bytes
      all loop there;
    - in automata of ``RUN_STATES`` states or more, when a string's first byte enters a counted run
      (``x{0,255}``: each byte of a set moves one state down a chain), its other ``n`` bytes, all of that
      set, go ``n`` states down the run in bulk (:func:`_counted_runs`).
    The first byte is done per byte class: the states that survive class ``b`` times the strings that
    start with ``b``."""
    S1, K = ctrans.shape
    fc, start, lens = cs.fc, cs.start, cs.lens
    U = len(start)
    stays = ctrans[:dead] == np.arange(dead, dtype=ctrans.dtype)[:, None]  # (S, K)
    isloop = np.zeros(S1, dtype=bool)
    isloop[:dead] = stays.sum(axis=1) > 1  # a free-text state: several classes keep it in place
    suf = loop = sets = None
    group = np.full(S1, -1, dtype=np.int64)  # loop group of each free-text state
    bulk, inside = [], []
    if isloop.any():  # loop[s]: the bytes that keep s in place, as a 256-bit set (like cs.suf)
        suf = cs.suf
        loop = np.zeros((S1, 4), dtype=np.uint64)
        loop[:dead] = _byte_sets(stays[:, cs.bcls])  # (S, 4)
        ls = np.flatnonzero(isloop)
        sets, g_of = np.unique(loop[ls], axis=0, return_inverse=True)
        group[ls] = g_of.reshape(-1)
        for g in range(len(sets)):
            ins = _within(cs.whole, sets[g])  # (U,) the string only uses looping bytes
            gs = ls[group[ls] == g]
            bulk.append((gs, gs, np.flatnonzero(ins)))
            inside.append(ins)
    runs = _counted_runs(ctrans, dead, cs, isloop) if dead >= RUN_STATES else None
    first = fc[start]  # (U,)
    order = np.argsort(first, kind="stable")
    counts = np.bincount(first, minlength=K)
    bounds = np.r_[0, np.cumsum(counts)]
    ss, uu, walked = [], [], []  # pairs to walk one by one; (s, u, end) of the parts walked by _trie_walk
    for b in np.flatnonzero(counts):
        us = order[bounds[b]: bounds[b + 1]]
        src = np.flatnonzero(ctrans[:dead, b] != dead)
        if not len(src):
            continue
        tgt = ctrans[src, b]
        enters = np.where(isloop[tgt] & (tgt != src), group[tgt], -1)  # loop group the first byte enters
        key = (group[src] + 1) * (len(inside) + 1) + enters + 1  # (n,) one id per (own group, entered group)
        for kk in np.unique(key):
            gs, ge = int(kk) // (len(inside) + 1) - 1, int(kk) % (len(inside) + 1) - 1
            pick = key == kk
            sg = src[pick]
            ug = us if gs < 0 else us[~inside[gs][us]]  # loop-bulk pairs are not walked
            if ge >= 0 and len(ug):
                rest = _within(cs.tail[ug], sets[ge])  # the other bytes all loop in the state entered
                if rest.any():
                    bulk.append((sg, tgt[pick], ug[rest]))
                    ug = ug[~rest]
            if len(sg) and len(ug):
                tg = tgt[pick]
                parts = [(sg, tg, ug, -1)]
                if runs is not None:  # the first byte enters a counted run: the other bytes go down it in bulk
                    rg, reach, tail_in, P = runs
                    eg = rg[tg]
                    parts = [(sg[eg < 0], tg[eg < 0], ug, -1)]
                    for g in np.unique(eg[eg >= 0]):
                        sel = eg == g
                        a, t_ = sg[sel], tg[sel]
                        tin = tail_in[g][ug]
                        ins, n_in = ug[tin], lens[ug[tin]]
                        for n in np.unique(n_in):
                            ok = reach[t_] >= n - 1
                            if ok.any():
                                bulk.append((a[ok], P[n - 1][t_[ok]], ins[n_in == n]))
                        full = reach[t_] >= (int(n_in.max()) - 1 if len(n_in) else 0)
                        parts.append((a[full], t_[full], ug[~tin], -1))
                        parts.append((a[~full], t_[~full], ug, g))  # walked, less the pairs bulk covers
                for a, t_, us_, g in parts:
                    if not len(a) or not len(us_):
                        continue
                    # every pair of a x us_ (less, for g >= 0, the pairs the run's bulk entries cover)
                    if len(a) * len(us_) > TRIE_PAIRS:
                        walked.append(_trie_walk(a, t_, us_, cs, ctrans, dead,
                                                 None if g < 0 else (tail_in[g], reach[t_])))
                        continue
                    s2, u2 = _second_byte_pairs(a, t_, us_, cs, ctrans, dead)
                    if g >= 0:
                        drop = tail_in[g][u2] & (lens[u2] - 1 <= reach[ctrans[s2, b]])
                        s2, u2 = s2[~drop], u2[~drop]
                    ss.append(s2)
                    uu.append(u2)
    z = np.zeros(0, dtype=np.int32)
    done = [x for x in walked if len(x[0])]
    if ss:
        s, u = np.concatenate(ss), np.concatenate(uu)  # (P,)
        e = ctrans[s, first[u]]
        prev = s  # the state before the last byte: staying put on a looping byte cannot finish a pair
        for k in range(1, int(lens.max()) + 1):
            fin = lens[u] <= k  # (P,) the string has ended
            if suf is not None:
                lp = np.flatnonzero(isloop[e] & ~fin & (e != prev))  # pairs that just entered a free-text state
                fin[lp] = _within(suf[start[u[lp]] + k], loop[e[lp]])  # the rest keeps e where it is
            if fin.any():
                done.append((s[fin], u[fin], e[fin]))
                s, u, e = s[~fin], u[~fin], e[~fin]
            if len(s) == 0:
                break
            prev = e
            e = ctrans[e, fc[start[u] + k]]
            keep = e != dead
            s, u, e, prev = s[keep], u[keep], e[keep], prev[keep]
    if not done:
        return z, z, z, bulk
    s, u, e = (np.concatenate(x) for x in zip(*done))
    return s, u, e, bulk


def _trie_walk(src: np.ndarray, mid: np.ndarray, us: np.ndarray, cs: "_ClassStrings", ctrans: np.ndarray,
               dead: int, skip=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of ``src x us`` whose walk survives, with its end state: ``(s, u, end)`` int32 arrays.

    The strings ``us`` all start with one byte class, which takes ``src[i]`` to ``mid[i]``. Strings that share a
    prefix share its walk: the pairs walked are (state, prefix) pairs, one prefix per node of the strings'
    prefix tree (built level by level, only below prefixes some state still survives), so the cost is the
    number of surviving (state, prefix) pairs plus the strings, not (state, string) pairs times their length.
    A (state, string) pair is only made when the string ends, and then it is part of the result.

    ``skip = (tin (U,) bool, r (len(src),))``: leave out the pairs ``(src[i], u)`` with ``tin[u]`` and
    ``lens[u] - 1 <= r[i]`` (a counted run's bulk entries cover them, see :func:`_counted_runs`); a
    (state, prefix) pair all of whose strings are left out is not walked further."""
    K = ctrans.shape[1]
    fc, start, lens = cs.fc, cs.start, cs.lens
    ps, pe = src.astype(np.int32), mid.astype(np.int32)  # (P,) pairs: source state, state after the prefix
    pn = np.zeros(len(src), dtype=np.int64)  # (P,) the prefix's node (level 1: the one first byte class)
    if skip is not None:
        tin, pr = skip[0], np.asarray(skip[1], dtype=np.int64)  # pr (P,): each pair's run reach
    us = us.astype(np.int32)
    node = np.zeros(len(us), dtype=np.int64)  # (m,) each string's node at this level
    out = []
    d = 1  # bytes read
    while len(us) and len(ps):
        ln = lens[us]  # (m,)
        end = ln == d
        if end.any():  # strings that end here: every pair on their node
            ue, ne = us[end], node[end]
            order = np.argsort(ne, kind="stable")
            ue, ne = ue[order], ne[order]
            n_nodes = int(max(ne.max(), pn.max())) + 1
            cnt_n = np.bincount(ne, minlength=n_nodes)  # (nodes,) strings ending at each node
            off_n = np.cumsum(cnt_n) - cnt_n
            cnt = cnt_n[pn]  # (P,)
            tot = int(cnt.sum())
            if tot:
                got = (np.repeat(ps, cnt), ue[np.repeat(off_n[pn] - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot)],
                       np.repeat(pe, cnt))
                if skip is not None:  # the strings end here: lens[u] - 1 = d - 1
                    ok = ~(tin[got[1]] & (np.repeat(pr, cnt) >= d - 1))
                    got = tuple(x[ok] for x in got)
                out.append(got)
            us, node = us[~end], node[~end]
        if not len(us):
            break
        alive = np.zeros(int(max(node.max(), pn.max())) + 1, dtype=bool)
        alive[pn] = True
        keep = alive[node]  # strings below a prefix no state survives are done
        us, node = us[keep], node[keep]
        if not len(us):
            break
        key = node * K + fc[start[us] + d]  # (m,) child node: (parent, next byte class)
        kids, node = np.unique(key, return_inverse=True)  # (N,) sorted by parent
        node = node.reshape(-1)
        par, kc = kids // K, kids % K
        lo = np.searchsorted(par, pn, "left")  # (P,) each pair's children: kids[lo : lo + cnt]
        cnt = np.searchsorted(par, pn, "right") - lo
        tot = int(cnt.sum())
        rep = np.repeat(np.arange(len(ps)), cnt)  # (P',) the pair each child pair comes from
        child = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot)
        ne_ = ctrans[pe[rep], kc[child]]
        ok = ne_ != dead
        if skip is not None:  # below the child, every string left out for this pair: not walked
            mixed = np.bincount(node[~tin[us]], minlength=len(kids)) > 0  # (N,) some string outside the run's set
            longest = np.zeros(len(kids), dtype=np.int64)
            np.maximum.at(longest, node, lens[us])  # (N,) the longest string below each child
            ok &= mixed[child] | (longest[child] - 1 > pr[rep])
            pr = pr[rep[ok]]
        ps, pe, pn = ps[rep[ok]], ne_[ok], child[ok]
        d += 1
    if not out:
        z = np.zeros(0, dtype=np.int32)
        return z, z, z
    return tuple(np.concatenate(x) for x in zip(*out))


class _TailIn:
    """``tail_in[g]``: ``(U,)`` bool, whether each string's bytes after its first all lie in byte set ``g``;
    computed per set on first use (there can be many sets and tens of thousands of strings)."""

    def __init__(self, tail: np.ndarray, sets: np.ndarray):
        self.tail, self.sets, self.rows = tail, sets, {}

    def __getitem__(self, g) -> np.ndarray:
        g = int(g)
        row = self.rows.get(g)
        if row is None:
            row = self.rows[g] = _within(self.tail, self.sets[g])
        return row


def _counted_runs(ctrans: np.ndarray, dead: int, cs: "_ClassStrings", isloop: np.ndarray):
    """Counted runs, the states a bounded repeat such as ``[^"]{0,255}`` unrolls into.

    A state ``q`` *steps* on the byte classes ``A(q)`` that lead to the successor ``nxt[q]`` most bytes lead to,
    when that is neither ``q``, nor dead, nor a free-text state (those have their own bulk rules). A run continues from
    ``q`` to ``nxt[q]`` when that state steps on the same byte set. Then a string made only of bytes of
    ``A(q)``, ``n`` bytes long, goes exactly ``n`` states down the run as long as ``n <= reach[q]`` (the
    steps left, capped at the longest string). Exact by induction on the bytes.

    Returns ``(rg (S1,), reach (S1,), tail_in, P (M+1, S1))``: ``rg[q]`` the byte-set group of run state
    ``q`` (``-1``: none, or a run of one step), ``reach[q]`` its steps, ``tail_in[g]`` ``(U,)`` bool: each
    string's bytes after its first are all in group ``g``'s set (computed on first use), ``P[m, q]`` the state ``m`` steps down from ``q`` (meaningful for
    ``m <= reach[q]``). :func:`_walk_pairs` uses them for strings whose first byte enters a run: the other
    bytes go down it in bulk. ``None`` when there are no runs."""
    S, K = dead, ctrans.shape[1]
    T = ctrans[:S]  # (S, K)
    q = np.arange(S, dtype=T.dtype)
    bad = (T == dead) | (T == q[:, None])
    cand = np.flatnonzero((~bad).any(axis=1) & ~isloop[:S])
    if not len(cand):
        return None
    vals = np.where(bad[cand], -1, T[cand])  # (n, K)
    order = np.argsort(vals, axis=1, kind="stable")
    srt = np.take_along_axis(vals, order, axis=1)  # (n, K) successors, sorted per state
    cw = np.cumsum(np.bincount(cs.bcls, minlength=K)[order], axis=1)  # (n, K) bytes of the classes so far
    col = np.arange(K)
    new = np.ones(srt.shape, dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    run_start = np.maximum.accumulate(np.where(new, col, 0), axis=1)  # (n, K) where each value's run began
    before = np.where(run_start > 0, np.take_along_axis(cw, np.maximum(run_start - 1, 0), axis=1), 0)
    count = np.where(srt >= 0, cw - before, 0)  # bytes so far that lead to this successor
    succ = srt[np.arange(len(cand)), count.argmax(axis=1)]  # every candidate has a live successor
    ok = ~isloop[succ]
    cand, succ = cand[ok], succ[ok]
    if not len(cand):
        return None
    nxt = np.full(S + 1, dead, dtype=np.int64)
    nxt[cand] = succ
    member = T[cand] == succ[:, None]  # (n, K) the classes of A(q)
    aset = np.zeros((S + 1, 4), dtype=np.uint64)
    aset[cand] = _byte_sets(member[:, cs.bcls])  # (n, 4) A(q) as a 256-bit byte set
    steps = np.zeros(S + 1, dtype=bool)
    steps[cand] = True
    same = steps & steps[nxt] & (aset == aset[nxt]).all(axis=1)  # the run goes on from nxt[q]
    cap = int(cs.lens.max()) if len(cs.lens) else 0
    reach = steps.astype(np.int64)
    for _ in range(cap):
        r2 = np.where(same, np.minimum(1 + reach[nxt], cap), reach)
        if np.array_equal(r2, reach):
            break
        reach = r2
    long_ = np.flatnonzero(reach >= 2)  # a run of one step saves next to nothing
    if not len(long_):
        return None
    sets, g_of = np.unique(aset[long_], axis=0, return_inverse=True)
    rg = np.full(S + 1, -1, dtype=np.int64)
    rg[long_] = g_of.reshape(-1)
    tail_in = _TailIn(cs.tail, sets)
    top = int(reach.max())
    P = np.empty((top + 1, S + 1), dtype=np.int64)
    P[0] = np.arange(S + 1)
    for m in range(1, top + 1):
        P[m] = nxt[P[m - 1]]  # m steps down from every state (meaningful where reach >= m)
    return rg, reach, tail_in, P


def _second_byte_pairs(src: np.ndarray, mid: np.ndarray, us: np.ndarray, cs: "_ClassStrings", ctrans: np.ndarray,
                       dead: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``src x us`` that survive their string's second byte: ``(s, u)`` int32 arrays.

    ``mid[i]`` is the state ``src[i]`` reaches on the strings' (shared) first byte. One-byte strings pair with
    every state. The walk would drop the other pairs on that byte anyway; leaving them out first keeps the
    pair arrays near the survivors (a state inside a key literal allows one byte, and most strings that
    start with it die on the next)."""
    K = ctrans.shape[1]
    c2 = np.where(cs.lens[us] > 1, cs.fc[cs.start[us] + 1], K)  # (n,) second byte's class, K: none
    order = np.argsort(c2, kind="stable")
    us, c2 = us[order], c2[order]
    vals, offs, cnt = np.unique(c2, return_index=True, return_counts=True)
    ok = np.ones((len(src), len(vals)), dtype=bool)  # (n_src, n_vals) state survives that second byte
    real = vals < K
    ok[:, real] = ctrans[mid[:, None], vals[real][None, :]] != dead
    i, j = np.nonzero(ok)
    n = cnt[j]
    s_out = np.repeat(src[i].astype(np.int32), n)
    first = np.repeat(offs[j] - (np.cumsum(n) - n), n)  # ragged ranges: segment j's strings after each pair
    u_out = us[np.arange(int(n.sum())) + first].astype(np.int32)
    return s_out, u_out


def _token_table(s: np.ndarray, u: np.ndarray, e: np.ndarray, U: int, S: int, bulk=()):
    """Group strings with identical end-state columns into token classes and lay out their transitions:
    ``(table (S+2, 2+A) int32, cls (U,))``. Pairs and ``bulk`` groups come from :func:`_walk_pairs` (absent
    pairs are dead; live end states are byte states ``< S``). ``cls[u]`` is string ``u``'s class: ``0`` when
    it is dead in every state, else ``2..A+1``; ``table[q, cls[u]]`` is its end state from ``q`` or
    ``DEAD = S+1``. Columns 0 and 1 and rows ``S`` (PAD) and ``S+1`` (DEAD) are left DEAD for the caller.

    Columns are hashed (a wrapping sum of ``w[s] * (end + 1)`` over a string's pairs) and the grouping is
    then verified exactly: every pair agrees with its class's column and every string has as many live
    pairs as its class. On a hash collision it falls back to exact ``np.unique`` on the dense matrix.
    The table is written once, in place (it can be hundreds of MB for large objects: every extra copy
    costs seconds of page faults)."""
    DEAD = S + 1
    w = _hash_weights(S + 1, 0x5EED)
    h = np.zeros(U, dtype=np.int64)
    n_live = np.bincount(u, minlength=U)
    with np.errstate(over="ignore"):
        np.add.at(h, u, w[s] * (e.astype(np.int64) + 1))  # (U,) wraps: a hash, not arithmetic
        for st, en, idx in bulk:  # state st[i] ends in en[i] on every string of idx
            h[idx] += (w[st] * (en.astype(np.int64) + 1)).sum()
            n_live[idx] += len(st)
    _, inv = np.unique(h, return_inverse=True)
    inv = inv.reshape(-1)
    alive = np.zeros(int(inv.max()) + 1 if U else 0, dtype=bool)
    alive[inv[n_live > 0]] = True
    gcls = np.where(alive, np.cumsum(alive) + 1, 0)  # group -> class (0: dead everywhere)
    cls = gcls[inv]  # (U,)
    table = np.full((S + 2, 2 + int(alive.sum())), DEAD, dtype=np.int32)
    table[s, cls[u]] = e
    bcols = [np.unique(cls[idx]) for _, _, idx in bulk]  # the classes each bulk entry covers
    for (st, en, _), bc in zip(bulk, bcols):
        table[np.ix_(st, bc)] = en[:, None]
    ok = np.array_equal(table[s, cls[u]], e) and not n_live[cls == 0].any()
    # every string has as many live pairs as its class's column (a later bulk entry that overwrote an
    # earlier one in a shared class shows up on the pairs or on these counts)
    ok = ok and np.array_equal((table[:S] != DEAD).sum(axis=0)[cls], np.where(cls > 0, n_live, 0))
    ok = ok and all((table[np.ix_(st, bc)] == en[:, None]).all() for (st, en, _), bc in zip(bulk, bcols))
    if ok:
        return table, cls
    dense = np.full((U, S + 1), DEAD, dtype=np.int32)  # a collision: exact fallback
    dense[u, s] = e
    for st, en, idx in bulk:
        dense[np.ix_(idx, st)] = en
    cols, inv = np.unique(dense, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    alive = (cols != DEAD).any(axis=1)
    gcls = np.where(alive, np.cumsum(alive) + 1, 0)
    table = np.full((S + 2, 2 + int(alive.sum())), DEAD, dtype=np.int32)
    table[: S + 1, 2:] = cols[alive].T
    table[S] = DEAD  # the byte automaton's dead row is not PAD
    return table, gcls[inv]


_vocab_flat: dict[int, tuple] = {}


@dataclass
class _FlatVocab:
    """The bytes of every token that writes something, one slot per byte plus an end slot per token.

    ``ids (T,)`` token ids; ``lens (T,)``; ``start (T,)`` first slot; ``slots (T + total,)`` uint8 bytes
    (end slots 0); ``by_k[k]``: the slots at position ``k`` of tokens longer than ``k``; ``suf (slots, 4)``
    uint64: the bytes from each slot to the end of its token as a 256-bit set (packed like
    :func:`_byte_sets`; end slots empty); ``whole (T, 4)``: every token's bytes, ``suf[start]``; ``tail (T, 4)``: its bytes after the first."""

    ids: np.ndarray
    lens: np.ndarray
    start: np.ndarray
    slots: np.ndarray
    by_k: list
    suf: np.ndarray
    whole: np.ndarray
    tail: np.ndarray


def _byte_sets(member: np.ndarray) -> np.ndarray:
    """``member (n, 256)`` bool -> ``(n, 4)`` uint64 bit sets (a fixed packing, so sets can be and-ed)."""
    return np.ascontiguousarray(np.packbits(member, axis=1)).view(np.uint64)  # (n, 32) uint8 -> (n, 4)


def _flat_vocab(vocab: TokenVocab) -> _FlatVocab:
    """Per tokenizer (cached): :class:`_FlatVocab`."""
    got = _vocab_flat.get(id(vocab))
    if got is None or got[0] is not vocab:
        ids = np.array([t for t, b in enumerate(vocab.token_bytes) if b and t not in vocab.special], dtype=np.int64)
        lens = np.array([len(vocab.token_bytes[t]) for t in ids], dtype=np.int64)
        flat = np.frombuffer(b"".join(vocab.token_bytes[t] for t in ids), dtype=np.uint8)
        offs = np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
        owner = np.repeat(np.arange(len(ids)), lens)
        start = offs + np.arange(len(ids))  # each token's bytes, then its end slot
        slots = np.zeros(len(flat) + len(ids), dtype=np.uint8)
        slots[start[owner] + np.arange(len(flat)) - offs[owner]] = flat
        by_k = [start[lens > k] + k for k in range(int(lens.max()) if len(lens) else 0)]
        one = _byte_sets(np.eye(256, dtype=bool))  # (256, 4) each byte alone
        suf = np.zeros((len(slots), 4), dtype=np.uint64)
        for idx in reversed(by_k):
            suf[idx] = suf[idx + 1] | one[slots[idx]]
        got = _vocab_flat[id(vocab)] = (vocab, _FlatVocab(ids, lens, start, slots, by_k, suf, suf[start], suf[start + 1]))
    return got[1]


@dataclass
class _ClassStrings:
    """Tokens as strings of byte classes. String ``u`` is ``fc[start[u] : start[u] + lens[u]]``;
    ``fc`` is over the vocabulary's slots (``_FlatVocab``), so ``suf`` indexes it too; ``whole``/``tail``
    are the per-string byte sets of ``_FlatVocab``; ``bcls (256,)`` each byte's class."""

    fc: np.ndarray
    start: np.ndarray
    lens: np.ndarray
    suf: np.ndarray
    whole: np.ndarray
    tail: np.ndarray
    bcls: np.ndarray


def _class_strings(vocab: TokenVocab, bcls: np.ndarray, fill_id: int | None):
    """The tokens that write something (not special, not ``fill_id``) as strings of byte classes:
    ``(tids (U,), strings)``; string ``u`` of ``strings`` (a :class:`_ClassStrings`) spells ``tids[u]``.

    Tokens that spell the same class string are not merged here: that saves less walking than it costs,
    and :func:`_token_table` groups tokens with identical columns anyway."""
    fv = _flat_vocab(vocab)
    keep = np.flatnonzero(fv.ids != fill_id) if fill_id is not None else np.arange(len(fv.ids))
    return fv.ids[keep], _ClassStrings(bcls[fv.slots], fv.start[keep], fv.lens[keep], fv.suf, fv.whole[keep], fv.tail[keep], bcls)


def _with_leading_space(bcls: np.ndarray, ctrans: np.ndarray, accept: np.ndarray, start: int):
    """The byte DFA with a new start state: decode drops one leading space, so a first space leads to the
    original start and any other byte behaves as from the original start. The space byte gets a class
    of its own (a copy of its old column) so that the new start row can differ on it alone."""
    S = ctrans.shape[0] - 1  # the dead sink; the new start takes its row number, the sink moves to S+1
    c = int(bcls[0x20])
    t = np.concatenate([ctrans, ctrans[:, c:c + 1]], axis=1)  # (S+1, K+1) class K: the space alone
    t = np.where(t == S, S + 1, t).astype(np.int32)
    t[S] = t[start]
    t[S, -1] = start
    t = np.vstack([t, np.full((1, t.shape[1]), S + 1, dtype=np.int32)])  # (S+2, K+1) the sink last
    bcls = bcls.copy()
    bcls[0x20] = t.shape[1] - 1
    return bcls, t, np.r_[accept[:S], accept[start], False], S


@lru_cache(maxsize=256)
def _compile_cached(pattern: str, vocab_key: int, fill_id: int | None, n_ids: int) -> TokenDFA:
    vocab = _vocab_keep[vocab_key]
    bd = byte_dfa(pattern)
    bcls, ctrans, accept, start = bd.bcls, bd.ctrans, bd.accept, bd.start
    if vocab.leading_space:
        bcls, ctrans, accept, start = _with_leading_space(bcls, ctrans, accept, start)
    dead_b = ctrans.shape[0] - 1
    S = dead_b  # live byte states
    tok2cls = np.zeros(n_ids, dtype=np.int64)
    if fill_id is not None and 0 <= fill_id < n_ids:
        tok2cls[fill_id] = FILL
    tids, cstr = _class_strings(vocab, bcls, fill_id)
    U = len(cstr.lens)
    N = S + 2  # byte states, PAD, DEAD
    PAD, DEAD = S, S + 1
    if U:
        ps, pu, pe, bulk = _walk_pairs(ctrans, dead_b, cstr)
        table, cls = _token_table(ps, pu, pe, U, S, bulk)  # token classes: identical columns
        tok2cls[tids] = cls  # class of each token
    else:
        table = np.full((N, 2), DEAD, dtype=np.int32)
    C = table.shape[1]
    acc = np.zeros(N, dtype=bool)
    acc[:S] = accept[:S]
    acc[PAD] = True
    if fill_id is not None:
        table[:S, FILL] = np.where(acc[:S], PAD, DEAD)
        table[PAD, FILL] = PAD
    step_any = None  # masked steps go through the edge list (see _edges) unless the dense product is cheaper
    if N <= DENSE_STATES:
        live = table[:, 1:] != DEAD  # (N, C-1)
        live[DEAD] = False
        src = np.repeat(np.arange(N), C - 1)[live.reshape(-1)]
        dst = table[:, 1:][live]
        pairs = len(np.unique(src * N + dst))
        if pairs * DENSE_RATIO > N * N:  # JSON automata have about 3 successors per state: the edge list wins
            step_any = np.zeros((N, N), dtype=np.float32)
            step_any[src, dst] = 1.0
    cls_size = np.bincount(tok2cls, minlength=C)
    # shortest accepted token count (BFS over classes 2..)
    dist = np.full(N, -1)
    dist[start] = 0
    frontier = [start]
    min_tokens = -1
    d = 0
    seen = np.zeros(N, dtype=bool)
    seen[start] = True
    while frontier:
        if any(acc[s] for s in frontier):
            min_tokens = d
            break
        nxt = np.unique(table[frontier, 2:])
        nxt = [int(s) for s in nxt if s != DEAD and not seen[s]]
        for s in nxt:
            seen[s] = True
        frontier = nxt
        d += 1
    dfa = TokenDFA(pattern, table, tok2cls, acc, start, step_any, min_tokens, cls_size)
    return dfa


def cache_clear() -> None:
    """Forget every compiled automaton (benchmarks measure cold compiles)."""
    _compile_cached.cache_clear()
    byte_dfa.cache_clear()
    to_engine_regex.cache_clear()


# ----------------------------------------------------------------------------------------------------
# 4. Hook helpers shared by the regular-language plugins (regex, choice, json_schema)
# ----------------------------------------------------------------------------------------------------

@dataclass
class Slot:
    """One regular constraint on one row: its automaton and canvas span ``[start, end)``; ``sweeps``:
    the span's last state-set sweeps, walked incrementally the next step (see ``allowed_class_sets``)."""

    row: int
    constraint: object
    dfa: TokenDFA
    start: int
    end: int
    sweeps: dict = field(default_factory=dict, repr=False)


def span_of(constraint, length: int) -> tuple[int, int]:
    span = getattr(constraint, "span", None)
    if span is None:
        return 0, length
    try:
        s, e = (int(x) for x in span)
    except (TypeError, ValueError):
        raise ConstraintError(f"{constraint!r}: span must be (start, end), got {span!r}") from None
    if not 0 <= s < e <= length:
        raise ConstraintError(f"{constraint!r}: span [{s}, {e}) does not fit in a canvas of {length} positions")
    return s, e


def _check_capacity(constraint, positions: int, vocab) -> None:
    """A constraint compiled for a canvas capacity (``canvas_bounds``) may only run on spans it covers."""
    cap = getattr(constraint, "capacity", None)
    if cap is None:
        return
    from steerdiff_plugins.canvas_bounds import max_token_bytes

    need = positions * max_token_bytes(vocab)
    if need > cap:
        raise ConstraintError(f"{constraint.type_name} constraint {constraint.describe()} was compiled for a text of at most "
                              f"{cap} bytes, but its span of {positions} tokens can hold {need}; compile it with "
                              f"capacity >= {need} (or None)")


class RegularHooks:
    """``prepare`` / ``adjust_logits`` / ``check_commit`` / ``finalize`` for constraints exposing
    ``regex() -> str`` and ``check_text(text, result)``. ``key``: this plugin's key in ``run.state``."""

    def __init__(self, key: str, classes):
        self.key = key
        self.classes = classes

    def prepare(self, run) -> None:
        from steerdiff.vocab import vocab_for

        slots = []
        vocab = None
        for row, c in run.constraints_of(self.classes):
            vocab = vocab or vocab_for(run.tokenizer)
            s, e = span_of(c, run.length)
            _check_capacity(c, e - s, vocab)
            pattern = c.regex_on(e - s, vocab) if hasattr(c, "regex_on") else c.regex()
            dfa = compile_token_dfa(pattern, vocab, run.fill_id)
            what = f"{c.type_name} constraint {c.describe()} on row {row}"
            if dfa.min_tokens < 0:
                raise ConstraintError(f"{what}: no sequence of this tokenizer's tokens spells a text in its language (empty at the token level)")
            n = e - s
            if dfa.min_tokens > n:
                raise ConstraintError(f"{what}: the shortest matching text takes {dfa.min_tokens} tokens but its span has only {n} positions; raise length")
            if not dfa.completable(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)):
                raise ConstraintError(f"{what}: no matching text fills exactly {n} tokens and no padding token can end it early")
            slots.append(Slot(row, c, dfa, s, e))
        by_row: dict[int, list[Slot]] = {}
        for sl in slots:
            by_row.setdefault(sl.row, []).append(sl)
        for row, group in by_row.items():
            group.sort(key=lambda x: x.start)
            for a, b in zip(group, group[1:]):
                if b.start < a.end:
                    raise ConstraintError(f"row {row}: regular constraints {a.constraint.describe()} and {b.constraint.describe()} overlap on canvas positions [{b.start}, {min(a.end, b.end)}); give them disjoint spans")
        if slots:
            run.state[self.key] = {"slots": slots}

    def adjust_logits(self, run, canvas, masked, logits):
        st = run.state.get(self.key)
        if not st:
            return None
        from steerdiff.edits import LogitsEdit

        B, L, V = logits.shape
        rows = sorted({sl.row for sl in st["slots"]})
        ridx = {r: i for i, r in enumerate(rows)}
        canvas_np = canvas.cpu().numpy()
        masked_np = masked.cpu().numpy()
        choice = np.full((len(rows), L), -1, dtype=np.int64)  # (R, L) row of the token-set table below
        pools = {}
        for sl in st["slots"]:  # each DFA's pool once, before any row number is handed out
            if id(sl.dfa) not in pools:
                pools[id(sl.dfa)] = _set_pool(sl.dfa, V, logits.device)
        used = []  # (pool, row numbers (M,), row index, canvas positions (M,)) per span
        for sl in st["slots"]:
            m = masked_np[sl.row, sl.start:sl.end]
            if not m.any():
                continue
            dfa = sl.dfa
            t2c = dfa.tok2cls
            toks = canvas_np[sl.row, sl.start:sl.end]
            cls_row = np.where(m, 0, _classes_of(t2c, toks))
            res = dfa.allowed_class_sets(cls_row, m, sl.sweeps)
            if res is None:
                raise ConstraintError(
                    f"row {sl.row}: the fixed tokens in canvas span [{sl.start}, {sl.end}) cannot be completed into "
                    f"{sl.constraint.type_name} constraint {sl.constraint.describe()} (text so far: {_span_text(run, toks, m)!r})")
            pos, uniq, inv = res  # (M,), (U, C), (M,): positions inside a span mostly share their sets
            if len(pos) == 0:
                continue
            pool = pools[id(dfa)]
            used.append((pool, pool.rows(uniq)[inv], ridx[sl.row], pos + sl.start))
        if not used:
            return None
        if len({id(u[0]) for u in used}) == 1:  # one automaton (the usual case, batch rows included): its pool
            table = used[0][0].tensor  # (cap, V)
            for _, prow, r, at in used:
                choice[r, at] = prow
        else:  # several automata: their rows in use, gathered into one table
            parts, off = [], 0
            for pool, prow, r, at in used:
                u, inv = np.unique(prow, return_inverse=True)
                parts.append(pool.tensor[torch.from_numpy(u).to(pool.device)])  # (U, V)
                choice[r, at] = inv.reshape(-1) + off
                off += len(u)
            table = torch.cat(parts)
        return LogitsEdit(classes=table, choice=torch.from_numpy(choice).to(logits.device),
                          rows=torch.tensor(rows, dtype=torch.long, device=logits.device))

    def check_commit(self, run, canvas, proposal, commit, masked=None, confidence=None) -> None:
        st = run.state.get(self.key)
        if not st:
            return
        for sl in st["slots"]:
            c_row = commit[sl.row, sl.start:sl.end]
            if not bool(c_row.any()):
                continue
            dfa = sl.dfa
            t2c = dfa.tok2cls
            toks = canvas[sl.row, sl.start:sl.end].cpu().numpy()
            prop = proposal[sl.row, sl.start:sl.end].cpu().numpy()
            cmask = c_row.cpu().numpy()
            row_masked = (masked if masked is not None else run.masked)[sl.row, sl.start:sl.end]
            masked_np = row_masked.cpu().numpy() & ~cmask
            merged = np.where(cmask, prop, toks)
            cls_row = _classes_of(t2c, merged)
            if dfa.completable(cls_row, masked_np, sl.sweeps):
                continue
            cand = np.flatnonzero(cmask)
            if confidence is not None:
                conf = confidence[sl.row, torch.as_tensor(cand + sl.start, device=confidence.device)].float().cpu().numpy()
                order = cand[np.argsort(-conf, kind="stable")]
            else:  # called without the sampler's scores: left to right
                order = cand
            keep_mask = dfa.select_jointly(np.where(cmask, 0, cls_row), masked_np | cmask, order, cls_row, sl.sweeps)
            drop = torch.as_tensor(cmask & ~keep_mask, device=commit.device)
            commit[sl.row, sl.start:sl.end] &= ~drop

    def finalize(self, run, results) -> None:
        st = run.state.get(self.key)
        if not st:
            return
        from steerdiff.vocab import vocab_for

        vocab = vocab_for(run.tokenizer)
        for sl in st["slots"]:
            res = results[sl.row]
            ids = [t for t in res.token_ids[sl.start:sl.end] if t != run.fill_id]
            raw = vocab.decode_bytes(ids)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                from steerdiff.errors import ValidationFailed

                raise ValidationFailed(f"{sl.constraint.type_name} constraint {sl.constraint.describe()}: span [{sl.start}, {sl.end}) is not valid UTF-8 (engine bug)", raw.decode("utf-8", "replace")) from None
            sl.constraint.check_text(text, res)


def _classes_of(tok2cls: np.ndarray, toks: np.ndarray) -> np.ndarray:
    """Token class of each id in ``toks`` (ids beyond the table: class 0, never allowed)."""
    return tok2cls.take(toks, mode="clip") * (toks < len(tok2cls))  # take(clip) is ~20x cheaper than np.clip here


def _span_text(run, toks, masked) -> str:
    from steerdiff.vocab import vocab_for

    vocab = vocab_for(run.tokenizer)
    return "".join("▒" if m else vocab.decode([int(t)]) for t, m in zip(toks, masked))


_SET_POOL_ROWS = 512  # expanded token sets kept per (DFA, device, V) before the pool starts afresh (25 MB at V = 49k)
_SET_POOL_START = _SET_POOL_ROWS + 64  # rows allocated up front: growing copies the pool


class _SetPool:
    """The ``(V,)`` token sets of one DFA's allowed class sets, expanded once and kept as rows of one
    ``(cap, V)`` bool tensor on one device: an edit can point into it (``classes = pool.tensor``,
    ``choice`` = row numbers) with no per-step copy. On the CPU the rows live in numpy (``np.take``
    is 2.5x faster than ``torch.gather`` here and single-threaded: torch's intra-op threads stall for
    tens of ms when another process holds a core) and the tensor shares their memory."""

    def __init__(self, dfa: TokenDFA, V: int, device):
        self.device = torch.device(device)
        self.cpu = self.device.type == "cpu"
        self.width = _tok2cls_width(dfa, V)  # (V,) class of each token id
        self.index: dict[bytes, int] = {}
        self._alloc(_SET_POOL_START)  # numpy zeros are lazily mapped pages: no cost until written

    def _alloc(self, cap: int) -> None:
        V = len(self.width)
        old = getattr(self, "tensor", None)
        if self.cpu:
            arr = np.zeros((cap, V), dtype=bool)
            if old is not None:
                arr[: len(self.index)] = self.array[: len(self.index)]
            self.array, self.tensor = arr, torch.from_numpy(arr)  # (cap, V), one memory
        else:
            t = torch.zeros((cap, V), dtype=torch.bool, device=self.device)
            if old is not None:
                t[: len(self.index)] = old[: len(self.index)]
            self.tensor = t

    def rows(self, sets: np.ndarray) -> np.ndarray:
        """Row numbers ``(U,)`` of ``sets (U, C)`` bool, expanding the sets not seen before."""
        keys = [row.tobytes() for row in sets]
        missing = [i for i, k in enumerate(keys) if k not in self.index]
        if missing:
            n = len(self.index)
            if n + len(missing) > self.tensor.shape[0]:
                self._alloc(max(2 * self.tensor.shape[0], n + len(missing)))
            # (m, V); gathering whole (m,) rows of the transposed sets is 2x faster than m gathers of (V,)
            new = np.take(sets[missing].T, self.width, axis=0, mode="clip").T
            if self.cpu:
                self.array[n : n + len(missing)] = new
            else:
                self.tensor[n : n + len(missing)] = torch.from_numpy(new).to(self.device)
            for j, i in enumerate(missing):
                self.index[keys[i]] = n + j
        return np.array([self.index[k] for k in keys], dtype=np.int64)


def _set_pool(dfa: TokenDFA, V: int, device) -> _SetPool:
    """The DFA's pool for ``(device, V)``; started afresh once past ``_SET_POOL_ROWS`` rows (call it
    before a step's first use: row numbers handed out earlier mean nothing after that)."""
    key = ("pool", str(device), V)
    pool = dfa._torch.get(key)
    if pool is None or len(pool.index) > _SET_POOL_ROWS:
        pool = dfa._torch[key] = _SetPool(dfa, V, device)
    return pool


def _tok2cls_width(dfa: TokenDFA, V: int) -> np.ndarray:
    """``(V,)`` the class of each token id below ``V`` (ids beyond the table: class 0, never allowed)."""
    key = ("tok2cls", V)
    got = dfa._torch.get(key)
    if got is None:
        got = np.zeros(V, dtype=np.int64)
        n = min(V, len(dfa.tok2cls))
        got[:n] = dfa.tok2cls[:n]
        dfa._torch[key] = got
    return got
