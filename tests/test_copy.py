"""Copy guidance: a soft pointer prior toward the source's tokens, in source order; never breaks validity."""

import re

import pytest
import torch

import steerdiff as sd
from steerdiff.vocab import vocab_for

SOURCE = "Maria Lopez works at Acme Inc in Paris since 2024"


def test_copy_follows_source_order(model):
    vocab = vocab_for(model.tokenizer)
    ids = model.tokenizer(SOURCE, add_special_tokens=False)["input_ids"]
    key = lambda b: b.lstrip(b" ") or b  # noqa: E731 - the plugin's key: leading space folded in, a space token kept
    src = [key(vocab.token_bytes[t]) for t in ids]
    pairs = set(zip(src, src[1:]))
    for seed in range(4):
        # the first token is pinned to the source's first token; continuation bias alone does the rest
        out = sd.generate(model, SOURCE, length=6, schedule="blocks", block_length=1, steps=6, seed=seed, temperature=1.0,
                          constraints=[sd.TokenSet([ids[0]], span=(0, 1))],
                          guidance=[sd.CopyGuidance(scale=0.0, follow=60.0)])
        keys = [key(vocab.token_bytes[t]) for t in out.token_ids]
        assert keys[0] == src[0]
        assert all((a, b) in pairs for a, b in zip(keys, keys[1:])), f"each token must follow its left neighbour somewhere in the source: {keys}"


def test_copy_without_guidance_is_not_a_copy(model):
    out = sd.generate(model, SOURCE, length=6, steps=6, seed=0)
    assert out.text not in SOURCE


def test_copy_never_breaks_an_exact_constraint(model):
    for seed in range(4):
        out = sd.generate(model, SOURCE, length=8, steps=4, seed=seed, temperature=1.0,
                          constraints=[sd.Regex(r"[0-9]{4}")], guidance=[sd.CopyGuidance(scale=100.0)])
        assert re.fullmatch(r"[0-9]{4}", out.text), out.text


def test_fill_copy_option_keeps_values_valid(model):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}}, "required": ["name"]}
    value = sd.fill(model, schema, SOURCE, copy=5.0, length=16, steps=4)
    assert isinstance(value["name"], str) and len(value["name"]) <= 12


@pytest.mark.parametrize("kw", [dict(scale="big"), dict(scale=True), dict(source=3), dict(follow="x")])
def test_bad_arguments_are_named(kw):
    with pytest.raises(sd.ConstraintError, match="CopyGuidance"):
        sd.CopyGuidance(**kw)


def _reference_bias(model, source, scale, follow, canvas, masked, V):
    """The copy bias spelled out position by position (the plugin computes it with tensor gathers)."""
    from steerdiff_plugins.copy import _word_index, source_tokens

    vocab = vocab_for(model.tokenizer)
    keys, ids = _word_index(vocab)
    seq = [keys[t] for t in model.tokenizer(source, add_special_tokens=False)["input_ids"] if keys[t]]
    after, before = {}, {}
    for a, b in zip(seq, seq[1:]):
        after.setdefault(a, set()).update(ids[b])
        before.setdefault(b, set()).update(ids[a])
    B, L = canvas.shape
    bias = torch.zeros((B, L, V))
    for i in range(B):
        bias[i, :, [t for t in source_tokens(vocab, source, 2) if t < V]] = scale
        for p in range(L):
            if not masked[i, p]:
                continue
            near = set()
            if p > 0 and not masked[i, p - 1] and canvas[i, p - 1] < len(keys):
                near |= after.get(keys[canvas[i, p - 1]], set())
            if p + 1 < L and not masked[i, p + 1] and canvas[i, p + 1] < len(keys):
                near |= before.get(keys[canvas[i, p + 1]], set())
            bias[i, p, [t for t in near if t < V]] += follow
    return bias


@pytest.mark.parametrize("seed", range(5))
def test_copy_bias_matches_the_positionwise_reference(model, seed):
    from types import SimpleNamespace

    from steerdiff_plugins import copy as cp

    g = torch.Generator().manual_seed(seed)
    B, L, V = 3, 24, len(model.tokenizer)
    src_ids = torch.tensor(model.tokenizer(SOURCE, add_special_tokens=False)["input_ids"])
    # canvases mostly made of source tokens (so continuations fire), some random, some masked
    canvas = torch.where(torch.rand(B, L, generator=g) < 0.7, src_ids[torch.randint(len(src_ids), (B, L), generator=g)],
                         torch.randint(V, (B, L), generator=g))
    masked = torch.rand(B, L, generator=g) < 0.5
    c = sd.CopyGuidance(scale=1.5, follow=4.0)
    run = SimpleNamespace(tokenizer=model.tokenizer, prompts=[SOURCE] * B, state={},
                          constraints_of=lambda kind: [(r, c) for r in range(B)])
    cp.prepare(run)
    edit = cp.adjust_logits(run, canvas, masked, torch.zeros(B, L, V))
    want = _reference_bias(model, SOURCE, 1.5, 4.0, canvas, masked, V)
    assert edit.rows.tolist() == list(range(B))
    assert (want > 1.5).any() and (want == 1.5).any()  # both biases fire in these canvases
    assert torch.equal(edit.bias, want)
