"""Native loading of real diffusion-LM checkpoints: LLaDA, Dream and LLaDA2 without their published code.

The checkpoints of these families ship modelling code written for transformers 4.46 (LLaDA, Dream) or
4.5x (LLaDA2), which does not run on transformers 5. Their architectures are standard ones, so this
module maps each ``config.json`` onto a transformers class, makes its attention bidirectional, and loads
the checkpoint's tensors by name through a rename map. Nothing from the checkpoint folder is executed.

=========  ===========================  ==========================================================
family     transformers class           checkpoint -> native
=========  ===========================  ==========================================================
llada      ``LlamaForCausalLM``         OLMo names (``model.transformer.blocks.N.q_proj`` ...), no shift
dream      ``Qwen2ForCausalLM``         same names as Qwen2; logits shifted (``i`` predicts ``i + 1``)
llada2     ``Glm4MoeForCausalLM``       fused ``query_key_value`` split into q/k/v, per-expert MLPs
                                        stacked into the 3D expert tensors, ``expert_bias`` ->
                                        ``e_score_correction_bias``; block-causal attention
=========  ===========================  ==========================================================

:class:`NativeDiffusionLM` wraps the transformers model: ``forward(input_ids, attention_mask)`` with a
2D padding mask builds the 4D additive mask itself (every real token sees every real token; LLaDA2:
only tokens of its own and earlier blocks of ``block_length`` absolute positions), so the causal mask
transformers would build is never used. Every attention module has ``is_causal = False``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError

# model_type (lower case) / architecture -> family
_MODEL_TYPES = {"llada": "llada", "dream": "dream", "llada2_moe": "llada2"}
_ARCHITECTURES = {"LLaDAModelLM": "llada", "DreamModel": "dream", "LLaDA2MoeModelLM": "llada2"}
NATIVE_FAMILIES = ("llada", "dream", "llada2")

# What each family's published generation code uses when the caller sets nothing (see defaults_for).
LLADA_MASK_ID = 126336  # LLaDA-8B's [MASK]; its config states it as mask_token_id
LLADA2_MASK_ID = 156895  # LLaDA2's generate(mask_id=156895); its config class has no mask field
LLADA2_BLOCK_LENGTH = 32  # LLaDA2's generate(block_length=32)


def read_raw_config(path: Path) -> dict | None:
    """``config.json`` as a dict, or None when the folder has none."""
    f = Path(path) / "config.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {f}: {exc}") from None


def native_family(raw: dict | None) -> str | None:
    """The native family of a raw config (``llada``, ``dream``, ``llada2``), or None.

    Both fields must name the published model: ``model_type`` (``llada``, ``Dream``, ``llada2_moe``) and
    an ``architectures`` entry (``LLaDAModelLM``, ``DreamModel``, ``LLaDA2MoeModelLM``). Other models that
    borrow a model_type (look-alikes with their own code) keep the custom-code path."""
    if not raw:
        return None
    fam = _MODEL_TYPES.get(str(raw.get("model_type") or "").lower())
    archs = {_ARCHITECTURES.get(a) for a in raw.get("architectures") or []}
    return fam if fam is not None and fam in archs else None


def load_tokenizer(path: Path, family: str):
    """The checkpoint's tokenizer, read without ``AutoTokenizer`` (which follows config.json's ``auto_map``
    and would ask to run the folder's code) and without running anything from the folder.

    ``tokenizer.json`` -> ``PreTrainedTokenizerFast``; else ``vocab.json`` + ``merges.txt`` ->
    ``Qwen2TokenizerFast`` (Dream's ``DreamTokenizer`` is a copy of Qwen2's). Special tokens come from
    ``tokenizer_config.json`` / ``special_tokens_map.json`` as usual."""
    from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

    path = Path(path)
    try:
        if (path / "tokenizer.json").is_file():
            return PreTrainedTokenizerFast.from_pretrained(path)
        if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            return Qwen2TokenizerFast.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the {family} tokenizer in {path}: {exc}") from None
    raise ConfigError(f"{path} has no tokenizer files steerdiff can read without custom code "
                      f"(tokenizer.json, or vocab.json + merges.txt)")


def _need(raw: dict, key: str, family: str):
    if raw.get(key) is None:
        raise ConfigError(f"{family} config.json has no {key!r}; it is needed to build the model")
    return raw[key]


def _refuse(raw: dict, family: str, key: str, ok: Callable[[Any], bool], why: str) -> None:
    if key in raw and not ok(raw[key]):
        raise ConfigError(f"{family} config.json field {key!r} = {raw[key]!r} is not supported natively: {why}")


def _pad(raw: dict, default: int | None = None) -> int | None:
    """pad_token_id when it addresses an embedding row (it only sets the embedding's padding_idx)."""
    pad = raw.get("pad_token_id", default)
    vocab = int(raw.get("embedding_size") or raw.get("vocab_size") or 0)
    return pad if pad is not None and 0 <= int(pad) < vocab else None


def _rope(raw: dict, family: str, theta_default: float, **extra) -> dict:
    if raw.get("rope_scaling"):
        raise ConfigError(f"{family} config.json field 'rope_scaling' = {raw['rope_scaling']!r} is not supported natively")
    return {"rope_type": "default", "rope_theta": float(raw.get("rope_theta", theta_default)), **extra}


# --- LLaDA: OLMo-style weight names on a Llama architecture -----------------------------------------------


def llada_config(raw: dict):
    from transformers import LlamaConfig

    f = "llada"
    _refuse(raw, f, "block_type", lambda v: v == "llama", "only the Llama block (separate q/k/v, ff_proj/up_proj)")
    _refuse(raw, f, "alibi", lambda v: not v, "ALiBi")
    _refuse(raw, f, "rope", lambda v: bool(v), "position embeddings other than RoPE")
    _refuse(raw, f, "layer_norm_type", lambda v: v == "rms", "norms other than RMSNorm")
    _refuse(raw, f, "activation_type", lambda v: v == "silu", "activations other than SiLU")
    _refuse(raw, f, "attention_layer_norm", lambda v: not v, "q/k layer norm")
    _refuse(raw, f, "scale_logits", lambda v: not v, "scaled logits")
    _refuse(raw, f, "input_emb_norm", lambda v: not v, "embedding norm")
    _refuse(raw, f, "block_group_size", lambda v: v == 1, "block groups")
    _refuse(raw, f, "layer_norm_with_affine", lambda v: bool(v), "norms without weights")
    _refuse(raw, f, "bias_for_layer_norm", lambda v: not v, "norms with a bias")
    d, heads = int(_need(raw, "d_model", f)), int(_need(raw, "n_heads", f))
    kv = 1 if raw.get("multi_query_attention") else int(raw.get("n_kv_heads") or heads)
    bias, qkv_bias = bool(raw.get("include_bias")), bool(raw.get("include_qkv_bias"))
    cfg = LlamaConfig(
        vocab_size=int(raw.get("embedding_size") or _need(raw, "vocab_size", f)), hidden_size=d,
        intermediate_size=int(raw.get("mlp_hidden_size") or raw.get("mlp_ratio", 4) * d),
        num_hidden_layers=int(_need(raw, "n_layers", f)), num_attention_heads=heads, num_key_value_heads=kv,
        hidden_act="silu", max_position_embeddings=int(raw.get("max_sequence_length", 4096)),
        rms_norm_eps=float(raw.get("rms_norm_eps", 1e-5)), rope_parameters=_rope(raw, f, 10000.0),
        attention_bias=bias or qkv_bias, mlp_bias=bias, tie_word_embeddings=bool(raw.get("weight_tying")),
        pad_token_id=_pad(raw), eos_token_id=raw.get("eos_token_id"), bos_token_id=raw.get("bos_token_id"),
    )
    return cfg, {"o_proj_bias": bias}


_LLADA_BLOCK = {"attn_norm": "input_layernorm", "ff_norm": "post_attention_layernorm", "q_proj": "self_attn.q_proj",
                "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj", "attn_out": "self_attn.o_proj",
                "ff_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj", "ff_out": "mlp.down_proj"}


def llada_rename(tensors: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """``model.transformer.*`` (LLaDA / OLMo names) -> LlamaForCausalLM names."""
    out = {}
    pat = re.compile(r"^model\.transformer\.blocks\.(\d+)\.(\w+)\.(weight|bias)$")
    top = {"model.transformer.wte.weight": "model.embed_tokens.weight", "model.transformer.ln_f.weight": "model.norm.weight",
           "model.transformer.ff_out.weight": "lm_head.weight", "model.transformer.ff_out.bias": "lm_head.bias"}
    for k, v in tensors.items():
        m = pat.match(k)
        if k in top:
            out[top[k]] = v
        elif m and m.group(2) in _LLADA_BLOCK:
            out[f"model.layers.{m.group(1)}.{_LLADA_BLOCK[m.group(2)]}.{m.group(3)}"] = v
        else:
            raise ConfigError(f"llada checkpoint tensor {k!r} has no place in the native model")
    return out


# --- Dream: Qwen2 with bidirectional attention ------------------------------------------------------------


def dream_config(raw: dict):
    from transformers import Qwen2Config

    f = "dream"
    _refuse(raw, f, "use_mrope", lambda v: not v, "multimodal RoPE")
    cfg = Qwen2Config(
        vocab_size=int(_need(raw, "vocab_size", f)), hidden_size=int(_need(raw, "hidden_size", f)),
        intermediate_size=int(_need(raw, "intermediate_size", f)), num_hidden_layers=int(_need(raw, "num_hidden_layers", f)),
        num_attention_heads=int(_need(raw, "num_attention_heads", f)),
        num_key_value_heads=int(raw.get("num_key_value_heads") or raw["num_attention_heads"]),
        hidden_act=raw.get("hidden_act", "silu"), max_position_embeddings=int(raw.get("max_position_embeddings", 32768)),
        rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)), rope_parameters=_rope(raw, f, 10000.0),
        use_sliding_window=False,  # Dream's attention never applies a window
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        pad_token_id=_pad(raw), eos_token_id=raw.get("eos_token_id"), bos_token_id=raw.get("bos_token_id"),
    )
    return cfg, {}


