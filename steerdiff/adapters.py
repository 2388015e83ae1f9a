"""Model adapters: one small protocol in front of every model family.

An adapter gives the loop ``logits(input_ids, attention_mask) -> (B, T, V)`` plus how to lay a prompt
out (``prompt_ids``, ``suffix_ids``), which id marks a mask (``mask_id``), which token pads a value that
ends early (``fill_id``), and ``shift``: 0 when ``logits[:, i]`` predicts token ``i`` (masked LMs,
LLaDA), 1 when it predicts token ``i + 1`` (Dream, causal LMs). ``autoregressive`` adapters are driven
left to right, one position per step.

Families: masked LMs (``AutoModelForMaskedLM``: BERT, ModernBERT, steerdiff-tiny), LLaDA-style
models (mask id from the config), Dream-style (shifted logits), LLaDA2 (MoE, block-causal attention),
transformers' native block-diffusion class (DiffusionGemma), and causal LMs.

Real LLaDA, Dream and LLaDA2 checkpoints (``architectures`` ``LLaDAModelLM`` / ``DreamModel`` /
``LLaDA2MoeModelLM``) load natively through :mod:`steerdiff.families`: their published code is never
run, so they need no ``trust_remote_code``. Other custom-code checkpoints run their own code only when
the caller passes ``trust_remote_code=True``. Native adapters carry ``defaults``: the generation
settings of the family's published code, which ``generate`` uses for options the caller leaves unset.

For every non-autoregressive family the mask token's logit is ``-inf``: the loop never commits ``[MASK]``.
DiffusionGemma has no mask token at all (uniform-noise diffusion); its adapter feeds masked positions to
the decoder as random tokens, see :class:`BlockDiffusionAdapter`.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError
from .families import (
    LLADA_MASK_ID,
    NativeDiffusionLM,
    build_native,
    defaults_for,
    load_tokenizer,
    native_family,
    read_raw_config,
)

DEFAULT_MODEL = "steerdiff-tiny"


def default_model_dir() -> Path:
    return Path(__file__).parent / "models" / DEFAULT_MODEL


class Adapter:
    """Base adapter around a transformers model and its tokenizer."""

    family = "base"
    shift = 0
    autoregressive = False
    profile = False  # True: synchronise CUDA around the forward pass so timings split model from the rest
    native = False  # True: a real checkpoint mapped onto a transformers class by steerdiff.families

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
        self.defaults: dict[str, Any] = {}  # generate() options used when the caller leaves them unset

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids that precede the canvas: the prompt with the family's special tokens."""
        return list(self.tokenizer(prompt)["input_ids"])

    @property
    def suffix_ids(self) -> list[int]:
        """Token ids after the canvas (a masked LM's closing [SEP]); empty for left-to-right families."""
        return []

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``input_ids (B, T)``, ``attention_mask (B, T)`` -> ``(B, T, V)`` logits.

        Raw model logits, except that a diffusion family's mask token is never a prediction: its column
        is set to ``-inf`` (committing ``[MASK]`` would leave a hole the loop believes is filled)."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return self._ban_mask(out.logits if hasattr(out, "logits") else out[0])

    def _ban_mask(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.autoregressive and 0 <= self.mask_id < logits.shape[-1]:
            logits[..., self.mask_id] = float("-inf")
        return logits

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
    """Dream-style models: bidirectional but trained from a causal LM, so logits shift by one.

    Called as Dream's own ``diffusion_generate`` calls it: ``model(x, attention_mask, tok_idx)`` with
    ``attention_mask="full"`` when no position is padded, else a ``(B, 1, T, T)`` bool mask (True where
    both query and key are real tokens) and ``tok_idx`` the position ids of the real tokens. A native
    transformers class wrapped with ``family="dream"`` is called the usual way (keyword 2D mask)."""

    family = "dream"
    shift = 1

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, NativeDiffusionLM) or type(self.model).__module__.startswith("transformers."):
            return super().logits(input_ids, attention_mask)  # steerdiff's native Dream, or a backbone driven as Dream
        if bool((attention_mask == 0).any()):
            tok_idx = attention_mask.long().cumsum(-1) - 1  # (B, T)
            tok_idx = tok_idx.masked_fill(attention_mask == 0, 1)
            a = attention_mask.bool()
            mask = a[:, None, None, :] & a[:, None, :, None]  # (B, 1, T, T)
        else:
            tok_idx, mask = None, "full"
        out = self.model(input_ids, mask, tok_idx)
        return self._ban_mask(out.logits if hasattr(out, "logits") else out[0])


