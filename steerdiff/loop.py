"""The denoising loop: a canvas of masks after the prompt, filled in a few parallel steps under plugins.

Each step, in numbered phases:
  1. forward   the model predicts every canvas position: logits (B, L, V)
  2. adjust    plugins return edits; masks ANDed, biases summed, applied once
  3. propose   a token and its confidence per masked position
  4. schedule  which positions to commit (at least one per row: progress is guaranteed)
  5. check     exact plugins keep only commits that leave the canvas completable
  6. commit    write tokens; plugins update state (and may re-mask their speculative tokens)
  7. observe   trace, watch, early stop
then finalize: decode (padding stripped), plugins parse and validate.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Sequence

import torch

from .adapters import Adapter
from .constraints import Constraint
from .edits import apply_edits, check_edit
from .errors import ConfigError, ConstraintError, PluginError
from .forward import _layout
from .plugins import call_each, get_plugin_manager, make_constraint
from .run import Result, Run
from .sampling import propose
from .schedules import Schedule, make_schedule
from .trace import StepRecord, Trace, Watcher
from .validate import check_generate_args, check_model, check_texts
from .vocab import vocab_for


LONG_BATCH = 16  # prompts in one batch from which generate shows a per-step progress bar in a terminal


def _rows(spec, n_rows: int, what: str) -> list[list[Constraint]]:
    """Normalise ``constraints=``: None, one list for every row, or one list per row."""
    if spec is None:
        return [[] for _ in range(n_rows)]
    if isinstance(spec, (Constraint, dict)):
        spec = [spec]
    if not isinstance(spec, (list, tuple)):
        raise ConfigError(f"generate: {what} must be a constraint, a list of constraints or a list of per-row lists, "
                          f"got {type(spec).__name__}")
    spec = list(spec)
    if spec and all(isinstance(s, (list, tuple)) for s in spec):
        if len(spec) != n_rows:
            raise ConfigError(f"{what}: {len(spec)} per-row lists given for {n_rows} prompts")
        return [[make_constraint(c) for c in row] for row in spec]
    shared = [make_constraint(c) for c in spec]
    return [list(shared) for _ in range(n_rows)]


def generate(
    model: Adapter,
    prompt: str | Sequence[str] = "",
    *,
    length: int = 64,
    steps: int | None = None,
    schedule: str | Schedule | None = None,
    threshold: float | None = None,
    block_length: int | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    constraints: Any = None,
    guidance: Any = None,
    seed: int = 0,
    batch_size: int | None = None,
    trace: bool = True,
    watch: bool = False,
    progress: bool | None = None,
) -> Result | list[Result]:
    """Generate ``length`` tokens after each prompt in ``steps`` denoising steps.

    ``prompt``: one string (returns one :class:`Result`) or a list (returns a list, one per prompt).
    ``constraints`` / ``guidance``: constraint objects or ``{"type": ...}`` dicts, either one list
    for every row or one list per row. ``schedule``: a name from ``steerdiff.schedules.SCHEDULES`` or
    a Schedule; ``threshold`` and ``block_length`` configure ``threshold`` and ``blocks``. Sampling is
    greedy at ``temperature=0``; ``top_k``/``top_p`` filter before sampling. The same ``seed`` gives the
    same output. ``batch_size`` splits long prompt lists into batches. ``progress``: a tqdm bar on stderr; by
    default shown in a terminal for several batches (over rows) or one batch of ``LONG_BATCH`` or more
    prompts (over steps). ``schedule``, ``block_length``, ``temperature``, ``top_k``, ``top_p`` left unset take
    the model's ``defaults`` (a real checkpoint's published settings, see steerdiff.families), else
    ``low_confidence`` and greedy.
    """
    check_model(model, "generate")
    d = getattr(model, "defaults", None) or {}  # a real checkpoint's published settings fill what is unset
    if schedule is None:
        schedule = d.get("schedule", "low_confidence")
        if block_length is None and schedule == "blocks":
            block_length = d.get("block_length")
    temperature = d.get("temperature", 0.0) if temperature is None else temperature
    top_k = d.get("top_k") if top_k is None else top_k
    top_p = d.get("top_p") if top_p is None else top_p
    single, prompts = check_texts("prompt", prompt, who="generate")
    a = check_generate_args(length=length, steps=steps, schedule=schedule, threshold=threshold, block_length=block_length,
                            temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, batch_size=batch_size,
                            trace=trace, watch=watch, progress=progress)
    length, steps, schedule, temperature, top_k, top_p, seed = (a[k] for k in ("length", "steps", "schedule", "temperature",
                                                                              "top_k", "top_p", "seed"))
    batch_size, trace, watch, progress = a["batch_size"], a["trace"], a["watch"], a["progress"]
    if model.autoregressive:
        steps = length  # one position per step, left to right
        schedule = "left_to_right"
    steps = length if steps is None else steps
    options = {}
    if a["threshold"] is not None:
        options["threshold"] = a["threshold"]
    if a["block_length"] is not None:
        options["block_length"] = a["block_length"]
    sched = make_schedule(schedule, **options)
    get_plugin_manager()
    rows = _rows(constraints, len(prompts), "constraints")
    for r, g in zip(rows, _rows(guidance, len(prompts), "guidance")):
        r.extend(g)

    bs = batch_size or len(prompts)
    chunks = [range(i, min(i + bs, len(prompts))) for i in range(0, len(prompts), bs)]
    # a bar by default in a terminal: over rows for several batches, over steps for one long batch
    per_step = len(chunks) == 1 and len(prompts) >= LONG_BATCH
    show = progress if progress is not None else ((len(chunks) > 1 or per_step) and sys.stderr.isatty())
    bar = None
    if show:
        from tqdm import tqdm

        bar = (tqdm(total=steps, desc=f"steerdiff {len(prompts)} rows", unit="step") if len(chunks) == 1
               else tqdm(total=len(prompts), desc="steerdiff", unit="row"))
    results: list[Result] = []
    for ci, chunk in enumerate(chunks):
        results.extend(_run_batch(
            model, [prompts[i] for i in chunk], [rows[i] for i in chunk], length=length, steps=steps,
            schedule=sched, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + ci,
            keep_trace=trace, watch=watch and ci == 0, on_step=bar.update if bar is not None and len(chunks) == 1 else None,
        ))
        if bar is not None and len(chunks) > 1:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    for i, r in enumerate(results):
        r.row = i
    return results[0] if single else results


def _run_batch(model: Adapter, prompts, rows, *, length, steps, schedule, temperature, top_k, top_p, seed, keep_trace, watch,
               on_step=None):
    dev = model.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    prompt_ids = [model.prompt_ids(p) for p in prompts]
    base, attn, cols = _layout(model, prompt_ids, length)  # (B, T), (B, T), (B, L)
    B, L = cols.shape
    run = Run(model=model, tokenizer=model.tokenizer, mask_id=model.mask_id, fill_id=model.fill_id, device=dev,
              length=L, steps=steps, prompts=list(prompts), prompt_ids=prompt_ids, constraints=rows, generator=gen)
    run.timings = {"model": 0.0, "total": 0.0, "per_step": []}  # per_step: [(model s, step s)]
    t_start = time.perf_counter()

    call_each("prepare", run=run)
    canvas = torch.full((B, L), model.mask_id, dtype=torch.long, device=dev)  # (B, L)
    frozen = torch.zeros((B, L), dtype=torch.bool, device=dev)  # (B, L)
    call_each("init_canvas", run=run, canvas=canvas, frozen=frozen)
    masked = ~frozen  # (B, L)
    to_fill = masked.sum(dim=1).tolist()  # (B,) positions the steps have to fill
    run.masked, run.frozen = masked, frozen
    trace = Trace()
    watcher = Watcher(vocab_for(model.tokenizer)) if watch else None
    gather_cols = (cols - model.shift).clamp_min(0)[..., None]  # (B, L, 1)
    same_cols = bool((cols == cols[:1]).all())
    dropped: dict[str, int] = {}  # plugin -> commits it dropped (check_commit) or re-masked (on_commit) so far

    step, finish_now = 0, False
    hard_limit = steps + 4 * L  # commits can be deferred by exact plugins, never forever
    while bool(masked.any()):
        if step >= hard_limit:
            worst = max(dropped, key=dropped.get) if dropped else "core"
            others = {k: v for k, v in dropped.items() if k != worst and v}
            raise PluginError(worst, "check_commit/on_commit", f"no progress after {step} steps: it dropped or re-masked "
                              f"{dropped.get(worst, 0)} commits" + (f" (others: {others})" if others else ""))
        # 1. forward
        t_step = time.perf_counter()
        input_ids = base.clone()
        input_ids.scatter_(1, cols, canvas)  # (B, T)
        t0 = time.perf_counter()
        raw = model.logits(input_ids, attn)  # (B, T, V)
        if dev.type == "cuda" and model.profile:
            torch.cuda.synchronize(dev)
        t_model = time.perf_counter() - t0
        run.timings["model"] += t_model
        run.forward_passes += 1
        if same_cols:
            c0 = int(cols[0, 0]) - model.shift
            logits = raw[:, c0 : c0 + L].float()  # (B, L, V)
        else:
            logits = torch.gather(raw, 1, gather_cols.expand(B, L, raw.shape[-1])).float()  # (B, L, V)
        V = logits.shape[-1]
        # 2. adjust
        edits = []
        for pname, edit in call_each("adjust_logits", run=run, step=step, canvas=canvas, masked=masked, logits=logits):
            why = check_edit(edit, (B, L, V))
            if why:
                raise PluginError(pname, "adjust_logits", why)
            edits.append((pname, edit))
        apply_edits(logits, [e for _, e in edits], masked)  # (B, L, V) in place
        # 3. propose
        proposal = propose(logits, masked, temperature=temperature, top_k=top_k, top_p=top_p, generator=gen, need=schedule.need)
        if bool(proposal.dead.any()):
            b, i = (int(x) for x in proposal.dead.nonzero()[0])
            raise ConstraintError(_dead_message(edits, b, i, V))
        if bool(torch.isnan(proposal.confidence[masked]).any()):  # nan or +inf logits somewhere: find who
            b, i = (int(x) for x in (torch.isnan(proposal.confidence) & masked).nonzero()[0])
            _blame_nonfinite(model, run, input_ids, attn, cols, step, canvas, masked, b, i)
        # 4. schedule
        commit = schedule.select(proposal, masked, 0 if finish_now else step, 1 if finish_now else steps, gen)  # (B, L)
        commit &= masked
        wanted = commit.any(dim=1)  # (B,)
        # 5. check: each plugin's drops are counted, so a stall names the plugin that caused it
        prev = [commit.clone()]

        def after_check(pname, _res, prev=prev, wanted=wanted):
            now = commit & masked  # (B, L)
            dropped[pname] = dropped.get(pname, 0) + int((prev[0] & ~now).sum())
            if bool((wanted & ~now.any(dim=1)).any()):
                b = int((wanted & ~now.any(dim=1)).nonzero()[0])
                raise PluginError(pname, "check_commit", f"dropped every commit of row {b} at step {step}, so the canvas would stall")
            prev[0] = now.clone()

        call_each("check_commit", run=run, step=step, canvas=canvas, masked=masked, proposal=proposal.tokens,
                  commit=commit, confidence=proposal.confidence, _after=after_check)
        commit &= masked
        # 6. commit
        canvas = torch.where(commit, proposal.tokens, canvas)  # (B, L)
        masked &= ~commit
        remask = torch.zeros_like(masked)
        for pname, rm in call_each("on_commit", run=run, step=step, canvas=canvas, masked=masked, committed=commit):
            if not isinstance(rm, torch.Tensor) or rm.shape != (B, L) or rm.dtype != torch.bool:
                raise PluginError(pname, "on_commit", f"must return None or a bool tensor of shape {(B, L)}")
            remask |= rm
            dropped[pname] = dropped.get(pname, 0) + int((rm & ~frozen).sum())
        remask &= ~frozen
        if bool(remask.any()):
            canvas = canvas.masked_fill(remask, model.mask_id)
            masked |= remask
        run.masked = masked
        # 7. observe
        if keep_trace:
            trace.steps.append(_record(step, commit, canvas, remask, masked))
        if watcher is not None:
            watcher(step, canvas, masked, commit)
        stops = call_each("on_step_end", run=run, step=step, canvas=canvas, masked=masked, committed=commit)
        finish_now = finish_now or any(v is True for _, v in stops)
        if dev.type == "cuda" and model.profile:
            torch.cuda.synchronize(dev)
        run.timings["per_step"].append((t_model, time.perf_counter() - t_step))
        step += 1
        if on_step is not None:
            on_step(1)

    run.timings["total"] = time.perf_counter() - t_start
    vocab = vocab_for(model.tokenizer)
    results = []
    for b in range(B):
        ids = canvas[b].tolist()
        text = vocab.decode([t for t in ids if t != model.fill_id])
        results.append(Result(text=text, token_ids=ids, steps=step, forward_passes=run.forward_passes, trace=trace, row=b,
                              to_fill=to_fill[b]))
    call_each("finalize", run=run, results=results)
    for r in results:
        r.forward_passes = run.forward_passes
        r.timings = dict(run.timings)
    return results


def _dead_message(edits, b: int, i: int, V: int) -> str:
    """Why no token is allowed at row ``b``, position ``i``: the one plugin whose mask alone bans every
    token there, or else the plugins whose masks together do."""
    alone, meeting = [], []
    for pname, e in edits:
        ok = _allowed_at(e, b, i, V)
        if ok is None:
            continue
        meeting.append(pname)
        if not bool(ok.any()):
            alone.append(pname)
    if alone:
        return (f"no token is allowed at row {b}, canvas position {i}: plugin {alone[0]!r} bans every token there"
                + (f" (so do {alone[1:]})" if len(alone) > 1 else ""))
    return f"no token is allowed at row {b}, canvas position {i}: the masks of plugins {meeting} exclude each other there"


def _allowed_at(e, b: int, i: int, V: int) -> torch.Tensor | None:
    """The ``(V,)`` allowed set of edit ``e`` at row ``b``, position ``i`` (None: the edit bans nothing there)."""
    r = b
    if e.rows is not None:
        hit = (e.rows == b).nonzero()
        if not len(hit):
            return None
        r = int(hit[0])
    ok = None
    if e.allowed is not None:
        a = e.allowed
        a = a[min(r, a.shape[0] - 1)] if a.dim() == 3 else a
        a = a[min(i, a.shape[0] - 1)] if a.dim() == 2 else a
        ok = a.expand(V).cpu()
    if e.classes is not None:
        u = int(e.choice[r, i])
        if u >= 0:
            c = e.classes[u].cpu()
            ok = c if ok is None else ok & c
    return ok


def _blame_nonfinite(model, run, input_ids, attn, cols, step, canvas, masked, b: int, i: int) -> None:
    """Logits at row ``b``, position ``i`` became nan or +inf (biases were already checked finite): run
    the forward pass again and each plugin's ``adjust_logits`` on a fresh copy, and name the first source
    of the non-finite value (the model, or a plugin that wrote into the read-only logits). Always raises."""
    from .errors import ModelError
    from .plugins import get_plugin_manager

    raw = model.logits(input_ids, attn)  # (B, T, V)
    col = int(cols[b, i]) - model.shift
    row = raw[b, max(col, 0)].float()  # (V,)
    if bool(torch.isnan(row).any() | torch.isposinf(row).any()):
        raise ModelError(f"the model's logits are nan or +inf at row {b}, canvas position {i} (step {step}); "
                         "check the checkpoint and its dtype")
    B, L = canvas.shape
    fresh = torch.gather(raw, 1, (cols - model.shift).clamp_min(0)[..., None].expand(B, L, raw.shape[-1])).float()
    for impl in reversed(get_plugin_manager().hook.adjust_logits.get_hookimpls()):
        kw = dict(run=run, step=step, canvas=canvas, masked=masked, logits=fresh)
        try:
            impl.function(*[kw[a] for a in impl.argnames])
        except Exception:
            continue
        cell = fresh[b, i]
        if bool(torch.isnan(cell).any() | torch.isposinf(cell).any()):
            raise PluginError(impl.plugin_name, "adjust_logits", f"wrote nan or +inf into the logits at row {b}, canvas "
                              f"position {i} (the logits are read-only: return a LogitsEdit)")
    raise ModelError(f"logits became nan or +inf at row {b}, canvas position {i} (step {step}), and neither the model nor "
                     "one plugin alone reproduces it")


def _record(step, commit, canvas, remask, masked) -> StepRecord:
    pos = [torch.nonzero(row).flatten().tolist() for row in commit]
    toks = [canvas[b, p].tolist() for b, p in enumerate(pos)]
    rem = [torch.nonzero(row).flatten().tolist() for row in remask]
    return StepRecord(step=step, positions=pos, tokens=toks, remasked=rem, masks_left=masked.sum(1).tolist())
