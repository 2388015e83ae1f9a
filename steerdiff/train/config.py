"""Training settings: every field is a ``python -m steerdiff.train`` flag (``--field-name``)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TrainConfig:
    """One training run; ``python -m steerdiff.train`` exposes every field as ``--field-name``."""

    out: str  # output directory: model, tokenizer, TRAINING.md, training_log.json
    steps: int = 4000  # optimizer steps planned (the lr schedule spans them)
    seed: int = 0  # data, initialisation and masking all follow it
    batch_size: int = 32  # sequences per step
    lr: float = 1e-3  # peak AdamW learning rate
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * this
    warmup: int = 200  # linear warmup steps
    weight_decay: float = 0.01  # on matrices only (not biases or norms)
    hidden: int = 256  # model width
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads
    intermediate: int = 1024  # MLP width
    vocab_size: int = 6144  # byte-level BPE trained on the data (unless a tokenizer is reused)
    n_examples: int = 200_000  # examples built before training (cycled)
    tokenizer_examples: int = 60_000  # of them, the ones the tokenizer is trained on
    max_len: int = 256  # positions per sequence: prompt + canvas + [SEP]
    max_extra_eos: int = 24  # canvas = target + U{0..this} [EOS] (padding the model learns to place)
    eps: float = 1e-3  # t ~ U(eps, 1): the smallest masking rate
    log_every: int = 50  # steps between log lines (and loss read-backs)
    eval_every: int = 500  # steps between evaluations and checkpoints
    eval_n: int = 12  # in-distribution evaluation examples
    threads: int = 1  # torch CPU threads (a THREADS file in --out changes it while running)
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
