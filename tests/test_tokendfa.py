"""The token-DFA engine: exact allowed sets over any unmasking order, on all three tokenizer families.

Brute force: for short spans, enumerate every completion over the tokens that can appear in a match
and compare the engine's allowed set at each masked position with the tokens seen in valid ones.
Fuzz (hypothesis): random regexes, canvas lengths, unmasking orders, logits and several commits per
step never reach a dead end, and the final text always ``re.fullmatch``es.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerdiff.testing import brute_force_allowed, span_text, tiny_tokenizer  # noqa: E402

from steerdiff.errors import ConstraintError  # noqa: E402
from steerdiff.vocab import vocab_for  # noqa: E402
from steerdiff_plugins.automata import byte_level as bl  # noqa: E402
from steerdiff_plugins.automata import regular_hooks as rh  # noqa: E402
from steerdiff_plugins.automata import token_dfa as tdfa  # noqa: E402
from steerdiff_plugins.automata import token_walk as td  # noqa: E402
from steerdiff_plugins.automata.engine_regex import to_engine_regex  # noqa: E402
from steerdiff_plugins.automata.token_dfa import FILL, NEVER  # noqa: E402
from steerdiff_plugins.automata.token_walk import compile_token_dfa  # noqa: E402

FAMILIES = ["bytelevel", "sentencepiece", "wordpiece"]


def _valid(vocab, fill_id, pattern, seq) -> bool:
    """Independent check of one full span: padding only as a suffix run, specials never, re.fullmatch."""
    text = span_text(vocab, fill_id, seq)
    if text is None:
        return False
    if vocab.leading_space and text.startswith(" "):
        text = text[1:]
    return re.fullmatch(pattern, text) is not None


def _relevant(vocab, alphabet: bytes) -> list[int]:
    ok = set(alphabet) | ({0x20} if vocab.leading_space else set())
    return [t for t, b in enumerate(vocab.token_bytes) if b and t not in vocab.special and set(b) <= ok]


def _classes(dfa, seq):
    return np.array([dfa.tok2cls[t] if t is not None else NEVER for t in seq]), np.array([t is None for t in seq])


CASES = [
    (r"[ab]{1,3}c?", b"abc"),
    (r"(0|[1-9][0-9]?)", b"0123456789"),
    (r"é|日本|x", "éx日本".encode()),
    (r"a(b|c)*", b"abc"),
    (r"a|ab|abc", b"abc"),  # alternation order must not prune longer matches (leftmost-first DFAs do)
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pattern,alphabet", CASES)
@pytest.mark.parametrize("dense", [True, False], ids=["dense-steps", "edge-list-steps"])
@pytest.mark.parametrize("sparse", [True, False], ids=["entry-sets", "row-sets"])
def test_allowed_sets_match_brute_force(family, pattern, alphabet, dense, sparse, monkeypatch):
    """``dense`` forces masked steps through the dense (N, N) product, or through the edge list (the path
    large or sparse automata take); ``sparse`` picks how allowed sets are gathered (over the table's
    non-DEAD entries, or over the live states' rows)."""

    td.cache_clear()
    if dense:
        monkeypatch.setattr(td, "DENSE_RATIO", 10**9)
    else:
        monkeypatch.setattr(td, "DENSE_STATES", 0)
    monkeypatch.setattr(tdfa, "SPARSE_SETS", sparse)
    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    fill = tok.eos_token_id
    try:
        dfa = compile_token_dfa(pattern, vocab, fill)
    except ConstraintError:
        pytest.fail(f"{pattern!r} should compile for {family}")
    rel = _relevant(vocab, alphabet)
    cands = rel + [fill]
    # allowed sets are computed over the whole vocabulary and compared with completions over `cands`:
    # a token outside the alphabet that the engine allowed would show up as a mismatch
    n = 3
    rng = np.random.default_rng(0)
    valid_full = [seq for seq in itertools.product(cands, repeat=n) if _valid(vocab, fill, pattern, seq)]
    if not valid_full:
        assert dfa.allowed_classes(*_classes(dfa, [None] * n)) is None
        return
    layouts = [[None] * n]
    for _ in range(12):  # fixed tokens taken from valid sequences, and some from invalid ones
        base = valid_full[rng.integers(len(valid_full))] if rng.random() < 0.8 else tuple(rng.choice(cands, n))
        keep = rng.random(n) < 0.4
        layouts.append([int(t) if k else None for t, k in zip(base, keep)])
    span = {}  # the layouts in turn through one span's incremental sweeps: each differs from the last
    for lay in layouts:
        walked = dfa.allowed_classes(*_classes(dfa, lay), span)
        seen = brute_force_allowed(lay, cands, lambda seq: _valid(vocab, fill, pattern, seq))
        masked_pos = list(seen)  # the masked positions, in order
        res = dfa.allowed_classes(*_classes(dfa, lay))
        assert (walked is None) == (res is None)
        if res is not None:
            assert np.array_equal(walked[0], res[0]) and np.array_equal(walked[1], res[1]), lay
        if res is None:
            assert all(not s for s in seen.values()), lay
            if not masked_pos:
                assert not _valid(vocab, fill, pattern, lay), lay
            continue
        if not masked_pos:
            assert _valid(vocab, fill, pattern, lay), lay
        pos, acls = res
        assert list(pos) == masked_pos
        for row, i in enumerate(pos):
            allowed = set(np.flatnonzero(acls[row][dfa.tok2cls]).tolist())
            assert allowed == seen[i], (family, pattern, lay, i, sorted(allowed ^ seen[i])[:10])


def test_partial_utf8_tokens_join_across_positions():
    """A character split over two byte tokens is allowed only as a whole (byte-level BPE has all 256)."""
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    dfa = compile_token_dfa("é", vocab, tok.eos_token_id)
    b3 = vocab.token_bytes.index(b"\xc3")
    ba9 = vocab.token_bytes.index(b"\xa9")
    pos, acls = dfa.allowed_classes(*_classes(dfa, [b3, None, None]))
    allowed1 = set(np.flatnonzero(acls[0][dfa.tok2cls]).tolist())
    assert allowed1 == {ba9}
    allowed2 = set(np.flatnonzero(acls[1][dfa.tok2cls]).tolist())
    assert allowed2 == {tok.eos_token_id}


def test_special_tokens_never_allowed_and_padding_only_as_suffix():
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    fill = tok.eos_token_id
    dfa = compile_token_dfa("[a-z]{0,6}", vocab, fill)
    assert all(dfa.tok2cls[s] == NEVER for s in vocab.special if s != fill)
    assert dfa.tok2cls[fill] == FILL
    a = tok.convert_tokens_to_ids("a")
    # padding in the middle can never be followed by text
    pos, acls = dfa.allowed_classes(*_classes(dfa, [a, fill, None, None]))
    assert set(np.flatnonzero(acls[0][dfa.tok2cls])) == {fill}
    cls, m = _classes(dfa, [a, fill, a])
    assert not dfa.completable(cls, m)


@pytest.mark.parametrize("pattern,n,why", [
    ("x{40}", 4, "shortest"),
    ("a[^\\x00-\\U0010ffff]", 8, "empty"),
    ("(a)\\1", 8, "regular"),
    ("(?=a)a", 8, "regular"),
])
def test_impossible_constraints_are_refused(pattern, n, why):
    """Refused by the regex plugin itself before the first step (``sd.generate`` on an n-position canvas):
    a language whose shortest text needs more tokens than the span has, an empty language, a pattern that is
    not regular. The test raises nothing of its own."""
    import steerdiff as sd
    from steerdiff.testing import tiny_model

    model = tiny_model("masked", "bytelevel")
    with pytest.raises(ConstraintError, match=why):
        sd.generate(model, "x", length=n, steps=1, constraints=[sd.Regex(pattern)])


def test_python_dialect_categories_are_exact():
    # \d and \w follow Python's Unicode definitions, not the engine's
    for pat, yes, no in [(r"\d", "٣", "a"), (r"\w", "é", "-"), (r"(?i)ab", "aB", "ac"), (r".", "x", "\n")]:
        assert "\\d" not in to_engine_regex(pat) and "\\w" not in to_engine_regex(pat)  # expanded to Python's sets
        tok = tiny_tokenizer("bytelevel")
        dfa = compile_token_dfa(pat, vocab_for(tok), tok.eos_token_id)
        enc = tok.encode(yes, add_special_tokens=False)
        cls, m = _classes(dfa, enc)
        assert dfa.completable(cls, m), (pat, yes)
        enc = tok.encode(no, add_special_tokens=False)
        cls, m = _classes(dfa, enc)
        assert not dfa.completable(cls, m), (pat, no)


# ------------------------------------------------------------------------------------------- fuzzing

def _regexes():
    atoms = st.sampled_from(["a", "b", "0", "1", "é", "日", " ", "[ab]", "[0-9]", "\\d", "[^a]", "x"])

    def extend(inner):
        return st.one_of(
            st.tuples(inner, inner).map(lambda t: t[0] + t[1]),
            st.tuples(inner, inner).map(lambda t: f"(?:{t[0]}|{t[1]})"),
            st.tuples(inner, st.integers(0, 2), st.integers(0, 3)).map(lambda t: f"(?:{t[0]}){{{t[1]},{t[1] + t[2]}}}"),
            inner.map(lambda x: f"(?:{x})*"),
            inner.map(lambda x: f"(?:{x})?"),
        )

    return st.recursive(atoms, extend, max_leaves=6)


def _run_canvas(dfa, vocab, fill, n, rng):
    """A diffusion-style run over an n-position span: random logits, random order, several commits."""
    V = dfa.tok2cls.shape[0]
    cls = np.zeros(n, dtype=np.int64)
    toks = np.full(n, -1)
    masked = np.ones(n, dtype=bool)
    span = {}  # incremental sweeps, checked against fresh ones at every step
    remasks = n  # now and then a committed token goes back to a mask (as remasking samplers do)
    while masked.any():
        res = dfa.allowed_classes(cls, masked, span)
        ref = dfa.allowed_classes(cls, masked)
        assert res is not None and ref is not None, "dead end"
        assert np.array_equal(res[0], ref[0]) and np.array_equal(res[1], ref[1]), "incremental sweep differs"
        pos, acls = res
        tok_ok = acls[:, dfa.tok2cls]  # (M, V)
        assert tok_ok.any(axis=1).all(), "a masked position has no allowed token"
        logits = rng.normal(size=(len(pos), V))
        logits[~tok_ok] = -np.inf
        prop = logits.argmax(axis=1)
        k = int(rng.integers(1, len(pos) + 1))
        order = rng.permutation(len(pos))[:k]
        prop_cls = cls.copy()
        prop_cls[pos] = dfa.tok2cls[prop]
        keep = dfa.select_jointly(cls, masked, pos[order], prop_cls, span)
        assert np.array_equal(keep, dfa.select_jointly(cls, masked, pos[order], prop_cls)), "incremental trials differ"
        assert keep[pos[order[0]]], "the first (most confident) proposal was dropped"
        for j, p in enumerate(pos):
            if keep[p]:
                toks[p], cls[p], masked[p] = prop[j], dfa.tok2cls[prop[j]], False
        if remasks and rng.random() < 0.2 and (~masked).any():
            p = rng.choice(np.flatnonzero(~masked))
            toks[p], masked[p], remasks = -1, True, remasks - 1
    return toks


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_regexes(), n=st.integers(1, 10), seed=st.integers(0, 2**31 - 1))
def test_fuzz_never_dead_end_and_always_matches(family, pattern, n, seed):
    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    fill = tok.eos_token_id
    try:
        dfa = compile_token_dfa(pattern, vocab, fill)
    except ConstraintError:
        return  # empty language over this tokenizer: refused up front, which is the contract
    if dfa.min_tokens < 0 or not dfa.completable(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)):
        assert dfa.allowed_classes(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)) is None
        return
    rng = np.random.default_rng(seed)
    toks = _run_canvas(dfa, vocab, fill, n, rng)
    assert _valid(vocab, fill, pattern, [int(t) for t in toks]), (pattern, vocab.decode([t for t in toks if t != fill]))


