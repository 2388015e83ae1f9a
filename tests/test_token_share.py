"""Shared walks (``token_share_kernels``): the string copies of a JSON automaton are found, their states
correspond byte by byte up to the quote, and the automata built with sharing are the ones built without it
and by the numpy walk (tiny vocabularies of every family, fuzzed JSON-shaped regexes, SmolLM2's 49k tokens)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerdiff.errors import ConstraintError
from steerdiff.testing import tiny_tokenizer
from steerdiff.vocab import vocab_for
from steerdiff_plugins.automata import byte_level as bl
from steerdiff_plugins.automata import token_trie
from steerdiff_plugins.automata import token_walk as td
from tests.test_token_trie import FAMILIES, _assert_same, _compile, _smollm

pytestmark = pytest.mark.skipif(not token_trie.available(), reason="numba is not installed: the compiled walk does not run")

STR = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'  # the schema compiler's JSON string
CASES = [
    r'\{"a":' + STR + r',"bb":' + STR + r',"c":' + STR + r'\}',
    r'\[(?:' + STR + r'(?:,' + STR + r')*)?\]',  # an array of strings: a quote leads back into a copy
    r'\{"k":"[^"]{0,12}","m":"[^"]{0,12}","n":' + STR + r'\}',  # counted runs beside loops
    r'\{"x":"([^\\]|\\.)*","y":"([^\\]|\\.)*"\}',  # loops that take the quote themselves
    r'\{"a":' + STR + r',"o":\{"b":' + STR + r',"c":(?:true|false)\},"d":' + STR + r'\}',
    r'(?:' + STR + r'|[0-9]+)(?: ' + STR + r')*',
]


def _parts(pattern, vocab):
    """What ``walk_records`` hands the sharing kernel for ``pattern``: ``(trans (S+1, 256), dead, groups)``."""
    bd = bl.byte_dfa(pattern)
    bcls, ctrans = bd.bcls, bd.ctrans
    if vocab.leading_space:
        bcls, ctrans, _, _ = td._with_leading_space(bcls, ctrans, bd.accept, bd.start)
    dead = ctrans.shape[0] - 1
    trans = np.ascontiguousarray(ctrans[:, bcls], dtype=np.int32)
    tr = token_trie.trie_for(td._flat_vocab(vocab))
    grp, rgrp, reach, stops, P, sets = token_trie._run("state_groups", np.ascontiguousarray(ctrans, dtype=np.int32),
                                                       np.ascontiguousarray(bcls, dtype=np.int32), dead, token_trie.MAX_RUN)
    M, invq, invu = token_trie._run("utf8_maps", trans, dead, grp, tr.U, tr.u0, tr.U.shape[0] - 1)
    return trans, dead, token_trie._share(trans, dead, grp, rgrp, reach, stops, sets, invq, invu, M, P)


def test_string_copies_are_found_and_correspond_byte_by_byte():
    """Three string fields: one loop leader and two members; every state of the leader's body leads its two
    images; a body state and its image have the same dead bytes, and every byte but the quote leads to
    corresponding states."""
    vocab = vocab_for(tiny_tokenizer("bytelevel"))
    trans, dead, (lead, loc, row, phi, _) = _parts(CASES[0], vocab)
    body = np.flatnonzero(loc >= 0)
    order = body[np.argsort(loc[body])]  # the leader's body by index, the loop state first
    L = int(order[0])
    assert lead[L] == L and (lead[order] == order).all()
    members = [int(q) for q in np.flatnonzero(lead == L) if q != L]
    assert len(members) == 2
    for k in members:
        img = phi[row[k], : len(order)]
        assert img[0] == k
        for i, p in enumerate(order[1:], 1):  # each body state leads its images
            assert lead[img[i]] == p and row[img[i]] == row[k]
        m = dict(zip(order.tolist(), img.tolist()))
        for p, p2 in m.items():
            assert np.array_equal(trans[p] == dead, trans[p2] == dead)
            for x in range(256):
                if x != token_trie.CUT and trans[p, x] != dead:
                    assert m[int(trans[p, x])] == trans[p2, x]


def test_sharing_off_switch(monkeypatch):
    monkeypatch.setenv("STEERDIFF_TOKEN_SHARE", "0")
    vocab = vocab_for(tiny_tokenizer("bytelevel"))
    _, _, (lead, _, _, _, _) = _parts(CASES[0], vocab)
    assert (lead == -1).all()


def _three(pattern, vocab, fill, monkeypatch):
    """The automaton with sharing, checked against sharing off and against the numpy walk."""
    monkeypatch.delenv("STEERDIFF_TOKEN_SHARE", raising=False)
    got = _compile(pattern, vocab, fill, "numba", monkeypatch)
    monkeypatch.setenv("STEERDIFF_TOKEN_SHARE", "0")
    _assert_same(got, _compile(pattern, vocab, fill, "numba", monkeypatch))
    monkeypatch.delenv("STEERDIFF_TOKEN_SHARE")
    _assert_same(got, _compile(pattern, vocab, fill, "numpy", monkeypatch))
    return got


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pattern", CASES)
@pytest.mark.parametrize("short", [False, True])
def test_same_automaton_with_and_without_sharing(family, pattern, short, monkeypatch):
    """``short``: one state per walk call (a leader and its members in different chunks) and runs cut to 2 bytes."""
    if short:
        monkeypatch.setattr(token_trie, "CHUNK_NODES", 1)
        monkeypatch.setattr(token_trie, "MAX_RUN", 2)
    tok = tiny_tokenizer(family)
    _three(pattern, vocab_for(tok), tok.eos_token_id, monkeypatch)


def _json_shaped():
    """Objects of string (plain, counted, patterned), number and nested fields: several string copies each."""
    value = st.sampled_from([STR, STR, r'"[^"]{0,5}"', r'"[a-z]{1,3}"', r"(?:0|-?[1-9][0-9]*)", r'"(?:[^"\\]|\\.)*"'])

    def obj(inner, least=1):
        return st.lists(st.tuples(st.sampled_from(["a", "b", "cd", "e\\\\f"]), inner), min_size=least, max_size=3).map(
            lambda kv: r"\{" + ",".join(f'"{k}":{v}' for k, v in kv) + r"\}")

    inner = st.recursive(value, lambda x: st.one_of(obj(x), x.map(lambda v: rf"\[(?:{v}(?:,{v})*)?\]")), max_leaves=4)
    return obj(inner, least=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pattern=_json_shaped(), family=st.sampled_from(FAMILIES))
def test_fuzz_json_shaped_with_and_without_sharing(pattern, family, monkeypatch):
    tok = tiny_tokenizer(family)
    try:
        bl.byte_dfa(pattern)
    except ConstraintError:
        return
    _three(pattern, vocab_for(tok), tok.eos_token_id, monkeypatch)


def test_real_vocabulary_with_and_without_sharing(monkeypatch):
    """SmolLM2's 49k tokens, many of which carry a quote (``",`` ``":"``): the exits are walked per copy."""
    vocab = vocab_for(_smollm())
    for pattern in CASES:
        _, _, (lead, _, _, _, _) = _parts(pattern, vocab)
        got = _three(pattern, vocab, None, monkeypatch)
        assert got.n_states > 2
    _, _, (lead, loc, _, _, _) = _parts(CASES[0], vocab)
    assert (lead >= 0).sum() == 3 * (loc >= 0).sum()  # three copies of the string machine, all shared


