"""Training of steerdiff-tiny, the embedded default masked diffusion model.

``python -m steerdiff.train --out DIR --steps N --seed 0`` builds the data (``data.py``), trains the
byte-level BPE (``tokenizer.py``), then trains a ``BertForMaskedLM`` with the MDLM/LLaDA objective:

    input_ids = tok(prompt)["input_ids"] + canvas + [SEP]      # tok() adds [CLS] ... [SEP]
    canvas    = tok(target, add_special_tokens=False)["input_ids"] + [EOS] * extra,  extra ~ U{0..24}

per sequence ``t ~ U(eps, 1)``; each canvas position is masked with probability ``t`` (the prompt
never); loss = sum over masked positions of CE / t, divided by the number of canvas tokens in the batch.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field

import torch

from . import data as D
from .tokenizer import train_tokenizer

__all__ = ["TrainConfig", "train", "encode_example", "greedy_denoise"]


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
    command: str = ""


# ----------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------
def encode_canvas(tok, segs) -> list[int]:
    eos = tok.eos_token_id
    ids: list[int] = []
    for s in segs:
        ids += [eos] * s if isinstance(s, int) else tok(s, add_special_tokens=False)["input_ids"]
    return ids


def encode_example(tok, ex: dict) -> tuple[list[int], list[int]]:
    """(prompt ids with [CLS] ... [SEP], canvas ids without the trailing EOS padding)."""
    return tok(ex["prompt"])["input_ids"], encode_canvas(tok, ex["canvas"])


def make_batch(items, tok, rng: random.Random, cfg: TrainConfig):
    """items: list of (prompt_ids, canvas_ids). Returns input_ids, attention_mask, canvas mask (B, T):
    each row is the prompt, the canvas followed by U{0..max_extra_eos} [EOS], then [SEP], right-padded.
    A prompt that leaves under 8 positions of ``max_len`` keeps its [CLS] and its last ``max_len // 2``
    tokens; the canvas is cut to fit ``max_len``."""
    return make_batch_packed(Packed(items), range(len(items)), tok, rng, cfg)


class Packed:
    """Encoded examples in flat arrays: example ``i`` is ``tokens[start[i]: start[i] + plen[i] + clen[i]]``,
    its prompt (with [CLS] ... [SEP]) first, then its canvas (without the trailing [EOS] padding)."""

    def __init__(self, pairs=None, *, tokens=None, plen=None, clen=None):
        import numpy as np

        if pairs is not None:
            plen = np.fromiter((len(p) for p, _ in pairs), dtype=np.int64, count=len(pairs))
            clen = np.fromiter((len(c) for _, c in pairs), dtype=np.int64, count=len(pairs))
            tokens = np.fromiter((t for p, c in pairs for t in (*p, *c)), dtype=np.int32,
                                 count=int(plen.sum() + clen.sum()))
        self.tokens, self.plen, self.clen = tokens, plen, clen  # (N_tok,) (N,) (N,)
        self.start = np.concatenate([[0], np.cumsum(plen + clen)[:-1]]).astype(np.int64)  # (N,)

    def __len__(self) -> int:
        return len(self.plen)

    def lengths(self):
        return self.plen + self.clen  # (N,)

    def item(self, i: int) -> tuple[list[int], list[int]]:
        a, p, c = int(self.start[i]), int(self.plen[i]), int(self.clen[i])
        return self.tokens[a: a + p].tolist(), self.tokens[a + p: a + p + c].tolist()

    @classmethod
    def concat(cls, parts: list["Packed"]) -> "Packed":
        import numpy as np

        return cls(tokens=np.concatenate([x.tokens for x in parts]), plen=np.concatenate([x.plen for x in parts]),
                   clen=np.concatenate([x.clen for x in parts]))


def make_batch_packed(data: Packed, bidx, tok, rng: random.Random, cfg: TrainConfig):
    """:func:`make_batch` of examples ``bidx`` of ``data``, filled with numpy slices (it feeds a GPU)."""
    import numpy as np

    eos, sep, pad = tok.eos_token_id, tok.sep_token_id, tok.pad_token_id
    rows = []  # (tokens start, prompt kept (a, b), canvas start, canvas length, extra EOS)
    for i in bidx:
        s0, p, c = int(data.start[i]), int(data.plen[i]), int(data.clen[i])
        extra = rng.randint(0, cfg.max_extra_eos)
        if cfg.max_len - p - 1 < 8:  # over-long prompt: keep [CLS] and its end (as make_batch)
            keep = min(cfg.max_len // 2, p)
            pspans = [(s0, s0 + 1), (s0 + p - keep, s0 + p)]
            p = 1 + keep
        else:
            pspans = [(s0, s0 + p)]
        budget = cfg.max_len - p - 1
        rows.append((pspans, p, s0 + int(data.plen[i]), c, extra, budget))
    T = max(p + min(c + e, bud) + 1 for _, p, _, c, e, bud in rows)
    ids = np.full((len(rows), T), pad, dtype=np.int64)  # (B, T)
    att = np.zeros((len(rows), T), dtype=np.int64)  # (B, T)
    cm = np.zeros((len(rows), T), dtype=bool)  # (B, T)
    for r, (pspans, p, cs, c, e, bud) in enumerate(rows):
        k = 0
        for a, b in pspans:
            ids[r, k: k + b - a] = data.tokens[a:b]
            k += b - a
        n = min(c, bud)
        ids[r, p: p + n] = data.tokens[cs: cs + n]
        m = min(c + e, bud)
        ids[r, p + n: p + m] = eos
        ids[r, p + m] = sep
        att[r, : p + m + 1] = 1
        cm[r, p: p + m] = True
    return torch.from_numpy(ids), torch.from_numpy(att), torch.from_numpy(cm)


def diffusion_loss(model, ids, att, cm, mask_id: int, eps: float, gen: torch.Generator):
    """LLaDA's masked-diffusion loss; logits are computed only at masked positions (cheaper)."""
    B, T = ids.shape
    t = torch.rand(B, 1, generator=gen, device=ids.device) * (1 - eps) + eps  # (B, 1)
    masked = (torch.rand(B, T, generator=gen, device=ids.device) < t) & cm  # (B, T) only canvas positions
    if not masked.any():  # rare: force one masked canvas position
        i, j = cm.nonzero()[0]
        masked[i, j] = True
    x = ids.masked_fill(masked, mask_id)
    h = model.base_model(input_ids=x, attention_mask=att).last_hidden_state  # (B, T, H)
    logits = model.cls(h[masked])  # (M, V)
    ce = torch.nn.functional.cross_entropy(logits.float(), ids[masked], reduction="none")  # (M,)
    w = (1.0 / t.expand(B, T))[masked]  # (M,) 1/t weight
    return (ce * w).sum() / cm.sum(), ce.mean()


