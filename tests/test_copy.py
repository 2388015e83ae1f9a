"""Copy guidance: a soft pointer prior toward the source's tokens, in source order; never breaks validity."""

import re

import pytest

import steerdiff as sd
from steerdiff.vocab import vocab_for
from tiny import tiny_model

SOURCE = "Maria Lopez works at Acme Inc in Paris since 2024"


@pytest.fixture(scope="module")
def model():
    return tiny_model("masked")


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
