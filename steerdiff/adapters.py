"""Model adapters: one small protocol in front of every model family.

An adapter gives the loop ``logits(input_ids, attention_mask) -> (B, T, V)`` plus how to lay a prompt
out (``prompt_ids``, ``suffix_ids``), which id marks a mask (``mask_id``), which token pads a value that
ends early (``fill_id``), and ``shift``: 0 when ``logits[:, i]`` predicts token ``i`` (masked LMs,
LLaDA), 1 when it predicts token ``i + 1`` (Dream, causal LMs). ``autoregressive`` adapters are driven
left to right, one position per step.

Families: masked LMs (``AutoModelForMaskedLM``: BERT, ModernBERT, steerdiff-tiny), LLaDA-style
custom-code models (mask id from the config; ``trust_remote_code`` only when the caller passes it),
Dream-style (shifted logits), transformers' native block-diffusion class (DiffusionGemma), and causal LMs.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError

DEFAULT_MODEL = "steerdiff-tiny"
LLADA_MASK_ID = 126336  # LLaDA-8B's [MASK] id, used when a llada config does not state one


def default_model_dir() -> Path:
    return Path(__file__).parent / "models" / DEFAULT_MODEL


class Adapter:
    """Base adapter around a transformers model and its tokenizer."""

    family = "base"
    shift = 0
    autoregressive = False

    def __init__(self, model, tokenizer, *, mask_id: int, fill_id: int, device: torch.device | str = "cpu", name: str = ""):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.mask_id = int(mask_id)
        self.fill_id = int(fill_id)
        self.device = torch.device(device)
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        cfg = model.config
        text_cfg = getattr(cfg, "get_text_config", lambda: cfg)()
        self.max_positions = int(getattr(text_cfg, "max_position_embeddings", 0) or 1 << 20)
        self.vocab_size = int(getattr(text_cfg, "vocab_size", len(tokenizer)))
        self._takes_position_ids = "position_ids" in inspect.signature(model.forward).parameters

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids that precede the canvas: the prompt with the family's special tokens."""
        return list(self.tokenizer(prompt)["input_ids"])

    @property
    def suffix_ids(self) -> list[int]:
        """Token ids after the canvas (a masked LM's closing [SEP]); empty for left-to-right families."""
        return []

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``input_ids (B, T)``, ``attention_mask (B, T)`` -> ``(B, T, V)`` raw logits."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits if hasattr(out, "logits") else out[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, device={self.device}, mask_id={self.mask_id})"


class MaskedLMAdapter(Adapter):
    """BERT-family masked LMs: ``[CLS] prompt [SEP] canvas [SEP]``, bidirectional, no shift."""

    family = "masked"

    @property
    def suffix_ids(self) -> list[int]:
        sep = self.tokenizer.sep_token_id
        return [sep] if sep is not None else []


class LLaDAAdapter(Adapter):
    """LLaDA-style models: bidirectional, ``mask_token_id`` from the config, no shift."""

    family = "llada"


class DreamAdapter(Adapter):
    """Dream-style models: bidirectional but trained from a causal LM, so logits shift by one."""

    family = "dream"
    shift = 1


class CausalAdapter(Adapter):
    """Causal LMs: left to right, one position per step. ``mask_id`` is only a placeholder that the
    causal attention never lets the model see (the loop tracks masks itself)."""

    family = "causal"
    shift = 1
    autoregressive = True

    def prompt_ids(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer(prompt)["input_ids"])
        if not ids:  # a shifted model needs one token before the canvas
            bos = self.tokenizer.bos_token_id
            ids = [bos if bos is not None else self.fill_id]
        return ids


class BlockDiffusionAdapter(Adapter):
    """transformers' native block-diffusion models (DiffusionGemma): the canvas is the decoder's block."""

    family = "block_diffusion"


def _fill_id(tokenizer, config) -> int:
    for tid in (tokenizer.eos_token_id, getattr(config, "eos_token_id", None), tokenizer.pad_token_id, tokenizer.sep_token_id):
        if isinstance(tid, list):
            tid = tid[0] if tid else None
        if tid is not None:
            return int(tid)
    raise ConfigError("the tokenizer has no EOS, PAD or SEP token to pad values that end early")


