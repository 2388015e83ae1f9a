"""Evaluation during training: greedy denoising, exact match, and a copy probe."""
from __future__ import annotations

import json
import re

import torch

from .data import to_json


@torch.no_grad()
def greedy_denoise(model, tok, prompts: list[str], lengths: list[int], per_step: int = 1) -> list[str]:
    """Fill a canvas of ``lengths[i]`` masks after each prompt, committing the most confident masked
    position(s) each step; the [EOS] run is stripped. Special tokens other than [EOS] are never chosen."""
    model.eval()
    mask_id, eos, sep, pad = tok.mask_token_id, tok.eos_token_id, tok.sep_token_id, tok.pad_token_id
    seqs, spans = [], []
    for p, L in zip(prompts, lengths):
        pi = tok(p)["input_ids"]
        seqs.append(pi + [mask_id] * L + [sep])
        spans.append((len(pi), len(pi) + L))
    T = max(map(len, seqs))
    x = torch.full((len(seqs), T), pad, dtype=torch.long)
    att = torch.zeros_like(x)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
    dev = next(model.parameters()).device
    x, att = x.to(dev), att.to(dev)
    banned = torch.tensor([i for i in tok.all_special_ids if i != eos], device=dev)
    while (x == mask_id).any():
        logits = model(input_ids=x, attention_mask=att).logits.float()  # (B, T, V)
        logits[..., banned] = -float("inf")
        conf, pred = logits.softmax(-1).max(-1)  # (B, T)
        is_m = x == mask_id
        conf = conf.masked_fill(~is_m, -1.0)
        for b in range(x.shape[0]):
            n = min(per_step, int(is_m[b].sum()))
            if n:
                idx = conf[b].topk(n).indices
                x[b, idx] = pred[b, idx]
    outs = []
    for b, (a, e) in enumerate(spans):
        ids = [i for i in x[b, a:e].tolist() if i != eos]
        outs.append(tok.decode(ids, skip_special_tokens=False))
    model.train()
    return outs


def evaluate(model, tok, evalset: list[dict]) -> dict:
    prompts = [e["text"] for e in evalset]
    exp = [e["expected_json"] for e in evalset]
    lens = [len(tok(s, add_special_tokens=False)["input_ids"]) + 8 for s in exp]
    outs = greedy_denoise(model, tok, prompts, lens, per_step=1)
    exact = sum(o == x for o, x in zip(outs, exp))
    valid = 0
    for o in outs:
        try:
            json.loads(o)
            valid += 1
        except Exception:
            pass
    return {"exact": exact, "valid_json": valid, "n": len(exp), "sample": outs[:3], "expected": exp[:3]}


@torch.no_grad()
def copy_probe(model, tok, evalset: list[dict]) -> dict:
    """Can the model copy? For every token inside a JSON value of the expected canvas, mask that token alone
    (the rest of the canvas given) and check the argmax. ``value_token_acc``: the share predicted right.
    A model that ignores the prompt scores near the rate at which its prior guesses values."""
    right = total = 0
    for e in evalset:
        exp = e["expected_json"]
        enc = tok(exp, add_special_tokens=False, return_offsets_mapping=True)
        c, offs = enc["input_ids"], enc["offset_mapping"]
        spans = []  # character ranges of the values (strings without quotes, numbers)
        for m in re.finditer(r'":("(?:[^"\\]|\\.)*"|[-0-9.eE+]+)', exp):
            a, b = m.span(1)
            spans.append((a + 1, b - 1) if exp[a] == '"' else (a, b))
        pos = [i for i, (a, b) in enumerate(offs) if b > a and any(sa <= a and b <= sb for sa, sb in spans)]
        if not pos:
            continue
        p = tok(e["text"])["input_ids"]
        dev = next(model.parameters()).device
        ids = torch.tensor([p + c + [tok.sep_token_id]] * len(pos), device=dev)  # (P, T): one masked token per row
        rows = torch.arange(len(pos), device=dev)
        cols = torch.tensor([len(p) + i for i in pos], device=dev)
        ids[rows, cols] = tok.mask_token_id
        logits = model(input_ids=ids).logits[rows, cols]  # (P, V)
        right += int((logits.argmax(-1) == torch.tensor([c[i] for i in pos], device=dev)).sum())
        total += len(pos)
    return {"value_token_acc": right / max(total, 1), "value_tokens": total}


def load_heldout(path: str) -> list[dict]:
    """``[{"text", "expected_json"}, ...]`` from a JSONL file (one object per line; ``expected`` objects are
    written as compact JSON). Training never imports the benchmarks: they write this file
    (``python -m benchmarks.extraction_data --write FILE``)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if "expected_json" not in rec:
                if "expected" not in rec or "text" not in rec:
                    raise ValueError(f"{path}:{n}: a held-out record needs 'text' and 'expected_json' (or 'expected')")
                rec = {"text": rec["text"], "expected_json": to_json(rec["expected"])}
            out.append({"text": rec["text"], "expected_json": rec["expected_json"]})
    return out