_LONG_PATTERNS = [r'\{"name":"[a-z ]{1,20}","age":(0|[1-9][0-9]?),"tags":\[("[a-z]{1,6}"(,"[a-z]{1,6}"){0,4})?\]\}',
                  r"(ab|cd)*e?[0-9]{2,8}", r"[a-z]+( [a-z]+)*\."]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.sampled_from(_LONG_PATTERNS), n=st.integers(12, 48), seed=st.integers(0, 2**31 - 1))
def test_fuzz_incremental_sweeps_on_long_spans(pattern, n, seed):
    """Long spans (runs of masks and fixed tokens that the incremental sweep skips over): every step's
    allowed sets and joint selection equal the ones swept from scratch, and the output matches."""
    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    fill = tok.eos_token_id
    dfa = compile_token_dfa(pattern, vocab, fill)
    if not dfa.completable(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)):
        return
    toks = _run_canvas(dfa, vocab, fill, n, np.random.default_rng(seed))
    assert _valid(vocab, fill, pattern, [int(t) for t in toks]), (pattern, vocab.decode([t for t in toks if t != fill]))


# ------------------------------------------------------------------------------- through the loop

def _model(kind="bytelevel"):
    from steerdiff.testing import tiny_model

    return tiny_model("masked", kind)


@pytest.mark.parametrize("family", FAMILIES)
def test_regex_choice_tokens_through_the_loop(family):
    import steerdiff as sd

    m = _model(family)
    tok = m.tokenizer
    cs = [sd.Regex(r"[0-9]{1,3}", span=(0, 4)), sd.Choice(["yes", "no", "maybe"], span=(4, 8)),
          sd.TokenSet(["a", "b"], span=(8, 10))]
    for seed in range(3):
        outs = sd.generate(m, ["x", "y"], length=12, steps=4, constraints=cs, seed=seed, temperature=1.0)
        v = vocab_for(tok)
        for r in outs:
            ids = r.token_ids
            assert re.fullmatch(r"[0-9]{1,3}", v.decode([t for t in ids[0:4] if t != m.fill_id]))
            assert v.decode([t for t in ids[4:8] if t != m.fill_id]) in ("yes", "no", "maybe")
            assert set(ids[8:10]) <= {tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("b")} | set(
                tok.encode("a", add_special_tokens=False) + tok.encode("b", add_special_tokens=False))


