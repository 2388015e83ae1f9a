"""Logit edits returned by ``adjust_logits``, their checks, and their order-free application."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LogitsEdit:
    """What one plugin wants done to the logits of one step.

    ``allowed``: bool tensor broadcastable to ``(B, L, V)`` (or ``(R, L, V)`` with ``rows``): False
    bans a token at a position. ``bias``: float tensor with the same broadcasting, added to the logits.
    ``rows``: optional ``LongTensor (R,)`` of batch rows the edit covers; the other rows are untouched.

    ``classes`` + ``choice``: the same ban in factorised form, for masks that repeat across positions
    (a template's "text only" / "padding only", a DFA's allowed set inside a string): ``classes (C, V)``
    bool token sets, ``choice (B, L)`` (or ``(R, L)`` with ``rows``) integer index into ``classes``, -1
    where the position is not restricted. It means ``allowed[r, l] = classes[choice[r, l]]`` without
    building the ``(R, L, V)`` tensor; the core applies it with work proportional to the banned (or
    kept, whichever is fewer) tokens at the restricted masked positions. Both forms may be given: ANDed.
    """

    allowed: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    classes: torch.Tensor | None = None
    choice: torch.Tensor | None = None


def check_edit(edit: object, shape: tuple[int, int, int]) -> str | None:
    """Return why ``edit`` is malformed for logits of ``shape`` (B, L, V), or None when it is fine."""
    if not isinstance(edit, LogitsEdit):
        return f"adjust_logits must return a LogitsEdit or None, got {type(edit).__name__}"
    B, L, V = shape
    for name in ("allowed", "bias", "rows", "classes", "choice"):
        t = getattr(edit, name)
        if t is not None and not isinstance(t, torch.Tensor):
            return f"LogitsEdit.{name} must be a torch.Tensor or None, got {type(t).__name__} {t!r:.40}"
    rows = B
    if edit.rows is not None:
        if edit.rows.dim() != 1 or edit.rows.dtype not in (torch.int64, torch.int32):
            return f"rows must be a 1-d integer tensor, got shape {tuple(edit.rows.shape)} {edit.rows.dtype}"
        rows = edit.rows.numel()
        if rows and (int(edit.rows.min()) < 0 or int(edit.rows.max()) >= B):
            return f"rows holds {edit.rows.tolist()[:8]}, outside the batch's rows [0, {B})"
        if rows != len(set(edit.rows.tolist())):
            return f"rows holds a row twice: {edit.rows.tolist()[:8]}"
    if (edit.classes is None) != (edit.choice is None):
        return "classes and choice come together: give both or neither"
    if edit.classes is not None:
        if edit.classes.dtype != torch.bool or edit.classes.dim() != 2 or edit.classes.shape[1] != V:
            return f"classes must be a bool (C, {V}) tensor, got shape {tuple(edit.classes.shape)} {edit.classes.dtype}"
        if edit.choice.dtype not in (torch.int64, torch.int32) or tuple(edit.choice.shape) != (rows, L):
            return f"choice must be an integer ({rows}, {L}) tensor, got shape {tuple(edit.choice.shape)} {edit.choice.dtype}"
        if edit.choice.numel() and (int(edit.choice.min()) < -1 or int(edit.choice.max()) >= edit.classes.shape[0]):
            return f"choice holds values outside [-1, {edit.classes.shape[0]})"
    for name in ("allowed", "bias"):
        t = getattr(edit, name)
        if t is None:
            continue
        if name == "allowed" and t.dtype != torch.bool:
            return f"allowed must be a bool tensor, got {t.dtype}"
        if name == "bias" and not t.is_floating_point():
            return f"bias must be a float tensor, got {t.dtype}"
        try:
            torch.broadcast_shapes(tuple(t.shape), (rows, L, V))
        except RuntimeError:
            return f"{name} has shape {tuple(t.shape)}, not broadcastable to {(rows, L, V)}"
        if torch.broadcast_shapes(tuple(t.shape), (rows, L, V)) != (rows, L, V):
            return f"{name} has shape {tuple(t.shape)}, which would grow the logits beyond {(rows, L, V)}"
        if name == "bias" and t.numel() and not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            bad = t[~torch.isfinite(t)].flatten()[0].item()  # the sum is one pass; a non-finite one is confirmed
            return f"bias holds a non-finite value ({bad}); a bias must be finite (ban tokens with allowed=False)"
    return None


def apply_edits(logits: torch.Tensor, edits: list[LogitsEdit], masked: torch.Tensor | None = None) -> torch.Tensor:
    """Apply edits to ``logits (B, L, V)`` in place: biases summed first and added once, then every
    ban (a ban is -inf whichever plugin set it, so the result is the AND in any order).

    Equivalent to ANDing every mask and summing every bias into full ``(B, L, V)`` tensors and applying
    them once, without building those tensors. With ``masked (B, L)``, factorised (``classes``/``choice``)
    bans are applied at masked positions only: the sampler reads nothing else.
    """
    B = logits.shape[0]
    everyone = torch.arange(B, device=logits.device)

    def full_rows(e: LogitsEdit) -> bool:
        return e.rows is None or (e.rows.numel() == B and bool((e.rows.to(logits.device) == everyone).all()))

    biased = [e for e in edits if e.bias is not None]
    if biased:
        total = None
        for e in biased:
            part = e.bias if full_rows(e) else torch.zeros(logits.shape, dtype=logits.dtype, device=logits.device).index_add_(0, e.rows, e.bias.expand(len(e.rows), *logits.shape[1:]).to(logits.dtype))
            total = part if total is None else total + part
        logits += total  # (B, L, V)
    for e in edits:
        if e.allowed is not None:
            if full_rows(e):
                logits.masked_fill_(~e.allowed, float("-inf"))  # (B, L, V)
            else:
                a = e.allowed.expand(len(e.rows), *logits.shape[1:])  # (R, L, V) view
                for i, r in enumerate(e.rows.tolist()):  # in place row by row: no (R, L, V) copy
                    logits[r].masked_fill_(~a[i], float("-inf"))
        if e.classes is not None:
            _apply_classes(logits, e, masked)
    return logits


def _apply_classes(logits: torch.Tensor, e: LogitsEdit, masked: torch.Tensor | None) -> None:
    """The factorised ban of ``e`` on ``logits (B, L, V)`` in place, row by row and class by class."""
    B, L, V = logits.shape
    choice = e.choice.to(logits.device).long()  # (R, L)
    rows = e.rows.tolist() if e.rows is not None else list(range(B))
    if masked is not None:
        choice = choice.masked_fill(~masked[rows], -1)
    neg = float("-inf")
    for i, r in enumerate(rows):
        flat = logits[r]  # (L, V), a view: row r's positions
        for u in torch.unique(choice[i]).tolist():
            if u < 0:
                continue
            keep = e.classes[u].to(logits.device)  # (V,)
            n_keep = int(keep.sum())
            if n_keep == V:
                continue
            part = (choice[i] == u).nonzero().squeeze(1)  # (P,) positions of class u
            if min(n_keep, V - n_keep) * 16 > V:  # neither side small: masked rewrite in cache-sized chunks
                ban = ~keep  # (V,)
                for j in range(0, len(part), 32):
                    c = part[j : j + 32]
                    flat.index_copy_(0, c, flat.index_select(0, c).masked_fill_(ban, neg))  # (<=32, V)
            elif V - n_keep <= n_keep:  # few bans: write -inf into the banned columns only
                ban = (~keep).nonzero().squeeze(1)  # (nb,)
                flat[part[:, None], ban[None, :]] = neg  # (P, nb)
            else:  # few kept: save them, fill the rows with -inf, put them back
                kept = keep.nonzero().squeeze(1)  # (nk,)
                saved = flat[part[:, None], kept[None, :]]  # (P, nk)
                flat.index_fill_(0, part, neg)
                flat[part[:, None], kept[None, :]] = saved
