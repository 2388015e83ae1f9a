"""Copy guidance: prefer tokens whose text occurs in a source (by default the row's prompt).

    sd.generate(model, text, constraints=[sd.JSONSchema(Person)], guidance=[sd.CopyGuidance(scale=2.0)])

Extraction copies values out of the text: a soft pointer prior helps a small model pick the right
tokens. Two biases, nothing banned (exact constraints stay in charge: their masks are applied after
biases, so the output is as valid as without it). Guarantee: ``soft``.

- unigram: every token whose bytes (at least ``min_bytes`` long) occur in the source gets ``+scale``;
- continuation: at a masked position whose left neighbour is committed, tokens that follow that
  neighbour somewhere in the source get ``+follow`` (and symmetrically tokens that precede a committed
  right neighbour), so a copied span continues in source order. Tokens are compared without their
  leading space (``" Lopez"`` and ``"Lopez"`` are the same word), since a word is tokenized with a
  space inside a sentence and without one after a JSON quote. ``sd.fill(..., copy=scale)`` adds it (default ``fill.COPY_SCALE``; ``copy=0`` turns it off).
"""

from __future__ import annotations

import torch

from steerdiff.constraints import Constraint
from steerdiff.edits import LogitsEdit
from steerdiff.errors import ConstraintError
from steerdiff.hookspecs import hookimpl
from steerdiff.vocab import vocab_for

KEY = "copy"


class CopyGuidance(Constraint):
    """Bias toward tokens that occur in ``source`` (default: the row's prompt text)."""

    guarantee = "soft"

    def __init__(self, scale: float = 2.0, source: str | None = None, min_bytes: int = 2, follow: float | None = None):
        for name, v in (("scale", scale), ("follow", follow)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConstraintError(f"CopyGuidance {name} must be a number, got {v!r}")
        self.follow = float(scale if follow is None else follow)
        if source is not None and not isinstance(source, str):
            raise ConstraintError(f"CopyGuidance source must be a string, got {type(source).__name__}")
        self.scale, self.source, self.min_bytes = float(scale), source, int(min_bytes)


def source_tokens(vocab, source: str, min_bytes: int) -> list[int]:
    """Ids of tokens whose bytes (>= ``min_bytes`` long, not special) occur in ``source``."""
    src = source.encode("utf-8")
    return [t for t, b in enumerate(vocab.token_bytes) if len(b) >= min_bytes and t not in vocab.special and b in src]


@hookimpl
def register_constraints(register):
    register("copy", CopyGuidance)


def _word_index(vocab) -> tuple[list[bytes], dict[bytes, list[int]]]:
    """Each token's bytes without a leading space (a token of spaces only keeps them: tokenizers that
    split spaces off words spell ``"Maria Lopez"`` as ``Maria`` `` `` ``Lopez`` in prompt and canvas
    alike), and the ids sharing each such key."""
    keys = [(b.lstrip(b" ") or b) if t not in vocab.special else b"" for t, b in enumerate(vocab.token_bytes)]
    ids: dict[bytes, list[int]] = {}
    for t, k in enumerate(keys):
        if k:
            ids.setdefault(k, []).append(t)
    return keys, ids


@hookimpl
def prepare(run):
    """Per row: the unigram bias ``(V,)`` and the follow tables. A source word ``q`` (1..Q, 0 = none)
    gives ``after[q] (V,)``: the tokens that come right after it in the source, and
    ``before[q]`` for those right before it (bool), ``word (V,)`` maps each token to its source word."""
    items = list(run.constraints_of(CopyGuidance))
    if not items:
        return
    vocab = vocab_for(run.tokenizer)
    keys, ids = _word_index(vocab)
    V = max(len(keys), len(run.tokenizer))
    per = []
    for row, c in items:
        text = c.source if c.source is not None else run.prompts[row]
        seq = [keys[t] for t in run.tokenizer(text, add_special_tokens=False)["input_ids"] if t < len(keys) and keys[t]]
        q_of = {k: q for q, k in enumerate(dict.fromkeys(seq), start=1)}
        word = torch.zeros(V, dtype=torch.long)  # (V,) source word of each token, 0 if none
        for k, q in q_of.items():
            word[ids[k]] = q
        after = torch.zeros((len(q_of) + 1, V), dtype=torch.bool)  # (Q+1, V)
        before = torch.zeros((len(q_of) + 1, V), dtype=torch.bool)
        for a, b in zip(seq, seq[1:]):
            after[q_of[a], ids[b]] = True
            before[q_of[b], ids[a]] = True
        uni = torch.zeros(V)
        uni[source_tokens(vocab, text, c.min_bytes)] = c.scale
        per.append((row, uni, word, after, before, c.follow))
    Q = max(p[3].shape[0] for p in per)
    pad = lambda t: torch.cat([t, t.new_zeros((Q - t.shape[0], V))])  # noqa: E731
    run.state[KEY] = {
        "rows": torch.tensor([p[0] for p in per], dtype=torch.long),  # (R,)
        "uni": torch.stack([p[1] for p in per]),  # (R, V)
        "word": torch.stack([p[2] for p in per]),  # (R, V)
        "after": torch.stack([pad(p[3]) for p in per]),  # (R, Q+1, V)
        "before": torch.stack([pad(p[4]) for p in per]),  # (R, Q+1, V)
        "follow": torch.tensor([p[5] for p in per]),  # (R,)
        "devices": {},
    }


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    st = run.state.get(KEY)
    if not st:
        return None
    dev, V = logits.device, logits.shape[-1]
    if dev not in st["devices"]:
        st["devices"][dev] = {k: st[k].to(dev) for k in ("rows", "uni", "word", "after", "before", "follow")}
    t = st["devices"][dev]
    rows = t["rows"]
    cv, m = canvas[rows], masked[rows]  # (R, L)
    R, L = cv.shape
    r = torch.arange(R, device=dev)[:, None]  # (R, 1)
    w = t["word"][r, cv.clamp(0, t["word"].shape[1] - 1)]  # (R, L) source word of each committed token
    w = torch.where(m, torch.zeros_like(w), w)  # masked positions hold no word yet
    zero = torch.zeros((R, 1), dtype=w.dtype, device=dev)
    left = torch.cat([zero, w[:, :-1]], dim=1)  # (R, L) word of the left neighbour
    right = torch.cat([w[:, 1:], zero], dim=1)  # (R, L) word of the right neighbour
    left, right = left * m, right * m  # the follow bias goes to masked positions only
    near = t["after"][r, left] | t["before"][r, right]  # (R, L, Vs) continues the source at either side
    bias = near * t["follow"][:, None, None] + t["uni"][:, None, :]  # (R, L, Vs)
    bias = bias[..., :V] if bias.shape[-1] >= V else torch.nn.functional.pad(bias, (0, V - bias.shape[-1]))
    return LogitsEdit(bias=bias.to(logits.dtype), rows=rows)
