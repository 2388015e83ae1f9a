"""Guidance plugins: classifier (gradient / table / scorer), lexicon, classifier-free; composition with exact constraints."""

import math
import re

import pytest
import torch

import steerdiff as sd
from steerdiff.errors import ConstraintError
from steerdiff.forward import canvas_logits
from steerdiff.run import Run
from steerdiff.vocab import vocab_for
from steerdiff_plugins.scoring import classifiers as C
from steerdiff_plugins import guidance as G
from tiny import tiny_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two cores are shared with a training job: one intra-op thread is ~10x faster than two contending."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return tiny_model("masked")


@pytest.fixture(scope="module")
def wmodel():
    """WordPiece vocabulary: the tiny byte-level one has almost no whole-word tokens for a lexicon."""
    return tiny_model("masked", "wordpiece")


def make_run(model, prompts, length, constraints):
    """A Run exactly as the loop builds it, prepared by the guidance plugin (to call its hooks directly)."""
    pids = [model.prompt_ids(p) for p in prompts]
    run = Run(model=model, tokenizer=model.tokenizer, mask_id=model.mask_id, fill_id=model.fill_id, device=model.device,
              length=length, steps=length, prompts=list(prompts), prompt_ids=pids, constraints=constraints,
              generator=torch.Generator().manual_seed(0))
    G.prepare(run)
    return run


class LinearClassifier:
    """log p(label | x) = log_softmax([-z, z]), z = sum_i x_i . w: gradient d log p(pos)/dx[i, v] = (1 - p) w[v]."""

    labels = ("negative", "positive")

    def __init__(self, w):
        self.w = w

    def log_probs(self, x):
        z = (x * self.w).sum(dim=(-1, -2))  # (B,)
        return torch.log_softmax(torch.stack([-z, z], -1), -1)


