"""Guidance: soft constraints that add a bias to the logits every step.

    sd.generate(model, "prompt", length=32, guidance=[sd.ClassifierGuidance("sentiment", target="positive", scale=3.0)])
    sd.generate(model, "prompt", length=32, guidance=[sd.ClassifierFreeGuidance(scale=1.5)])

Types (all ``guarantee = "soft"``; they only return ``LogitsEdit.bias``):

- ``"classifier"`` -> :class:`ClassifierGuidance` ``(classifier, target, scale, mode=None, k=4, ...)``:
  ``classifier`` is a registered name (``"sentiment"``, ``"sentiment-probe"``, see
  :mod:`steerdiff_plugins.scoring.classifiers` for the protocol and the registry) or an object. Three kinds:
  ``mode="gradient"`` (bias = scale * d log p(target | x) / d onehot(x) at masked positions),
  ``mode="table"`` (bias = scale * token score), ``mode="scorer"`` (rerank ``k`` sampled candidate
  fills with an external scorer each step, bias ``scale`` toward the best candidate's tokens).
- ``"lexicon"`` -> :class:`LexiconGuidance` ``(lexicon, target="positive", scale)``: a table classifier
  from a ``{word: score}`` dict (or a registered name).
- ``"cfg"`` -> :class:`ClassifierFreeGuidance` ``(scale, uncond_prompt=None)``: a second forward pass
  with the prompt masked (LLaDA: every non-special prompt token replaced by the mask token) or with
  ``uncond_prompt`` (a negative prompt); bias = scale * (log_softmax(cond) - log_softmax(uncond)).
  The extra pass goes through ``run.model_logits``, so ``forward_passes`` counts two per step. When the
  unconditional prompt equals the prompt (an empty prompt) the bias is zero and no pass is spent.

Guidance composes with exact constraints: the core sums biases and then applies the ANDed masks, so a
banned token stays at ``-inf`` whatever the bias (guidance can never produce an invalid output). Only
masked positions inside the constraint's ``span`` (the whole canvas when None) get a bias.

The plugin also provides two exact helpers used by :func:`steerdiff.rewrite` (usable on their own):
``"pinned"`` -> :class:`Pinned` ``({position: token_id})`` writes and freezes tokens at canvas positions
(refinement rounds keep the confident tokens of a previous fill this way), and ``"hole_start"`` ->
:class:`HoleStart` ``(position, space)``: the token at ``position`` is text, not padding, and starts with
a space (``space=True``: the hole took over the space before it, so the model sees its usual
``" word"`` tokens) or, for byte-level vocabularies, does not (``space=False``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from steerdiff.constraints import Constraint
from steerdiff.edits import LogitsEdit
from steerdiff.errors import ConstraintError
from steerdiff.hookspecs import hookimpl
from steerdiff.vocab import vocab_for

from steerdiff_plugins.scoring import classifiers as C

KEY = "guidance"


def _check_scale(scale: Any, who: str) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(float(scale)):
        raise ConstraintError(f"{who}: scale must be a finite number, got {scale!r}")
    return float(scale)


class ClassifierGuidance(Constraint):
    """Steer toward ``target`` (one of the classifier's labels) with strength ``scale``.

    ``mode``: ``"gradient"``, ``"table"`` or ``"scorer"`` (default: the first the classifier offers, in
    that order). ``soft_masks`` (gradient): masked positions enter the classifier as the model's current
    predicted distribution (True, useful for classifiers trained on clean text) or as the one-hot of the
    mask token (False, the exact Nisonoff et al. input for classifiers trained on noisy canvases).
    ``k`` (scorer): candidate fills scored per step, the greedy fill being the first; ``temperature``
    (scorer): sampling temperature of the other candidates. ``repeat_decay`` (table): a token already
    written ``n`` times in the row gets ``repeat_decay ** n`` of its bias (1.0: off), so a lexicon does
    not fill a hole with its single best word.
    """

    guarantee = "soft"

    def __init__(self, classifier: Any, target: str, scale: float = 1.0, *, mode: str | None = None,
                 k: int = 4, temperature: float = 1.0, soft_masks: bool = True, repeat_decay: float = 1.0):
        self.scale = _check_scale(scale, type(self).__name__)
        if isinstance(classifier, str):
            self.name = classifier
            classifier = C.get_classifier(classifier)
        else:
            C.check_classifier(classifier)
            self.name = getattr(classifier, "name", type(classifier).__name__)
        self.classifier = classifier
        labels = tuple(classifier.labels)
        if not isinstance(target, str) or target not in labels:
            raise ConstraintError(f"{type(self).__name__}: target {target!r} is not a label of classifier {self.name!r}; labels: {list(labels)}")
        self.target = target
        if mode is not None and mode not in C.MODES:
            raise ConstraintError(f"{type(self).__name__}: mode must be one of {list(C.MODES)}, got {mode!r}")
        offered = C.modes_of(classifier)
        if mode is not None and offered and not callable(getattr(classifier, "bind", None)) and mode not in offered:
            raise ConstraintError(f"classifier {self.name!r} offers {offered}, not mode {mode!r} (it lacks {C._METHOD[mode]})")
        self.mode = mode
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConstraintError(f"{type(self).__name__}: k must be a positive integer, got {k!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ConstraintError(f"{type(self).__name__}: temperature must be a positive number, got {temperature!r}")
        if isinstance(repeat_decay, bool) or not isinstance(repeat_decay, (int, float)) or not 0 <= repeat_decay <= 1:
            raise ConstraintError(f"{type(self).__name__}: repeat_decay must be a number in [0, 1], got {repeat_decay!r}")
        self.k, self.temperature, self.soft_masks = k, float(temperature), bool(soft_masks)
        self.repeat_decay = float(repeat_decay)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, target={self.target!r}, scale={self.scale}, mode={self.mode!r})"


class LexiconGuidance(ClassifierGuidance):
    """Table guidance from a word lexicon: ``{word: score}`` (positive = toward ``target="positive"``)
    or the name of a registered classifier that has a table (``"sentiment"``: VADER)."""

    def __init__(self, lexicon: dict | str = "sentiment", target: str = "positive", scale: float = 1.0, norm: float | None = None,
                 repeat_decay: float = 1.0):
        if isinstance(lexicon, dict):
            clf: Any = C.LexiconClassifier(lexicon, norm=norm)
        elif isinstance(lexicon, str):
            clf = lexicon
        else:
            raise ConstraintError(f"LexiconGuidance: lexicon must be a {{word: score}} dict or a classifier name, got {type(lexicon).__name__}")
        super().__init__(clf, target, scale, mode="table", repeat_decay=repeat_decay)


class ClassifierFreeGuidance(Constraint):
    """Classifier-free guidance: ``cond + scale * (cond - uncond)`` in log-probabilities.

    ``uncond_prompt``: None masks the prompt (LLaDA's unconditional input); a string is used instead of
    the prompt (a negative prompt). Costs one extra forward pass per step (counted).
    """

    guarantee = "soft"

    def __init__(self, scale: float = 1.5, uncond_prompt: str | None = None):
        self.scale = _check_scale(scale, "ClassifierFreeGuidance")
        if uncond_prompt is not None and not isinstance(uncond_prompt, str):
            raise ConstraintError(f"ClassifierFreeGuidance: uncond_prompt must be a string or None, got {type(uncond_prompt).__name__}")
        self.uncond_prompt = uncond_prompt


class Pinned(Constraint):
    """Write ``tokens`` ``{canvas position: token id}`` into the canvas and freeze them (exact)."""

    guarantee = "exact"

    def __init__(self, tokens: dict):
        if not isinstance(tokens, dict) or not all(isinstance(p, int) and p >= 0 and isinstance(t, int) and t >= 0 for p, t in tokens.items()):
            raise ConstraintError("Pinned needs a dict {canvas position (int >= 0): token id (int >= 0)}")
        self.tokens = dict(tokens)


class HoleStart(Constraint):
    """The token at canvas ``position`` is text (not padding) and starts with a space (``space=True``) or,
    where the vocabulary lets a word start without one (byte-level BPE), does not (``space=False``)."""

    guarantee = "exact"

    def __init__(self, position: int, space: bool = True):
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ConstraintError(f"HoleStart: position must be an integer >= 0, got {position!r}")
        self.position, self.space = position, bool(space)


@hookimpl
def register_constraints(register):
    register("classifier", ClassifierGuidance)
    register("lexicon", LexiconGuidance)
    register("cfg", ClassifierFreeGuidance)
    register("pinned", Pinned)
    register("hole_start", HoleStart)


# --------------------------------------------------------------------------------------------------
# prepare: bind classifiers, group rows that share a constraint object (one batched call per group)
# --------------------------------------------------------------------------------------------------
@hookimpl
def prepare(run):
    groups: dict[int, dict] = {}
    for row, c in run.constraints_of((ClassifierGuidance, ClassifierFreeGuidance)):
        g = groups.get(id(c))
        if g is None:
            g = groups[id(c)] = {"c": c, "rows": []}
            if isinstance(c, ClassifierGuidance):
                bound = C.bind(c.classifier, run.model)
                offered = C.modes_of(bound)
                mode = c.mode or (offered[0] if offered else None)
                if mode not in offered:
                    raise ConstraintError(f"classifier {c.name!r} (bound to the model) offers {offered}, not mode {mode!r}")
                labels = tuple(bound.labels)
                if c.target not in labels:
                    raise ConstraintError(f"target {c.target!r} is not a label of the bound classifier {c.name!r}: {list(labels)}")
                g.update(bound=bound, mode=mode, t=labels.index(c.target))
                if mode == "table":
                    g["table"] = torch.as_tensor(bound.token_scores(), dtype=torch.float32, device=run.device)
                    if g["table"].dim() != 2 or g["table"].shape[1] != len(labels):
                        raise ConstraintError(f"classifier {c.name!r}: token_scores() must be (n, {len(labels)}), got {tuple(g['table'].shape)}")
            else:
                special = vocab_for(run.tokenizer).special
                g["special"] = special
        if row not in g["rows"]:
            g["rows"].append(row)
    exact = list(run.constraints_of((Pinned, HoleStart)))
    for row, c in exact:
        pos = list(c.tokens) if isinstance(c, Pinned) else [c.position]
        if max(pos, default=-1) >= run.length:
            raise ConstraintError(f"{type(c).__name__} at canvas position {max(pos)} but the canvas has {run.length} positions")
    if groups or exact:
        run.state[KEY] = {"groups": list(groups.values()), "exact": exact}


@hookimpl
def init_canvas(run, canvas, frozen):
    st = run.state.get(KEY)
    if not st:
        return
    for row, c in st["exact"]:
        if not isinstance(c, Pinned):
            continue
        for pos, tok in c.tokens.items():
            if bool(frozen[row, pos]) and int(canvas[row, pos]) != tok:
                raise ConstraintError(f"Pinned token {tok} at row {row}, position {pos} conflicts with fixed token {int(canvas[row, pos])}")
            canvas[row, pos] = tok
            frozen[row, pos] = True


def _positions(c: Constraint, masked: torch.Tensor) -> torch.Tensor:
    """``(R, L)`` bool: masked positions inside the constraint's span."""
    if c.span is None:
        return masked
    m = torch.zeros_like(masked)
    m[:, c.span[0] : c.span[1]] = True
    return masked & m


def _gradient_bias(g, run, canvas, m, logits) -> torch.Tensor:
    c, V = g["c"], logits.shape[-1]
    x = F.one_hot(canvas, V).float()  # (R, L, V)
    if c.soft_masks:
        x = torch.where(m[..., None], torch.softmax(logits, dim=-1), x)  # (R, L, V)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        lp = g["bound"].log_probs(x)  # (R, C)
        if not isinstance(lp, torch.Tensor) or lp.shape != (x.shape[0], len(g["bound"].labels)):
            raise ConstraintError(f"classifier {c.name!r}: log_probs must return (B, {len(g['bound'].labels)}), got {getattr(lp, 'shape', type(lp))}")
        (grad,) = torch.autograd.grad(lp[:, g["t"]].sum(), x, allow_unused=True)
    if grad is None:
        return torch.zeros_like(x)
    return grad  # (R, L, V): d log p(target | x) / d x


def _table_bias(g, canvas, m, logits) -> torch.Tensor:
    V = logits.shape[-1]
    col = g["table"][:, g["t"]][:V]  # (n,)
    if col.shape[0] < V:
        col = torch.cat([col, col.new_zeros(V - col.shape[0])])
    col = col.to(logits.device)[None, :]  # (1, V)
    decay = g["c"].repeat_decay
    if decay < 1.0:
        written = torch.zeros((canvas.shape[0], V), device=logits.device)  # (R, V): times each token is written
        written.scatter_add_(1, canvas.masked_fill(m, 0), (~m).float())
        col = col * decay ** written  # (R, V)
    return col[:, None, :].expand(logits.shape)  # (R, L, V)


def _scorer_bias(g, run, canvas, m, logits) -> torch.Tensor:
    c = g["c"]
    vocab = vocab_for(run.tokenizer)
    R, L, V = logits.shape
    ban = torch.zeros(V, dtype=torch.bool, device=logits.device)  # special tokens write nothing: never sample them
    ban[[s for s in vocab.special if s < V and s != run.fill_id]] = True
    ban[run.mask_id] = True
    bias = torch.zeros_like(logits)
    for r in range(R):
        pos = m[r].nonzero().flatten()  # (n,)
        if pos.numel() == 0:
            continue
        lg = logits[r, pos].masked_fill(ban, float("-inf"))  # (n, V)
        cands = [lg.argmax(-1)]  # greedy first
        if c.k > 1:
            probs = torch.softmax(lg / c.temperature, dim=-1)  # (n, V)
            cands += list(torch.multinomial(probs, c.k - 1, replacement=True, generator=run.generator).T)  # (k-1) x (n,)
        texts = []
        for cand in cands:
            ids = canvas[r].clone()
            ids[pos] = cand
            texts.append(vocab.decode([t for t in ids.tolist() if t not in (run.fill_id, run.mask_id)]))
        scores = torch.as_tensor(g["bound"].score(texts), dtype=torch.float64)  # (k, C)
        if scores.shape != (len(texts), len(g["bound"].labels)):
            raise ConstraintError(f"classifier {c.name!r}: score() must return {len(texts)} x {len(g['bound'].labels)} scores, got {tuple(scores.shape)}")
        s = scores[:, g["t"]]  # (k,)
        best = int(torch.argmax(s))
        if float(s[best]) > float(s.mean()):  # only when a candidate is strictly better than the average
            bias[r, pos, cands[best]] = 1.0
    return bias


def _cfg_bias(g, run, rows, canvas, m, logits) -> torch.Tensor | None:
    c = g["c"]
    cond = [run.prompt_ids[r] for r in rows]
    if c.uncond_prompt is None:
        uncond = [[t if t in g["special"] else run.mask_id for t in p] for p in cond]
    else:
        uncond = [run.model.prompt_ids(c.uncond_prompt) for _ in rows]
    if uncond == cond:
        return None  # nothing to guide away from: no pass spent
    u = run.model_logits(canvas, uncond)  # (R, L, V), counted in forward_passes
    diff = torch.log_softmax(logits, dim=-1) - torch.log_softmax(u.to(logits.dtype), dim=-1)  # (R, L, V)
    return torch.where(torch.isfinite(diff), diff, torch.zeros_like(diff))  # banned (-inf) tokens: no bias, they stay banned


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    st = run.state.get(KEY)
    if not st:
        return None
    B, L, V = logits.shape
    edits_bias = None
    allowed = None
    if st["groups"]:
        edits_bias = torch.zeros_like(logits)  # (B, L, V)
        for g in st["groups"]:
            rows = torch.tensor(g["rows"], device=logits.device)
            m = _positions(g["c"], masked[rows])  # (R, L)
            if not bool(m.any()):
                continue
            cv, lg = canvas[rows], logits[rows]  # (R, L), (R, L, V)
            if isinstance(g["c"], ClassifierFreeGuidance):
                b = _cfg_bias(g, run, g["rows"], cv, m, lg)
            elif g["mode"] == "gradient":
                b = _gradient_bias(g, run, cv, m, lg)
            elif g["mode"] == "table":
                b = _table_bias(g, cv, m, lg)
            else:
                b = _scorer_bias(g, run, cv, m, lg)
            if b is None:
                continue
            edits_bias[rows] += g["c"].scale * b * m[..., None]  # (R, L, V): masked positions only
    holes = [(row, c) for row, c in st["exact"] if isinstance(c, HoleStart)]
    if holes:
        allowed = torch.ones((B, L, V), dtype=torch.bool, device=logits.device)
        for row, c in holes:
            allowed[row, c.position] = _start_tokens(run, V, c.space).to(logits.device)
    if edits_bias is None and allowed is None:
        return None
    return LogitsEdit(allowed=allowed, bias=edits_bias)


_start_cache: dict = {}


def _start_tokens(run, V: int, space: bool) -> torch.Tensor:
    """``(V,)`` bool: text tokens (not special, not padding) that start (or not) with a space."""
    vocab = vocab_for(run.tokenizer)
    key = (id(vocab), V, space, run.fill_id, run.mask_id)
    hit = _start_cache.get(key)
    if hit is not None and hit[0] is vocab:
        return hit[1]
    ok = torch.zeros(V, dtype=torch.bool)
    for t, b in enumerate(vocab.token_bytes[:V]):
        if t in vocab.special or t in (run.fill_id, run.mask_id) or not b:
            continue
        starts = b[:1] == b" "
        ok[t] = starts if space else (not starts or vocab.leading_space)
    if not bool(ok.any()):
        raise ConstraintError(f"HoleStart: the vocabulary has no text token that {'starts' if space else 'does not start'} with a space")
    _start_cache[key] = (vocab, ok)
    return ok