def test_token_set_pool_growth_and_reset_keep_outputs_exact(monkeypatch):
    """The expanded token sets live in a per-DFA pool the edits point into; a pool that grows, and one
    started afresh every step, give the same exact outputs; a TokenSet inside a regex span ANDs with it."""
    import steerdiff as sd

    m = _model()
    v = vocab_for(m.tokenizer)
    cs = [sd.Regex(r"[0-9]{2,5}(-[0-9]{2})?", span=(0, 10)), sd.TokenSet(["1", "2"], span=(0, 1))]
    monkeypatch.setattr(rh, "_SET_POOL_START", 2)  # grows from 2 rows
    for rows in (10**6, 0):
        monkeypatch.setattr(rh, "_SET_POOL_ROWS", rows)
        td.cache_clear()
        texts = []
        for seed in range(3):
            for r in sd.generate(m, ["x", "y"], length=12, steps=5, constraints=cs, seed=seed, temperature=1.0):
                text = v.decode([t for t in r.token_ids[0:10] if t != m.fill_id])
                assert re.fullmatch(r"[0-9]{2,5}(-[0-9]{2})?", text), text
                assert text[0] in "12", text
                texts.append(text)
        if rows:
            first = texts
        else:
            assert texts == first


def test_impossible_regex_raises_at_prepare():
    import steerdiff as sd

    m = _model()
    with pytest.raises(ConstraintError, match="shortest matching text takes"):
        sd.generate(m, "x", length=4, constraints=[sd.Regex(r"[a-z]{3}-[a-z]{3}-[a-z]{3}")])
    with pytest.raises(ConstraintError, match="not a regular-language feature"):
        sd.Regex(r"(a)\1")
    with pytest.raises(ConstraintError, match="overlap"):
        sd.generate(m, "x", length=8, constraints=[sd.Regex("a*", span=(0, 5)), sd.Regex("b*", span=(3, 8))])


