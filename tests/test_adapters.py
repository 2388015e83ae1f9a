"""Model adapters: every family loaded from a local checkpoint (tiny random weights, saved in the test).

Each family is built from a config in code, saved with a tiny tokenizer into a temporary directory,
loaded back with ``sd.load_model(dir)``, and checked for: the detected family, mask and fill ids, a
full canvas from ``sd.generate`` (deterministic for a seed), and the logit alignment against a direct
model call (shifted families read position ``i - 1`` for canvas position ``i``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import steerdiff as sd
from steerdiff.adapters import (BlockDiffusionAdapter, CausalAdapter, DreamAdapter, LLaDAAdapter, MaskedLMAdapter,
                                family_of)
from steerdiff.errors import ConfigError
from steerdiff.forward import canvas_logits
from tiny import tiny_tokenizer

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_diffusion_lm as fx  # noqa: E402

PROMPT = "Dear Maria"
LENGTH = 10


def _save(model, tok, path: Path) -> Path:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_bert(path):
    from transformers import BertConfig, BertForMaskedLM

    tok = tiny_tokenizer("wordpiece")
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    return _save(BertForMaskedLM(cfg), tok, path)


def build_modernbert(path):
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    tok = tiny_tokenizer("bytelevel")
    cfg = ModernBertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, max_position_embeddings=128, global_attn_every_n_layers=2,
                           local_attention=16, pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id,
                           sep_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    return _save(ModernBertForMaskedLM(cfg), tok, path)


def build_llada(path):
    tok = tiny_tokenizer("bytelevel")
    fx.TinyLLaDAConfig.register_for_auto_class()
    fx.TinyLLaDAModel.register_for_auto_class("AutoModel")
    cfg = fx.TinyLLaDAConfig(vocab_size=len(tok), mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
    return _save(fx.TinyLLaDAModel(cfg), tok, path)


def build_dream(path):
    tok = tiny_tokenizer("bytelevel")
    fx.TinyDreamConfig.register_for_auto_class()
    fx.TinyDreamModel.register_for_auto_class("AutoModel")
    cfg = fx.TinyDreamConfig(vocab_size=len(tok), mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
    return _save(fx.TinyDreamModel(cfg), tok, path)


def build_llama(path):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer("bytelevel")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.cls_token_id)
    return _save(LlamaForCausalLM(cfg), tok, path)


def diffusion_gemma_config(tok):
    from transformers import DiffusionGemmaConfig

    # DiffusionGemma's text layers are always mixture-of-experts, and the encoder always builds a Gemma 4
    # vision tower: both are made as small as they go.
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, head_dim=16, global_head_dim=16, max_position_embeddings=256, sliding_window=16,
                layer_types=["sliding_attention", "full_attention"], num_experts=2, top_k_experts=1,
                moe_intermediate_size=32, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                bos_token_id=tok.cls_token_id)
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8, position_embedding_size=64)
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=LENGTH,
                                boi_token_id=None, eoi_token_id=None, image_token_id=None)


def build_diffusion_gemma(path):
    from transformers import DiffusionGemmaForBlockDiffusion

    tok = tiny_tokenizer("bytelevel")
    return _save(DiffusionGemmaForBlockDiffusion(diffusion_gemma_config(tok)), tok, path)


# name -> (builder, expected family, adapter class, load kwargs)
FAMILIES = {
    "bert": (build_bert, "masked", MaskedLMAdapter, {}),
    "modernbert": (build_modernbert, "masked", MaskedLMAdapter, {}),
    "llada": (build_llada, "llada", LLaDAAdapter, {"trust_remote_code": True}),
    "dream": (build_dream, "dream", DreamAdapter, {"trust_remote_code": True}),
    "llama": (build_llama, "causal", CausalAdapter, {}),
    "diffusion_gemma": (build_diffusion_gemma, "block_diffusion", BlockDiffusionAdapter, {}),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Checkpoint directories, built on first use (one per family for the whole module)."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            torch.manual_seed(0)
            try:
                built[name] = FAMILIES[name][0](tmp_path_factory.mktemp(name))
            except Exception as exc:  # only for models whose transformers class cannot build on this CPU
                if name == "modernbert":
                    pytest.skip(f"ModernBertForMaskedLM does not build here: {type(exc).__name__}: {exc}")
                raise
        return built[name]

    return get


@pytest.fixture(scope="module")
def loaded(checkpoints):
    cache: dict[str, sd.Adapter] = {}

    def get(name: str) -> sd.Adapter:
        if name not in cache:
            cache[name] = sd.load_model(checkpoints(name), **FAMILIES[name][3])
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(FAMILIES))
def test_load_detects_family_and_ids(loaded, name):
    _, family, cls, _ = FAMILIES[name]
    model = loaded(name)
    tok = model.tokenizer
    assert type(model) is cls and model.family == family
    assert family_of(model.model.config) == family
    assert model.fill_id == tok.eos_token_id
    if family == "causal":
        assert model.autoregressive and model.shift == 1
        assert model.mask_id == model.fill_id, "a causal model never sees the placeholder mask"
    else:
        assert not model.autoregressive
        assert model.mask_id == tok.mask_token_id
        assert model.shift == (1 if family == "dream" else 0)
    if family in ("llada", "dream"):
        assert model.mask_id == model.model.config.mask_token_id
    assert model.device == torch.device("cpu")
    assert model.max_positions in (128, 256)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_generate_fills_canvas_deterministically(loaded, name):
    model = loaded(name)
    out = sd.generate(model, PROMPT, length=LENGTH, steps=5, temperature=1.0, seed=1)
    assert len(out.token_ids) == LENGTH
    assert out.trace.steps[-1].masks_left == [0]
    committed = sorted(p for rec in out.trace.steps for p in rec.positions[0])
    assert committed == list(range(LENGTH)), "every canvas position is committed exactly once"
    if not model.autoregressive:
        assert model.mask_id not in out.token_ids, "the mask token is never committed"
        assert out.steps == 5
    again = sd.generate(model, PROMPT, length=LENGTH, steps=5, temperature=1.0, seed=1)
    assert again.token_ids == out.token_ids, "same seed, same output"
    others = [sd.generate(model, PROMPT, length=LENGTH, steps=5, temperature=1.0, seed=s).token_ids for s in (2, 3)]
    assert any(o != out.token_ids for o in others), "another seed samples something else"


def _direct_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """The wrapped transformers model called by hand on ``ids (1, T)``: ``(T, V)``."""
    with torch.no_grad():
        return model.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float()


@pytest.mark.parametrize("name", ["bert", "modernbert", "llada", "dream", "llama"])
def test_logit_alignment_against_direct_call(loaded, name):
    model = loaded(name)
    p = model.prompt_ids(PROMPT)
    n = len(p)
    gen = torch.Generator().manual_seed(0)
    canvas = torch.randint(10, model.vocab_size, (1, LENGTH), generator=gen)  # (1, L)
    canvas[0, ::3] = model.mask_id  # some masked, some committed
    got = canvas_logits(model, [p], canvas)[0]  # (L, V)
    ids = torch.tensor([p + canvas[0].tolist() + model.suffix_ids])
    direct = _direct_logits(model, ids)  # (T, V)
    want = direct[n - model.shift: n - model.shift + LENGTH]
    keep = torch.ones(direct.shape[-1], dtype=torch.bool)
    if not model.autoregressive:
        keep[model.mask_id] = False
        assert torch.isinf(got[:, model.mask_id]).all() and (got[:, model.mask_id] < 0).all()
    torch.testing.assert_close(got[:, keep], want[:, keep], rtol=1e-4, atol=1e-4)
    if model.shift:  # and the shift is not a no-op: position i itself gives different logits
        assert not torch.allclose(got[1:, keep], direct[n + 1: n + LENGTH, keep], atol=1e-3)


@pytest.mark.parametrize("name", ["bert", "llada", "dream"])
def test_padded_batch_rows_match_single_rows(loaded, name):
    """Prompts of different lengths pad the batch (Dream gets its 4D mask and position ids): rows stay independent."""
    model = loaded(name)
    prompts = [model.prompt_ids(t) for t in ("x", "The food was cold and bland")]
    assert len(prompts[0]) != len(prompts[1])
    canvas = torch.randint(10, model.vocab_size, (2, LENGTH), generator=torch.Generator().manual_seed(2))
    canvas[:, ::2] = model.mask_id
    batch = canvas_logits(model, prompts, canvas)  # (2, L, V)
    for b in range(2):
        torch.testing.assert_close(batch[b], canvas_logits(model, [prompts[b]], canvas[b: b + 1])[0], rtol=1e-4, atol=1e-4)


def test_llada_needs_trust_remote_code(checkpoints):
    path = checkpoints("llada")
    assert json.loads((path / "config.json").read_text())["auto_map"]["AutoModel"].endswith("TinyLLaDAModel")
    with pytest.raises(ConfigError, match="custom modelling code.*trust_remote_code=True"):
        sd.load_model(path)
    model = sd.load_model(path, trust_remote_code=True)
    assert isinstance(model, LLaDAAdapter) and model.mask_id == model.tokenizer.mask_token_id


def test_dream_by_wrap_model_shifts_a_causal_backbone():
    from tiny import tiny_model

    model = tiny_model("dream")  # a Llama backbone driven as a Dream-style diffusion model
    assert isinstance(model, DreamAdapter) and model.shift == 1 and not model.autoregressive
    out = sd.generate(model, PROMPT, length=8, steps=4, seed=0)
    assert len(out.token_ids) == 8 and model.mask_id not in out.token_ids and out.steps == 4


def test_causal_runs_left_to_right_one_position_per_step(loaded):
    model = loaded("llama")
    out = sd.generate(model, PROMPT, length=LENGTH, steps=2, seed=0)  # steps is overridden: one per position
    assert out.steps == LENGTH and out.forward_passes == LENGTH
    assert [rec.positions[0] for rec in out.trace.steps] == [[i] for i in range(LENGTH)]
    # greedy causal decoding equals the model's own greedy next-token loop
    ids = model.prompt_ids(PROMPT)
    for _ in range(LENGTH):
        ids.append(int(_direct_logits(model, torch.tensor([ids]))[-1].argmax()))
    assert out.token_ids == ids[-LENGTH:]


# --- DiffusionGemma (transformers' native block-diffusion class) ------------------------------------------


def _dg_direct(model, prompt_ids: list[int], canvas: torch.Tensor) -> torch.Tensor:
    """DiffusionGemma called as its own sampler calls it: prompt to the encoder, the (noised) canvas to the decoder."""
    dec = torch.where(canvas == model.mask_id, model._noise(canvas.shape[1], canvas.device)[None], canvas)
    with torch.no_grad():
        return model.model(input_ids=torch.tensor([prompt_ids]), decoder_input_ids=dec).logits[0]  # (L, V)


def test_diffusion_gemma_logits_match_its_encoder_decoder_call(loaded):
    model = loaded("diffusion_gemma")
    p = model.prompt_ids(PROMPT)
    canvas = torch.randint(10, model.vocab_size, (1, LENGTH), generator=torch.Generator().manual_seed(0))
    canvas[0, ::2] = model.mask_id
    model._enc_cache = None
    got = canvas_logits(model, [p], canvas)[0]  # (L, V), encoder run
    want = _dg_direct(model, p, canvas)
    keep = torch.arange(want.shape[-1]) != model.mask_id
    torch.testing.assert_close(got[:, keep], want[:, keep], rtol=1e-4, atol=1e-4)
    assert model._enc_cache is not None
    cached = canvas_logits(model, [p], canvas)[0]  # encoder cache reused: same logits
    torch.testing.assert_close(cached, got)
    # the prompt matters (the decoder reads the encoder's cache) and the noise does not leak a mask id
    other = canvas_logits(model, [model.prompt_ids("SELECT name")], canvas)[0]
    assert not torch.allclose(other[:, keep], got[:, keep], atol=1e-3)


def test_diffusion_gemma_batch_with_different_prompt_lengths(loaded):
    model = loaded("diffusion_gemma")
    prompts = [model.prompt_ids(t) for t in ("x", "The food was cold and bland")]
    assert len(prompts[0]) != len(prompts[1])
    canvas = torch.randint(10, model.vocab_size, (2, LENGTH), generator=torch.Generator().manual_seed(1))
    canvas[:, 1::2] = model.mask_id
    batch = canvas_logits(model, prompts, canvas)  # (2, L, V)
    for b in range(2):
        want = _dg_direct(model, prompts[b], canvas[b: b + 1])
        keep = torch.arange(want.shape[-1]) != model.mask_id
        torch.testing.assert_close(batch[b][:, keep], want[:, keep], rtol=1e-4, atol=1e-4)


def test_diffusion_gemma_needs_known_prompt(loaded):
    model = loaded("diffusion_gemma")
    ids = torch.tensor([[7, 8, 9, 10, model.mask_id]])
    model._prompts.clear()
    with pytest.raises(ConfigError, match="cannot tell where the prompt ends"):
        model.logits(ids, torch.ones_like(ids))
    out = model.logits(ids, torch.ones_like(ids), prompt_lengths=[4])
    keep = torch.arange(model.vocab_size) != model.mask_id
    assert out.shape == (1, 5, model.vocab_size)
    assert (out[0, :4][:, keep] == 0).all(), "zeros off the canvas"
    assert torch.isfinite(out[0, 4, keep]).all() and (out[0, 4, keep] != 0).any()


# --- GPU --------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("name", ["bert", "llada", "llama"])
def test_cuda_greedy_matches_cpu(checkpoints, name):
    kw = FAMILIES[name][3]
    cpu = sd.load_model(checkpoints(name), **kw)
    gpu = sd.load_model(checkpoints(name), device="cuda", **kw)
    assert gpu.device.type == "cuda" and next(gpu.model.parameters()).is_cuda
    a = sd.generate(cpu, PROMPT, length=LENGTH, steps=5, temperature=0.0, seed=0)
    b = sd.generate(gpu, PROMPT, length=LENGTH, steps=5, temperature=0.0, seed=0)
    assert a.token_ids == b.token_ids


# --- errors -----------------------------------------------------------------------------------------------


def test_missing_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        sd.load_model(tmp_path / "no-such-model")


def test_file_instead_of_directory(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"")
    with pytest.raises(ConfigError, match="not a directory"):
        sd.load_model(f)


def test_unknown_family_is_a_config_error(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="cannot tell the model family of model_type 'vit'"):
        sd.load_model(tmp_path)


def test_unreadable_config_is_a_config_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(ConfigError, match="cannot read the model config"):
        sd.load_model(tmp_path)


def test_unknown_family_name(checkpoints):
    with pytest.raises(ConfigError, match="unknown model family 'mdlm'"):
        sd.load_model(checkpoints("bert"), family="mdlm")


def test_cuda_without_cuda_is_a_config_error(checkpoints, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="'cuda' requested but CUDA is not available"):
        sd.load_model(checkpoints("bert"), device="cuda")


def test_block_diffusion_family_on_another_model_is_refused(checkpoints):
    with pytest.raises(ConfigError, match="DiffusionGemmaForBlockDiffusion only"):
        sd.load_model(checkpoints("bert"), family="block_diffusion")
