"""Loop overhead: time per denoising step split into the model's forward pass and everything else.

A random-weight BERT masked LM (6 layers, width 512, V = 32,000 by default), canvas L = 256, batch 8,
run with no plugin and with the template plugin, side by side in one process. Reports medians over
steps; the goal is non-model time <= 10% of the step on CPU and <= 5% on GPU.

    python benchmarks/loop_overhead.py [--device cuda] [--steps 6] [--repeats 2]
Writes benchmarks/results/loop_overhead_<device>.json.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import steerdiff as sd  # noqa: E402


def build(vocab: int, layers: int, width: int, device: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
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
    cfg = BertConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=8,
                     intermediate_size=4 * width, max_position_embeddings=512)
    model = BertForMaskedLM(cfg)
    adapter = sd.wrap_model(model, hf, family="masked", device=device)
    adapter.profile = True
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
    args = ap.parse_args()

    adapter = build(args.vocab, args.layers, args.width, args.device)
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
        "model": {"layers": args.layers, "width": args.width, "vocab": args.vocab},
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
