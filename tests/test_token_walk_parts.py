"""The per-vocabulary and per-process pieces the token walk keeps between compiles, checked against what
they replace: cached hash weights against fresh draws, ``_present`` against ``np.unique``, the int16 class
strings (with their end-slot sentinel) against the token bytes, ``_second_byte_pairs`` against a pair-by-pair
walk, and the shared regex parse against a fresh one. (The automata themselves are checked by brute force
in test_tokendfa.py.)"""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.testing import tiny_tokenizer
from steerdiff.vocab import vocab_for
from steerdiff_plugins import compile_budget
from steerdiff_plugins.automata import byte_level as bl
from steerdiff_plugins.automata import engine_regex as er
from steerdiff_plugins.automata import token_walk as td


def test_hash_weights_are_the_generators_first_draws():
    """Cached weights are a prefix of one generator's draws: the same values as a fresh draw of that size,
    before and after the cache grows, and nobody can write into them."""
    seed = 0x7E57
    bl._WEIGHTS.pop(seed, None)
    for n in (5, 3, 5000, 70_000, 10, 0):
        got = bl._hash_weights(n, seed)
        assert np.array_equal(got, np.random.default_rng(seed).integers(1, 2**62, size=n, dtype=np.int64))
        assert not got.flags.writeable
    assert len(bl._WEIGHTS[seed]) >= 70_000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 63), max_size=300))
def test_present_is_unique(xs):
    x = np.array(xs, dtype=np.int64)
    assert np.array_equal(td._present(x, 64), np.unique(x))


def _class_strings_for(pattern, family="bytelevel", fill=True):
    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    bd = bl.byte_dfa(pattern)
    fill_id = tok.eos_token_id if fill else None
    tids, cs = td._class_strings(vocab, bd.bcls, fill_id, bd.ctrans.shape[1])
    return vocab, bd, fill_id, tids, cs


def test_class_strings_spell_the_tokens():
    """Every string is its token's bytes mapped to classes; the slot after it holds the sentinel K (so a
    second-byte lookup on a one-byte string reads "none"); fill_id is left out, and only it."""
    for fill in (True, False):
        vocab, bd, fill_id, tids, cs = _class_strings_for(r'\{"a":"[a-z]{0,9}","n":-?[0-9]+\}', fill=fill)
        K = bd.ctrans.shape[1]
        assert cs.fc.dtype == np.int16
        writes = {t for t, b in enumerate(vocab.token_bytes) if b and t not in vocab.special and t != fill_id}
        assert set(tids.tolist()) == writes and len(tids) == len(writes)
        for u, t in enumerate(tids.tolist()):
            b = vocab.token_bytes[t]
            assert cs.lens[u] == len(b)
            assert cs.fc[cs.start[u]: cs.start[u] + len(b)].tolist() == [int(bd.bcls[x]) for x in b]
            assert cs.fc[cs.start[u] + len(b)] == K


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_second_byte_pairs_match_a_pair_by_pair_walk(data):
    """``_second_byte_pairs(src, mid, us)`` = the pairs (s, u) of src x us whose string is one byte long or
    whose second byte does not kill the state ``mid`` reached on the first (the strings share their first
    class)."""
    pattern = data.draw(st.sampled_from([r'"[a-z ]{0,12}"', r'\{"k":(true|false|null|[0-9]{1,4})\}',
                                         r'[0-9]+(\.[0-9]+)?', r'(ab|a c|"x")*']))
    vocab, bd, fill_id, tids, cs = _class_strings_for(pattern, data.draw(st.sampled_from(["bytelevel", "wordpiece"])))
    ctrans, dead = bd.ctrans, bd.ctrans.shape[0] - 1
    first = cs.fc[cs.start]
    b = data.draw(st.sampled_from(sorted(set(first.tolist()))))
    us = np.flatnonzero(first == b)
    us = us[data.draw(st.lists(st.booleans(), min_size=len(us), max_size=len(us)))] if len(us) else us
    src = np.flatnonzero(ctrans[:dead, b] != dead)
    if not len(src) or not len(us):
        return
    mid = ctrans[src, b]
    s2, u2 = td._second_byte_pairs(src, mid, us, cs, ctrans, dead)
    want = {(int(s), int(u)) for s, m in zip(src, mid) for u in us
            if cs.lens[u] == 1 or ctrans[m, cs.fc[cs.start[u] + 1]] != dead}
    got = list(zip(s2.tolist(), u2.tolist()))
    assert len(got) == len(set(got)) and set(got) == want


def test_shared_parse_gives_the_same_results():
    """The byte stage's one cached parse serves the expansion estimate and the engine regex: both equal
    what a fresh parse gives."""
    pattern = r'\{"a":"(?:[^"\\]|\\.){0,40}","b":\[(?:[0-9]{1,3}(?:,[0-9]{1,3}){0,7})?\]\}'
    er.parse_regex.cache_clear()
    er.to_engine_regex.cache_clear()
    fresh_engine = er.to_engine_regex(pattern)
    fresh_expansion = compile_budget._positions(list(re._parser.parse(pattern, 0)), compile_budget.MAX_EXPANSION)[1]
    assert er.parse_regex.cache_info().currsize == 1
    assert compile_budget.expansion(pattern) == fresh_expansion > 0
    assert er.parse_regex.cache_info().hits >= 1
    er.to_engine_regex.cache_clear()
    assert er.to_engine_regex(pattern) == fresh_engine
    td.cache_clear()
    assert er.parse_regex.cache_info().currsize == 0
