"""Terminal regex -> byte DFA for the grammar engine: interegular's character FSM expanded to bytes (UTF-8
aware: multi-byte characters the regex does not name are one "any other character" class)."""

from __future__ import annotations

from collections import deque
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


def regex_to_byte_dfa(regex: str, name: str) -> TerminalDFA:

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

    node(("s", fsm.initial))
    rows = {}
    while work:
        key = work.popleft()
        rows[key] = [node(step(key, b)) for b in range(256)]
    trans = np.array([rows[k] for k in keys], dtype=np.int32).reshape(len(keys), 256)
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

