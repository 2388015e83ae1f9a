"""Build tiny random-weight twins of the real diffusion LMs in ../shared/testdata/model_code/.

Each twin keeps its family's real config.json (LLaDA, Dream) or config-class defaults (LLaDA2, read
from ``configuration_llada2_moe.py`` with ``ast``, never executed), scaled down in width, depth and
vocabulary, and is saved the way the real checkpoint is: ``config.json`` (with its ``auto_map``) and a
``model.safetensors`` holding the real tensor names in bfloat16, plus a small byte-level BPE tokenizer
whose special tokens (EOS, mask, ...) carry the real token strings. The vocabulary is cut to the
tokenizer's size rounded up to 64 rows; the mask id is the tokenizer's mask token, inside that range.

Scaled fields (everything else is the real value): width 64, 4 heads (Dream and LLaDA2: 2 KV heads,
keeping grouped-query attention), 2 layers, MLP 128, vocabulary ~320. LLaDA2 keeps the class's routing
defaults (16 experts, 2 per token, 8 groups, top 4 groups, scaling 2.5) with expert MLPs of 32, and sets
``num_key_value_heads=2`` (the class default 0 does not run), ``num_shared_experts=1`` and
``first_k_dense_replace=1`` so the shared-expert and dense-layer paths of the real LLaDA2.0 checkpoints
are exercised.

Weights are drawn so that every tensor matters at fp32 (norm weights 1 + N(0, 0.1), biases N(0, 0.1),
projections N(0, 1/fan_in), router bias N(0, 0.1)). Usage:

    python scripts/make_twins.py OUT_DIR [--families llada dream llada2]
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
MODEL_CODE = ROOT.parent / "shared" / "testdata" / "model_code"
SEED = 1234

CORPUS = [
    'Dear Maria, your order ships tomorrow. {"name":"Maria Lopez","age":34,"email":"maria@example.org"}',
    "The food was cold and bland and the staff ignored us. The service was great and friendly!",
    'SELECT name, age FROM people WHERE age > 30; id,name,price [true, false, null, -1.5e10, "x"]',
    "Call 555-1234 on 2024-05-17 at 10:30. user admin role Jack Smith 27 years old lives in Paris.",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \n",
] * 4

# family -> (eos/pad token, mask token, other specials) with the real checkpoints' strings
SPECIALS = {
    "llada": ("<|endoftext|>", "<|mdm_mask|>", ["<|startoftext|>"]),
    "dream": ("<|endoftext|>", "<|mask|>", ["<|beginoftext|>"]),
    "llada2": ("<|endoftext|>", "<|mask|>", ["<|startoftext|>"]),
}


def twin_tokenizer(family: str):
    """A byte-level BPE tokenizer (~320 ids) with the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    eos, mask, others = SPECIALS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[eos, *others, mask],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    kw = {"eos_token": eos, "pad_token": eos, "mask_token": mask}
    if others:
        kw["bos_token"] = others[0]
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kw)