# ------------------------------------------------------------------------------- the token table itself

_TABLE_CASES = [r'"([^"\\]|\\.){0,12}"', r'\{"a":"[^"]*","bb":(0|-?[1-9][0-9]{0,3})\}', r"[a-z ]{2,40}", r"(ab|cd)*é?"]


def _naive_table_check(pattern, vocab, fill, dfa):
    """Every (byte state, token) pair against a plain byte-by-byte walk of the byte DFA."""
    from steerdiff_plugins.automata.byte_level import byte_dfa

    bd = byte_dfa(pattern)
    S = bd.trans.shape[0] - 1
    for t, b in enumerate(vocab.token_bytes):
        if t in vocab.special or t == fill or not b:
            continue
        for s in range(S):
            e = s
            for x in b:
                e = bd.trans[e, x]
                if e == bd.dead:
                    break
            want = dfa.dead if e == bd.dead else e
            assert dfa.table[s, dfa.tok2cls[t]] == want, (pattern, s, b)


# counted runs (bounded repeats unrolled into chains of states), with escapes, multi-byte characters and
# runs that end in a free-text loop or a literal
_RUN_CASES = [r'"([^"\\]|\\.){0,40}"', r"(é|[a-c]){3,30}x", r'\{"n":"[0-9]{1,20}","s":"[^"]{0,30}"\}',
              r"[0-9]{2,25}(\.[0-9]{1,12})?", r"[a-z]{5,9}[a-z ]*", r"([ab]{2,6}c){1,4}"]