def test_walks_kept_across_compiles_are_taken_and_change_nothing(monkeypatch):
    """A body's walk up to the quote is kept per tokenizer (``token_trie._cached_walks``) and taken by later
    compiles with the same body, also as a group of its own (one string field): those bodies are not walked
    again, and every automaton equals the one built with the cache off."""
    monkeypatch.delenv("STEERDIFF_WALK_CACHE", raising=False)
    for family in FAMILIES:
        tok = tiny_tokenizer(family)
        vocab = vocab_for(tok)
        tr = token_trie.trie_for(td._flat_vocab(vocab))
        tr.walks.clear()
        _compile(r'\{"z":' + STR + r'\}', vocab, tok.eos_token_id, "numba", monkeypatch)  # one string: kept
        assert len(tr.walks) == 1
        plans = []
        real = token_trie._cached_walks
        monkeypatch.setattr(token_trie, "_cached_walks", lambda *a: plans.append(real(*a)) or plans[-1])
        for pattern in CASES:
            got = _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch)
            monkeypatch.setenv("STEERDIFF_WALK_CACHE", "0")
            _assert_same(got, _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch))
            monkeypatch.delenv("STEERDIFF_WALK_CACHE")
        monkeypatch.setattr(token_trie, "_cached_walks", real)
        first = plans[0]  # CASES[0] with the cache on: its string body taken whole, nothing left to walk
        n = len(next(iter(tr.walks.values()))[1]) - 1  # the kept body's size (its records' row pointers)
        assert (first["given"][0][:, 0] >= 0).sum() == n > 1 and first["todo"] == [] and len(first["given"][1]) > 0
