"""DFA minimisation (``dfamin``) and the minimal byte automata built on it.

Reference: plain Moore refinement (every state's full row, every round, grouped exactly with
``np.unique`` on rows), which needs no hashing and no dirty-state bookkeeping. Random automata come from
hypothesis; the byte automata of real regexes must be trimmed, minimal, and accept exactly what
``re.fullmatch`` accepts.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff_plugins.automata import dfamin
from steerdiff_plugins.automata import token_walk as td


def moore_reference(trans: np.ndarray, accept: np.ndarray, sink: int) -> np.ndarray:
    """Block ids of the coarsest partition respecting acceptance and successors, the sink alone at first."""
    bid = np.where(accept, 0, 1)
    bid[sink] = 2
    while True:
        rows = np.concatenate([bid[:, None], bid[trans]], axis=1)  # (N, 1+K) own block, successors' blocks
        _, new = np.unique(rows, axis=0, return_inverse=True)
        new = new.reshape(-1)
        if len(np.unique(new)) == len(np.unique(bid)):
            return new
        bid = new


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@st.composite
def random_dfa(draw):
    n = draw(st.integers(2, 40))
    k = draw(st.integers(1, 5))
    sink = n - 1
    # a few "template" rows copied around so that equivalent states are common
    trans = np.array(draw(st.lists(st.lists(st.integers(0, n - 1), min_size=k, max_size=k), min_size=n, max_size=n)))
    trans[sink] = sink
    accept = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    accept[sink] = False
    return trans.astype(np.int32), accept, sink


@settings(max_examples=300, deadline=None)
@given(random_dfa())
def test_minimise_equals_plain_moore(dfa):
    trans, accept, sink = dfa
    got = dfamin.minimise(trans, accept, sink)
    assert got is not None
    assert same_partition(got, moore_reference(trans, accept, sink))


@settings(max_examples=300, deadline=None)
@given(random_dfa(), st.sampled_from([0, 3, 8]))
def test_vectorised_and_plain_python_rounds_agree_with_moore(dfa, small):
    """Rounds over at most ``SMALL_ROUND`` dirty states run in plain Python (``_small_round``), others
    vectorised (``_round``); the random automata above are small enough for the Python rounds alone, so here
    the threshold is lowered: 0 (vectorised only), 3 and 8 (the two mixed, round by round), and the
    all-Python refinement of small automata (``_minimise_py``, which the other tests here reach) is off."""
    trans, accept, sink = dfa
    old = dfamin.SMALL_ROUND, dfamin.PY_STATES
    dfamin.SMALL_ROUND, dfamin.PY_STATES = small, 0  # not the all-Python refinement of small automata
    try:
        got = dfamin.minimise(trans, accept, sink)
    finally:
        dfamin.SMALL_ROUND, dfamin.PY_STATES = old
    assert got is not None
    assert same_partition(got, moore_reference(trans, accept, sink))


def chain_dfa(n: int, k: int = 3):
    """A counted run: state i moves to i+1 on every class, the last accepts; copied twice side by side so
    that every state has a twin (the refinement needs about n rounds to tell the states apart)."""
    N = 2 * n + 1
    sink = N - 1
    trans = np.full((N, k), sink, dtype=np.int32)
    for off in (0, n):
        for i in range(n - 1):
            trans[off + i] = off + i + 1
    accept = np.zeros(N, dtype=bool)
    accept[[n - 1, 2 * n - 1]] = True
    return trans, accept, sink


@pytest.mark.parametrize("n", [100, 500])
def test_long_chains_merge_twins_and_keep_every_distance(n):
    """A counted run: 201 states go to the all-Python refinement (``PY_STATES``), 1001 to the vectorised one."""
    trans, accept, sink = chain_dfa(n)
    got = dfamin.minimise(trans, accept, sink)
    assert same_partition(got, moore_reference(trans, accept, sink))
    assert len(set(got.tolist())) == n + 1  # n distances to acceptance, and the sink
    assert all(got[i] == got[n + i] for i in range(n))


def test_a_hash_collision_is_caught(monkeypatch):
    """With every weight 0 all rows hash alike: the refinement merges too much, and the exactness check
    must refuse the result rather than return a wrong partition. (Only the vectorised rounds hash; the plain
    Python ones, for few dirty states, compare rows exactly, so they are switched off here.)"""
    monkeypatch.setattr(dfamin, "_weights", lambda k: np.zeros(k, dtype=np.int64))
    monkeypatch.setattr(dfamin, "SMALL_ROUND", 0)
    monkeypatch.setattr(dfamin, "PY_STATES", 0)  # nor the all-Python refinement of small automata
    trans, accept, sink = chain_dfa(20)
    assert dfamin.minimise(trans, accept, sink) is None


# ------------------------------------------------------------------ the byte automata built on it

PATTERNS = [r"abc", r"a|ab", r"[a-z]{2,5}", r'"([^"\\]|\\.){0,12}"', r"(?:\u203f)*", r"(?:\U0004FFFF)*x",
            r"(?:\U0010FFFE)*", r".*", r"(ab|cd)*é?", r'\{"a":"[^"]*"(,"b":[0-9]+)?(,"c":(true|false))?\}',
            r"(x|y){0,3}(\.[0-9]{1,4})?", r"[\u0080-\u07ff\U00010000-\U0010fffe]{1,3}"]


def _reachable(t: np.ndarray, start: int) -> np.ndarray:
    seen = np.zeros(len(t), dtype=bool)
    seen[start] = True
    frontier = [start]
    while frontier:
        nxt = np.unique(t[frontier])
        frontier = [int(s) for s in nxt if not seen[s]]
        seen[frontier] = True
    return seen


@pytest.mark.parametrize("pattern", PATTERNS)
def test_byte_dfa_is_trimmed_and_minimal(pattern):
    td.cache_clear()
    bd = td.byte_dfa(pattern)
    t, acc, dead = bd.trans, bd.accept, bd.dead
    assert (t[dead] == dead).all() and not acc[dead]
    assert _reachable(t, bd.start)[:dead].all(), "a state the start cannot reach"
    rev = np.zeros(len(t), dtype=bool)  # states that can reach acceptance
    rev[acc] = True
    for _ in range(len(t)):
        rev |= rev[t].any(axis=1)
    rev[dead] = False
    assert rev[:dead].all(), "a state that cannot reach acceptance"
    ref = moore_reference(t, acc, dead)
    assert len(set(ref.tolist())) == len(t), "two states with the same future"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PATTERNS), st.text(alphabet="abcxy.09é\u203f\"\\{}:,\U0004FFFF\U0010FFFE", max_size=14))
def test_byte_dfa_accepts_what_fullmatch_accepts(pattern, text):
    assert td.byte_dfa(pattern).accepts(text.encode()) == (re.fullmatch(pattern, text) is not None)


@pytest.mark.parametrize("pattern, unit, tail", [(r"(?:\u203f)*", "\u203f", ""), (r"(?:\U0004FFFF)*x", "\U0004FFFF", "x")])
def test_marker_lookalikes_are_kept(pattern, unit, tail):
    """The pattern's own text can lead to the state after part of the internal start marker
    (``E2 80`` then ``BF`` ends U+203F; ``F1`` then ``8F BF BF`` ends U+4FFFF): those states must stay."""
    bd = td.byte_dfa(pattern)
    for n in range(1, 4):
        data = (unit * n + tail).encode()
        assert bd.accepts(data)
        assert not bd.accepts(data[:-1])


@pytest.mark.parametrize("pattern", PATTERNS[:6])
def test_byte_dfa_without_minimising_accepts_the_same(pattern, monkeypatch):
    """When the refinement's check fails, ``byte_dfa`` keeps every state: larger, the same language."""
    td.cache_clear()
    small = td.byte_dfa(pattern)
    td.cache_clear()
    monkeypatch.setattr(dfamin, "_weights", lambda k: np.zeros(k, dtype=np.int64))
    monkeypatch.setattr(dfamin, "PY_STATES", 0)  # the hashed refinement (small automata are refined exactly)
    big = td.byte_dfa(pattern)
    td.cache_clear()
    assert big.dead >= small.dead
    for text in ["", "a", "ab", "abc", "é", '"x"', '"a\\"b"', "\u203f", "xy.5", '{"a":"q","c":true}', "cdé"]:
        assert big.accepts(text.encode()) == small.accepts(text.encode()) == (re.fullmatch(pattern, text) is not None)