class LLaDA2Adapter(Adapter):
    """LLaDA2 (MoE, block diffusion): no shift; attention is block-causal over ``block_length`` absolute
    positions, as the published ``generate`` masks it (a position sees its own block and earlier ones)."""

    family = "llada2"

    @property
    def block_length(self) -> int | None:
        return getattr(self.model, "block_length", None)

    @block_length.setter
    def block_length(self, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"block_length must be a positive integer or None, got {value!r}")
        self.model.block_length = value


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
    """transformers' native block-diffusion model, DiffusionGemma (``DiffusionGemmaForBlockDiffusion``).

    DiffusionGemma is an encoder-decoder over one sequence: a causal encoder turns the prompt into a
    KV cache, and a bidirectional decoder reads that cache (read-only) and refines a canvas. Its own
    sampler (``generation_diffusion_gemma.py``) is *uniform-noise* diffusion: it has no mask token; the
    canvas starts as uniformly random tokens and positions it has not accepted are re-noised with fresh
    random tokens each step. This adapter maps the steerdiff loop onto that:

    - each row of ``input_ids`` is split at its prompt length: ``prompt`` goes to the encoder (left
      padded, positions ``0..S-1`` as DiffusionGemma's ``generate`` lays them out; RoPE is relative, so
      the pad offset does not change the result), the canvas ``input_ids[b, n_b : n_b + L]`` goes to the
      decoder at positions ``S..S+L-1``;
    - canvas positions holding ``mask_id`` (a sentinel: the tokenizer's mask token, else its pad token)
      are replaced by uniformly random tokens before the decoder sees them. The noise is drawn once from
      a generator seeded with ``noise_seed`` for each canvas length (the same for every row), so ``logits`` is a deterministic
      function of its input and a generation is reproducible for a seed;
    - the encoder's KV cache is kept while the prompt rows stay the same (the decoder never writes it),
      so a generation runs the encoder once and the decoder once per step;
    - no self-conditioning logits are passed (the model's first-step input; training drops them per
      example, so this is in distribution);
    - the whole steerdiff canvas is one decoder block. ``config.canvas_length`` is the trained block
      size; a longer canvas still runs but is outside what the model was trained on (use
      ``schedule="blocks"`` with ``block_length=canvas_length`` for block-by-block order).

    Where each row's prompt ends is not in ``logits``'s arguments, so the adapter remembers the prompts
    it returned from :meth:`prompt_ids` and finds the one each row starts with (``prompt_lengths=``
    overrides this). Logits outside the canvas are zeros.
    """

    family = "block_diffusion"
    noise_seed = 0
    _MAX_PROMPTS = 256

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prompts: dict[tuple[int, ...], int] = {}  # prompt ids -> registration counter (recency)
        self._counter = 0
        self._noise_cache: dict[int, torch.Tensor] = {}
        self._enc_cache: tuple[torch.Tensor, torch.Tensor, Any] | None = None

    def prompt_ids(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer(prompt)["input_ids"])
        if not ids:  # the encoder needs at least one token to build its cache
            bos = self.tokenizer.bos_token_id
            ids = [bos if bos is not None else self.fill_id]
        self._counter += 1
        key = tuple(ids)
        self._prompts.pop(key, None)
        self._prompts[key] = self._counter
        while len(self._prompts) > self._MAX_PROMPTS:
            self._prompts.pop(next(iter(self._prompts)))
        return ids

    def _prompt_lengths(self, rows: list[list[int]], widths: list[int]) -> list[int]:
        """Each row's prompt length: a remembered prompt that the row starts with, the same canvas length for all."""
        per_row: list[dict[int, int]] = []  # canvas length -> recency of the prompt that gives it
        for row, w in zip(rows, widths):
            cands: dict[int, int] = {}
            for p, rec in self._prompts.items():
                n = len(p)
                if n < w and tuple(row[:n]) == p:
                    cands[w - n] = max(rec, cands.get(w - n, 0))
            per_row.append(cands)
        common = set(per_row[0]).intersection(*per_row[1:]) if per_row else set()
        if not common:
            raise ConfigError(
                "BlockDiffusionAdapter.logits cannot tell where the prompt ends in these rows: build the prompt "
                "with this adapter's prompt_ids() (as steerdiff.generate does) or pass prompt_lengths="
            )
        L = max(common, key=lambda c: per_row[0][c])  # the most recently used prompt wins a tie
        return [w - L for w in widths]

    def _noise(self, L: int, device: torch.device) -> torch.Tensor:
        """``(L,)`` uniformly random token ids, the same for every row (so a row's logits do not depend on its batch)."""
        if L not in self._noise_cache:
            gen = torch.Generator().manual_seed(self.noise_seed)
            self._noise_cache[L] = torch.randint(0, self.vocab_size, (L,), generator=gen)
        return self._noise_cache[L].to(device)

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_lengths: list[int] | None = None) -> torch.Tensor:
        B, T = input_ids.shape
        dev = input_ids.device
        widths = attention_mask.sum(dim=1).tolist()  # (B,) prompt + canvas per row
        rows = input_ids.tolist()
        n = list(prompt_lengths) if prompt_lengths is not None else self._prompt_lengths(rows, widths)
        L = widths[0] - n[0]
        if any(w - k != L for w, k in zip(widths, n)) or L < 1 or min(n) < 1:
            raise ConfigError(f"prompt lengths {n} do not leave one canvas length in rows of widths {widths}")
        S = max(n)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.fill_id
        enc_ids = torch.full((B, S), pad, dtype=torch.long, device=dev)  # (B, S) prompts, left padded
        enc_mask = torch.zeros((B, S), dtype=torch.long, device=dev)  # (B, S)
        canvas = torch.empty((B, L), dtype=torch.long, device=dev)  # (B, L)
        for b, k in enumerate(n):
            enc_ids[b, S - k:] = input_ids[b, :k]
            enc_mask[b, S - k:] = 1
            canvas[b] = input_ids[b, k:k + L]
        canvas = torch.where(canvas == self.mask_id, self._noise(L, dev)[None], canvas)  # masks -> uniform noise
        dec_mask = torch.cat([enc_mask, torch.ones((B, L), dtype=torch.long, device=dev)], dim=1)  # (B, S + L)
        dec_pos = torch.arange(S, S + L, device=dev)[None].expand(B, L)  # (B, L)
        kw: dict[str, Any] = {"decoder_input_ids": canvas, "decoder_attention_mask": dec_mask, "decoder_position_ids": dec_pos}
        ec = self._enc_cache
        if ec is not None and ec[0].shape == enc_ids.shape and torch.equal(ec[0], enc_ids) and torch.equal(ec[1], enc_mask):
            out = self.model(past_key_values=ec[2], **kw)  # the decoder only reads the prompt's cache
        else:
            enc_pos = torch.arange(S, device=dev)[None].expand(B, S)  # (B, S)
            out = self.model(input_ids=enc_ids, attention_mask=enc_mask, position_ids=enc_pos, use_cache=True, **kw)
            self._enc_cache = (enc_ids, enc_mask, out.past_key_values)
        block = out.logits  # (B, L, V)
        full = block.new_zeros((B, T, block.shape[-1]))  # (B, T, V): zeros off the canvas
        for b, k in enumerate(n):
            full[b, k:k + L] = block[b]
        return self._ban_mask(full)


