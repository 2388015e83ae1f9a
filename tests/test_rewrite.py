"""Template-guided rewriting: fixed text byte-identical, holes grow/shrink, refinement rounds, CLI helper, errors."""

import re

import pytest
import torch

import steerdiff as sd
from steerdiff.errors import ConfigError, ConstraintError
from steerdiff.rewrite import parse_template, plan_template, rewrite, rewrite_cli
from tiny import tiny_model

TEMPLATES = [
    "The food was [[cold and bland]] and the staff [[ignored us]].",
    "[[Sadly]], the room smelled of smoke. [[We will not return!]]",
    "Price: [[too high]] (really) — 5€ for [[one tiny coffee]]\nNever again.",
    "a[[b]]c [[]] {\"x\": 1} ",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two cores are shared with a training job: one intra-op thread is ~10x faster than two contending."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def models():
    return {k: tiny_model("masked", k) for k in ("bytelevel", "wordpiece", "sentencepiece")}


def assert_faithful(template: str, out) -> None:
    """The output is the template with each [[span]] replaced by its field: fixed text byte-identical."""
    tpl = parse_template(template)
    expected = "".join(p if isinstance(p, str) else out.fields[tpl.names[p]] for p in tpl.parts)
    assert out.text == expected, (template, out.text, out.fields)
    assert tpl.pattern().fullmatch(out.text), (template, out.text)  # fixed parts in order, verbatim


@pytest.mark.parametrize("kind", ["bytelevel", "wordpiece", "sentencepiece"])
def test_fixed_text_is_byte_identical_over_seeds(models, kind):
    model = models[kind]
    lex = sd.LexiconGuidance({"great": 3.0, "kind": 2.0}, scale=5.0)
    n = 0
    for i, template in enumerate(TEMPLATES):
        for seed in range(4):
            kw = dict(temperature=1.0, seed=seed, steps=4)
            if seed == 1:
                kw["guidance"] = [lex]
            if seed == 2:
                kw.update(refine_rounds=1, prompt="Make it positive.")
            out = rewrite(model, template, **kw)
            assert_faithful(template, out)
            n += 1
    assert n == 16


def test_batch_of_templates_and_holes_that_shrink(models):
    model = models["bytelevel"]
    outs = sd.rewrite(model, TEMPLATES, temperature=1.0, seed=5, grow=4)
    assert isinstance(outs, list) and len(outs) == len(TEMPLATES)
    for t, o in zip(TEMPLATES, outs):
        assert_faithful(t, o)
    plans = [plan_template(model, t, grow=4) for t in TEMPLATES]
    for o, p in zip(outs, plans):
        for s, e in p.spans:
            hole = o.token_ids[s:e]
            fills = [t == model.fill_id for t in hole]
            assert not fills[0], "a hole is never empty"
            first_pad = fills.index(True) if True in fills else len(fills)
            assert all(fills[first_pad:]), "padding only as a suffix run of its hole"
    # a table classifier that loves the padding token: every hole shrinks to its one compulsory token
    class LovesPadding:
        labels = ("short", "long")

        def token_scores(self):
            t = torch.zeros(model.vocab_size, 2)
            t[model.fill_id, 0] = 1.0
            return t

    short = sd.rewrite(model, TEMPLATES, temperature=1.0, seed=5, grow=4,
                       guidance=[sd.ClassifierGuidance(LovesPadding(), "short", scale=30.0)])
    for t, o, p in zip(TEMPLATES, short, plans):
        assert_faithful(t, o)
        for s, e in p.spans:
            assert o.token_ids[s] != model.fill_id and o.token_ids[s + 1 : e] == [model.fill_id] * (e - s - 1), o.token_ids[s:e]


def test_hole_budget_and_space_handling(models):
    model = models["bytelevel"]
    tk = model.tokenizer
    p = plan_template(model, "The food was [[cold and bland]]!", grow=3)
    (s, e), = p.spans
    assert e - s == len(tk(" cold and bland", add_special_tokens=False)["input_ids"]) + 3
    assert p.starts == [(s, True)], "the space before the hole moved into the hole"
    out = rewrite(model, "[[Sadly]], it rained.", temperature=1.0, seed=1)
    assert not out.fields["h1"].startswith(" "), "a hole at the start does not start with a space (byte-level)"
    out = rewrite(model, "It was [[bad]].", temperature=1.0, seed=2)
    assert_faithful("It was [[bad]].", out)
    assert out.fields["h1"] and not out.fields["h1"].startswith(" "), "the moved space is not part of the field"


def test_slot_constraint_on_a_hole(models):
    model = models["wordpiece"]
    for seed in range(3):
        out = rewrite(model, "Rated [[2]] out of 5, and [[the soup was cold]].", constraints={1: sd.Regex(r"[0-9]")},
                      guidance=[sd.LexiconGuidance({"great": 3.0}, scale=50.0)], temperature=1.0, seed=seed)
        assert re.fullmatch(r"[0-9]", out.fields["h1"]), out.fields
        assert_faithful("Rated [[2]] out of 5, and [[the soup was cold]].", out)


def test_refinement_remasks_the_least_confident_tokens(models):
    model = models["bytelevel"]
    t = "The food was [[cold and bland and salty]] and the staff [[ignored us all evening]]."
    first = rewrite(model, t, seed=3, temperature=1.0, grow=0)
    refined = rewrite(model, t, seed=3, temperature=1.0, grow=0, refine_rounds=1, refine_fraction=0.25, score_groups=4)
    plan = plan_template(model, t, grow=0)
    pos = [i for s, e in plan.spans for i in range(s, e)]
    changed = sum(first.token_ids[i] != refined.token_ids[i] for i in pos)
    assert changed <= round(0.25 * len(pos)), "only the re-masked quarter can change"
    assert refined.forward_passes == first.forward_passes + 4 + refined.steps, "fill + 4 scoring passes + the refill"
    assert_faithful(t, refined)
    two = rewrite(model, t, seed=3, temperature=1.0, grow=0, refine_rounds=2, score_groups=None)
    assert two.forward_passes > refined.forward_passes
    assert_faithful(t, two)


def test_cfg_in_rewrite_counts_two_passes_per_step(models):
    model = models["bytelevel"]
    out = rewrite(model, "It was [[bad]] and [[slow]].", prompt="Say it kindly:", steps=3,
                  guidance=[sd.ClassifierFreeGuidance(scale=1.5)])
    assert out.forward_passes == 2 * out.steps == 6


def test_rewrite_cli(models):
    model = models["wordpiece"]
    text = rewrite_cli(model, "The food was [[cold and bland]].", {"sentiment": "positive", "cfg": "1.5"}, seed=0)
    assert isinstance(text, str) and text.startswith("The food was ") and text.endswith(".")
    with pytest.raises(ConstraintError, match="unknown classifier 'mood'"):
        rewrite_cli(model, "a [[b]]", {"mood": "happy"})
    with pytest.raises(ConstraintError, match="target 'happy' is not a label"):
        rewrite_cli(model, "a [[b]]", {"sentiment": "happy"})
    with pytest.raises(ConfigError, match="cfg=SCALE needs a number"):
        rewrite_cli(model, "a [[b]]", {"cfg": "lots"})


def test_rewrite_errors(models):
    model = models["bytelevel"]
    cases = [
        ("The food was [[cold", "'\\[\\[' without a closing '\\]\\]' at character 13"),
        ("The food]] was cold", "'\\]\\]' without an opening '\\[\\[' at character 8"),
        ("[[a [[b]] c]]", "nested '\\[\\[' at character 4"),
        ("no holes here", "no \\[\\[hole\\]\\]"),
    ]
    for text, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            rewrite(model, text)
    with pytest.raises(ConfigError, match="grow must be an integer >= 0"):
        rewrite(model, "a [[b]]", grow=-1)
    with pytest.raises(ConfigError, match="refine_fraction must be a number in"):
        rewrite(model, "a [[b]]", refine_fraction=0)
    with pytest.raises(ConfigError, match="constraint key 'h9' names no hole"):
        rewrite(model, "a [[b]]", constraints={"h9": sd.Regex("x")})
    with pytest.raises(ConfigError, match="template must be a string"):
        rewrite(model, 42)
    with pytest.raises(ConstraintError, match="scale must be a finite number"):
        rewrite(model, "a [[b]]", guidance=[sd.ClassifierGuidance("sentiment", "positive", scale="3")])


def test_benchmark_data_is_held_out_and_negative():
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from rewrite_data import DOMAINS, heldout

    from steerdiff.train.data import REVIEW_TPL
    from steerdiff_plugins.scoring.classifiers import get_classifier

    items = heldout(120)
    assert len(items) == 120 and len({it["template"] for it in items}) == 120
    vader = get_classifier("sentiment")
    for it in items:
        tpl = parse_template(it["template"])
        assert "".join(p if isinstance(p, str) else tpl.spans[p] for p in tpl.parts) == it["source"]
        assert vader.compound(it["source"]) < 0, it["source"]
    frames = {f for d in DOMAINS.values() for f in d["frames"]}
    train_shapes = {re.sub(r"\{\w+\}", "{}", t) for t in REVIEW_TPL}
    assert not {re.sub(r"\{\w+\}", "{}", f.replace("[[", "").replace("]]", "")) for f in frames} & train_shapes