def llada2_class_defaults() -> dict:
    """Keyword defaults of ``LLaDA2MoeConfig.__init__``, read with ``ast`` (the file is not executed)."""
    src = (MODEL_CODE / "llada2-moe" / "configuration_llada2_moe.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            args = node.args.args[-len(node.args.defaults):]
            return {a.arg: ast.literal_eval(d) for a, d in zip(args, node.args.defaults)}
    raise RuntimeError("LLaDA2MoeConfig.__init__ not found")


def twin_config(family: str, tok) -> dict:
    V = int(math.ceil(len(tok) / 64) * 64)
    eos, mask = tok.eos_token_id, tok.mask_token_id
    if family == "llada":
        cfg = json.loads((MODEL_CODE / "llada-8b-instruct" / "config.json").read_text())
        cfg.update(d_model=64, n_heads=4, n_kv_heads=4, n_layers=2, mlp_hidden_size=128, vocab_size=V, embedding_size=V,
                   mask_token_id=mask, eos_token_id=eos, pad_token_id=eos)
    elif family == "dream":
        cfg = json.loads((MODEL_CODE / "dream-v0-instruct-7b" / "config.json").read_text())
        cfg.update(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=128,
                   vocab_size=V, mask_token_id=mask, eos_token_id=eos, pad_token_id=eos, bos_token_id=tok.bos_token_id)
        cfg.pop("_name_or_path", None)
    else:
        cfg = llada2_class_defaults()
        cfg.update(vocab_size=V, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_hidden_layers=2,
                   intermediate_size=128, moe_intermediate_size=32, num_shared_experts=1, first_k_dense_replace=1,
                   mask_token_id=mask, eos_token_id=eos, pad_token_id=eos)
        cfg.update(model_type="llada2_moe", architectures=["LLaDA2MoeModelLM"], auto_map={
            "AutoConfig": "configuration_llada2_moe.LLaDA2MoeConfig", "AutoModel": "modeling_llada2_moe.LLaDA2MoeModelLM",
            "AutoModelForMaskedLM": "modeling_llada2_moe.LLaDA2MoeModelLM"}, torch_dtype="bfloat16")
    return cfg


def tensor_shapes(family: str, c: dict) -> dict[str, tuple[int, ...]]:
    """Checkpoint tensor name -> shape, in the published code's names."""
    s: dict[str, tuple[int, ...]] = {}
    if family == "llada":
        d, I, V, L = c["d_model"], c["mlp_hidden_size"], c["embedding_size"], c["n_layers"]
        kv = c["n_kv_heads"] * (d // c["n_heads"])
        s["model.transformer.wte.weight"] = (V, d)
        for i in range(L):
            b = f"model.transformer.blocks.{i}."
            s.update({b + "attn_norm.weight": (d,), b + "ff_norm.weight": (d,), b + "q_proj.weight": (d, d),
                      b + "k_proj.weight": (kv, d), b + "v_proj.weight": (kv, d), b + "attn_out.weight": (d, d),
                      b + "ff_proj.weight": (I, d), b + "up_proj.weight": (I, d), b + "ff_out.weight": (d, I)})
        s["model.transformer.ln_f.weight"] = (d,)
        s["model.transformer.ff_out.weight"] = (V, d)
    elif family == "dream":
        h, I, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
        kv = c["num_key_value_heads"] * (h // c["num_attention_heads"])
        s["model.embed_tokens.weight"] = (V, h)
        for i in range(L):
            b = f"model.layers.{i}."
            s.update({b + "input_layernorm.weight": (h,), b + "post_attention_layernorm.weight": (h,),
                      b + "self_attn.q_proj.weight": (h, h), b + "self_attn.q_proj.bias": (h,),
                      b + "self_attn.k_proj.weight": (kv, h), b + "self_attn.k_proj.bias": (kv,),
                      b + "self_attn.v_proj.weight": (kv, h), b + "self_attn.v_proj.bias": (kv,),
                      b + "self_attn.o_proj.weight": (h, h), b + "mlp.gate_proj.weight": (I, h),
                      b + "mlp.up_proj.weight": (I, h), b + "mlp.down_proj.weight": (h, I)})
        s["model.norm.weight"] = (h,)
        s["lm_head.weight"] = (V, h)
    else:
        h, V, L, D = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"], c["head_dim"]
        H, KV, E, Im = c["num_attention_heads"], c["num_key_value_heads"], c["num_experts"], c["moe_intermediate_size"]
        S = c["num_shared_experts"]
        s["model.word_embeddings.weight"] = (V, h)
        for i in range(L):
            b = f"model.layers.{i}."
            s.update({b + "input_layernorm.weight": (h,), b + "post_attention_layernorm.weight": (h,),
                      b + "attention.query_key_value.weight": ((H + 2 * KV) * D, h)})
            if c["use_qkv_bias"]:
                s[b + "attention.query_key_value.bias"] = ((H + 2 * KV) * D,)
            s[b + "attention.dense.weight"] = (h, H * D)
            if c["use_bias"]:
                s[b + "attention.dense.bias"] = (h,)
            if c["use_qk_norm"]:
                s.update({b + "attention.query_layernorm.weight": (D,), b + "attention.key_layernorm.weight": (D,)})
            if i < c["first_k_dense_replace"]:
                I = c["intermediate_size"]
                s.update({b + "mlp.gate_proj.weight": (I, h), b + "mlp.up_proj.weight": (I, h), b + "mlp.down_proj.weight": (h, I)})
                continue
            s.update({b + "mlp.gate.weight": (E, h), b + "mlp.gate.expert_bias": (E,)})
            for e in range(E):
                s.update({b + f"mlp.experts.{e}.gate_proj.weight": (Im, h), b + f"mlp.experts.{e}.up_proj.weight": (Im, h),
                          b + f"mlp.experts.{e}.down_proj.weight": (h, Im)})
            s.update({b + "mlp.shared_experts.gate_proj.weight": (Im * S, h), b + "mlp.shared_experts.up_proj.weight": (Im * S, h),
                      b + "mlp.shared_experts.down_proj.weight": (h, Im * S)})
        s["model.norm.weight"] = (h,)
        s["lm_head.weight"] = (V, h)
    return s


def random_tensors(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        x = torch.randn(shape, generator=gen)
        if name.endswith(("norm.weight", "ln_f.weight")) or "layernorm" in name:
            x = 1 + 0.1 * x
        elif name.endswith((".bias", "expert_bias")):
            x = 0.1 * x
        elif len(shape) == 2 and not ("wte" in name or "embed" in name or "word_embeddings" in name):
            x = x / math.sqrt(shape[1])
        out[name] = x.to(torch.bfloat16).contiguous()
    return out


def build_twin(family: str, out: Path, seed: int = SEED) -> Path:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tok = twin_tokenizer(family)
    cfg = twin_config(family, tok)
    tensors = random_tensors(tensor_shapes(family, cfg), seed)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tok.save_pretrained(out)
    if family == "dream":  # the real checkpoint's recommended settings travel with it
        gen = json.loads((MODEL_CODE / "dream-v0-instruct-7b" / "generation_config.json").read_text())
        gen.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
        (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--families", nargs="+", default=["llada", "dream", "llada2"])
    args = ap.parse_args(argv)
    for f in args.families:
        p = build_twin(f, args.out / f)
        print(f, p, sum(x.stat().st_size for x in p.iterdir()) // 1024, "KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
