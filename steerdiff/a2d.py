"""A2D Llama: a causal Llama checkpoint turned into a masked diffusion LM (bidirectional attention, a mask token).

The recipe of dllm's A2D conversion (and Dream / DiffuLLaMA): the same weights, attention no longer causal, a new
``<|mask|>`` token, trained with the MDLM objective. Here the logits are **not** shifted (dllm's A2D default,
``right_shift_logits=False``): position ``i`` predicts token ``i``, so steerdiff's plain masked-LM adapter drives it
(``family_of`` sees ``A2DLlamaForMaskedLM`` -> ``masked``; no [SEP] suffix, EOS pads the canvas). Dream's shift keeps
the causal head's "next token" alignment, which helps a long continued pre-training keep the AR model's knowledge;
for a short fine-tune on a narrow task the unshifted form is as cheap to learn and needs no adapter change.

Importing this module registers ``model_type "a2d-llama"`` with transformers' ``AutoConfig`` and
``AutoModelForMaskedLM`` (so ``sd.load_model(dir)`` loads a saved A2D checkpoint once this module is imported).

Attention is made bidirectional without copying transformers' ``LlamaModel.forward`` (it changes between
versions): every attention module gets ``is_causal = False`` and the model always receives a 4D boolean mask
(``True`` = may attend; padding keys masked), which ``create_causal_mask`` passes through unchanged. The SDPA
kernel is required (the eager kernel would add a boolean mask as numbers).
"""
from __future__ import annotations

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

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
