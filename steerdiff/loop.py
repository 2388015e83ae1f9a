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
    o = _options(model, prompt, length=length, steps=steps, schedule=schedule, threshold=threshold, block_length=block_length,
                 temperature=temperature, top_k=top_k, top_p=top_p, constraints=constraints, guidance=guidance, seed=seed,
                 batch_size=batch_size, trace=trace, watch=watch, progress=progress)
    single, prompts, rows, sched = o["single"], o["prompts"], o["rows"], o["schedule"]
    length, steps, temperature, top_k, top_p, seed = (o[k] for k in ("length", "steps", "temperature", "top_k", "top_p", "seed"))
    batch_size, trace, watch, progress = o["batch_size"], o["trace"], o["watch"], o["progress"]
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


def _options(model: Adapter, prompt, *, length, steps, schedule, threshold, block_length, temperature, top_k, top_p,
             constraints, guidance, seed, batch_size, trace, watch, progress) -> dict[str, Any]:
    """``generate``'s arguments checked and resolved (model defaults, schedule object, per-row constraints)."""
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

    return {"single": single, "prompts": prompts, "rows": rows, "schedule": sched, "length": length, "steps": steps,
            "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed, "batch_size": batch_size, "trace": trace,
            "watch": watch, "progress": progress}


def start_batch(model: Adapter, prompts: Sequence[str], *, constraints: Any = None, length: int = 64, steps: int | None = None,
                temperature: float | None = None, top_p: float | None = None, seed: int = 0) -> BatchRun:
    """A :class:`BatchRun` for ``prompts`` with ``generate``'s argument checks and model defaults (the schedule
    is the model's default one); the caller runs its forward passes. ``generate(model, prompts, ...)`` with the
    same arguments and ``batch_size=None`` gives the same results as driving this run step by step."""
    o = _options(model, list(prompts), length=length, steps=steps, schedule=None, threshold=None, block_length=None,
                 temperature=temperature, top_k=None, top_p=top_p, constraints=constraints, guidance=None, seed=seed,
                 batch_size=None, trace=False, watch=False, progress=False)
    return BatchRun(model, o["prompts"], o["rows"], length=o["length"], steps=o["steps"], schedule=o["schedule"],
                    temperature=o["temperature"], top_k=o["top_k"], top_p=o["top_p"], seed=o["seed"])


def _run_batch(model: Adapter, prompts, rows, *, length, steps, schedule, temperature, top_k, top_p, seed, keep_trace, watch,
               on_step=None):
    batch = BatchRun(model, prompts, rows, length=length, steps=steps, schedule=schedule, temperature=temperature, top_k=top_k,
                     top_p=top_p, seed=seed, keep_trace=keep_trace, watch=watch)
    while not batch.done:
        input_ids, attn = batch.inputs()  # (B, T), (B, T)
        t0 = time.perf_counter()
        raw = model.logits(input_ids, attn)  # (B, T, V)
        if batch.dev.type == "cuda" and model.profile:
            torch.cuda.synchronize(batch.dev)
        batch.advance(raw, t_model=time.perf_counter() - t0, t_step=t0)
        if on_step is not None:
            on_step(1)
    return batch.results()