# ----------------------------------------------------------------------------------------------
# Greedy denoising (evaluation)
# ----------------------------------------------------------------------------------------------
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


def _heldout_evalset(n: int) -> list[dict]:
    """Held-out templates from benchmarks/extraction_data.py when it is importable (repo checkout)."""
    try:
        from benchmarks.extraction_data import heldout
    except Exception:
        return []
    return [{"text": h["text"], "expected_json": D.to_json(h["expected"])} for h in heldout(n=n, seed=12345)]


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def _lr_at(step: int, cfg: TrainConfig, time_progress: float = 0.0) -> float:
    """Warmup, then cosine decay over progress = max(step fraction, wall-clock fraction of --max-minutes),
    so a run cut short by its time budget still ends fully annealed."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, max((step - cfg.warmup) / max(1, cfg.steps - cfg.warmup), time_progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def bert_to_roformer(bert):
    """A ``RoFormerForMaskedLM`` with ``bert``'s weights (same layout; rotary instead of absolute positions)."""
    from transformers import RoFormerConfig, RoFormerForMaskedLM

    bc = bert.config
    rc = RoFormerConfig(vocab_size=bc.vocab_size, embedding_size=bc.hidden_size, hidden_size=bc.hidden_size,
                        num_hidden_layers=bc.num_hidden_layers, num_attention_heads=bc.num_attention_heads,
                        intermediate_size=bc.intermediate_size, max_position_embeddings=bc.max_position_embeddings,
                        type_vocab_size=bc.type_vocab_size, pad_token_id=bc.pad_token_id,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    for k in ("mask_token_id", "eos_token_id", "cls_token_id", "sep_token_id"):
        setattr(rc, k, getattr(bc, k, None))
    model = RoFormerForMaskedLM(rc)
    src = {k.replace("bert.", "roformer.", 1): v for k, v in bert.state_dict().items()}
    ported = {k: src[k] for k, v in model.state_dict().items() if k in src and src[k].shape == v.shape}
    left = set(model.state_dict()) - set(ported)
    if left - {"roformer.encoder.embed_positions.weight"}:  # the rotary table is fixed, computed at init
        raise ValueError(f"cannot port BERT weights to RoFormer: {sorted(left)[:5]}")
    model.load_state_dict(ported, strict=False)
    return model


def build_model(cfg: TrainConfig, tok):
    from transformers import BertConfig, BertForMaskedLM

    conf = BertConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=tok.pad_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    # ids the inference loop needs, also readable from config.json
    conf.mask_token_id = tok.mask_token_id
    conf.eos_token_id = tok.eos_token_id
    conf.cls_token_id = tok.cls_token_id
    conf.sep_token_id = tok.sep_token_id
    return bert_to_roformer(BertForMaskedLM(conf)) if cfg.arch == "roformer" else BertForMaskedLM(conf)


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
the training templates with an unseen faker seed; "held-out" = prompts from `benchmarks/extraction_data.py`
(templates never used in training).

| step | loss | in-dist exact | in-dist valid JSON | held-out exact |
|---|---|---|---|---|
{ev_lines}
"""


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
    return D.build_dataset(n, seed, mix=tuple(float(x) for x in cfg.mix.split(",")), nonce=cfg.nonce, copy=cfg.copy,
                           context=cfg.context)


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
        tok = train_tokenizer(D.texts_for_tokenizer(examples[: cfg.tokenizer_examples]), vocab_size=cfg.vocab_size)
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

    evalset = D.eval_set(cfg.eval_n)
    held = None  # loaded at the first evaluation (benchmarks/extraction_data.py, when importable)
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
            if held is None:
                held = _heldout_evalset(cfg.eval_n)
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
