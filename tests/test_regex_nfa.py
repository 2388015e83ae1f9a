"""The byte stage's numba front end (``regex_nfa_kernels.build``: regex text -> byte NFA in one pass) against
the Python front end it stands in for (Python's parse, then ``byte_build._Nfa``).

Both feed the same subset construction and minimisation, whose output is canonical: equal languages give
identical arrays. So the checks are: where the numba front end builds, the automaton is array for array the
one the Python front end builds (and ``re.fullmatch`` agrees on sample texts); where the Python front end
refuses a pattern (syntax, non-regular features, the compile budget), the numba one leaves it to Python
(returns None) rather than accepting it. On the schema compiler's own regexes it must build nearly always.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerdiff.errors import ConstraintError
from steerdiff_plugins import compile_budget
from steerdiff_plugins.automata import byte_build, byte_level

pytestmark = pytest.mark.skipif(not byte_build.available(), reason="numba not installed: the builder is not used")

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"
_raw = byte_level.byte_dfa.__wrapped__  # uncached


def _outcome(rx: str, front: str, monkeypatch):
    monkeypatch.setenv("STEERDIFF_NFA_FRONT", front)
    byte_build._kept.clear()
    try:
        bd = _raw(rx)
        return bd.ctrans.tobytes(), bd.ctrans.shape, bd.bcls.tobytes(), bd.accept.tobytes(), bd.start
    except ConstraintError as exc:
        return type(exc).__name__, str(exc)
    finally:
        monkeypatch.delenv("STEERDIFF_NFA_FRONT")
        byte_build._kept.clear()


def check(rx: str, monkeypatch) -> str:
    """"numba" where the numba front end built ``rx`` (the automaton then the Python front end's), "python"
    where it left it to Python."""
    built = byte_build._fast_nfa(rx) is not None
    ref = _outcome(rx, "python", monkeypatch)
    if not built:
        return "python"
    assert not isinstance(ref[0], str), f"the Python front end refuses {rx!r} ({ref[1]}), the numba one builds it"
    assert _outcome(rx, "", monkeypatch) == ref, rx
    return "numba"


_BUILT = [
    "", "a", "ab|ac", "a|b|c", "(a)b|(a)c", "[]a]", "[^]a]", "[]-a]", "[a-]", "[-a]", "[a-b-c]", "[\\]]", "[\\-]",
    "x{}", "x{,}", "x{,3}", "x{2}", "x{2,}", "x{1,a}", "{", "}", "]", "a{", "a{1", "a{1,", "{}*", "x{0,1}", "x{1,1}",
    "(?:ab)*", "(?:ab)+?", "(?:a|b)?", "((a))", "(?:(?:a))", "a||b", "|", "(|a)", "(a|)", "(?:|)b", "[\\b]",
    "\\x41", "\\u00e9", "\\é", "[\\é]", "[\\x41-\\x5a]", "[\\u0041-\\u005A_]", "\\.\\-\\{", "\\n\\t\\r\\f\\v\\a",
    "é+€?😀{2}", "[à-ÿ]{1,3}", "[^a]", "[^\\x00-\\x7f]", "[^\"\\\\\\x00-\\x1f]*", "[\\ud7ff-\\ue000]x", "\U0010fffe",
    "(?:a*)*", "(?:a?){3,5}", "(?:(?:ab){2,3}c){0,2}", "(?:x[0-9]*){0,6}y", "a*?b+?c??d{2}?e{1,3}?", "[a-c]{0,40}",
]
_LEFT = [  # refused by Python's path, or outside the dialect
    "[\\x00-\\U0010ffff]", "(?:a|é){13,}", "(?:ab|c){13}", "x{2,1}", "x{99999999999}", "a**", "*a", "a{2}{3}",
    "(?:)*", "()+", "\\b", "\\Ax\\Z", "\\d\\D\\s", "[\\w\\S]", "\\x4", "\\u00", "\\", "[a", "[]", "[^]", "a)", "(a",
    "(?i)a", "(?i:a)", "(?P<n>a)", "(?=a)", "a++", "a*+", "a{2}+", "[[a]", "[a--b]", "[a&&b]", "\\1", "\\0", "\\q",
    "[z-a]", "^a$", "a^", "$*", ".*", "(?#c)a", "a\ud800", "[^\ud800]", "[\ud800-\udfff]", "\U0010ffff", "a{0}",
    "(?:ab|ā){14}", "a{70000}", "(?:ab){70000,}",
]


@pytest.mark.parametrize("rx", _BUILT)
def test_dialect_patterns_built_alike(rx, monkeypatch):
    assert check(rx, monkeypatch) == "numba"


@pytest.mark.filterwarnings("ignore::FutureWarning")  # Python's parser warns of set operations ("[a--b]")
@pytest.mark.parametrize("rx", _LEFT)
def test_other_patterns_left_to_python(rx, monkeypatch):
    assert check(rx, monkeypatch) == "python"


_PIECES = ["a", "b", "-", "é", "😀", "\\.", "\\-", "\\x41", "\\u00e9", "\\n", "\\d", ".", "^", "(", ")", "(?:", "(?i)",
           "|", "*", "+", "?", "*?", "+?", "{2}", "{1,3}", "{,2}", "{2,}", "{}", "{", "}", "]", "[a-c]", "[^x]",
           "[]a]", "[a-]", "[\\x00-\\x1f]", "[^\"\\\\]", "[é-ÿ]", "[\\b]", "[", "\\", "a+", "{0}", "{14}"]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=12))
def test_generated_patterns(pieces, monkeypatch):
    check("".join(pieces), monkeypatch)


_TEXT = ["a", "b", "c", "-", "é", "ÿ", "😀", "A", ".", '"', "\\", "\n", "\x01", "]", "{", "}", "2"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=10),
       st.lists(st.lists(st.sampled_from(_TEXT), max_size=6).map("".join), min_size=25, max_size=25))
def test_numba_built_automata_match_re_fullmatch(pieces, texts):
    """Independent of the Python front end: what the numba front end builds accepts exactly ``re.fullmatch``'s
    texts (sample texts over the patterns' characters)."""
    rx = "".join(pieces)
    byte_build._kept.clear()
    if byte_build._fast_nfa(rx) is None:
        return
    try:
        bd = _raw(rx)
    except ConstraintError:  # an empty language
        assert not any(re.fullmatch(rx, t) for t in texts)
        return
    for t in texts:
        assert bd.accepts(t.encode()) == (re.fullmatch(rx, t) is not None), (rx, t)


_DIALECT_ATOMS = ["a", "b", "é", "😀", "\\.", '"', "\\x41", "\\u00e9", "[a-c]", "[^a]", "[à-ÿ]", "[\u0100-\uffff]",
                  "[^\"\\\\\\x00-\\x1f]", "[b-é]", "[\U0001f600-\U0010fffe]", "[^\u00e9]", "[0-9a-f]", "\\\\"]
_DIALECT = st.recursive(
    st.sampled_from(_DIALECT_ATOMS),
    lambda inner: st.one_of(
        st.builds("".join, st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda xs: "(?:" + "|".join(xs) + ")", st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda x, q: f"(?:{x}){q}", inner, st.sampled_from(
            ["?", "*", "+", "{2}", "{0,3}", "{1,2}", "{2,}", "*?", "{1,3}?", "{4}", "{0,5}", "{3,6}", "{,2}"]))),
    max_leaves=8)
_DIALECT_TEXT = ["a", "b", "c", "A", "é", "ÿ", "Ā", "😀", ".", '"', "\\", "1", "f", "\n", "\U0010fffe"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
@given(rx=_DIALECT, texts=st.lists(st.lists(st.sampled_from(_DIALECT_TEXT), max_size=7).map("".join), min_size=20,
                                   max_size=20))
def test_nested_dialect_patterns(rx, texts, monkeypatch):
    """Nested groups, alternations and repeats of the schema compiler's dialect: always built by the numba front
    end, the Python front end's automaton, and ``re.fullmatch``'s language on sample texts."""
    assert check(rx, monkeypatch) == "numba", rx
    bd = _raw(rx)
    for t in texts:
        assert bd.accepts(t.encode()) == (re.fullmatch(rx, t) is not None), (rx, t)


def test_budget_is_left_to_the_python_count(monkeypatch):
    """Past the expansion budget (its count is at least ``compile_budget.expansion``'s) the numba front end
    builds nothing: the byte stage refuses with the Python count's message, as before."""
    rx = "(?:[a-z]{100}){400}"
    assert compile_budget.expansion(rx) > compile_budget.MAX_EXPANSION
    assert byte_build._fast_nfa(rx) is None
    byte_build._kept.clear()
    with pytest.raises(compile_budget.CompileBudgetExceeded, match="counted repetitions"):
        _raw(rx)
    monkeypatch.setattr(compile_budget, "MAX_EXPANSION", 50)
    assert byte_build._fast_nfa("[a-z]{40}") is not None and byte_build._fast_nfa("[a-z]{60}") is None


def test_check_and_byte_stage_skip_pythons_parse(monkeypatch):
    """A pattern of the dialect is read once, by the numba front end: neither the syntax check, the budget's
    count nor the byte stage parses it in Python."""
    from steerdiff_plugins.automata import engine_regex

    rx = r'\{"a":"(?:[^"\\]|\\["\\/bfnrt]){0,12}","b":[0-9]{1,4}\}'
    parsed = []
    real = engine_regex.parse_regex
    monkeypatch.setattr(engine_regex, "parse_regex", lambda p: (parsed.append(p), real(p))[1])
    byte_level.check_regex.cache_clear()
    byte_level.byte_dfa.cache_clear()
    byte_build._kept.clear()
    byte_level.check_regex(rx)
    bd = byte_level.byte_dfa(rx)
    assert parsed == [] and not byte_build._kept
    assert bd.accepts(b'{"a":"x\\n","b":12}') and not bd.accepts(b'{"a":"x","b":12345}')
    byte_level.check_regex.cache_clear()
    byte_level.byte_dfa.cache_clear()


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata/jsonschemabench is not beside the repository")
def test_public_schema_regexes(monkeypatch):
    """The schema compiler's regexes for every 6th public schema (up to 30k characters): the numba front end
    builds at least 90% of them, each the Python front end's automaton."""
    from steerdiff_plugins.schema.compiled import compile_schema

    items = [it for f in sorted(DATA.glob("*.json")) for it in json.loads(f.read_text())["items"]][::6]
    seen, outcomes = set(), []
    for it in items:
        try:
            rx = compile_schema(it["schema"]).regex
        except Exception:  # refused by the schema stage: no regex
            continue
        if len(rx) <= 30_000 and rx not in seen:
            seen.add(rx)
            outcomes.append(check(rx, monkeypatch))
    assert len(outcomes) >= 100
    assert outcomes.count("numba") >= 0.9 * len(outcomes), outcomes.count("python")


@pytest.mark.parametrize("rx", ["x{99999999999}", "(?:" * 2000 + "a" + ")" * 2000])
def test_counts_and_nesting_past_pythons_limits_are_named(rx):
    """A count past ``re``'s MAXREPEAT (Python's parser raises OverflowError) and nesting past the interpreter's
    recursion limit (RecursionError) are ``ConstraintError``s naming the regex, from the check and the byte stage."""
    for fn in (byte_level.check_regex.__wrapped__, _raw):
        byte_build._kept.clear()
        with pytest.raises(ConstraintError, match="does not compile"):
            fn(rx)
