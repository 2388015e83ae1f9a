"""Saving a trained model with its tokenizer and its TRAINING.md."""
from __future__ import annotations

import json
import os

from .config import TrainConfig


def _save(model, tok, cfg: TrainConfig, info: dict):
    os.makedirs(cfg.out, exist_ok=True)
    model.save_pretrained(cfg.out, safe_serialization=True)
    tok.save_pretrained(cfg.out)
    # the generic class name loads with transformers 4.x and 5.x alike
    tc = os.path.join(cfg.out, "tokenizer_config.json")
    with open(tc) as f:
        tcj = json.load(f)
    tcj["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(tc, "w") as f:
        json.dump(tcj, f, indent=2)
    with open(os.path.join(cfg.out, "TRAINING.md"), "w") as f:
        f.write(training_md(cfg, info))


def training_md(cfg: TrainConfig, info: dict) -> str:
    s = info.get("sizes", {})
    evals = info.get("evals", [])
    ev_lines = "\n".join(
        f"| {e['step']} | {e['loss']:.3f} | {e['exact']}/{e['n']} | {e['valid_json']}/{e['n']} | "
        f"{e.get('heldout_exact', '-')}/{e.get('heldout_n', '-')} |" for e in evals)
    return f"""# steerdiff-tiny: how it was trained

Status: {info.get('status', '?')}

Command: `{cfg.command or 'python -m steerdiff.train --out ' + cfg.out}`
{('Continued from `' + cfg.init_from + '` (its tokenizer and weights; fresh optimizer and schedule).' + chr(10)) if cfg.init_from else ''}{('Fresh weights; the tokenizer of `' + cfg.tokenizer_from + '` (not retrained).' + chr(10)) if cfg.tokenizer_from and not cfg.init_from else ''}
## Model
`{'RoFormerForMaskedLM' if cfg.arch == 'roformer' else 'BertForMaskedLM'}` (transformers, no custom code): hidden {cfg.hidden}, {cfg.layers} layers, {cfg.heads} heads,
intermediate {cfg.intermediate}, max_position_embeddings 512, vocab {info.get('vocab')}, {info.get('params', 0) / 1e6:.2f} M parameters, fp32 safetensors.
Special ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 [EOS]=5 (also in config.json: mask_token_id, eos_token_id).

## Layout (the inference loop uses exactly this)
`input_ids = tok(prompt)["input_ids"] + canvas + [SEP]`, canvas = `tok(target, add_special_tokens=False)["input_ids"]`
followed by [EOS] up to the canvas length L. In training L = target length + U{{0..{cfg.max_extra_eos}}} extra [EOS].
Template-fill examples also contain runs of 1-6 [EOS] after a middle span (hole padding inside the canvas).
Extraction targets: compact JSON (`separators=(",", ":")`, `ensure_ascii=False`), keys in schema order;
**optional fields not mentioned in the text are absent** (never null).

## Data (seed {cfg.seed}, built by `steerdiff/train/data.py`)
- extraction: {s.get('extraction')} examples, {s.get('copy', 0)} more pure copy tasks, nonce share {cfg.nonce}, context share {cfg.context} (6 record kinds: Person, Contact, Address, Product, Order, Event;
  compositional templates: subject frames x shuffled predicate clauses with omitted fields, key-value forms,
  bare lists, whole-sentence templates; dates/times/prices written in varied forms, normalised in the JSON)
- template fill: {s.get('fill')} examples (review sentences, positive and negative, plus WordNet sentences)
- plain text: {s.get('plain')} examples (WordNet glosses and examples; {s.get('wordnet_sentences_available')} distinct sentences available)
- total: {s.get('total')} examples, {s.get('chars')} characters; {'tokenizer from ' + (cfg.init_from or cfg.tokenizer_from) if (cfg.init_from or cfg.tokenizer_from) else f'tokenizer trained on {cfg.tokenizer_examples} of them'}.

## Training
MDLM/LLaDA objective: t ~ U({cfg.eps}, 1) per sequence, canvas positions masked with prob t (prompt never),
loss = sum(CE/t over masked) / number of canvas tokens in the batch.
AdamW (lr {cfg.lr}, weight decay {cfg.weight_decay}), {cfg.warmup} warmup steps then cosine decay to {cfg.min_lr_ratio}x
over max(step fraction, wall-clock fraction of --max-minutes {cfg.max_minutes}) (so a time-limited run ends annealed),
batch {cfg.batch_size}, grad clip 1.0, on {info.get('device', 'cpu')} ({cfg.threads} CPU thread(s)), seed {cfg.seed}, {cfg.workers} data worker(s).

- steps done: {info.get('step')} of {cfg.steps} planned
- examples seen: {info.get('step', 0) * cfg.batch_size}
- wall time: {info.get('minutes', 0):.1f} min (training loop), {info.get('total_minutes', 0):.1f} min total with data and tokenizer
- final loss (mean of the last {info.get('final_window', 0)} logged steps, weighted diffusion loss): {info.get('final_loss', float('nan')):.4f}
- final unweighted CE on masked tokens: {info.get('final_ce', float('nan')):.4f}

## Evaluation during training
Greedy denoising (one most-confident position committed per step, canvas = expected length + 8),
exact match of the decoded canvas (EOS stripped) against the expected JSON. "in-dist" = {cfg.eval_n} prompts from
the training templates with an unseen faker seed; "held-out" = prompts from `--heldout-file`
({cfg.heldout_file or 'none given'}; written by `benchmarks/extraction_data.py --write`, templates never used in training).

| step | loss | in-dist exact | in-dist valid JSON | held-out exact |
|---|---|---|---|---|
{ev_lines}
"""
