"""The byte stage's fast regex parser (``engine_regex._fast_parse``) builds the tree Python's own parser builds.

``parse_regex`` feeds the engine-regex rewrite and the compile budget's expansion estimate; both read only
the tree, so an equal tree means an equal engine regex, estimate and automaton. Checked against
``re._parser.parse(pattern, 0)`` (the reference) on the schema compiler's regexes for a sample of the public
JSONSchemaBench set, on every ``pattern`` / ``patternProperties`` regex written in those schemas (user
regexes of every style), and on generated patterns: where the reference raises or warns, the fast parser
must hand over (``_Fallback``), so ``parse_regex`` behaves exactly as the reference does.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerdiff_plugins.automata import engine_regex as er
from steerdiff_plugins.compile_budget import expansion

try:
    from re import _parser as _P
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _P  # type: ignore

pytestmark = pytest.mark.skipif(not er._FAST_PARSE, reason="the fast parser is written against Python 3.11's")

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"
_PUBLIC = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata/jsonschemabench is not beside the repository")


def canon(x):
    """A tree as nested tuples, sequences marked (``SubPattern`` and the fast parser's lists alike)."""
    if isinstance(x, (_P.SubPattern, er._Seq)):
        return ("SEQ",) + tuple(canon(i) for i in getattr(x, "data", x))
    if isinstance(x, list):
        return ("L",) + tuple(canon(i) for i in x)
    if isinstance(x, tuple):
        return tuple(canon(i) for i in x)
    return (type(x).__name__, x)


def check(pattern: str) -> str:
    """Compare the fast parser with the reference on ``pattern``; returns "fast", "fallback" or "error"."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ref = _P.parse(pattern, 0)
        except (re.error, OverflowError, RecursionError):
            ref = None
    try:
        fast = er._fast_parse(pattern)
    except er._Fallback:
        return "fallback" if ref is not None else "error"
    assert ref is not None, f"the reference refuses {pattern!r}, the fast parser does not"
    assert not caught, f"the reference warns on {pattern!r} ({caught[0].message}), the fast parser does not"
    assert canon(fast) == canon(ref), pattern
    assert fast.state.flags == ref.state.flags
    return "fast"


def _schema_patterns(node, out: list) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str):
                out.append(v)
            elif k == "patternProperties" and isinstance(v, dict):
                out.extend(p for p in v if isinstance(p, str))
            _schema_patterns(v, out)
    elif isinstance(node, list):
        for v in node:
            _schema_patterns(v, out)


def _items():
    for f in sorted(DATA.glob("*.json")):
        yield from json.loads(f.read_text())["items"]


@_PUBLIC
def test_schema_compiler_regexes_parse_alike():
    """The schema compiler's regexes for the first 6 schemas of each public file (regexes up to 40k characters): the same tree, and the
    fast path taken for nearly all (it is the dialect the parser is written for)."""
    from steerdiff_plugins.schema.compiled import compile_schema

    seen: dict = {}
    outcomes = []
    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"][:6]:
            try:
                rx = compile_schema(it["schema"]).regex
            except Exception:  # refused by the schema stage: no regex
                continue
            if len(rx) <= 40_000 and rx not in seen:
                seen[rx] = True
                outcomes.append(check(rx))
    assert len(outcomes) >= 40
    assert outcomes.count("fast") >= 0.95 * len(outcomes), outcomes.count("fallback")


@_PUBLIC
def test_user_patterns_of_the_public_set_parse_alike():
    """Every ``pattern`` and ``patternProperties`` key in the public schemas (hand-written regexes: anchors,
    lookarounds, flags, bad escapes ... the fast parser hands those over)."""
    pats: list = []
    for it in _items():
        _schema_patterns(it["schema"], pats)
    pats = list(dict.fromkeys(pats))
    outcomes = [check(p) for p in pats]
    assert len(pats) > 300 and outcomes.count("fast") > 100


@pytest.mark.parametrize("pattern", [
    "", "a", "ab|ac", "a|b|c", "(?:a)b|(?:a)c", "(a)b|(a)c", "[]a]", "[^]a]", "[]-a]", "[a-]", "[\\d-]",
    "x{}", "x{,}", "x{,3}", "x{2}", "x{2,}", "x{2,1}", "x{1,a}", "{", "}", "]", "x{99999999999}", "a**", "*a",
    "(?:ab)*", "(?:ab)+?", "(?:a|b)?", "((a))", "(?:(?:a))", "a||b", "|", "(|a)", "\\b", "\\Ax\\Z", "\\d\\D\\s",
    "[\\w\\S]", "[\\b]", "\\x4", "\\x41", "\\u00e9", "\\u00", "\\", "[a", "[]", "[^]", "a)", "(a", "(?i)a",
    "(?i:a)", "(?P<n>a)", "(?=a)", "a++", "a*+", "a{2}+", "[[a]", "[a--b]", "[a&&b]", "\\1", "\\0", "\\q", "\\é",
    "[\\é]", "[z-a]", "[\\x41-\\x5a]", "[\\u0041-\\u005A_]", "^a$", "a^", "$*", "\\.\\-\\{", ".*", "(?#c)a",
])
def test_hand_picked_patterns(pattern):
    check(pattern)


_PIECES = ["a", "b", "-", "\\d", "\\w", "\\.", "\\-", "\\x41", "\\u00e9", "\\b", "\\n", ".", "^", "$", "(", ")",
           "(?:", "(?i)", "(?=", "|", "*", "+", "?", "*?", "+?", "??", "{2}", "{1,3}", "{,2}", "{2,}", "{}",
           "{", "}", "]", "[a-c]", "[^x]", "[]a]", "[a-]", "[\\d]", "[\\w-]", "[\\b]", "[", "\\", "a+", "é"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=12))
def test_generated_patterns_parse_alike(pieces):
    check("".join(pieces))


def test_parse_regex_hands_over_what_it_does_not_parse():
    """``parse_regex`` raises the reference's errors and returns the reference's tree where the fast parser
    hands over; its estimate and engine regex are the same either way."""
    er.parse_regex.cache_clear()
    with pytest.raises(re.error):
        er.parse_regex("a{2,1}")
    assert isinstance(er.parse_regex("(?=a)a"), _P.SubPattern)
    assert isinstance(er.parse_regex('"(?:[^"\\\\]|\\\\.){0,8}"'), er._FastParse)
    rx = '\\{"a":(?:"[a-z]{0,40}"|[0-9]{1,30})\\}'
    er.parse_regex.cache_clear()
    er.to_engine_regex.cache_clear()
    fast = (er.to_engine_regex(rx), expansion(rx))
    saved, er._FAST_PARSE = er._FAST_PARSE, False
    try:
        er.parse_regex.cache_clear()
        er.to_engine_regex.cache_clear()
        assert (er.to_engine_regex(rx), expansion(rx)) == fast
    finally:
        er._FAST_PARSE = saved
        er.parse_regex.cache_clear()
        er.to_engine_regex.cache_clear()


def test_deep_nesting_goes_to_the_reference():
    deep = "(?:" * 150 + "a" + ")" * 150
    assert check(deep) == "fallback"


@_PUBLIC
def test_byte_automata_are_the_same_with_either_parser(monkeypatch):
    """The byte DFA (arrays and start) of schema regexes, built through the fast parser and through Python's:
    identical (the tree is all the later stages read). The byte stage's numba front end, which reads the text
    itself, is turned off here (``tests/test_regex_nfa.py`` compares it with this path)."""
    monkeypatch.setenv("STEERDIFF_NFA_FRONT", "python")
    from steerdiff_plugins.automata import byte_level
    from steerdiff_plugins.schema.compiled import compile_schema

    schemas = [it["schema"] for f in sorted(DATA.glob("*.json")) for it in json.loads(f.read_text())["items"][:2]]
    built = []
    for schema in schemas:
        try:
            rx = compile_schema(schema).regex
        except Exception:  # refused by the schema stage
            continue
        if len(rx) > 20_000:
            continue
        sides = []
        for fast in (True, False):
            saved, er._FAST_PARSE = er._FAST_PARSE, fast
            try:
                for c in (byte_level.byte_dfa, er.to_engine_regex, er.parse_regex):
                    c.cache_clear()
                try:
                    bd = byte_level.byte_dfa(rx)
                    sides.append((bd.ctrans.tobytes(), bd.ctrans.shape, bd.bcls.tobytes(), bd.accept.tobytes(), bd.start))
                except Exception as e:  # a refusal: the same on both sides
                    sides.append((type(e).__name__, str(e)))
            finally:
                er._FAST_PARSE = saved
        assert sides[0] == sides[1]
        built.append(rx)
    for c in (byte_level.byte_dfa, er.to_engine_regex, er.parse_regex):
        c.cache_clear()
    assert len(built) >= 12
