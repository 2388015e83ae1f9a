"""Encoding examples and building padded training batches (prompt, canvas, [EOS] run, [SEP])."""
from __future__ import annotations

import random

import torch

from .config import TrainConfig


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
