"""Terminal regex -> byte DFA for the grammar engine: interegular's character FSM expanded to bytes (UTF-8
aware: multi-byte characters the regex does not name are one "any other character" class)."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from steerdiff.errors import GrammarError

INF = 1 << 30
_ROOT = "$root_"


def _utf8_need(lead: int) -> int:
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _utf8_range(lead: int, index: int) -> tuple[int, int]:
    """Allowed range of the continuation byte at ``index`` (1-based) after ``lead``."""
    if index == 1:
        if lead == 0xE0:
            return 0xA0, 0xBF
        if lead == 0xED:
            return 0x80, 0x9F
        if lead == 0xF0:
            return 0x90, 0xBF
        if lead == 0xF4:
            return 0x80, 0x8F
    return 0x80, 0xBF


# Lookbehind idioms of lark's common.lark, rewritten to equivalent regular expressions. lark's
# ESCAPED_STRING is /".*?(?<!\\)(\\\\)*?"/: the shortest run from a quote to the first quote preceded
# by an even number of backslashes, i.e. /"(?:[^"\\\n]|\\.)*"/ (no newline, as ``.`` excludes it).
_REWRITES = [
    (r'.*?(?<!\\)(\\\\)*?"', r'(?:[^"\\\n]|\\.)*"'),
    (r"\".*?(?<!\\)(\\\\)*?\"", r'"(?:[^"\\\n]|\\.)*"'),
]


@dataclass
class TerminalDFA:
    trans: np.ndarray  # (S, 256) int32, -1 = dead
    accept: np.ndarray  # (S,) bool
    initial: int = 0


# Byte DFAs by terminal regex, shared by the terminals of one grammar with the same pattern and across grammars
# (schema grammars of one family repeat their string, number and key terminals): least recently used first out,
# at most _CACHE_BYTES of transition tables. Each table is read-only, as every user only reads it.
_CACHE_BYTES = 64 << 20
_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()
_cache_size = [0]


def regex_to_byte_dfa(regex: str, name: str) -> TerminalDFA:
    """The byte DFA of terminal ``name``'s ``regex`` (lark's ``to_regexp()`` text): exactly the byte strings
    that are the UTF-8 encodings of the texts ``re.fullmatch(regex, text)`` accepts. Raises GrammarError
    naming the terminal for a pattern that is not regular, CompileBudgetExceeded (stage ``terminal
    automaton``) for one too large to build. Cached by ``regex`` (bounded, above); the result is shared and
    read-only."""
    with _cache_lock:
        hit = _cache.get(regex)
        if hit is not None:
            _cache.move_to_end(regex)
            return hit
    dfa = _regex_to_byte_dfa(regex, name)
    dfa.trans.flags.writeable = False
    dfa.accept.flags.writeable = False
    with _cache_lock:
        if regex not in _cache:
            _cache[regex] = dfa
            _cache_size[0] += dfa.trans.nbytes
            while _cache_size[0] > _CACHE_BYTES and len(_cache) > 1:
                _, old = _cache.popitem(last=False)
                _cache_size[0] -= old.trans.nbytes
    return dfa


def _regex_to_byte_dfa(regex: str, name: str) -> TerminalDFA:
    import interegular
    from interegular.fsm import anything_else

    from steerdiff_plugins.compile_budget import INTEREGULAR_EXPANSION, expansion

    for old, new in _REWRITES:
        regex = regex.replace(old, new)
    if expansion(regex, INTEREGULAR_EXPANSION) > INTEREGULAR_EXPANSION:
        return _counted_terminal(regex, name)  # interegular is quadratic in counted copies
    try:
        fsm = interegular.parse_pattern(regex).to_fsm()
    except Exception as exc:  # interegular cannot express it (lookaround, backreference)
        raise GrammarError(f"terminal {name}: pattern /{regex}/ is not a regular language the engine can compile: {exc}") from None
    alpha = fsm.alphabet
    other = alpha[anything_else]
    explicit = [c for c in alpha._symbol_mapping if isinstance(c, str) and ord(c) >= 128]
    prefixes = set()
    for c in explicit:
        e = c.encode("utf-8")
        for i in range(1, len(e)):
            prefixes.add(e[:i])

    def cls(ch: str) -> int:
        return alpha[ch] if ch in alpha._symbol_mapping else other

    ids: dict = {}
    keys: list = []
    work: deque = deque()

    def node(key):
        if key is None:
            return -1
        if key not in ids:
            ids[key] = len(keys)
            keys.append(key)
            work.append(key)
        return ids[key]

    def target(s, sym):
        nxt = fsm.map.get(s, {}).get(sym)
        return None if nxt is None else ("s", nxt)

    def partial(s, prefix: bytes):
        if prefix in prefixes:
            return ("u", s, prefix)
        t = fsm.map.get(s, {}).get(other)
        return None if t is None else ("k", t, prefix[0], len(prefix))

    def step(key, b: int):
        kind = key[0]
        if kind == "s":
            s = key[1]
            if b < 0x80:
                return target(s, cls(chr(b)))
            if 0xC2 <= b <= 0xF4:
                return partial(s, bytes([b]))
            return None
        if kind == "u":
            _, s, prefix = key
            lo, hi = _utf8_range(prefix[0], len(prefix))
            if not lo <= b <= hi:
                return None
            p = prefix + bytes([b])
            if len(p) == _utf8_need(p[0]):
                return target(s, cls(p.decode("utf-8")))
            return partial(s, p)
        _, t, lead, consumed = key
        lo, hi = _utf8_range(lead, consumed)
        if not lo <= b <= hi:
            return None
        if consumed + 1 == _utf8_need(lead):
            return ("s", t)
        return ("k", t, lead, consumed + 1)

    # Rows in breadth-first order, each row's new states numbered in byte order: bytes that lead to the same
    # key are looked up once (ASCII bytes grouped by interegular class, a continuation range at once).
    ascii_groups: dict = {}
    for b in range(0x80):
        ascii_groups.setdefault(cls(chr(b)), []).append(b)
    groups = [(sym, np.array(bs)) for sym, bs in ascii_groups.items()]  # in order of their first byte
    lead_prefix = {p[0]: p for p in prefixes if len(p) == 1}
    node(("s", fsm.initial))
    rows = []
    while work:
        key = work.popleft()
        row = np.full(256, -1, dtype=np.int32)
        kind = key[0]
        if kind == "s":
            m = fsm.map.get(key[1], {})
            for sym, bs in groups:
                nxt = m.get(sym)
                if nxt is not None:
                    row[bs] = node(("s", nxt))
            t = m.get(other)
            if t is not None or lead_prefix:  # a lead byte: a named character's prefix, else "any other"
                leads = []
                for b in range(0xC2, 0xF5):
                    if b in lead_prefix:
                        k = ("u", key[1], lead_prefix[b])
                    elif t is None:
                        leads.append(-1)
                        continue
                    else:
                        k = ("k", t, b, 1)
                    v = ids.get(k)
                    leads.append(node(k) if v is None else v)
                row[0xC2:0xF5] = leads
        elif kind == "u":
            lo, hi = _utf8_range(key[2][0], len(key[2]))
            for b in range(lo, hi + 1):
                row[b] = node(step(key, b))
        else:
            lo, hi = _utf8_range(key[2], key[3])
            row[lo:hi + 1] = node(step(key, lo))  # every byte of the range leads to the same key
        rows.append(row)
    trans = np.stack(rows) if rows else np.zeros((0, 256), dtype=np.int32)  # (S, 256)
    accept = np.array([k[0] == "s" and k[1] in fsm.finals for k in keys], dtype=bool)
    return TerminalDFA(trans, accept)


def _counted_terminal(regex: str, name: str) -> TerminalDFA:
    """A terminal with large counted repetitions through the regular engine's byte automaton
    (``automata.byte_level.byte_dfa``: outlines_core, the exact ``re.fullmatch`` language lark lexes with),
    under the byte-automaton budget (``compile_budget``)."""
    from steerdiff.errors import ConstraintError
    from steerdiff_plugins.automata.byte_level import byte_dfa
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded, CompileDeadlineExceeded

    try:
        bd = byte_dfa(regex)
    except CompileDeadlineExceeded:
        raise
    except CompileBudgetExceeded as exc:
        raise CompileBudgetExceeded("terminal automaton", f"terminal {name}", exc.what) from None
    except ConstraintError as exc:
        raise GrammarError(f"terminal {name}: pattern /{regex}/ could not be compiled: {exc}") from None
    trans = bd.ctrans[:, bd.bcls].astype(np.int32)  # (S+1, 256), the dead sink last
    trans[trans == bd.dead] = -1
    return TerminalDFA(np.ascontiguousarray(trans[:-1]), bd.accept[:-1].copy(), initial=int(bd.start))

