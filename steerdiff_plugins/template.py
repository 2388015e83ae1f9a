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
MAX_HOLE = 1_000_000  # no model has this many positions; a larger hole is refused at once


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
            name, digits = m.group(1), m.group(2).lstrip("0") or "0"
            if len(digits) > 7 or int(digits) > MAX_HOLE:  # checked before anything of that size is built
                raise ConstraintError(f"template hole {name!r} has size {m.group(2)[:20]}; a hole holds at most {MAX_HOLE} tokens")
            size = int(digits)
            if size < 1:
                raise ConstraintError(f"template hole {name!r} has size {size}; a hole needs at least 1 token")
            if name in names:
                raise ConstraintError(f"template hole {name!r} appears twice")
            names.add(name)
            self.parts.append((name, size))
            pos = m.end()
        if pos < len(text):
            self.parts.append(text[pos:])
        bad = next((p for p in self.parts if isinstance(p, str) and "{{" in p), None)  # per fixed part: a "{" right
        if bad is not None:  # before a hole ("{{{h:1}}") is literal text, not a malformed hole
            raise ConstraintError(f"template has a malformed hole near {bad[bad.find('{{'):][:30]!r}; write holes as {{{{name:N}}}}")
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
    ids_of = {i: tokenizer(p, add_special_tokens=False)["input_ids"] for i, p in enumerate(tpl.parts) if isinstance(p, str)}
    need = sum(p[1] if isinstance(p, tuple) else len(ids_of[i]) for i, p in enumerate(tpl.parts))
    if need > length:  # checked before anything of a hole's size is built
        raise ConstraintError(f"template needs {need} canvas positions (fixed text plus hole budgets) but the canvas has {length}; raise length or shrink the holes")
    tokens: list[int | None] = []
    spans, fixed = {}, []
    for i, part in enumerate(tpl.parts):
        if isinstance(part, tuple):
            name, size = part
            spans[name] = (len(tokens), len(tokens) + size)
            tokens.extend([None] * size)
        else:
            fixed.append((part, len(tokens), len(tokens) + len(ids_of[i])))
            tokens.extend(ids_of[i])
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


def _hole_bounds(layouts: dict, rows: list[int], L: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R, L)`` start and end of the hole holding each position (0, 0 outside holes)."""
    start = torch.zeros((len(rows), L), dtype=torch.long)
    end = torch.zeros((len(rows), L), dtype=torch.long)
    for r, row in enumerate(rows):
        for s, e in layouts[row][1].spans.values():
            start[r, s:e], end[r, s:e] = s, e
    return start.to(device), end.to(device)


def _neighbours(toks: torch.Tensor, present: torch.Tensor, fill: int, start: torch.Tensor, end: torch.Tensor):
    """For each position j of ``(R, L)`` rows: is there text after j, and padding before j, in j's hole?"""
    is_fill = (present & (toks == fill)).long()  # (R, L)
    is_text = (present & (toks != fill)).long()  # (R, L)
    zero = torch.zeros_like(is_fill[:, :1])
    cum_fill = torch.cat([zero, is_fill.cumsum(1)], 1)  # (R, L + 1): fills before index
    cum_text = torch.cat([zero, is_text.cumsum(1)], 1)  # (R, L + 1)
    j1 = torch.arange(1, toks.shape[1] + 1, device=toks.device).expand_as(toks)  # (R, L)
    text_after = cum_text.gather(1, end) - cum_text.gather(1, j1)  # (R, L): text in (j, end)
    fill_before = cum_fill.gather(1, j1 - 1) - cum_fill.gather(1, start)  # (R, L): padding in [start, j)
    return text_after > 0, fill_before > 0


def _state(run, device):
    st = run.state[KEY]
    if "rows" not in st:
        rows = sorted(st["layouts"])
        st["rows"] = torch.tensor(rows, device=device)
        st["start"], st["end"] = _hole_bounds(st["layouts"], rows, run.length, device)
    return st


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    """Ban special tokens in holes; padding only as a suffix run of its hole (a factorised edit)."""
    if not run.state.get(KEY):
        return None
    st = _state(run, logits.device)
    rows, V = st["rows"], logits.shape[-1]
    if "classes" not in st:
        text_ok = torch.ones(V, dtype=torch.bool, device=logits.device)  # (V,)
        text_ok[[t for t in st["special"] if t < V]] = False
        fill_only = torch.zeros(V, dtype=torch.bool, device=logits.device)  # (V,)
        fill_only[run.fill_id] = True
        st["classes"] = torch.stack([text_ok | fill_only, text_ok, fill_only])  # (3, V): free, text only, padding only
    text_after, fill_before = _neighbours(canvas[rows], ~masked[rows], run.fill_id, st["start"], st["end"])  # (R, L)
    choice = torch.where(fill_before, 2, torch.where(text_after, 1, 0))  # (R, L)
    return LogitsEdit(classes=st["classes"], choice=choice, rows=rows)


@hookimpl
def check_commit(run, canvas, masked, proposal, commit):
    """Padding committed this step must not sit left of text committed (now or before) in its hole."""
    if not run.state.get(KEY):
        return
    st = _state(run, canvas.device)
    rows = st["rows"]
    new = commit[rows]  # (R, L)
    toks = torch.where(new, proposal[rows], canvas[rows])  # (R, L)
    text_after, _ = _neighbours(toks, new | ~masked[rows], run.fill_id, st["start"], st["end"])
    bad = new & (toks == run.fill_id) & text_after  # (R, L)
    commit[rows] = new & ~bad


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