def family_of(config) -> str:
    """Pick the adapter family from a transformers config."""
    mt = (getattr(config, "model_type", "") or "").lower()
    archs = " ".join(getattr(config, "architectures", None) or [])
    if mt == "diffusion_gemma":
        return "block_diffusion"
    if mt.startswith("llada"):
        return "llada"
    if mt.startswith("dream"):
        return "dream"
    if "MaskedLM" in archs or mt in ("bert", "modernbert", "roberta", "distilbert", "electra", "deberta-v2", "xlm-roberta"):
        return "masked"
    if "CausalLM" in archs or "LMHead" in archs:
        return "causal"
    if getattr(config, "mask_token_id", None) is not None:
        return "llada"
    raise ConfigError(f"cannot tell the model family of model_type {mt!r} (architectures: {archs or 'none'}); pass family=")


ADAPTERS: dict[str, type[Adapter]] = {
    a.family: a for a in (MaskedLMAdapter, LLaDAAdapter, DreamAdapter, CausalAdapter, BlockDiffusionAdapter)
}


def wrap_model(model, tokenizer, family: str | None = None, device: str | torch.device | None = None) -> Adapter:
    """An adapter around an already-built transformers model (tests build tiny random ones this way)."""
    family = family or family_of(model.config)
    if family not in ADAPTERS:
        raise ConfigError(f"unknown model family {family!r}; choose one of {sorted(ADAPTERS)}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    cfg = model.config
    fill = _fill_id(tokenizer, cfg)
    if family == "causal":
        mask = fill
    elif family == "llada":
        mask = getattr(cfg, "mask_token_id", None) or tokenizer.mask_token_id or LLADA_MASK_ID
    else:
        mask = getattr(cfg, "mask_token_id", None) or tokenizer.mask_token_id
    if mask is None:
        raise ConfigError(f"model family {family!r} needs a mask token: neither the config nor the tokenizer has one")
    return ADAPTERS[family](model, tokenizer, mask_id=mask, fill_id=fill, device=device)


def load_model(
    path: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    family: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype | None = None,
    gguf_file: str | None = None,
) -> Adapter:
    """Load a model from a local directory (config + weights + tokenizer) and pick its adapter.

    ``path=None`` or ``"steerdiff-tiny"`` loads the embedded default model. ``family`` overrides the
    detection (``masked``, ``llada``, ``dream``, ``causal``, ``block_diffusion``). Custom modelling code
    runs only when ``trust_remote_code=True`` is passed. ``gguf_file`` loads a GGUF checkpoint (causal).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    if path is None or str(path) == DEFAULT_MODEL:
        path = default_model_dir()
        if not (path / "config.json").exists():
            raise ConfigError(f"the embedded default model is missing at {path}; train it with `python -m steerdiff.train`")
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"model path {str(path)!r} does not exist (no model hub here: pass a local directory)")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    try:
        config = AutoConfig.from_pretrained(path, **kw)
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not trust_remote_code:
            raise ConfigError(f"{path} needs custom modelling code; pass trust_remote_code=True if you trust it") from None
        raise ConfigError(f"cannot read the model config in {path}: {exc}") from None
    family = family or ("causal" if gguf_file else family_of(config))
    if dtype is not None:
        kw["dtype"] = dtype
    tokenizer = AutoTokenizer.from_pretrained(path, **{k: v for k, v in kw.items() if k != "dtype"})
    if family == "masked":
        model = AutoModelForMaskedLM.from_pretrained(path, **kw)
    elif family == "causal":
        model = AutoModelForCausalLM.from_pretrained(path, **kw)
    elif family in ("llada", "dream"):
        try:
            model = AutoModel.from_pretrained(path, **kw)
        except ValueError:
            model = AutoModelForCausalLM.from_pretrained(path, **kw)
    elif family == "block_diffusion":
        import transformers

        cls = getattr(transformers, "DiffusionGemmaForBlockDiffusion", None) or AutoModel
        model = cls.from_pretrained(path, **kw)
    else:
        raise ConfigError(f"unknown model family {family!r}; choose one of {sorted(ADAPTERS)}")
    adapter = wrap_model(model, tokenizer, family=family, device=device)
    adapter.name = str(path)
    return adapter