def _fill_id(tokenizer, config) -> int:
    for tid in (tokenizer.eos_token_id, getattr(config, "eos_token_id", None), tokenizer.pad_token_id, tokenizer.sep_token_id):
        if isinstance(tid, list):
            tid = tid[0] if tid else None
        if tid is not None:
            return int(tid)
    raise ConfigError("the tokenizer has no EOS, PAD or SEP token to pad values that end early")


def _refuse_remote_code(path: Path, trust_remote_code: bool) -> None:
    """Refuse a checkpoint whose config points at custom code (``auto_map``) unless the caller trusts it."""
    import json

    cfg_file = path / "config.json"
    if trust_remote_code or not cfg_file.is_file():
        return
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {cfg_file}: {exc}") from None
    auto_map = raw.get("auto_map") or {}
    mt = raw.get("model_type")
    from transformers import CONFIG_MAPPING

    if auto_map and mt not in CONFIG_MAPPING:
        files = sorted({str(v).split(".")[0] + ".py" for v in auto_map.values() if isinstance(v, str)})
        raise ConfigError(
            f"{path} (model_type {mt!r}) needs custom modelling code ({', '.join(files)}), which transformers does "
            f"not ship; read it, then pass trust_remote_code=True to run it"
        )


def family_of(config) -> str:
    """Pick the adapter family from a transformers config."""
    mt = (getattr(config, "model_type", "") or "").lower()
    archs = " ".join(getattr(config, "architectures", None) or [])
    if mt == "diffusion_gemma":
        return "block_diffusion"
    if mt.startswith("llada2"):
        return "llada2"
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
    raise ConfigError(
        f"cannot tell the model family of model_type {mt!r} (architectures: {archs or 'none'}); steerdiff supports "
        f"{', '.join(sorted(ADAPTERS))} (native real checkpoints: LLaDA 'llada'/LLaDAModelLM, Dream 'Dream'/DreamModel, "
        f"LLaDA2 'llada2_moe'/LLaDA2MoeModelLM); pass family= to choose one"
    )


