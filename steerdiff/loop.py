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
from .vocab import vocab_for


def _rows(spec, n_rows: int, what: str) -> list[list[Constraint]]:
    """Normalise ``constraints=``: None, one list for every row, or one list per row."""
    if spec is None:
        return [[] for _ in range(n_rows)]
    if isinstance(spec, (Constraint, dict)):
        spec = [spec]
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
    schedule: str | Schedule = "low_confidence",
    threshold: float | None = None,
    block_length: int | None = None,
    temperature: float = 0.0,
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
    same output. ``batch_size`` splits long prompt lists into batches (with a progress bar).
    """
    single = isinstance(prompt, str)
    prompts = [prompt] if single else list(prompt)
    if not prompts:
        raise ConfigError("prompt list is empty")
    if not isinstance(length, int) or length < 1:
        raise ConfigError(f"length must be a positive integer, got {length!r}")
    if model.autoregressive:
        steps = length  # one position per step, left to right
        schedule = "left_to_right"
    steps = length if steps is None else steps
    if not isinstance(steps, int) or not 1 <= steps <= length:
        raise ConfigError(f"steps must be an integer in [1, length={length}], got {steps!r}")
    options = {}
    if threshold is not None:
        options["threshold"] = threshold
    if block_length is not None:
        options["block_length"] = block_length
    sched = make_schedule(schedule, **options)
    if temperature < 0 or (top_p is not None and not 0 < top_p <= 1) or (top_k is not None and top_k < 1):
        raise ConfigError(f"bad sampling options: temperature={temperature}, top_k={top_k}, top_p={top_p}")
    get_plugin_manager()
    rows = _rows(constraints, len(prompts), "constraints")
    for r, g in zip(rows, _rows(guidance, len(prompts), "guidance")):
        r.extend(g)

    bs = batch_size or len(prompts)
    chunks = [range(i, min(i + bs, len(prompts))) for i in range(0, len(prompts), bs)]
    show = progress if progress is not None else (len(chunks) > 1 and sys.stderr.isatty())
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=len(prompts), desc="steerdiff", unit="row")
    results: list[Result] = []
    for ci, chunk in enumerate(chunks):
        results.extend(_run_batch(
            model, [prompts[i] for i in chunk], [rows[i] for i in chunk], length=length, steps=steps,
            schedule=sched, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + ci,
            keep_trace=trace, watch=watch and ci == 0,
        ))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    for i, r in enumerate(results):
        r.row = i
    return results[0] if single else results


def _run_batch(model: Adapter, prompts, rows, *, length, steps, schedule, temperature, top_k, top_p, seed, keep_trace, watch):
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
    run.masked, run.frozen = masked, frozen
    trace = Trace()
    watcher = Watcher(vocab_for(model.tokenizer)) if watch else None
    gather_cols = (cols - model.shift).clamp_min(0)[..., None]  # (B, L, 1)
    same_cols = bool((cols == cols[:1]).all())
    check_impls = [i.plugin_name for i in get_plugin_manager().hook.check_commit.get_hookimpls()]

    step, finish_now = 0, False
    hard_limit = steps + 4 * L  # commits can be deferred by exact plugins, never forever
    while bool(masked.any()):
        if step >= hard_limit:
            raise PluginError(",".join(check_impls) or "core", "check_commit", f"no progress after {step} steps")
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
            names = [p for p, e in edits if e.allowed is not None]
            raise ConstraintError(f"no token is allowed at row {b}, canvas position {i}: the masks of plugins {names} exclude each other there")
        # 4. schedule
        commit = schedule.select(proposal, masked, 0 if finish_now else step, 1 if finish_now else steps, gen)  # (B, L)
        commit &= masked
        wanted = commit.any(dim=1)  # (B,)
        # 5. check
        call_each("check_commit", run=run, step=step, canvas=canvas, masked=masked, proposal=proposal.tokens,
                  commit=commit, confidence=proposal.confidence)
        commit &= masked
        if bool((wanted & ~commit.any(dim=1)).any()):
            raise PluginError(",".join(check_impls), "check_commit", "dropped every commit of a row, so the canvas would stall")
        # 6. commit
        canvas = torch.where(commit, proposal.tokens, canvas)  # (B, L)
        masked &= ~commit
        remask = torch.zeros_like(masked)
        for pname, rm in call_each("on_commit", run=run, step=step, canvas=canvas, masked=masked, committed=commit):
            if not isinstance(rm, torch.Tensor) or rm.shape != (B, L) or rm.dtype != torch.bool:
                raise PluginError(pname, "on_commit", f"must return None or a bool tensor of shape {(B, L)}")
            remask |= rm
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

    run.timings["total"] = time.perf_counter() - t_start
    vocab = vocab_for(model.tokenizer)
    results = []
    for b in range(B):
        ids = canvas[b].tolist()
        text = vocab.decode([t for t in ids if t != model.fill_id])
        results.append(Result(text=text, token_ids=ids, steps=step, forward_passes=run.forward_passes, trace=trace, row=b))
    call_each("finalize", run=run, results=results)
    for r in results:
        r.forward_passes = run.forward_passes
        r.timings = dict(run.timings)
    return results


def _record(step, commit, canvas, remask, masked) -> StepRecord:
    pos = [torch.nonzero(row).flatten().tolist() for row in commit]
    toks = [canvas[b, p].tolist() for b, p in enumerate(pos)]
    rem = [torch.nonzero(row).flatten().tolist() for row in remask]
    return StepRecord(step=step, positions=pos, tokens=toks, remasked=rem, masks_left=masked.sum(1).tolist())