def dream_rename(tensors: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    return dict(tensors)  # Dream keeps Qwen2's names


# --- LLaDA2: Ling / BailingMoeV2 MoE on Glm4Moe -----------------------------------------------------------


def llada2_config(raw: dict):
    from transformers import Glm4MoeConfig

    f = "llada2"
    heads = int(raw.get("num_attention_heads", 16))
    kv = int(raw.get("num_key_value_heads", 0) or 0)
    if kv <= 0:
        raise ConfigError(f"llada2 config.json field 'num_key_value_heads' = {kv}: it must be a positive divisor of "
                          f"num_attention_heads ({heads}); the published code divides by it too")
    hidden = int(raw.get("hidden_size", 1024))
    n_exp = raw.get("num_experts", 16)
    if n_exp is None:
        raise ConfigError("llada2 config.json field 'num_experts' = None (a dense model) is not supported natively")
    first_dense = int(raw.get("first_k_dense_replace", 0) or 0)
    inter = raw.get("intermediate_size")
    if first_dense and inter is None:
        raise ConfigError("llada2 config.json has dense layers (first_k_dense_replace > 0) but no 'intermediate_size'")
    top_k = int(raw.get("num_experts_per_tok", 2))
    cfg = Glm4MoeConfig(
        vocab_size=int(raw.get("vocab_size", 30592)), hidden_size=hidden, intermediate_size=int(inter or 1),
        num_hidden_layers=int(raw.get("num_hidden_layers", 24)), num_attention_heads=heads, num_key_value_heads=kv,
        head_dim=int(raw.get("head_dim") or hidden // heads), hidden_act=raw.get("hidden_act", "silu"),
        max_position_embeddings=int(raw.get("max_position_embeddings", 16384)), rms_norm_eps=float(raw.get("rms_norm_eps", 1e-5)),
        rope_parameters=_rope(raw, f, 10000.0, partial_rotary_factor=float(raw.get("partial_rotary_factor", 0.5))),
        partial_rotary_factor=float(raw.get("partial_rotary_factor", 0.5)),
        attention_bias=bool(raw.get("use_qkv_bias", False)), use_qk_norm=bool(raw.get("use_qk_norm", True)),
        moe_intermediate_size=int(_need(raw, "moe_intermediate_size", f)), num_experts_per_tok=top_k,
        n_shared_experts=int(raw.get("num_shared_experts") or 0), n_routed_experts=int(n_exp),
        routed_scaling_factor=float(raw.get("routed_scaling_factor", 2.5)), n_group=int(raw.get("n_group", 8)),
        topk_group=int(raw.get("topk_group", 4)), first_k_dense_replace=first_dense,
        norm_topk_prob=top_k > 1,  # the published gate normalises the chosen scores only when top_k > 1
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        pad_token_id=_pad(raw, 126081), eos_token_id=raw.get("eos_token_id"), bos_token_id=raw.get("bos_token_id"),
    )
    if raw.get("norm_head"):
        raise ConfigError("llada2 config.json field 'norm_head' = True is not supported natively")
    return cfg, {"o_proj_bias": bool(raw.get("use_bias", True))}


def llada2_rename(tensors: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """LLaDA2 names -> Glm4MoeForCausalLM names: split q/k/v, stack experts into 3D tensors."""
    H, KV, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    out: dict[str, torch.Tensor] = {}
    experts: dict[tuple[int, int, str], torch.Tensor] = {}
    att = {"dense": "o_proj", "query_layernorm": "q_norm", "key_layernorm": "k_norm"}
    for k, v in tensors.items():
        if k == "model.word_embeddings.weight":
            out["model.embed_tokens.weight"] = v
            continue
        m = re.match(r"^model\.layers\.(\d+)\.attention\.(\w+)\.(weight|bias)$", k)
        if m:
            i, name, kind = m.groups()
            if name == "query_key_value":
                q, kk, vv = v.split([H * D, KV * D, KV * D], dim=0)  # rows: q heads, k heads, v heads
                for n, t in (("q_proj", q), ("k_proj", kk), ("v_proj", vv)):
                    out[f"model.layers.{i}.self_attn.{n}.{kind}"] = t
            elif name in att:
                out[f"model.layers.{i}.self_attn.{att[name]}.{kind}"] = v
            else:
                raise ConfigError(f"llada2 checkpoint tensor {k!r} has no place in the native model")
            continue
        m = re.match(r"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$", k)
        if m:
            experts[(int(m.group(1)), int(m.group(2)), m.group(3))] = v
            continue
        if k.endswith(".mlp.gate.expert_bias"):
            out[k.replace("expert_bias", "e_score_correction_bias")] = v
            continue
        out[k] = v  # norms, dense MLPs, shared experts, router weight, lm_head keep their names
    for layer in sorted({i for i, _, _ in experts}):
        n = max(e for i, e, _ in experts if i == layer) + 1
        try:
            gu = [torch.cat([experts[(layer, e, "gate")], experts[(layer, e, "up")]], dim=0) for e in range(n)]  # (2I, H)
            dn = [experts[(layer, e, "down")] for e in range(n)]  # (H, I)
        except KeyError as exc:
            raise ConfigError(f"llada2 checkpoint layer {layer} lacks expert tensor {exc}") from None
        out[f"model.layers.{layer}.mlp.experts.gate_up_proj"] = torch.stack(gu)  # (E, 2I, H)
        out[f"model.layers.{layer}.mlp.experts.down_proj"] = torch.stack(dn)  # (E, H, I)
    return out


_BUILDERS = {
    "llada": ("LlamaForCausalLM", llada_config, llada_rename),
    "dream": ("Qwen2ForCausalLM", dream_config, dream_rename),
    "llada2": ("Glm4MoeForCausalLM", llada2_config, llada2_rename),
}


# --- the wrapper ------------------------------------------------------------------------------------------


class NativeDiffusionLM(nn.Module):
    """A transformers decoder run bidirectionally (or block-causally) as a diffusion LM.

    ``forward(input_ids (B, T), attention_mask (B, T) | None)`` -> the inner model's output (``.logits``
    ``(B, T, V)``). Positions are ``0..T-1``; padded keys are never attended to. ``block_length``
    (LLaDA2): query ``i`` sees key ``j`` only when ``j // block_length <= i // block_length``, as the
    published ``generate`` masks it. ``config`` is the inner transformers config with ``mask_token_id``
    and ``source_model_type`` added.
    """

    def __init__(self, inner: nn.Module, family: str, block_length: int | None = None):
        super().__init__()
        self.inner = inner
        self.family = family
        self.block_length = block_length
        self.config = inner.config
        for mod in inner.modules():
            if hasattr(mod, "is_causal"):
                mod.is_causal = False

    def attention_bias(self, attention_mask: torch.Tensor | None, B: int, T: int, device, dtype) -> torch.Tensor:
        """Additive mask ``(B, 1, T, T)``: 0 where a query may attend to a key, the dtype's minimum elsewhere."""
        allowed = torch.ones((B, 1, T, T), dtype=torch.bool, device=device)  # (B, 1, T, T)
        if attention_mask is not None:
            allowed = allowed & attention_mask.bool()[:, None, None, :]
        if self.block_length:
            blk = torch.arange(T, device=device) // self.block_length  # (T,)
            allowed = allowed & (blk[None, :] <= blk[:, None])[None, None]
        bias = torch.zeros((B, 1, T, T), dtype=dtype, device=device)
        return bias.masked_fill_(~allowed, torch.finfo(dtype).min)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_):
        B, T = input_ids.shape
        dtype = next(self.inner.parameters()).dtype
        bias = self.attention_bias(attention_mask, B, T, input_ids.device, dtype)
        pos = torch.arange(T, device=input_ids.device)[None].expand(B, T)  # (B, T)
        return self.inner(input_ids=input_ids, attention_mask=bias, position_ids=pos, use_cache=False)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every weight of a checkpoint folder: ``model.safetensors``, the shards named by
    ``model.safetensors.index.json``, or ``pytorch_model.bin`` (and its shards, loaded with weights_only)."""
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot read {index}: {exc}") from None
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(path / f)))
        return out
    if (path / "model.safetensors").is_file():
        return load_file(str(path / "model.safetensors"))
    bins = sorted(path.glob("pytorch_model*.bin"))
    if bins:
        out = {}
        for f in bins:
            out.update(torch.load(f, map_location="cpu", weights_only=True))
        return out
    raise ConfigError(f"{path} has no weights (model.safetensors, model.safetensors.index.json or pytorch_model*.bin)")


def _swap_bias(model: nn.Module, suffix: str, bias: bool) -> None:
    """Give every Linear whose name ends with ``suffix`` a bias (or drop it) to match the checkpoint."""
    for name, mod in list(model.named_modules()):
        if name.endswith(suffix) and isinstance(mod, nn.Linear) and (mod.bias is not None) != bias:
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            new = nn.Linear(mod.in_features, mod.out_features, bias=bias, device=mod.weight.device, dtype=mod.weight.dtype)
            setattr(parent, name.rsplit(".", 1)[1], new)


def build_native(path: Path, raw: dict, *, device: torch.device, dtype: torch.dtype | None) -> NativeDiffusionLM:
    """Build the native model of ``raw``'s family and load ``path``'s weights by name (strict: no missing or extra)."""
    import transformers

    family = native_family(raw)
    cls_name, make_config, rename = _BUILDERS[family]
    cfg, extra = make_config(raw)
    cfg._attn_implementation = "sdpa"
    if dtype is None:
        dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"):
            inner = getattr(transformers, cls_name)(cfg)
    finally:
        torch.set_default_dtype(old)
    if "o_proj_bias" in extra:
        with torch.device("meta"):
            _swap_bias(inner, "self_attn.o_proj", extra["o_proj_bias"])
    inner = inner.to_empty(device=device)
    state = rename(_read_tensors(path), cfg)
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    want = inner.state_dict()
    missing = sorted(k for k in want if k not in state and not (cfg.tie_word_embeddings and k == "lm_head.weight"))
    extra_keys = sorted(k for k in state if k not in want)
    if missing or extra_keys:
        raise ConfigError(f"{family} checkpoint in {path} does not match its config: missing {missing[:5]}, "
                          f"unexpected {extra_keys[:5]} ({len(missing)} missing, {len(extra_keys)} unexpected)")
    for k, t in state.items():
        if tuple(t.shape) != tuple(want[k].shape):
            raise ConfigError(f"{family} checkpoint tensor for {k!r} has shape {tuple(t.shape)}; the config gives {tuple(want[k].shape)}")
    inner.load_state_dict(state, strict=False)
    if cfg.tie_word_embeddings:
        inner.lm_head.weight = inner.model.embed_tokens.weight
    # non-persistent buffers (RoPE frequencies) were left uninitialised on the meta device: rebuild them
    rot = inner.model.rotary_emb
    inner.model.rotary_emb = type(rot)(config=cfg).to(device)
    inner.eval()
    cfg.mask_token_id = mask_token_id(raw, family)
    cfg.source_model_type = raw.get("model_type")
    cfg._name_or_path = str(path)
    block = int(raw.get("block_length") or LLADA2_BLOCK_LENGTH) if family == "llada2" else None
    return NativeDiffusionLM(inner, family, block_length=block)


def mask_token_id(raw: dict, family: str) -> int:
    """The mask id a family's checkpoint uses: ``mask_token_id`` from config.json; LLaDA2's config class has
    no such field, so its published ``generate`` default (156895) is used when it fits the vocabulary."""
    mid = raw.get("mask_token_id")
    if mid is None and family == "llada2" and LLADA2_MASK_ID < int(raw.get("vocab_size", 30592)):
        mid = LLADA2_MASK_ID
    if mid is None:
        raise ConfigError(f"{family} config.json has no 'mask_token_id' field: steerdiff needs the id of the mask "
                          f"token (LLaDA uses 126336, Dream 151666, LLaDA2 156895)")
    mid = int(mid)
    vocab = int(raw.get("embedding_size") or raw.get("vocab_size") or 0)
    if vocab and not 0 <= mid < vocab:
        raise ConfigError(f"{family} config.json field 'mask_token_id' = {mid} is outside the vocabulary (size {vocab})")
    return mid


def defaults_for(family: str, path: Path) -> dict[str, Any]:
    """Generation settings the family's published code uses, for ``generate`` when the caller sets none.

    - LLaDA (``generate.py`` of GSAI-ML/LLaDA): ``remasking='low_confidence'``, ``block_length=32``,
      temperature 0 -> steerdiff ``schedule='blocks'`` (low confidence inside each block), ``block_length=32``.
    - Dream (``generation_utils.py`` + its ``generation_config.json``): temperature, top_p, top_k and ``alg``
      from generation_config.json; ``alg='entropy'`` (the model card's recommendation) when it says
      ``'origin'`` (random order) or nothing -> ``schedule='entropy'``; ``maskgit_plus`` -> ``low_confidence``;
      ``topk_margin`` -> ``margin``.
    - LLaDA2 (``generate`` of the published class): ``block_length=32``, ``threshold=0.95`` -> ``schedule='blocks'``.
    """
    if family == "llada":
        return {"schedule": "blocks", "block_length": 32, "temperature": 0.0}
    if family == "llada2":
        return {"schedule": "blocks", "block_length": LLADA2_BLOCK_LENGTH, "temperature": 0.0}
    if family == "dream":
        f = Path(path) / "generation_config.json"
        try:
            gen = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {f}: {exc}") from None
        alg = gen.get("alg") or "origin"
        schedule = {"maskgit_plus": "low_confidence", "topk_margin": "margin", "entropy": "entropy"}.get(alg, "entropy")
        out: dict[str, Any] = {"schedule": schedule, "temperature": float(gen.get("temperature") or 0.0)}
        if gen.get("top_p") is not None:
            out["top_p"] = float(gen["top_p"])
        if gen.get("top_k") is not None:
            out["top_k"] = int(gen["top_k"])
        return out
    return {}