ADAPTERS: dict[str, type[Adapter]] = {
    a.family: a for a in (MaskedLMAdapter, LLaDAAdapter, DreamAdapter, LLaDA2Adapter, CausalAdapter, BlockDiffusionAdapter)
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
    elif family in ("llada", "llada2"):
        mask = next((m for m in (getattr(cfg, "mask_token_id", None), tokenizer.mask_token_id) if m is not None), None)
        if mask is None and LLADA_MASK_ID < len(tokenizer):
            mask = LLADA_MASK_ID
    elif family == "block_diffusion":  # uniform-noise diffusion: the mask id is only a sentinel
        mask = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.pad_token_id
    else:
        mask = getattr(cfg, "mask_token_id", None)
        mask = mask if mask is not None else tokenizer.mask_token_id
    if mask is None:
        raise ConfigError(f"model family {family!r} needs a mask token: neither the config's 'mask_token_id' nor the "
                          f"tokenizer's mask_token is set")
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
    detection (``masked``, ``llada``, ``dream``, ``llada2``, ``causal``, ``block_diffusion``). Real LLaDA,
    Dream and LLaDA2 checkpoints load natively (no code from the folder runs; ``dtype`` defaults to
    float32 on the CPU and bfloat16 elsewhere). Other custom modelling code runs only when
    ``trust_remote_code=True`` is passed. ``gguf_file`` loads a GGUF checkpoint (causal).
    """
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load

    if path is None or str(path) == DEFAULT_MODEL:
        path = default_model_dir()
        if not (path / "config.json").exists():
            raise ConfigError(f"the embedded default model is missing at {path}; train it with `python -m steerdiff.train`")
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"model path {str(path)!r} does not exist (no model hub here: pass a local directory)")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if not path.is_dir() and not gguf_file:
        raise ConfigError(f"model path {str(path)!r} is not a directory; pass a directory with config.json and the tokenizer files")
    raw = read_raw_config(path) if not gguf_file else None
    nat = native_family(raw)
    if nat is not None and family in (None, nat):
        return _load_native(path, raw, nat, torch.device(device), dtype)
    _refuse_remote_code(path, trust_remote_code)
    kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    try:
        config = AutoConfig.from_pretrained(path, **kw)
    except (ValueError, OSError, KeyError) as exc:
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

        cls = getattr(transformers, "DiffusionGemmaForBlockDiffusion", None)
        if cls is None or getattr(config, "model_type", "") != "diffusion_gemma":
            raise ConfigError(
                f"family 'block_diffusion' supports transformers' DiffusionGemmaForBlockDiffusion only (transformers "
                f"{transformers.__version__} has it: {cls is not None}; this config's model_type is "
                f"{getattr(config, 'model_type', None)!r})"
            )
        model = cls.from_pretrained(path, **kw)
    else:
        raise ConfigError(f"unknown model family {family!r}; choose one of {sorted(ADAPTERS)}")
    adapter = wrap_model(model, tokenizer, family=family, device=device)
    adapter.name = str(path)
    return adapter


def _load_native(path: Path, raw: dict, family: str, device: torch.device, dtype: torch.dtype | None) -> Adapter:
    """A real LLaDA / Dream / LLaDA2 checkpoint on its native transformers class (see steerdiff.families)."""
    tokenizer = load_tokenizer(path, family)
    model = build_native(path, raw, device=device, dtype=dtype)
    adapter = ADAPTERS[family](model, tokenizer, mask_id=model.config.mask_token_id,
                               fill_id=_fill_id(tokenizer, model.config), device=device, name=str(path))
    adapter.native = True
    adapter.defaults = defaults_for(family, path)
    return adapter
