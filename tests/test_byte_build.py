"""Our own regex -> byte DFA builder (``automata.byte_build``: Thompson NFA, subset construction and Valmari's
minimisation in numba) against ``re.fullmatch`` and against the outlines_core path (``byte_level.outlines_dfa``):
both give canonical minimal DFAs, so equal languages must give identical arrays."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerdiff.errors import AutomatonTooLarge, ConstraintError
from steerdiff_plugins import compile_budget
from steerdiff_plugins.automata import byte_build, byte_level, engine_regex
from steerdiff_plugins.compile_budget import CompileDeadlineExceeded, compile_deadline
from test_dfamin import moore_reference, same_partition  # plain Moore refinement: the reference

pytestmark = pytest.mark.skipif(not byte_build.available(), reason="numba not installed: the builder is not used")

_new = byte_level.byte_dfa.__wrapped__  # uncached


def _same(a: byte_level.ByteDFA, b: byte_level.ByteDFA) -> bool:
    return (a.start == b.start and all(np.array_equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype == getattr(b, f).dtype
                                       for f in ("ctrans", "bcls", "accept")))


def _outcome(fn, rx):
    try:
        return fn(rx)
    except ConstraintError as exc:
        return type(exc)


def _check_both(rx: str) -> None:
    a, b = _outcome(byte_level.outlines_dfa, rx), _outcome(_new, rx)
    if isinstance(a, type) or isinstance(b, type):
        assert a == b, (rx, a, b)
    else:
        assert _same(a, b), rx


# --- UTF-8 range split ------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0x10FFFF), st.integers(0, 3000))
def test_utf8_sequences_cover_the_range_exactly(a, width):
    b = min(a + width, 0x10FFFF)
    pieces = [(a, b)]
    if a <= 0xDFFF and b >= 0xD800:  # the callers cut surrogates out first
        pieces = [(x, y) for x, y in ((a, 0xD7FF), (0xE000, b)) if x <= y]
    seqs = [s for x, y in pieces for s in byte_build.utf8_sequences(x, y)]
    covered = sum(int(np.prod([hi - lo + 1 for lo, hi in s])) for s in seqs)
    expect = [cp for x, y in pieces for cp in range(x, y + 1)]
    assert covered == len(expect)  # no encoding twice (and with the check below, no stray one)
    for cp in expect[:: max(1, len(expect) // 300)] + expect[-1:]:
        enc = chr(cp).encode()
        assert sum(len(s) == len(enc) and all(lo <= x <= hi for x, (lo, hi) in zip(enc, s)) for s in seqs) == 1, hex(cp)


# --- random regexes against re.fullmatch and against the outlines_core path ---------------------------------

_ATOMS = ["a", "b", "c", "é", "€", "😀", r"\.", '"', "[a-c]", "[^a]", "[à-ÿ]", "[\u0100-\uffff]", r"\d", r"\s",
          "[^\"\\\\]", ".", "[b-é]", "[\U0001f600-\U0010fffe]", "[^\u00e9]", "(?i:a)", "[0-9a-f]"]
_CHARS = ["a", "b", "c", "A", "é", "É", "€", "😀", ".", '"', "1", "_", " ", "\n", "Ā", "ÿ", "\\", "\U0010fffe", "\U0010ffff"]


def _quant(inner: st.SearchStrategy) -> st.SearchStrategy:
    q = st.sampled_from(["?", "*", "+", "{2}", "{0,3}", "{1,2}", "{2,}", "??", "*?", "+?", "{1,3}?", "{4}", "{0,5}", "{3,6}",
                         "{4,}"])
    return st.builds(lambda x, y: f"(?:{x}){y}", inner, q)


_REGEX = st.recursive(
    st.sampled_from(_ATOMS),
    lambda inner: st.one_of(
        st.builds(lambda xs: "".join(xs), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda xs: "(?:" + "|".join(xs) + ")", st.lists(inner, min_size=2, max_size=3)),
        _quant(inner)),
    max_leaves=8)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_REGEX, st.lists(st.lists(st.sampled_from(_CHARS), max_size=7).map("".join), min_size=20, max_size=20))
def test_random_regexes_match_re_fullmatch(rx, texts):
    try:
        bd = _new(rx)
    except ConstraintError:  # an empty language: nothing may match
        assert not any(re.fullmatch(rx, t) and "\U0010ffff" not in t for t in texts)
        return
    for t in texts:  # U+10FFFF (engine_regex.SENTINEL) is never generated: a documented narrowing
        assert bd.accepts(t.encode()) == (re.fullmatch(rx, t) is not None and "\U0010ffff" not in t), (rx, t)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_REGEX)
def test_random_regexes_same_arrays_as_outlines(rx):
    _check_both(rx)


@pytest.mark.parametrize("rx", [
    r"(?i)straße|ǅ[a-zß]{1,3}", r"\w+", r"\W{2}", r"\D\S", r".*", r"(?s).{0,3}", r"[^\d\s]{2,4}?", r"a|ab|abc",
    r"(?:a|é){13,}", r'"(?:[^"\\]|\\.){0,16}"', r"[\x00-\U0010ffff]*", r"\U0010ffff|b", r"[\U0010fffe-\U0010ffff]",
    r"^ab$", r"(?:)", r"a{0}b", r"(a)(?:b|)c*?", r"[\ud7ff-\ue000]x", r"(?i)[k-m]", r"(?a)\w\d",
    r"(?:a|bc){2,7}", r"[a-z]{5}", r"(?:x[0-9]*){0,6}y", r"(?:é|ab?){4,9}?", r"(?:(?:)|a){5}", r"(?:a{0,3}b){3,5}",
    r"(?:[^\"\\]|\\[\"\\/bfnrt]|\\u[0-9a-fA-F]{4}){0,40}"])
def test_tricky_patterns_same_arrays_as_outlines(rx):
    _check_both(rx)


@pytest.mark.parametrize("rx", ["a\ud800", "[^\ud800]", "(a)\\1", "(?=a)a", r"a\bb", "a{0}\U0010ffff", "\U0010ffff",
                                "(?:ab|ā){14}", "[", "a**"])
def test_refusals_alike(rx):
    with pytest.raises(ConstraintError) as new:
        _new(rx)
    with pytest.raises(ConstraintError) as old:
        byte_level.outlines_dfa(rx)
    assert type(new.value) is type(old.value)
    assert str(new.value).split(":")[0] == str(old.value).split(":")[0]  # the same pattern named first


@pytest.mark.parametrize("rx", ["a\ud800", "[^\ud800]", "(a)\\1", "(?=a)a", r"a\bb", "a{0}\U0010ffff", "\U0010ffff",
                                "(?:ab|ā){14}", "[", "a**", "a{70000}", "(?:ab){70000,}", "(?:x|y){20000}(?=a)"])
def test_check_regex_refuses_as_the_engine_regex(rx):
    """The constraints' syntax check (``check_regex``: the parse and the NFA, kept for the byte stage) raises
    what ``to_engine_regex`` (the check it replaced) raises, with the same message; a count the NFA is too
    large to build now (past the expansion budget) is checked from the parse alone. Where ``to_engine_regex``
    passes, it passes or raises what ``byte_dfa`` raises for the pattern anyway (a class bounded by a
    surrogate: refused by the NFA, earlier)."""
    engine_regex.to_engine_regex.cache_clear()
    byte_level.check_regex.cache_clear()
    byte_build._kept.clear()
    old = new = None
    try:
        engine_regex.to_engine_regex(rx)
    except ConstraintError as exc:
        old = exc
    try:
        byte_level.check_regex(rx)
    except ConstraintError as exc:
        new = exc
    if old is not None:
        assert new is not None and type(new) is type(old) and str(new) == str(old)
    elif new is not None:
        byte_level.byte_dfa.cache_clear()
        with pytest.raises(ConstraintError) as later:
            byte_level.byte_dfa(rx)
        assert type(later.value) is type(new) and str(later.value) == str(new)
    byte_build._kept.clear()


@pytest.mark.parametrize("rx, builder", [
    (r'\{"a":"(?:[^"\\]|\\.){0,12}","b":[0-9]{1,4}\}', "_build_nfa"),  # "." : Python's parse and _Nfa
    (r'\{"a":"(?:[^"\\]|\\["\\n]){0,12}","b":[0-9]{1,4}\}', "_fast_nfa")])  # the numba front end
def test_check_regex_keeps_its_nfa_for_byte_dfa(rx, builder, monkeypatch):
    """What the syntax check builds is not built again: ``byte_dfa`` takes the NFA ``check_regex`` kept (and
    drops it), and gives the same automaton as without the check; a pattern checked before is not checked
    (nor its NFA built) again. Either front end (``builder``) builds it once."""
    built = []
    real = getattr(byte_build, builder)
    monkeypatch.setattr(byte_build, builder, lambda p: (built.append(p), real(p))[1])
    byte_level.byte_dfa.cache_clear()
    byte_level.check_regex.cache_clear()
    byte_build._kept.clear()
    byte_level.check_regex(rx)
    got = byte_level.byte_dfa(rx)
    assert built == [rx] and not byte_build._kept
    byte_level.check_regex(rx)  # checked before: no NFA built and left for nothing
    assert built == [rx] and not byte_build._kept
    byte_level.byte_dfa.cache_clear()
    again = byte_level.byte_dfa(rx)
    assert built == [rx, rx] and (got.trans == again.trans).all() and (got.accept == again.accept).all()
    byte_level.byte_dfa.cache_clear()


def test_public_schema_regexes_same_arrays():
    """A sample of the public JSONSchemaBench set (every 25th schema the compiler takes); the whole set is
    compared by ``python -m benchmarks.byte_build``."""
    from steerdiff_plugins.schema.compiled import compile_schema

    data = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"
    files = sorted(data.glob("*.json"))
    if not files:
        pytest.skip("no public schema set here")
    items = [it for f in files for it in json.loads(f.read_text())["items"]][::25]
    n = 0
    for it in items:
        try:
            rx = compile_schema(it["schema"]).regex
        except Exception:
            continue
        if len(rx) > 20_000:
            continue
        _check_both(rx)
        n += 1
    assert n >= 20


# --- minimisation, canonical form -----------------------------------------------------------------------------

@st.composite
def _trim_dfa(draw):
    """A DFA whose states are all reachable and co-reachable, the sink last."""
    n = draw(st.integers(1, 25))
    k = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(st.integers(0, n), min_size=k, max_size=k), min_size=n, max_size=n))
    t = np.array(rows + [[n] * k], dtype=np.int32)  # (n+1, k), state n the sink
    for s in range(1, n):  # a spanning chain keeps every state reachable
        t[s - 1, draw(st.integers(0, k - 1))] = s
    acc = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)) + [False])
    acc[n - 1] = True  # the chain's end accepts: every state reaches it
    return t, acc


@settings(max_examples=300, deadline=None)
@given(_trim_dfa())
def test_valmari_equals_plain_moore(dfa):
    t, acc = dfa
    got = byte_build.run("minimise", t, acc)
    assert same_partition(got, moore_reference(t, acc, len(t) - 1))
    assert (got == got[-1]).sum() == 1  # the sink alone


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([r"[a-c]{1,4}x|é+", r'"(?:[^"\\]|\\.)*"', r"(?:ab|cd)*e?", r"\d{2,3}(?:\.\d+)?"]), st.randoms())
def test_canonical_form_ignores_numbering(rx, rnd):
    """Renumbering states and shuffling which bytes share a class id gives the same canonical arrays."""
    bd = _new(rx)
    S = bd.dead
    perm = list(range(S))
    rnd.shuffle(perm)
    p = np.array(perm + [S])  # old state -> new state, the sink stays last
    q = np.empty_like(bd.ctrans)
    q[p] = p[bd.ctrans]
    cperm = list(range(bd.ctrans.shape[1]))
    rnd.shuffle(cperm)
    cp = np.array(cperm)
    q2 = np.empty_like(q)
    q2[:, cp] = q
    acc = np.empty_like(bd.accept)
    acc[p] = bd.accept
    again = byte_level.canonical(q2, acc, int(p[bd.start]), S, cp[bd.bcls])
    assert _same(again, bd)


# --- guards ---------------------------------------------------------------------------------------------------

def test_state_cap_refuses_early(monkeypatch):
    monkeypatch.setattr(byte_level, "MAX_STATES", 50)
    with pytest.raises(AutomatonTooLarge, match="above the limit of 50"):
        _new("[a-z]{0,40}x[0-9]{0,40}")


def test_transition_cap_refuses_before_minimising(monkeypatch):
    monkeypatch.setattr(byte_level, "TRANSITIONS_PER_STATE", 0.01)  # 600 transitions at MAX_STATES 60,000
    with pytest.raises(AutomatonTooLarge, match="transitions before minimising, above the limit of 600"):
        _new("[a-z0-9]{0,400}")
    monkeypatch.setattr(byte_level, "TRANSITIONS_PER_STATE", 64)
    assert _new("[a-z0-9]{0,400}").dead == 401


def test_deadline_checked_between_chunks(clock, monkeypatch):
    """The subset construction gives control back every WORK states; past the deadline the next check fires."""
    monkeypatch.setattr(byte_build, "WORK", 1)
    calls = []
    real = byte_build.run

    def run(name, *args):
        out = real(name, *args)
        if name == "subset":
            calls.append(1)
            clock.now += 3  # each chunk "takes" 3 s
        return out

    monkeypatch.setattr(byte_build, "run", run)
    with compile_deadline(10.0):
        with pytest.raises(CompileDeadlineExceeded) as exc:
            byte_build.subset_dfa("[a-z]{0,30}", 10_000)
    assert exc.value.stage == "byte automaton" and 3 <= len(calls) <= 5


def test_kernel_compile_is_outside_the_budget(clock, monkeypatch):
    """A kernel call that adds a specialisation (a fresh install's JIT) is taken off the compile budget."""
    class Fn:
        overloads: dict = {}  # numba's dispatcher: signature -> compiled code

        def __call__(self, x):
            self.overloads[x] = object()  # "compiles"
            clock.now += 7
            return x

    monkeypatch.setattr(byte_build, "_nb", type("K", (), {"fake": Fn()})())
    with compile_deadline(1.0):
        byte_build.run("fake", 1)  # 7 s of "JIT": not charged
        compile_budget.check_deadline("byte automaton", "regex")


def test_outlines_switch(monkeypatch):
    monkeypatch.setenv("STEERDIFF_BYTE_BUILD", "outlines")
    assert not byte_build.available()
    byte_level.byte_dfa.cache_clear()
    try:
        assert _same(byte_level.byte_dfa("[a-z]{2}é?"), byte_level.outlines_dfa("[a-z]{2}é?"))
    finally:
        byte_level.byte_dfa.cache_clear()
    monkeypatch.delenv("STEERDIFF_BYTE_BUILD")
    assert byte_build.available()


def test_engine_regex_untouched_by_new_path():
    """The builder reads the parse directly: the engine regex text is not needed for a byte automaton."""
    engine_regex.to_engine_regex.cache_clear()
    _new("[a-z]{2,5}")
    assert engine_regex.to_engine_regex.cache_info().currsize == 0
