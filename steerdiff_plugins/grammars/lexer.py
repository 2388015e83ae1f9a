"""Lexer contexts: product DFAs of lark's contextual lexers (one per accept set), over bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from steerdiff.errors import GrammarError
from steerdiff_plugins.grammars.terminals import (
    TerminalDFA,
)


@dataclass
class Context:
    """One lark contextual lexer as a product DFA over bytes.

    ``trans (P, 256)``: next product state, -1 when the byte extends no slot (the lexeme ends before
    it). ``emit[P]``: the terminal name a lexeme ending in P is lexed as, or None when lark would not
    lex it so. ``ignored[P]``: that terminal is %ignore'd.
    """

    names: list[str]
    trans: np.ndarray
    emit: list
    ignored: np.ndarray
    can_emit: np.ndarray  # (P,) bool: emit[P] is not None
    rev: list = field(default_factory=list)  # rev[P] = list of (pred, byte) over writable bytes


def build_context(main: list[str], unless: dict[str, list[str]], dfas: dict[str, TerminalDFA], ignore: frozenset[str],
                  writable: np.ndarray, limit: int = 200_000) -> Context:
    shadows = sorted({s for lst in unless.values() for s in lst} - set(main))
    slots = main + shadows
    slot_of = {n: i for i, n in enumerate(slots)}
    nmain = len(main)
    tables = [dfas[n].trans for n in slots]
    accepts = [dfas[n].accept for n in slots]
    # byte classes: bytes whose column is identical in every slot's DFA
    if slots:
        cols = np.concatenate([t.T for t in tables], axis=1)  # (256, sum S)
        _, first_idx, byte_cls = np.unique(cols, axis=0, return_index=True, return_inverse=True)
        byte_cls = byte_cls.reshape(-1)
        reps = [int(b) for b in first_idx]
    else:  # a parser state that expects no terminal, only the end of the text: no byte starts a lexeme
        byte_cls = np.zeros(256, dtype=np.int64)
        reps = [0]
    unless_slots = {slot_of[r]: [(s, slot_of[s]) for s in lst] for r, lst in unless.items() if r in slot_of}
    BIG = nmain

    def fm_of(states, fm):
        for i in range(min(fm, nmain)):
            if states[i] >= 0 and accepts[i][states[i]]:
                return i
        return fm

    # the start state is a sentinel no transition returns to: q == 0 means "no pending lexeme"
    start = ("start", (tuple(dfas[n].initial for n in slots), BIG))
    ids = {start: 0}
    keys = [start]
    rows = []
    i = 0
    while i < len(keys):
        states, fm = keys[i][1] if i == 0 else keys[i]
        i += 1
        alive = [k for k in range(len(slots)) if states[k] >= 0]
        row_cls = []
        for b in reps:
            nxt = [-1] * len(slots)
            any_main = False
            for k in alive:
                t = int(tables[k][states[k], b])
                nxt[k] = t
                if t >= 0 and k < nmain:
                    any_main = True
            if not any_main:
                row_cls.append(-1)
                continue
            nt = tuple(nxt)
            key = (nt, fm_of(nt, fm))
            if key not in ids:
                if len(keys) >= limit:
                    raise GrammarError(f"lexer context {main[:6]}... has more than {limit} states; the terminals are too complex")
                ids[key] = len(keys)
                keys.append(key)
            row_cls.append(ids[key])
        rows.append(row_cls)
    trans = np.array(rows, dtype=np.int32)[:, byte_cls]  # (P, 256)
    emit = []
    for key in keys:
        states, fm = key[1] if key[0] == "start" else key
        winner = None
        for k in range(nmain):
            if states[k] >= 0 and accepts[k][states[k]]:
                winner = k
                break
        if winner is None or fm < winner:
            emit.append(None)
            continue
        name = slots[winner]
        for sname, sslot in unless_slots.get(winner, []):
            if states[sslot] >= 0 and accepts[sslot][states[sslot]]:
                name = sname
                break
        emit.append(name)
    ignored = np.array([e is not None and e in ignore for e in emit], dtype=bool)
    can_emit = np.array([e is not None for e in emit], dtype=bool)
    rev = [[] for _ in keys]
    src, byt = np.nonzero(trans[:, writable] >= 0)
    wb = np.nonzero(writable)[0]
    for p, bi in zip(src.tolist(), byt.tolist()):
        b = int(wb[bi])
        rev[int(trans[p, b])].append((p, b))
    return Context(slots, trans, emit, ignored, can_emit, rev)