class BatchRun:
    """One batch of rows being denoised, advanced one step at a time by whoever runs the model.

    Contract: the constructor builds the :class:`Run`, calls ``prepare`` and ``init_canvas`` (plugin errors
    raise here). Then, while not :attr:`done`: ``inputs()`` gives ``input_ids (B, T)`` and ``attention_mask
    (B, T)`` for the next forward pass (raising :class:`PluginError` when exact plugins stall the canvas),
    and ``advance(raw)`` takes that pass's logits ``(B, T', V)`` with ``T' >= T`` (extra columns on the
    right, e.g. padding from a joint pass with other batches, are ignored) and runs phases 2-7.
    ``results()`` finalizes. ``generate`` drives it with one model call per step; the server's continuous
    batcher drives several at once, concatenating their ``inputs()`` into one forward pass. A batch's rows
    see only their own logits, their own plugin state and their own seeded generator, so how a pass is
    shared does not change what the rows decide (beyond the floating-point effects of a larger matmul).
    """

    def __init__(self, model: Adapter, prompts, rows, *, length, steps, schedule, temperature, top_k, top_p, seed,
                 keep_trace=False, watch=False):
        self.model, self.steps, self.schedule = model, steps, schedule
        self.temperature, self.top_k, self.top_p, self.keep_trace = temperature, top_k, top_p, keep_trace
        self.dev = dev = model.device
        self.gen = torch.Generator(device=dev).manual_seed(seed)
        prompt_ids = [model.prompt_ids(p) for p in prompts]
        self.base, self.attn, self.cols = _layout(model, prompt_ids, length)  # (B, T), (B, T), (B, L)
        B, L = self.cols.shape
        self.run = run = Run(model=model, tokenizer=model.tokenizer, mask_id=model.mask_id, fill_id=model.fill_id, device=dev,
                             length=L, steps=steps, prompts=list(prompts), prompt_ids=prompt_ids, constraints=rows, generator=self.gen)
        run.timings = {"model": 0.0, "total": 0.0, "per_step": []}  # per_step: [(model s, step s)]
        self.t_start = time.perf_counter()
        call_each("prepare", run=run)
        canvas = torch.full((B, L), model.mask_id, dtype=torch.long, device=dev)  # (B, L)
        frozen = torch.zeros((B, L), dtype=torch.bool, device=dev)  # (B, L)
        call_each("init_canvas", run=run, canvas=canvas, frozen=frozen)
        self.canvas, self.frozen = canvas, frozen
        self.masked = ~frozen  # (B, L)
        self.to_fill = self.masked.sum(dim=1).tolist()  # (B,) positions the steps have to fill
        run.masked, run.frozen = self.masked, frozen
        self.committed = torch.zeros_like(frozen)  # (B, L) the last step's commits
        self.trace = Trace()
        self.watcher = Watcher(vocab_for(model.tokenizer)) if watch else None
        self.gather_cols = (self.cols - model.shift).clamp_min(0)[..., None]  # (B, L, 1)
        self.same_cols = bool((self.cols == self.cols[:1]).all())
        self.dropped: dict[str, int] = {}  # plugin -> commits it dropped (check_commit) or re-masked (on_commit) so far
        self.step, self.finish_now = 0, False
        self.hard_limit = steps + 4 * L  # commits can be deferred by exact plugins, never forever
        self._input_ids: torch.Tensor | None = None

    @property
    def done(self) -> bool:
        return not bool(self.masked.any())

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids (B, T), attention_mask (B, T))`` of the next forward pass."""
        if self.step >= self.hard_limit:
            dropped = self.dropped
            worst = max(dropped, key=dropped.get) if dropped else "core"
            others = {k: v for k, v in dropped.items() if k != worst and v}
            raise PluginError(worst, "check_commit/on_commit", f"no progress after {self.step} steps: it dropped or re-masked "
                              f"{dropped.get(worst, 0)} commits" + (f" (others: {others})" if others else ""))
        input_ids = self.base.clone()
        input_ids.scatter_(1, self.cols, self.canvas)  # (B, T)
        self._input_ids = input_ids
        return input_ids, self.attn

    def advance(self, raw: torch.Tensor, *, t_model: float = 0.0, t_step: float | None = None) -> None:
        """Phases 2-7 of one step from the forward pass ``raw (B, T', V)`` of :meth:`inputs`."""
        model, run, dev, gen, step, steps = self.model, self.run, self.dev, self.gen, self.step, self.steps
        t_step = time.perf_counter() if t_step is None else t_step
        canvas, masked, frozen, dropped, cols = self.canvas, self.masked, self.frozen, self.dropped, self.cols
        B, L = cols.shape
        run.timings["model"] += t_model
        run.forward_passes += 1
        if self.same_cols:
            c0 = int(cols[0, 0]) - model.shift
            logits = raw[:, c0 : c0 + L].float()  # (B, L, V)
        else:
            logits = torch.gather(raw, 1, self.gather_cols.expand(B, L, raw.shape[-1])).float()  # (B, L, V)
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
        proposal = propose(logits, masked, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, generator=gen,
                           need=self.schedule.need)
        if bool(proposal.dead.any()):
            b, i = (int(x) for x in proposal.dead.nonzero()[0])
            raise ConstraintError(_dead_message(edits, b, i, V))
        if bool(torch.isnan(proposal.confidence[masked]).any()):  # nan or +inf logits somewhere: find who
            b, i = (int(x) for x in (torch.isnan(proposal.confidence) & masked).nonzero()[0])
            _blame_nonfinite(model, run, self._input_ids, self.attn, cols, step, canvas, masked, b, i)
        # 4. schedule
        finish_now = self.finish_now
        commit = self.schedule.select(proposal, masked, 0 if finish_now else step, 1 if finish_now else steps, gen)  # (B, L)
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
        self.canvas, self.masked, self.committed = canvas, masked, commit
        # 7. observe
        if self.keep_trace:
            self.trace.steps.append(_record(step, commit, canvas, remask, masked))
        if self.watcher is not None:
            self.watcher(step, canvas, masked, commit)
        stops = call_each("on_step_end", run=run, step=step, canvas=canvas, masked=masked, committed=commit)
        self.finish_now = finish_now or any(v is True for _, v in stops)
        if dev.type == "cuda" and model.profile:
            torch.cuda.synchronize(dev)
        run.timings["per_step"].append((t_model, time.perf_counter() - t_step))
        self.step = step + 1

    def results(self) -> list[Result]:
        """Decode every row (padding stripped) and call ``finalize``: one :class:`Result` per row."""
        model, run = self.model, self.run
        run.timings["total"] = time.perf_counter() - self.t_start
        vocab = vocab_for(model.tokenizer)
        results = []
        for b in range(self.canvas.shape[0]):
            ids = self.canvas[b].tolist()
            text = vocab.decode([t for t in ids if t != model.fill_id])
            results.append(Result(text=text, token_ids=ids, steps=self.step, forward_passes=run.forward_passes, trace=self.trace,
                                  row=b, to_fill=self.to_fill[b]))
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
