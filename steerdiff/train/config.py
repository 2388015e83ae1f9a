"""Training settings: every field is a ``python -m steerdiff.train`` flag (``--field-name``)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TrainConfig:
    out: str
    steps: int = 4000
    seed: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup: int = 200
    weight_decay: float = 0.01
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 1024
    vocab_size: int = 6144
    n_examples: int = 200_000
    tokenizer_examples: int = 60_000
    max_len: int = 256
    max_extra_eos: int = 24
    eps: float = 1e-3
    log_every: int = 50
    eval_every: int = 500
    eval_n: int = 12
    threads: int = 1
    max_minutes: float = 0.0  # 0 = no wall-clock limit; otherwise stop (and save) when reached
    init_from: str = ""  # continue from a saved model dir (its tokenizer and weights; fresh optimizer)
    mix: str = "0.6,0.2,0.2"  # extraction,fill,plain proportions of the data
    nonce: float = 0.0  # share of extraction records with made-up names/places (forces copying)
    context: float = 0.0  # share of extraction texts with unrelated WordNet words around them
    copy: float = 0.0  # share of pure copy tasks (prompt -> the prompt or a span of it), out of the extraction share
    arch: str = "bert"  # "bert" (absolute positions) or "roformer" (rotary positions, BERT otherwise)
    tokenizer_from: str = ""  # fresh weights, but this saved model's tokenizer (no tokenizer training)
    workers: int = 1  # processes building and encoding the data (> 1 needs --init-from or --tokenizer-from)
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda"
    bf16: int = 1  # on cuda: bf16 autocast for the forward pass (weights and optimizer stay fp32)
    data: str = "records"  # "records" (six fixed record kinds) or "open" (open-ended tasks: steerdiff/train/tasks.py)
    heldout_file: str = ""  # JSONL of {"text", "expected_json"} evaluated beside the in-distribution set
    command: str = ""


def _lr_at(step: int, cfg: TrainConfig, time_progress: float = 0.0) -> float:
    """Warmup, then cosine decay over progress = max(step fraction, wall-clock fraction of --max-minutes),
    so a run cut short by its time budget still ends fully annealed."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, max((step - cfg.warmup) / max(1, cfg.steps - cfg.warmup), time_progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))