@pytest.mark.parametrize("runs", ["auto", "forced", "trie", "trie+forced", "numba", "numba:short-runs"])
@pytest.mark.parametrize("pattern", _TABLE_CASES + _RUN_CASES)
def test_token_table_matches_a_naive_walk(pattern, runs, monkeypatch):
    """The numpy walk (``STEERDIFF_TOKEN_WALK=numpy``) in four modes: ``forced``: every automaton takes the
    counted-run shortcut (normally only large ones do); ``trie``: every (states x strings) group is walked
    over the strings' prefix tree (normally only groups of more than ``TRIE_PAIRS`` pairs, which tiny
    vocabularies never reach). The compiled walk (``token_trie``, when numba is installed) as it runs, and
    with runs cut to 2 bytes and one state per chunk (``short-runs``: long tokens walked node by node past a
    run's bulk, deadline checks between every state)."""
    from steerdiff_plugins.automata import token_trie

    td.cache_clear()
    if runs.startswith("numba"):
        if not token_trie.available():
            pytest.skip("numba is not installed: the compiled walk does not run")
        if "short-runs" in runs:
            monkeypatch.setattr(token_trie, "MAX_RUN", 2)
            monkeypatch.setattr(token_trie, "CHUNK_NODES", 1)
    else:
        monkeypatch.setenv("STEERDIFF_TOKEN_WALK", "numpy")
    if "forced" in runs:
        monkeypatch.setattr(td, "RUN_STATES", 0)
    if "trie" in runs:
        monkeypatch.setattr(td, "TRIE_PAIRS", 0)
    tok = tiny_tokenizer("bytelevel")  # no leading-space start state: token-DFA states are byte states
    vocab = vocab_for(tok)
    dfa = compile_token_dfa(pattern, vocab, tok.eos_token_id)
    td.cache_clear()
    _naive_table_check(pattern, vocab, tok.eos_token_id, dfa)


def test_counted_runs_are_found():
    """The shortcut the tests above force is really taken: runs down a counted repeat, with bulk reads."""

    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    trans = td.byte_dfa(r'"[a-z ]{0,60}"').trans
    bcls, ctrans = bl._class_transitions(trans)
    _, cs = td._class_strings(vocab, bcls, tok.eos_token_id)
    isloop = np.zeros(ctrans.shape[0], dtype=bool)
    rg, reach, tail_in, P = td._counted_runs(ctrans, ctrans.shape[0] - 1, cs, isloop)
    assert (rg >= 0).sum() >= 50 and reach.max() >= 2
    q = int(np.flatnonzero(reach == reach.max())[0])
    for m in range(1, int(reach[q]) + 1):  # m steps down the run = m letters
        assert P[m, q] == _walk(trans, q, b"a" * m)


