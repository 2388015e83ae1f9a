"""The training run: data, tokenizer, model, optimizer, the step loop, evaluation and checkpoints."""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict

import torch

from .data import build_dataset, eval_set, texts_for_tokenizer
from .batches import Packed, encode_canvas, make_batch_packed
from .checkpoint import _save
from .config import TrainConfig, _lr_at
from .evaluate import copy_probe, evaluate, load_heldout
from .model import bert_to_roformer, build_model
from .objective import diffusion_loss
from .tokenizer import train_tokenizer


def train(cfg: TrainConfig) -> dict:
    """Build data and tokenizer, train, save to ``cfg.out``; returns the info written to TRAINING.md."""
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(prev_threads)


def _shard_seeds(cfg: TrainConfig) -> list[tuple[int, int]]:
    """``(examples, seed)`` per data worker: one shard with the run's seed, or shards seeded ``seed * 1000 + i``."""
    if cfg.workers <= 1:
        return [(cfg.n_examples, cfg.seed)]
    k = cfg.workers
    return [(cfg.n_examples // k + (i < cfg.n_examples % k), cfg.seed * 1000 + i) for i in range(k)]


def _build_shard(args) -> tuple[Packed, dict]:
    """One data worker: build ``n`` examples from ``seed`` and encode them with the tokenizer in ``tok_dir``."""
    n, seed, cfg, tok_dir = args
    from transformers import AutoTokenizer

    ds = _dataset(cfg, n, seed)
    return _encode(AutoTokenizer.from_pretrained(tok_dir), ds["examples"]), ds["sizes"]


def _dataset(cfg: TrainConfig, n: int, seed: int) -> dict:
    return build_dataset(n, seed, mix=tuple(float(x) for x in cfg.mix.split(",")), nonce=cfg.nonce, copy=cfg.copy,
                           context=cfg.context, data=cfg.data)


def _encode(tok, examples: list[dict]) -> Packed:
    enc_p = tok([e["prompt"] for e in examples])["input_ids"]
    return Packed([(p, encode_canvas(tok, e["canvas"])) for e, p in zip(examples, enc_p)])


def build_data(cfg: TrainConfig):
    """``(tokenizer, Packed examples, sizes)``. With ``workers > 1`` the shards are built in parallel
    processes; that needs a saved tokenizer (``init_from`` or ``tokenizer_from``)."""
    from transformers import AutoTokenizer

    tok_dir = cfg.init_from or cfg.tokenizer_from
    if cfg.workers > 1:
        if not tok_dir:
            raise ValueError("--workers > 1 needs a saved tokenizer: pass --init-from or --tokenizer-from")
        import multiprocessing as mp

        with mp.get_context("fork").Pool(cfg.workers) as pool:  # before any CUDA use: fork is safe
            parts = pool.map(_build_shard, [(n, sd, cfg, tok_dir) for n, sd in _shard_seeds(cfg)])
        sizes: dict = {}
        for _, sz in parts:
            for k, v in sz.items():
                sizes[k] = v if k == "wordnet_sentences_available" else sizes.get(k, 0) + v
        return AutoTokenizer.from_pretrained(tok_dir), Packed.concat([p for p, _ in parts]), sizes
    ds = _dataset(cfg, cfg.n_examples, cfg.seed)
    examples = ds["examples"]
    if tok_dir:
        tok = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tok = train_tokenizer(texts_for_tokenizer(examples[: cfg.tokenizer_examples]), vocab_size=cfg.vocab_size)
    return tok, _encode(tok, examples), ds["sizes"]


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {cfg.device} requested but CUDA is not available")
    return torch.device(cfg.device)


def _train(cfg: TrainConfig) -> dict:
    t_start = time.time()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    os.makedirs(cfg.out, exist_ok=True)

    tok, data, sizes = build_data(cfg)
    lengths = data.lengths()
    print(f"data: {sizes} ({time.time() - t_start:.0f}s); tokenizer: vocab {len(tok)}; mean tokens/example "
          f"{float(lengths.mean()):.1f}", flush=True)
    dev = _device(cfg)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    amp = dev.type == "cuda" and bool(cfg.bf16)

    if cfg.init_from:
        from transformers import AutoModelForMaskedLM

        model = AutoModelForMaskedLM.from_pretrained(cfg.init_from, dtype=torch.float32)
        if cfg.arch == "roformer" and model.config.model_type == "bert":
            model = bert_to_roformer(model)
            print("ported the BERT weights to RoFormer (rotary positions; absolute position embeddings dropped)", flush=True)
        print(f"continuing from {cfg.init_from} (fresh optimizer and schedule)", flush=True)
    else:
        model = build_model(cfg, tok)
    model.to(dev).train()
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: {nparams / 1e6:.2f} M params on {dev}{' (bf16 autocast)' if amp else ''}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98),
                            **({"fused": True} if dev.type == "cuda" else {}))

    evalset = eval_set(cfg.eval_n)
    held = load_heldout(cfg.heldout_file) if cfg.heldout_file else []
    info = {"sizes": sizes, "vocab": len(tok), "params": nparams, "evals": [], "status": "training", "step": 0,
            "device": str(dev) + (" bf16 autocast" if amp else "")}
    logged: list[tuple[float, float]] = []
    pending: list[torch.Tensor] = []  # (2,) loss and ce per step, read back at log steps (no sync per step)

    def read_back():
        logged.extend(tuple(r) for r in torch.stack(pending).tolist())
        pending.clear()

    order = list(range(len(data)))
    pos = len(order)
    chunk: list[list[int]] = []
    t_loop = time.time()
    step = 0
    for step in range(1, cfg.steps + 1):
        if not chunk:  # length bucketing: 32 batches sorted by length, then shuffled
            need = cfg.batch_size * 32
            idx = []
            while len(idx) < need:
                if pos >= len(order):
                    rng.shuffle(order)
                    pos = 0
                idx += order[pos: pos + need - len(idx)]
                pos += need
            idx.sort(key=lambda i: lengths[i])
            chunk = [idx[i: i + cfg.batch_size] for i in range(0, need, cfg.batch_size)]
            rng.shuffle(chunk)
        bidx = chunk.pop()
        ids, att, cm = (x.to(dev, non_blocking=True) for x in make_batch_packed(data, bidx, tok, rng, cfg))
        tp = 0.0
        if cfg.max_minutes:
            budget = cfg.max_minutes * 60 - (t_loop - t_start)
            tp = (time.time() - t_loop) / max(1.0, budget)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step - 1, cfg, tp)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            loss, ce = diffusion_loss(model, ids, att, cm, tok.mask_token_id, cfg.eps, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pending.append(torch.stack([loss.detach(), ce.detach()]))
        if step % cfg.log_every == 0 or step == 1 or step == cfg.steps:
            read_back()
            _maybe_set_threads(cfg)
            w = logged[-cfg.log_every:]
            el = time.time() - t_loop
            print(f"step {step} loss {sum(a for a, _ in w) / len(w):.4f} ce {sum(b for _, b in w) / len(w):.4f} "
                  f"lr {opt.param_groups[0]['lr']:.2e} {el / step:.3f}s/step elapsed {el / 60:.1f}m", flush=True)
        over = bool(cfg.max_minutes) and (time.time() - t_start) / 60 > cfg.max_minutes
        if step % cfg.eval_every == 0 or step == cfg.steps or over:
            if pending:
                read_back()
            ev = evaluate(model, tok, evalset)
            w = logged[-cfg.log_every:]
            rec = {"step": step, "loss": sum(a for a, _ in w) / len(w), **{k: ev[k] for k in ("exact", "valid_json", "n")}}
            if held:
                hv = evaluate(model, tok, held)
                rec.update(heldout_exact=hv["exact"], heldout_n=hv["n"], heldout_valid=hv["valid_json"],
                           heldout_copy_probe=round(copy_probe(model, tok, held)["value_token_acc"], 4))
            info["evals"].append(rec)
            print(f"eval step {step}: {rec}", flush=True)
            for o, x in zip(ev["sample"], ev["expected"]):
                print(f"   got {o!r}\n   exp {x!r}", flush=True)
            _finish(info, logged, cfg, step, t_loop, t_start, "in progress (checkpoint)")
            _save(model, tok, cfg, info)
        if over:
            print(f"stopping at step {step}: --max-minutes {cfg.max_minutes} reached", flush=True)
            break
    status = "finished" if step == cfg.steps else f"stopped early at step {step} (wall-clock limit)"
    _finish(info, logged, cfg, step, t_loop, t_start, status)
    _save(model, tok, cfg, info)
    with open(os.path.join(cfg.out, "training_log.json"), "w") as f:
        json.dump({"config": asdict(cfg), "info": info, "loss": [a for a, _ in logged]}, f)
    print(f"done: {status}; final loss {info['final_loss']:.4f}; saved to {cfg.out}", flush=True)
    return info


def _maybe_set_threads(cfg: TrainConfig) -> None:
    """A file ``THREADS`` in the output folder, holding a number, changes the thread count of a running
    job at its next log line (on a shared machine, give cores back while benchmarking, take them after)."""
    try:
        with open(os.path.join(cfg.out, "THREADS")) as f:
            n = int(f.read().strip())
    except (OSError, ValueError):
        return
    if n > 0 and n != torch.get_num_threads():
        torch.set_num_threads(n)
        print(f"threads -> {n}", flush=True)


def _finish(info, logged, cfg, step, t_loop, t_start, status):
    w = logged[-max(1, min(len(logged), 200)):]
    info.update(step=step, status=status, minutes=(time.time() - t_loop) / 60,
                total_minutes=(time.time() - t_start) / 60, final_window=len(w),
                final_loss=sum(a for a, _ in w) / len(w), final_ce=sum(b for _, b in w) / len(w))
