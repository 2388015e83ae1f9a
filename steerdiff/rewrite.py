"""Template-guided rewriting: ``[[spans]]`` are rewritten, the rest of the text stays byte-identical.

    out = sd.rewrite(model, "The food was [[cold and bland]] and the staff [[ignored us]].",
                     guidance=[sd.ClassifierGuidance("sentiment", target="positive", scale=3.0)])
    out.text, out.fields  # {"h1": "great and tasty", "h2": "were so kind"}, out.forward_passes

``out.text`` is always the template with each ``[[span]]`` replaced by ``out.fields["h<i>"]``.

How a text becomes a canvas:

1. Each ``[[span]]`` becomes a Template hole ``h1``, ``h2``, ... (``[[`` and ``]]`` must balance and do
   not nest; ``[[]]`` is an empty hole that may grow). A hole's budget is the token length of its span
   plus ``grow``; a fill may be shorter (the Template pads it with the fill token, stripped from the
   text), so holes grow or shrink within the budget.
2. When a hole follows a space, the space moves into the hole and the hole's first token must start with
   a space (the exact ``HoleStart`` constraint): the model sees its usual ``" word"`` tokens, and the
   text before the hole, space included, is still byte-identical. A hole not after a space must start
   with a token that does not (on byte-level vocabularies). Either way a hole is never empty. A hole
   with a slot constraint (``constraints={"h1": ...}``) is left to that constraint: its space stays in
   the fixed text and it gets no HoleStart.
3. The fixed text is written and frozen by the Template plugin, which stitches it back verbatim.

``constraints``: a list applies to the whole canvas of every row (exact or soft); a dict
``{hole name or 1-based index: constraint}`` constrains one hole (a Template slot: a Regex, a Choice).
``guidance``: soft constraints (``ClassifierGuidance``, ``LexiconGuidance``, ``ClassifierFreeGuidance``).

Refinement (``refine_rounds=N``): after the fill, each round scores every hole token (text and padding)
by its log-probability under the model with the other tokens visible, re-masks the lowest
``refine_fraction`` of them (at least one per row), pins the rest (the exact ``Pinned`` constraint
writes and freezes them) and denoises the re-masked positions again through ``generate``, under the same
constraints and guidance. The scores come from ``score_groups`` forward passes per round: the hole
tokens are split into interleaved groups, and each pass masks one group (``score_groups=None``: one
pass per token, the exact pseudo-log-likelihood). Every pass is counted in ``Result.forward_passes``,
which sums all rounds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from .errors import ConfigError, ConstraintError
from .run import Result

OPEN, CLOSE = "[[", "]]"
_HOLE = re.compile(r"\[\[(.*?)\]\]", re.S)


@dataclass
class RewriteTemplate:
    """A parsed ``[[span]]`` text: ``parts`` are fixed strings and hole indices (into ``spans``)."""

    text: str
    parts: list[str | int]
    spans: list[str]

    @property
    def names(self) -> list[str]:
        return [f"h{i + 1}" for i in range(len(self.spans))]

    def fixed(self) -> list[str]:
        return [p for p in self.parts if isinstance(p, str)]

    def pattern(self) -> re.Pattern:
        """A regex that matches exactly the texts that keep every fixed part byte-identical."""
        return re.compile("".join(re.escape(p) if isinstance(p, str) else "(.*?)" for p in self.parts), re.S)


def parse_template(text: str) -> RewriteTemplate:
    """Split ``text`` into fixed parts and ``[[span]]`` holes; unbalanced or nested brackets are an error."""
    if not isinstance(text, str):
        raise ConfigError(f"rewrite template must be a string, got {type(text).__name__}")
    parts: list[str | int] = []
    spans: list[str] = []
    pos = 0
    for m in _HOLE.finditer(text):
        fixed = text[pos : m.start()]
        _check_fixed(text, fixed, pos)
        if OPEN in m.group(1):
            at = m.start() + 2 + m.group(1).index(OPEN)
            raise ConfigError(f"nested '[[' at character {at} inside the hole opened at character {m.start()}: holes do not nest ({_near(text, at)})")
        if fixed:
            parts.append(fixed)
        parts.append(len(spans))
        spans.append(m.group(1))
        pos = m.end()
    tail = text[pos:]
    _check_fixed(text, tail, pos)
    if tail:
        parts.append(tail)
    if not spans:
        raise ConfigError("rewrite template has no [[hole]]: mark the spans to rewrite with [[ and ]]")
    return RewriteTemplate(text, parts, spans)


def _near(text: str, at: int) -> str:
    return f"near {text[max(0, at - 15): at + 15]!r}"


def _check_fixed(text: str, fixed: str, offset: int) -> None:
    for tok, what in ((OPEN, "'[[' without a closing ']]'"), (CLOSE, "']]' without an opening '[['")):
        i = fixed.find(tok)
        if i >= 0:
            raise ConfigError(f"unbalanced brackets in rewrite template: {what} at character {offset + i} ({_near(text, offset + i)})")


@dataclass
class _Plan:
    tpl: RewriteTemplate
    template: Any  # the steerdiff Template constraint
    spans: list[tuple[int, int]]  # canvas [start, end) of each hole
    starts: list[tuple[int, bool]]  # (position, space) of each hole's first token (holes without a slot)
    length: int  # canvas positions the template uses
    slots: dict = field(default_factory=dict)


def _tok_len(tokenizer, s: str) -> int:
    return len(tokenizer(s, add_special_tokens=False)["input_ids"]) if s else 0


def plan_template(model, text: str, *, grow: int = 2, slots: dict | None = None) -> _Plan:
    """Lay a ``[[span]]`` text out as a Template (see the module docstring), with hole spans and budgets."""
    from .plugins import constraint_types

    tpl = parse_template(text)
    hole_slots = {_hole_name(tpl, key): c for key, c in (slots or {}).items()}
    types = constraint_types()
    if "template" not in types:
        raise ConfigError("rewrite needs the 'template' constraint plugin, which is not installed")
    Template = types["template"][0]
    tk = model.tokenizer
    pieces: list = []  # fixed strings and (name, size, space) holes
    for part in tpl.parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        # a hole after a space takes the space over: its first token writes it (" word")
        space = bool(pieces) and isinstance(pieces[-1], str) and pieces[-1].endswith(" ")
        if tpl.names[part] in hole_slots:
            space = None  # a slot constraint decides how the hole starts: no HoleStart, the space stays fixed
        elif space:
            pieces[-1] = pieces[-1][:-1]
        span = (" " if space else "") + tpl.spans[part]
        pieces.append((tpl.names[part], max(1, _tok_len(tk, span) + grow), space))
    out_text: list[str] = []
    spans, starts = [], []
    n = 0
    for p in pieces:
        if isinstance(p, str):  # tokenized exactly as the Template plugin tokenizes its fixed parts
            out_text.append(p)
            n += _tok_len(tk, p)
        else:
            name, size, space = p
            out_text.append("{{" + f"{name}:{size}" + "}}")
            spans.append((n, n + size))
            if space is not None:
                starts.append((n, space))
            n += size
    template = Template("".join(out_text), slots=hole_slots)
    return _Plan(tpl, template, spans, starts, n, hole_slots)


def _start_names(p: _Plan) -> list[tuple[str, tuple[int, int]]]:
    """``(name, span)`` of the holes that have a HoleStart, in the order of ``p.starts``."""
    return [(name, span) for name, span in zip(p.tpl.names, p.spans) if name not in p.slots]


def _hole_name(tpl: RewriteTemplate, key) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        if not 1 <= key <= len(tpl.spans):
            raise ConfigError(f"constraint for hole {key}: the template has holes 1..{len(tpl.spans)}")
        return f"h{key}"
    if isinstance(key, str) and key in tpl.names:
        return key
    raise ConfigError(f"constraint key {key!r} names no hole; holes are {tpl.names} (or 1-based indices)")


def _as_list(x, what: str) -> list:
    if x is None:
        return []
    from .constraints import Constraint

    if isinstance(x, (Constraint, dict)):
        return [x]
    if isinstance(x, (list, tuple)):
        return list(x)
    raise ConfigError(f"{what} must be a constraint, a list of constraints or None, got {type(x).__name__}")


def token_logprobs(model, prompt: str, canvas: torch.Tensor, positions: Sequence[Sequence[int]], groups: int | None = 4) -> tuple[list[torch.Tensor], int]:
    """Log-probability of each canvas token at ``positions[b]`` with that token masked and the rest visible.

    ``canvas``: ``LongTensor (B, L)``. Hole tokens are split into ``groups`` interleaved groups per row
    (``groups=None``: one group per token, the exact pseudo-log-likelihood); each group costs one forward
    pass of its row (all passes run batched). Returns ``([(n_b,) log-probs per row], passes)`` where
    ``passes`` counts row forward passes divided by the number of rows (the per-row cost).
    """
    from .forward import canvas_logits

    B, L = canvas.shape
    rows, masks, pids, owners = [], [], [], []
    pid = model.prompt_ids(prompt)
    for b in range(B):
        pos = list(positions[b])
        G = len(pos) if groups is None else max(1, min(groups, len(pos)))
        for g in range(G):
            sel = pos[g::G]
            if not sel:
                continue
            c = canvas[b].clone()
            c[sel] = model.mask_id
            rows.append(c)
            masks.append(sel)
            owners.append(b)
            pids.append(pid)
    out = [torch.zeros(len(positions[b])) for b in range(B)]
    if not rows:
        return out, 0
    batch = torch.stack(rows).to(model.device)  # (N, L)
    logp = []
    for i in range(0, len(rows), 64):
        lg = canvas_logits(model, pids[i : i + 64], batch[i : i + 64])  # (n, L, V)
        logp.append(torch.log_softmax(lg, dim=-1))
    logp = torch.cat(logp)  # (N, L, V)
    index = [{p: j for j, p in enumerate(positions[b])} for b in range(B)]
    for n, (b, sel) in enumerate(zip(owners, masks)):
        for p in sel:
            out[b][index[b][p]] = logp[n, p, canvas[b, p]].item()
    return out, math.ceil(len(rows) / B)


def rewrite(
    model,
    template: str | Sequence[str],
    *,
    prompt: str = "",
    guidance: Any = None,
    constraints: Any = None,
    grow: int = 2,
    refine_rounds: int = 0,
    refine_fraction: float = 0.25,
    score_groups: int | None = 4,
    steps: int | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    **generate_kwargs: Any,
) -> Result | list[Result]:
    """Rewrite the ``[[spans]]`` of ``template`` (one text, or a list: one Result each, run as one batch).

    ``prompt``: context before the canvas (may be empty). ``grow``: extra tokens each hole may use beyond
    its span's length. ``steps``: denoising steps of the first fill (default: one per hole token, the
    most careful order). ``refine_rounds``/``refine_fraction``/``score_groups``: see the module
    docstring. Other keywords go to :func:`steerdiff.generate` (``schedule``, ``top_k``, ...).
    The returned Result has ``text`` (fixed text byte-identical), ``fields`` (``{"h1": fill, ...}``),
    ``forward_passes`` summed over the fill, the scoring passes and the refinement rounds.
    """
    from .loop import generate

    single = isinstance(template, str)
    if not single and not (isinstance(template, (list, tuple)) and all(isinstance(t, str) for t in template)):
        raise ConfigError(f"rewrite template must be a string or a list of strings, got {type(template).__name__}")
    texts = [template] if single else list(template)
    if not texts:
        raise ConfigError("rewrite: the template list is empty")
    if isinstance(grow, bool) or not isinstance(grow, int) or grow < 0:
        raise ConfigError(f"rewrite: grow must be an integer >= 0, got {grow!r}")
    if isinstance(refine_rounds, bool) or not isinstance(refine_rounds, int) or refine_rounds < 0:
        raise ConfigError(f"rewrite: refine_rounds must be an integer >= 0, got {refine_rounds!r}")
    if isinstance(refine_fraction, bool) or not isinstance(refine_fraction, (int, float)) or not 0 < refine_fraction <= 1:
        raise ConfigError(f"rewrite: refine_fraction must be a number in (0, 1], got {refine_fraction!r}")
    if score_groups is not None and (isinstance(score_groups, bool) or not isinstance(score_groups, int) or score_groups < 1):
        raise ConfigError(f"rewrite: score_groups must be a positive integer or None, got {score_groups!r}")
    if not isinstance(prompt, str):
        raise ConfigError(f"rewrite: prompt must be a string, got {type(prompt).__name__}")
    slots = constraints if isinstance(constraints, dict) and "type" not in constraints else None
    shared = [] if slots is not None else _as_list(constraints, "constraints")
    guides = _as_list(guidance, "guidance")

    from .plugins import constraint_types

    HoleStart = constraint_types()["hole_start"][0] if "hole_start" in constraint_types() else None
    Pinned = constraint_types()["pinned"][0] if "pinned" in constraint_types() else None
    if HoleStart is None or Pinned is None:
        raise ConfigError("rewrite needs the 'guidance' plugin (hole_start, pinned constraints), which is not installed")

    plans = [plan_template(model, t, grow=grow, slots=slots) for t in texts]
    length = max(p.length for p in plans)
    hole_pos = [[i for s, e in p.spans for i in range(s, e)] for p in plans]
    n_hole = max(len(h) for h in hole_pos)
    if steps is None:
        steps = n_hole
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"rewrite: steps must be a positive integer, got {steps!r}")
    steps = min(steps, length)

    def row_constraints(p: _Plan, pinned: dict | None):
        cs = [p.template] + [HoleStart(pos, space) for pos, space in p.starts] + list(shared)
        if pinned:
            cs.append(Pinned(pinned))
        return cs

    prompts = [prompt] * len(texts)
    common = dict(length=length, temperature=temperature, guidance=[list(guides) for _ in texts], **generate_kwargs)
    results = generate(model, prompts, steps=steps, seed=seed,
                       constraints=[row_constraints(p, None) for p in plans], **common)
    passes = [r.forward_passes for r in results]
    for rnd in range(refine_rounds):
        canvas = torch.tensor([r.token_ids for r in results], dtype=torch.long)  # (B, L)
        scores, spent = token_logprobs(model, prompt, canvas, hole_pos, score_groups)
        pinned_rows, n_remask = [], 0
        for b, (p, pos) in enumerate(zip(plans, hole_pos)):
            k = max(1, round(refine_fraction * len(pos)))
            worst = set(torch.argsort(scores[b])[:k].tolist())
            pinned_rows.append({q: int(canvas[b, q]) for j, q in enumerate(pos) if j not in worst})
            n_remask = max(n_remask, k)
        results = generate(model, prompts, steps=min(n_remask, steps), seed=seed + 1000 * (rnd + 1),
                           constraints=[row_constraints(p, pin) for p, pin in zip(plans, pinned_rows)], **common)
        passes = [a + spent + r.forward_passes for a, r in zip(passes, results)]
    for r, n, p in zip(results, passes, plans):
        r.forward_passes = n
        for (pos, space), (name, _) in zip(p.starts, _start_names(p)):
            if space and r.fields.get(name, "").startswith(" "):
                r.fields[name] = r.fields[name][1:]  # the space before the hole belongs to the fixed text
    return results[0] if single else results


def rewrite_cli(model, template_text: str, guides: dict[str, str], **kw: Any) -> str:
    """For ``steerdiff rewrite --template FILE --guide sentiment=positive --guide cfg=1.5``: the rewritten text.

    ``guides``: ``{classifier name: target label}``; the key ``cfg`` takes a scale instead
    (classifier-free guidance). ``scale`` (default 3.0), ``mode`` and ``repeat_decay`` (default 0.5:
    a lexicon table does not repeat its best word) apply to every classifier guide; other keywords go
    to :func:`rewrite`.
    """
    from .plugins import constraint_types

    scale = kw.pop("scale", 3.0)
    mode = kw.pop("mode", None)
    repeat_decay = kw.pop("repeat_decay", 0.5)
    types = constraint_types()
    if "classifier" not in types:
        raise ConfigError("--guide needs the 'guidance' plugin, which is not installed")
    if not isinstance(guides, dict):
        raise ConfigError(f"guides must be a dict {{classifier: target}}, got {type(guides).__name__}")
    guidance = []
    for name, target in guides.items():
        if name == "cfg":
            try:
                s = float(target)
            except (TypeError, ValueError):
                raise ConfigError(f"--guide cfg=SCALE needs a number, got {target!r}") from None
            guidance.append(types["cfg"][0](scale=s))
        else:
            guidance.append(types["classifier"][0](name, target=target, scale=scale, mode=mode, repeat_decay=repeat_decay))
    return rewrite(model, template_text, guidance=guidance, **kw).text
