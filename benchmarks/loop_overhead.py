"""Loop overhead: time per denoising step split into the model's forward pass and everything else.

A random-weight BERT masked LM (6 layers, width 512, V = 32,000 by default), canvas L = 256, batch 8,
run with no plugin and with the template plugin, side by side in one process. Reports medians over
steps; the goal is non-model time <= 10% of the step on CPU and <= 5% on GPU.

    python -m benchmarks.loop_overhead [--device cuda] [--steps 6] [--repeats 2]
Writes benchmarks/results/loop_overhead_<device>.json.

``--arch llada`` runs a LLaDA-shaped model instead: the real LLaDA-8B config.json with ``--width``,
``--layers`` and ``--vocab`` substituted, built natively (steerdiff.families: LlamaForCausalLM with
bidirectional attention) with random weights in ``--dtype``. A 1B-parameter one for the GPU:
``--arch llada --width 2048 --layers 12 --vocab 126464 --batch 32 --length 256 --dtype bfloat16``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import steerdiff as sd

HERE = Path(__file__).resolve().parent


def build(vocab: int, layers: int, width: int, device: str, arch: str = "bert", dtype: str = "float32"):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    # A word-level vocabulary of `vocab` entries: the tokenizer's size must match the model's logits.
    specials = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[EOS]", "[UNK]"]
    words = specials + [f"w{i}" for i in range(vocab - len(specials))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                                 mask_token="[MASK]", eos_token="[EOS]", unk_token="[UNK]")
    torch.manual_seed(0)
    if arch == "llada":
        return build_llada(hf, vocab, layers, width, device, getattr(torch, dtype))
    cfg = BertConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=8,
                     intermediate_size=4 * width, max_position_embeddings=512)
    model = BertForMaskedLM(cfg)
    adapter = sd.wrap_model(model, hf, family="masked", device=device)
    adapter.profile = True
    return adapter


def build_llada(tokenizer, vocab: int, layers: int, width: int, device: str, dtype: torch.dtype):
    """A LLaDA-shaped model with random weights: LLaDA-8B's config with the sizes substituted."""
    from steerdiff.adapters import LLaDAAdapter
    from steerdiff.families import NativeDiffusionLM, llada_config

    real = HERE.parent.parent / "shared" / "testdata" / "model_code" / "llada-8b-instruct" / "config.json"
    raw = json.loads(real.read_text()) if real.is_file() else {"d_model": 4096, "n_heads": 32, "rope_theta": 500000.0}
    raw.update(d_model=width, n_heads=max(1, width // 128), n_kv_heads=max(1, width // 128), n_layers=layers,
               mlp_hidden_size=3 * width, vocab_size=vocab, embedding_size=vocab, mask_token_id=tokenizer.mask_token_id)
    cfg, _ = llada_config(raw)
    cfg._attn_implementation = "sdpa"
    from transformers import LlamaForCausalLM

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            inner = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(old)
    model = NativeDiffusionLM(inner.eval(), "llada")
    model.config.mask_token_id = tokenizer.mask_token_id
    adapter = LLaDAAdapter(model, tokenizer, mask_id=tokenizer.mask_token_id, fill_id=tokenizer.eos_token_id, device=device)
    adapter.profile = True
    n = sum(p.numel() for p in inner.parameters())
    print(f"LLaDA-shaped model: {n / 1e9:.2f}B parameters, {dtype}, {device}")
    return adapter


def measure(adapter, *, batch: int, length: int, steps: int, repeats: int, constraints) -> dict:
    model_s, step_s = [], []
    for r in range(repeats):
        outs = sd.generate(adapter, ["w1 w2 w3 w4"] * batch, length=length, steps=steps, constraints=constraints, seed=r, trace=False)
        for m, t in outs[0].timings["per_step"]:
            model_s.append(m)
            step_s.append(t)
    rest = [t - m for m, t in zip(model_s, step_s)]
    med_step, med_model, med_rest = statistics.median(step_s), statistics.median(model_s), statistics.median(rest)
    return {
        "steps_measured": len(step_s),
        "median_step_ms": round(1000 * med_step, 2),
        "median_model_ms": round(1000 * med_model, 2),
        "median_other_ms": round(1000 * med_rest, 2),
        "other_share_of_step": round(med_rest / med_step, 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="denoising steps per run (each one is measured)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--arch", choices=["bert", "llada"], default="bert")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()

    adapter = build(args.vocab, args.layers, args.width, args.device, args.arch, args.dtype)
    holes = " ".join(f"w{i} {{{{h{i}:12}}}}" for i in range(1, 17))  # 16 fixed words + 16 holes of 12 tokens
    template = sd.Template(holes)
    sd.generate(adapter, "w1", length=16, steps=2, trace=False)  # warm-up (allocator, kernels)
    rows = {}
    # interleave configurations so machine noise hits both alike
    for name, cons in (("no_plugins", None), ("template", [template])):
        rows[name] = measure(adapter, batch=args.batch, length=args.length, steps=args.steps, repeats=args.repeats, constraints=cons)
    goal = 0.05 if args.device.startswith("cuda") else 0.10
    result = {
        "benchmark": "loop_overhead",
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "model": {"arch": args.arch, "layers": args.layers, "width": args.width, "vocab": args.vocab, "dtype": args.dtype,
                  "parameters": sum(p.numel() for p in adapter.model.parameters())},
        "canvas": {"batch": args.batch, "length": args.length, "steps": args.steps, "repeats": args.repeats},
        "goal_other_share": goal,
        "results": rows,
        "meets_goal": {k: v["other_share_of_step"] <= goal for k, v in rows.items()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = Path(args.out) if args.out else HERE / "results" / f"loop_overhead_{'gpu' if args.device.startswith('cuda') else 'cpu'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'config':<12} {'step ms':>9} {'model ms':>9} {'other ms':>9} {'other %':>8}")
    for k, v in rows.items():
        print(f"{k:<12} {v['median_step_ms']:>9.1f} {v['median_model_ms']:>9.1f} {v['median_other_ms']:>9.1f} {100 * v['other_share_of_step']:>7.2f}%")
    print(f"goal: other <= {100 * goal:.0f}% of the step -> {result['meets_goal']}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
