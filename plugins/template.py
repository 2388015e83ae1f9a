"""Fixed spans and templates: fixed text stays byte-identical, holes are filled (under constraints).

    sd.Template("Dear {{name:6}}, your order ships {{when:8}}.", slots={"when": sd.Regex(...)})

``{{name:N}}`` is a hole of at most N tokens. Fixed text is tokenized and frozen in the canvas; the
output text stitches the fixed text back verbatim, so it is byte-identical whatever the tokenizer.
Padding: a hole may end early with the model's fill token (EOS) as a run to the end of the hole
(never text after padding); the padding is stripped from the output. Canvas positions after the
template are frozen to padding too. ``slots`` attach any constraint to a hole (it gets the hole's span).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from steerdiff.constraints import Constraint
from steerdiff.edits import LogitsEdit
from steerdiff.errors import ConstraintError, ValidationFailed
from steerdiff.hookspecs import hookimpl
from steerdiff.vocab import vocab_for

HOLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(\d+)\s*\}\}")
KEY = "template"


class Template(Constraint):
    """A template with ``{{name:N}}`` holes (N = maximum tokens). ``slots``: ``{name: constraint}``."""

    guarantee = "exact"

    def __init__(self, text: str, slots: dict | None = None):
        if not isinstance(text, str):
            raise ConstraintError(f"Template text must be a string, got {type(text).__name__}")
        self.text = text
        self.slots = dict(slots or {})
        self.parts: list[str | tuple[str, int]] = []
        pos = 0
        names = set()
        for m in HOLE.finditer(text):
            if m.start() > pos:
                self.parts.append(text[pos : m.start()])
            name, size = m.group(1), int(m.group(2))
            if size < 1:
                raise ConstraintError(f"template hole {name!r} has size {size}; a hole needs at least 1 token")
            if name in names:
                raise ConstraintError(f"template hole {name!r} appears twice")
            names.add(name)
            self.parts.append((name, size))
            pos = m.end()
        if pos < len(text):
            self.parts.append(text[pos:])
        if "{{" in "".join(p for p in self.parts if isinstance(p, str)):
            raise ConstraintError(f"template has a malformed hole near {text[text.find('{{'):][:30]!r}; write holes as {{{{name:N}}}}")
        unknown = set(self.slots) - names
        if unknown:
            raise ConstraintError(f"slots {sorted(unknown)} name no hole of the template (holes: {sorted(names)})")

    @property
    def holes(self) -> list[tuple[str, int]]:
        return [p for p in self.parts if isinstance(p, tuple)]


@dataclass
class _Layout:
    tokens: list[int | None]  # None at hole positions
    spans: dict[str, tuple[int, int]]  # hole name -> [start, end) in the canvas
    fixed: list[tuple[str, int, int]]  # (text, start, end)


def _layout(tpl: Template, tokenizer, length: int) -> _Layout:
    tokens: list[int | None] = []
    spans, fixed = {}, []
    for part in tpl.parts:
        if isinstance(part, tuple):
            name, size = part
            spans[name] = (len(tokens), len(tokens) + size)
            tokens.extend([None] * size)
        else:
            ids = tokenizer(part, add_special_tokens=False)["input_ids"]
            fixed.append((part, len(tokens), len(tokens) + len(ids)))
            tokens.extend(ids)
    if len(tokens) > length:
        raise ConstraintError(f"template needs {len(tokens)} canvas positions (fixed text plus hole budgets) but the canvas has {length}; raise length or shrink the holes")
    return _Layout(tokens, spans, fixed)


@hookimpl
def register_constraints(register):
    register("template", Template)


@hookimpl(tryfirst=True)
def prepare(run):
    """Lay each template out and hand its slot constraints their hole spans (before other plugins prepare)."""
    layouts = {}
    for row, tpl in run.constraints_of(Template):
        if row in layouts:
            raise ConstraintError(f"row {row} has two templates; give each row at most one")
        lay = _layout(tpl, run.tokenizer, run.length)
        layouts[row] = (tpl, lay)
        for name, c in tpl.slots.items():
            run.constraints[row].append(c.with_span(*lay.spans[name]))
    if layouts:
        vocab = vocab_for(run.tokenizer)
        run.state[KEY] = {"layouts": layouts, "special": sorted(vocab.special | {run.mask_id})}


@hookimpl
def init_canvas(run, canvas, frozen):
    st = run.state.get(KEY)
    if not st:
        return
    for row, (tpl, lay) in st["layouts"].items():
        for i, tid in enumerate(lay.tokens):
            if tid is not None:
                canvas[row, i] = tid
                frozen[row, i] = True
        canvas[row, len(lay.tokens):] = run.fill_id
        frozen[row, len(lay.tokens):] = True


def _hole_index(lay: _Layout, L: int, device) -> torch.Tensor:
    """``(L,)`` hole number of each canvas position, -1 outside holes."""
    idx = torch.full((L,), -1, dtype=torch.long, device=device)
    for h, (s, e) in enumerate(lay.spans.values()):
        idx[s:e] = h
    return idx


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    """Ban special tokens in holes; padding only as a suffix run of its hole."""
    st = run.state.get(KEY)
    if not st:
        return None
    rows = sorted(st["layouts"])
    B, L, V = logits.shape
    fill = run.fill_id
    text_ok = torch.ones(V, dtype=torch.bool, device=logits.device)  # (V,)
    text_ok[[t for t in st["special"] if t < V]] = False
    fill_only = torch.zeros(V, dtype=torch.bool, device=logits.device)  # (V,)
    fill_only[fill] = True
    text_or_fill = text_ok | fill_only  # (V,)
    classes = torch.stack([text_or_fill, text_ok, fill_only])  # (3, V)
    choice = torch.zeros((len(rows), L), dtype=torch.long, device=logits.device)  # (R, L): class per position
    for r, row in enumerate(rows):
        lay = st["layouts"][row][1]
        for s, e in lay.spans.values():
            seg = canvas[row, s:e]  # (n,)
            done = ~masked[row, s:e]  # (n,)
            is_fill = done & (seg == fill)
            is_text = done & (seg != fill)
            text_right = torch.flip(torch.cumsum(torch.flip(is_text.long(), [0]), 0), [0]) - is_text.long()  # text after j
            fill_left = torch.cumsum(is_fill.long(), 0) - is_fill.long()  # fill before j
            cls = torch.zeros_like(seg)
            cls[text_right > 0] = 1  # text follows: no padding here
            cls[fill_left > 0] = 2  # padding precedes: only padding
            choice[r, s:e] = cls
    allowed = classes[choice]  # (R, L, V)
    return LogitsEdit(allowed=allowed, rows=torch.tensor(rows, device=logits.device))


@hookimpl
def check_commit(run, canvas, masked, proposal, commit):
    """Padding committed this step must not sit left of text committed in the same hole."""
    st = run.state.get(KEY)
    if not st:
        return
    fill = run.fill_id
    for row, (tpl, lay) in st["layouts"].items():
        for s, e in lay.spans.values():
            new = commit[row, s:e]
            if not bool(new.any()):
                continue
            toks = torch.where(new, proposal[row, s:e], canvas[row, s:e])  # (n,)
            present = new | ~masked[row, s:e]
            is_text = present & (toks != fill)
            text_right = torch.flip(torch.cumsum(torch.flip(is_text.long(), [0]), 0), [0]) - is_text.long()
            bad = new & (toks == fill) & (text_right > 0)
            commit[row, s:e] &= ~bad


@hookimpl
def finalize(run, results):
    st = run.state.get(KEY)
    if not st:
        return
    vocab = vocab_for(run.tokenizer)
    for row, (tpl, lay) in st["layouts"].items():
        ids = results[row].token_ids
        for text, s, e in lay.fixed:
            if any(ids[i] != lay.tokens[i] for i in range(s, e)):
                raise ValidationFailed(f"template fixed span {text!r} changed", results[row].text)
        fields, out = {}, []
        for part in tpl.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            s, e = lay.spans[part[0]]
            hole = [t for t in ids[s:e] if t != run.fill_id]
            value = b"".join(vocab.token_bytes[t] for t in hole).decode("utf-8", errors="replace")
            if vocab.leading_space and value.startswith(" ") and (not out or out[-1][-1:].isspace()):
                value = value[1:]
            fields[part[0]] = value
            out.append(value)
        results[row].text = "".join(out)
        results[row].fields.update(fields)