def _walk(trans, q, data: bytes) -> int:
    for x in data:
        q = trans[q, x]
    return int(q)


def _assert_same_automaton(family, pattern, monkeypatch, knob, off, on, **fixed):
    """The token automaton of ``pattern`` is the same with ``tokendfa.<knob>`` at ``off`` and at ``on``
    (``fixed``: other module settings held for both compiles)."""

    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    monkeypatch.setenv("STEERDIFF_TOKEN_WALK", "numpy")  # the knobs are the numpy walk's
    for k, v in fixed.items():
        monkeypatch.setattr(td, k, v)
    dfas = []
    for value in (off, on):
        td.cache_clear()
        monkeypatch.setattr(td, knob, value)
        dfas.append(compile_token_dfa(pattern, vocab, tok.eos_token_id))
    td.cache_clear()
    ref, got = dfas
    assert got.n_classes == ref.n_classes
    assert np.array_equal(got.table[:, got.tok2cls], ref.table[:, ref.tok2cls])  # (N, V) next state per token


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pattern", _TABLE_CASES + _RUN_CASES)
@pytest.mark.parametrize("run_states", [10**9, 0])
def test_prefix_tree_walk_changes_nothing(family, pattern, run_states, monkeypatch):
    """Every tokenizer family, with and without counted runs: walking every group over the prefix tree
    gives the same automaton as walking pair by pair."""
    _assert_same_automaton(family, pattern, monkeypatch, "TRIE_PAIRS", 10**12, 0, RUN_STATES=run_states)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pattern", _RUN_CASES)
def test_counted_runs_change_nothing(family, pattern, monkeypatch):
    """Every tokenizer family: the automaton with the counted-run shortcut forced on equals the one without."""
    _assert_same_automaton(family, pattern, monkeypatch, "RUN_STATES", 10**9, 0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pattern=_regexes(), trie=st.booleans())
def test_fuzz_counted_runs_match_a_naive_walk(pattern, trie, monkeypatch):

    tok = tiny_tokenizer("bytelevel")
    vocab = vocab_for(tok)
    td.cache_clear()
    monkeypatch.setenv("STEERDIFF_TOKEN_WALK", "numpy")  # the knobs are the numpy walk's
    monkeypatch.setattr(td, "RUN_STATES", 0)
    monkeypatch.setattr(td, "TRIE_PAIRS", 0 if trie else 10**12)
    try:
        dfa = compile_token_dfa(pattern, vocab, tok.eos_token_id)
    except ConstraintError:
        return
    finally:
        td.cache_clear()
    _naive_table_check(pattern, vocab, tok.eos_token_id, dfa)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pattern", _TABLE_CASES)
def test_hash_collisions_fall_back_to_exact_grouping(family, pattern, monkeypatch):
    """With every hash weight 1 most strings and columns collide; the verified fallbacks must give
    the same automaton as the normal compile (classes may be numbered differently). The compiled walk
    (numba), when installed, sees the collisions too and hands over to the numpy walk."""

    tok = tiny_tokenizer(family)
    vocab = vocab_for(tok)
    ref = compile_token_dfa(pattern, vocab, tok.eos_token_id)
    td.cache_clear()
    monkeypatch.setattr(td, "_hash_weights", lambda n, seed: np.ones(n, dtype=np.int64))
    monkeypatch.setattr(bl, "_hash_weights", lambda n, seed: np.ones(n, dtype=np.int64))
    got = compile_token_dfa(pattern, vocab, tok.eos_token_id)
    td.cache_clear()
    assert got is not ref and got.n_classes == ref.n_classes
    assert np.array_equal(got.table[:, got.tok2cls], ref.table[:, ref.tok2cls])  # (N, V) next state per token
    assert np.array_equal(got.accept, ref.accept) and got.start == ref.start