class EmbeddingMLP:
    """A small nonlinear classifier over token embeddings (x @ E), for the finite-difference check."""

    labels = ("a", "b", "c")

    def __init__(self, V, H=8, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.E = torch.randn(V, H, generator=g, dtype=torch.float64)
        self.W1 = torch.randn(H, H, generator=g, dtype=torch.float64)
        self.W2 = torch.randn(H, 3, generator=g, dtype=torch.float64)

    def log_probs(self, x):
        h = torch.tanh((x.double() @ self.E) @ self.W1).mean(dim=1)  # (B, H)
        return torch.log_softmax(h @ self.W2, -1).to(x.dtype)


# --------------------------------------------------------------------------------------------------
# gradient guidance
# --------------------------------------------------------------------------------------------------
def test_gradient_bias_matches_the_known_gradient(model):
    V = model.vocab_size
    w = torch.randn(V, generator=torch.Generator().manual_seed(1))
    c = sd.ClassifierGuidance(LinearClassifier(w), target="positive", scale=2.5, soft_masks=False)
    run = make_run(model, ["hi", "yo"], 6, [[c], [c]])
    canvas = torch.full((2, 6), model.mask_id)
    canvas[0, :2] = torch.tensor([10, 11])
    canvas[1, 3] = 12
    masked = canvas == model.mask_id
    logits = torch.randn(2, 6, V)
    edit = G.adjust_logits(run, canvas, masked, logits)
    assert edit.bias.shape == (2, 6, V) and edit.allowed is None
    x = torch.nn.functional.one_hot(canvas, V).float()
    z = (x * w).sum(dim=(-1, -2))
    p = torch.sigmoid(2 * z)  # softmax([-z, z])[1]
    expected = 2.5 * (1 - p)[:, None, None] * w[None, None, :] * 2 * masked[..., None]  # d/dz log sigmoid(2z) = 2(1-p)
    assert torch.allclose(edit.bias, expected, atol=1e-5)
    assert torch.all(edit.bias[~masked] == 0), "committed positions get no bias"
    # sign: the token with the largest w gets the largest bias; toward 'negative' the order flips
    neg = sd.ClassifierGuidance(LinearClassifier(w), target="negative", scale=2.5, soft_masks=False)
    edit_neg = G.adjust_logits(make_run(model, ["hi", "yo"], 6, [[neg], [neg]]), canvas, masked, logits)
    assert int(edit.bias[0, 3].argmax()) == int(w.argmax()) == int(edit_neg.bias[0, 3].argmin())


def test_gradient_bias_matches_finite_differences(model):
    V = model.vocab_size
    clf = EmbeddingMLP(V)
    c = sd.ClassifierGuidance(clf, target="b", scale=1.0, soft_masks=True)
    run = make_run(model, ["x"], 5, [[c]])
    canvas = torch.tensor([[20, model.mask_id, 30, model.mask_id, 40]])
    masked = canvas == model.mask_id
    logits = torch.randn(1, 5, V, generator=torch.Generator().manual_seed(2))
    bias = G.adjust_logits(run, canvas, masked, logits).bias  # (1, 5, V)
    # the input the plugin differentiates: one-hot, masked positions = the model's distribution
    x0 = torch.nn.functional.one_hot(canvas, V).double()
    x0[masked] = torch.softmax(logits[masked].double(), -1)
    eps = 1e-6
    for i, v in [(1, 7), (1, 200), (3, 55), (3, 301)]:
        e = torch.zeros_like(x0)
        e[0, i, v] = eps
        fd = (clf.log_probs(x0 + e)[0, 1] - clf.log_probs(x0 - e)[0, 1]) / (2 * eps)
        assert math.isclose(float(bias[0, i, v]), float(fd), rel_tol=1e-3, abs_tol=1e-6)


def test_sentiment_probe_is_a_gradient_classifier_with_positive_direction(wmodel):
    model = wmodel
    bound = C.bind(C.get_classifier("sentiment-probe"), model)
    assert C.modes_of(bound) == ["gradient"]
    words = C.word_start_tokens(model.tokenizer)
    table = C.lexicon_table(model.tokenizer, C.get_classifier("sentiment").lexicon)[:, 1]
    scored = [t for t in words if table[t] != 0]
    assert scored, "the tiny tokenizer has lexicon words"
    r = torch.corrcoef(torch.stack([bound.proj[scored], table[scored]]))[0, 1]
    assert r > 0.5, f"the fitted probe follows the lexicon on the words it was fitted to (r={r:.2f})"


# --------------------------------------------------------------------------------------------------
# table (lexicon) guidance
# --------------------------------------------------------------------------------------------------
def test_lexicon_table_maps_word_start_tokens():
    from tiny import tiny_tokenizer

    for kind in ("bytelevel", "wordpiece", "sentencepiece"):
        tok = tiny_tokenizer(kind)
        table = C.lexicon_table(tok, {"great": 4.0, "cold": -2.0})
        vocab = vocab_for(tok)
        nonzero = {vocab.token_bytes[t].decode(): float(table[t, 1]) for t in table[:, 1].nonzero().flatten().tolist()}
        present = {" " + w for w in C.word_start_tokens(tok).values()}
        assert nonzero == {k: v for k, v in {" great": 4.0, " cold": -2.0}.items() if k in present}, (kind, nonzero)
        if kind == "wordpiece":
            assert len(nonzero) == 2
        assert torch.equal(table[:, 0], -table[:, 1])


def _count_positive(model, outs):
    table = C.lexicon_table(model.tokenizer, C.get_classifier("sentiment").lexicon)[:, 1]
    return sum(int((table[torch.tensor(o.token_ids)] > 0).sum()) for o in outs)


def test_lexicon_guidance_makes_positive_tokens_far_more_frequent(wmodel):
    model = wmodel
    prompts = ["The food was", "Our stay was", "The staff"]
    kw = dict(length=12, steps=6, temperature=1.0)
    base = [sd.generate(model, p, seed=s, **kw) for p in prompts for s in range(2)]
    guided = [sd.generate(model, p, seed=s, guidance=[sd.LexiconGuidance("sentiment", target="positive", scale=8.0)], **kw)
              for p in prompts for s in range(2)]
    n_base, n_guided = _count_positive(model, base), _count_positive(model, guided)
    assert n_guided >= 0.5 * 12 * len(guided), f"most tokens are positive words with guidance ({n_guided})"
    assert n_guided >= 5 * max(n_base, 1), (n_base, n_guided)


def test_lexicon_dict_and_negative_target(wmodel):
    model = wmodel
    lex = {"cold": 3.0, "bland": 3.0, "great": -3.0}
    out = sd.generate(model, "x", length=8, steps=4, guidance=[sd.LexiconGuidance(lex, target="positive", scale=20.0)])
    words = set(out.text.split())
    assert words <= {"cold", "bland"}, out.text
    out = sd.generate(model, "x", length=8, steps=4, guidance=[sd.LexiconGuidance(lex, target="negative", scale=20.0)])
    assert set(out.text.split()) == {"great"}, out.text


def test_repeat_decay_spreads_a_lexicon_over_several_words(wmodel):
    lex = {"great": 3.0, "bland": 2.5, "cold": 2.0}  # whole word-start tokens of the tiny WordPiece vocabulary
    kw = dict(length=6, steps=6)
    flat = sd.generate(wmodel, "x", guidance=[sd.LexiconGuidance(lex, scale=20.0)], **kw)
    assert flat.text.split() == ["great"] * 6, flat.text
    spread = sd.generate(wmodel, "x", guidance=[sd.LexiconGuidance(lex, scale=20.0, repeat_decay=0.0)], **kw)
    pieces = wmodel.tokenizer.convert_ids_to_tokens(spread.token_ids)
    assert sorted(p for p in pieces if p in lex) == ["bland", "cold", "great"], ("each word once, then no more bias", pieces)
    with pytest.raises(ConstraintError, match="repeat_decay must be a number in"):
        sd.LexiconGuidance(lex, repeat_decay=2)


# --------------------------------------------------------------------------------------------------
# scorer (reranking) guidance
# --------------------------------------------------------------------------------------------------
class DigitScorer:
    """An external scorer: how many digits a text has (label 'digits'), or how few ('letters')."""

    labels = ("letters", "digits")

    def score(self, texts):
        return [[-sum(ch.isdigit() for ch in t), sum(ch.isdigit() for ch in t)] for t in texts]


def test_scorer_guidance_reranks_toward_the_target(model):
    kw = dict(length=10, steps=5, temperature=1.0)
    digits = lambda outs: sum(sum(ch.isdigit() for ch in o.text) for o in outs)  # noqa: E731
    seeds = range(6)
    base = [sd.generate(model, "Call", seed=s, **kw) for s in seeds]
    more = sd.ClassifierGuidance(DigitScorer(), target="digits", scale=10.0, k=8)
    fewer = sd.ClassifierGuidance(DigitScorer(), target="letters", scale=10.0, k=8)
    n_more = digits([sd.generate(model, "Call", seed=s, guidance=[more], **kw) for s in seeds])
    n_fewer = digits([sd.generate(model, "Call", seed=s, guidance=[fewer], **kw) for s in seeds])
    assert n_more >= 2 * digits(base) >= 4 * n_fewer, (digits(base), n_more, n_fewer)


def test_vader_offers_table_and_scorer():
    v = C.get_classifier("sentiment")
    assert C.modes_of(v) == ["scorer"] and callable(v.bind)  # the table needs a tokenizer: bind(model)
    s = v.score(["The staff were wonderful and kind.", "The food was terrible."])
    assert s[0][1] > 0.5 and s[1][1] < -0.3 and s[0][0] == -s[0][1]


# --------------------------------------------------------------------------------------------------
# classifier-free guidance
# --------------------------------------------------------------------------------------------------
def test_cfg_counts_two_forward_passes_per_step(model):
    plain = sd.generate(model, "Dear Maria,", length=8, steps=4)
    cfg = sd.generate(model, "Dear Maria,", length=8, steps=4, guidance=[sd.ClassifierFreeGuidance(scale=1.5)])
    assert plain.forward_passes == plain.steps == 4
    assert cfg.forward_passes == 2 * cfg.steps == 8
    empty = sd.generate(model, "", length=8, steps=4, guidance=[sd.ClassifierFreeGuidance(scale=1.5)])
    assert empty.forward_passes == 4, "an empty prompt has nothing to mask: no extra pass"


def test_cfg_bias_is_scale_times_cond_minus_uncond(model):
    c = sd.ClassifierFreeGuidance(scale=1.5)
    run = make_run(model, ["Dear Maria,", "hi"], 6, [[c], []])
    canvas = torch.full((2, 6), model.mask_id)
    canvas[0, 2] = 40
    masked = canvas == model.mask_id
    cond = canvas_logits(model, run.prompt_ids, canvas)  # (2, 6, V)
    edit = G.adjust_logits(run, canvas, masked, cond)
    assert run.forward_passes == 1, "the unconditional pass goes through run.model_logits"
    special = vocab_for(model.tokenizer).special
    uncond_ids = [t if t in special else model.mask_id for t in run.prompt_ids[0]]
    assert uncond_ids != run.prompt_ids[0] and uncond_ids[0] in special
    uncond = canvas_logits(model, [uncond_ids], canvas[:1])
    expected = 1.5 * (torch.log_softmax(cond[:1], -1) - torch.log_softmax(uncond, -1)) * masked[:1, :, None]
    finite = torch.isfinite(cond[:1]).expand_as(expected)  # the adapter bans [MASK] with -inf: no bias there
    assert bool(finite.any()) and torch.allclose(edit.bias[:1][finite], expected[finite], atol=1e-4)
    assert torch.all(edit.bias[:1][~finite] == 0)
    assert torch.all(edit.bias[1] == 0), "a row without CFG is untouched"


def test_cfg_with_negative_prompt(model):
    out = sd.generate(model, "Dear Maria,", length=6, steps=3,
                      guidance=[sd.ClassifierFreeGuidance(scale=2.0, uncond_prompt="SELECT name")])
    assert out.forward_passes == 6


# --------------------------------------------------------------------------------------------------
# composition with exact constraints: -inf wins over any bias
# --------------------------------------------------------------------------------------------------
def test_guidance_never_breaks_template_or_regex(model):
    assert "regex" in sd.constraint_types(), "the Regex plugin is installed"
    lex = {"great": 4.0, "friendly": 4.0}
    for seed in range(4):
        tpl = sd.Template("Rating: {{r:3}} stars. {{w:5}}!", slots={"r": sd.Regex(r"[0-9]")})
        out = sd.generate(model, "", length=28, steps=8, temperature=1.0, seed=seed, constraints=[tpl],
                          guidance=[sd.LexiconGuidance(lex, scale=40.0), sd.ClassifierGuidance(DigitScorer(), "letters", scale=40.0, k=3)])
        assert re.fullmatch(r"Rating: [0-9] stars\. .*!", out.text, re.S), out.text
        assert re.fullmatch(r"[0-9]", out.fields["r"]), out.fields


def test_guidance_with_regex_over_whole_canvas(model):
    lex = {"great": 4.0}
    out = sd.generate(model, "x", length=6, steps=3, constraints=[sd.Regex(r"[a-z]{2,8}")],
                      guidance=[sd.LexiconGuidance(lex, scale=100.0), sd.ClassifierFreeGuidance(scale=3.0)])
    assert re.fullmatch(r"[a-z]{2,8}", out.text), out.text


# --------------------------------------------------------------------------------------------------
# registry and errors
# --------------------------------------------------------------------------------------------------
def test_register_a_named_classifier_and_use_it_from_a_dict(model):
    name = "test-digits"
    C.register_classifier(name, DigitScorer, replace=True)
    c = sd.make_constraint({"type": "classifier", "classifier": name, "target": "digits", "scale": 2})
    assert isinstance(c, sd.ClassifierGuidance) and c.scale == 2.0
    assert name in C.classifier_names()
    with pytest.raises(sd.ConfigError, match="already registered"):
        C.register_classifier(name, DigitScorer)
    out = sd.generate(model, "Call", length=6, steps=3, guidance=[{"type": "classifier", "classifier": name, "target": "digits", "scale": 3.0}])
    assert out.forward_passes == 3


def test_clear_errors():
    with pytest.raises(ConstraintError, match="unknown classifier 'nope'.*sentiment"):
        sd.ClassifierGuidance("nope", target="positive")
    with pytest.raises(ConstraintError, match="target 'happy' is not a label.*negative.*positive"):
        sd.ClassifierGuidance("sentiment", target="happy")
    for bad in ("3", float("nan"), True, None):
        with pytest.raises(ConstraintError, match="scale must be a finite number"):
            sd.ClassifierGuidance("sentiment", target="positive", scale=bad)
    with pytest.raises(ConstraintError, match="scale must be a finite number"):
        sd.ClassifierFreeGuidance(scale="big")
    with pytest.raises(ConstraintError, match="offers \\['scorer'\\], not mode 'gradient'"):
        sd.ClassifierGuidance(DigitScorer(), target="digits", mode="gradient")
    with pytest.raises(ConstraintError, match="mode must be one of"):
        sd.ClassifierGuidance(DigitScorer(), target="digits", mode="magic")
    with pytest.raises(ConstraintError, match="must have `labels`"):
        sd.ClassifierGuidance(object(), target="x")
    with pytest.raises(ConstraintError, match="bad parameters"):
        sd.make_constraint({"type": "cfg", "scael": 2})


def test_bound_mode_checked_at_prepare(model):
    c = sd.ClassifierGuidance("sentiment-probe", target="positive", mode="table")
    with pytest.raises(ConstraintError, match="offers \\['gradient'\\], not mode 'table'"):
        sd.generate(model, "x", length=4, steps=2, guidance=[c])


def test_lexicon_reaches_a_tokenizer_with_space_tokens():
    """steerdiff-tiny's tokenizer writes spaces as tokens of their own, so no word token has a leading
    space: the lexicon must still score its word tokens (it scored none, and guidance did nothing)."""
    from transformers import AutoTokenizer

    from steerdiff.adapters import default_model_dir

    tok = AutoTokenizer.from_pretrained(default_model_dir())
    assert C.spaces_are_tokens(tok)
    table = C.lexicon_table(tok, {"great": 4.0, "cold": -2.0})
    vocab = vocab_for(tok)
    scored = {vocab.token_bytes[t]: float(table[t, 1]) for t in table[:, 1].nonzero().flatten().tolist()}
    assert scored[b"great"] == 4.0 and scored[b"cold"] == -2.0
    assert set(scored) <= {b"great", b"cold", b"Great", b"Cold", b"GREAT", b"COLD"}
    words = C.word_start_tokens(tok)
    assert " " not in words.values() and all(w.isalpha() or w.replace("'", "").isalpha() for w in words.values())


def test_sentiment_guidance_moves_the_shipped_model():
    """On the shipped model, VADER-table guidance toward positive makes the rewritten holes more positive
    than the same rewrite unguided (same seeds)."""
    model = sd.load_model()
    vader = C.get_classifier("sentiment")
    tpl = ["The food was [[cold and bland]] and the staff [[ignored us]].",
           "Our room was [[dirty]] and the view was [[awful]].",
           "The service felt [[slow and rude]] all evening."]
    plain = [sd.rewrite(model, t, seed=0).text for t in tpl]
    guided = [sd.rewrite(model, t, seed=0, guidance=[sd.ClassifierGuidance("sentiment", target="positive", scale=3.0)]).text
              for t in tpl]
    s_plain = sum(p for _, p in vader.score(plain))
    s_guided = sum(p for _, p in vader.score(guided))
    assert guided != plain and s_guided > s_plain, (plain, guided)
