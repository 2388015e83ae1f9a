"""Continuous cross-request batching: the requests in flight share every forward pass, step by step.

Contract. :meth:`Batcher.enqueue` takes a :class:`Job` (one request: ``n`` rows, its own constraint,
canvas length, steps, sampling options and seed) or raises a 429 :class:`APIError` when
``max_queue_rows`` rows are waiting. One model thread runs the step loop: each job becomes a
:class:`~steerdiff.loop.BatchRun` of its own (its own plugin state, canvas, step counter and seeded
generator), and each step the ``inputs()`` of every running job are stacked into one forward pass
(right-padded to the widest, padding masked out of attention; jobs of very different widths go in a few
passes of similar width, see ``max_padding``), whose logits are split back, and each job runs the rest of
its step (constraints, schedule, commits) on its own rows. Jobs join between steps as soon as there is
room (at most ``max_batch`` rows per pass; ``max_batch=1`` serves one request at a time through the same
code) and leave as soon as their canvas is filled, so a request that needs 19 steps never holds up one
that needs 5, and different lengths, step counts and temperatures share passes. A job's result is the
result of the same request alone with the same seed (its rows see only their own logits and generator;
what sharing can change is the floating-point rounding of a larger matmul).

Isolation: a job whose own step fails (a plugin error, a dead canvas) gets that error; the others go on.
If the joint forward pass itself fails, each job's pass is run alone, so a failure stays with its request.
Cancellation: :meth:`Job.cancel` (a client disconnect) drops a queued job at once and a running job at the
next step boundary; its future is cancelled. Per-step canvas snapshots (``snapshots=True``) are pushed to
``Job.events`` through the job's event loop. Counters (for ``/health``, the server-side profile):
``passes`` joint forward passes, ``row_passes`` rows summed over passes, ``max_rows_seen`` the most rows
one pass carried, ``positions``/``padded`` token positions run and those that were right padding,
``rows_run`` rows started, ``cancelled_rows``, ``jobs_done``; seconds: ``model_s`` in forward passes,
``step_s`` in the jobs' own step work, ``start_s`` in ``start_batch`` (prepare, init_canvas), ``wait_s``
queued (summed over jobs), ``run_s`` from start to result (summed over jobs).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import torch

from .protocol import APIError


def _settle(fut: asyncio.Future, value: Any) -> None:
    """In the event loop: resolve ``fut`` with a result, an exception or cancellation (if still pending)."""
    if fut.done():
        return
    if isinstance(value, asyncio.CancelledError):
        fut.cancel()
    elif isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)


class Job:
    """One request's rows. ``future`` gets the list of ``n`` :class:`~steerdiff.run.Result` or an exception.
    ``batch_rows``: the most rows that shared one forward pass with this job's rows (its own included)."""

    def __init__(self, *, prompt: str, constraint: Any, length: int, steps: int, temperature: float, top_p: float | None,
                 seed: int, n: int, snapshots: bool, loop: asyncio.AbstractEventLoop, vocab=None, mask_id: int = -1):
        self.prompt, self.constraint, self.length, self.steps = prompt, constraint, length, steps
        self.temperature, self.top_p, self.seed, self.n = temperature, top_p, seed, n
        self.snapshots, self.loop, self.vocab, self.mask_id = snapshots, loop, vocab, mask_id
        self.future: asyncio.Future = loop.create_future()
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.enqueued = time.perf_counter()
        self.batch_rows = 0
        self.started = 0.0  # perf_counter() when the model thread started it

    def cancel(self) -> None:
        """Called from the event loop (client gone): the model thread drops the job at its next step boundary."""
        self.cancelled = True
        if not self.future.done():
            self.future.cancel()

    def finish(self, value: Any) -> None:
        """From the model thread: results, an exception or ``CancelledError``."""
        self.loop.call_soon_threadsafe(_settle, self.future, value)

    def snapshot(self, index: int, step: int, tokens: list[int], masked: list[bool], committed: list[bool]) -> None:
        """Called from the model thread: the row's canvas after ``step`` (``None`` for a masked position)."""
        pieces = [None if m else self.vocab.decode([t]) for t, m in zip(tokens, masked)]
        event = {"index": index, "step": step, "canvas": pieces, "committed": [i for i, c in enumerate(committed) if c]}
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class Batcher:
    """Queue and model thread (see the module docstring). ``window_s``: when the model is idle, how long
    the first arrival waits for others that arrive together (they then start in the same step).
    ``max_padding``: a step's jobs are split into passes of similar width so that right padding stays under
    this share of a pass's positions (1.0: always one pass per step, e.g. on a GPU where padding is cheap)."""

    def __init__(self, model, *, max_batch: int = 16, max_queue_rows: int = 256, window_s: float = 0.005,
                 max_padding: float = 0.2):
        self.model, self.max_batch, self.max_queue_rows, self.window_s = model, max_batch, max_queue_rows, window_s
        self.max_padding = max_padding
        self.pending: deque[Job] = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.passes = self.row_passes = self.max_rows_seen = self.positions = self.padded = 0
        self.rows_run = self.cancelled_rows = self.jobs_done = 0
        self.model_s = self.step_s = self.start_s = self.wait_s = self.run_s = 0.0  # see the module docstring

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="steerdiff-model", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)

    @property
    def queued_rows(self) -> int:
        with self._cv:
            return sum(j.n for j in self.pending)

    def enqueue(self, job: Job) -> None:
        with self._cv:
            queued = sum(j.n for j in self.pending)
            if queued + job.n > self.max_queue_rows:
                raise APIError(429, f"the server queue is full ({queued} rows waiting, limit {self.max_queue_rows}); "
                               "retry later", code="queue_full", type="rate_limit_exceeded")
            self.pending.append(job)
            self._cv.notify()

    # ---- the model thread -------------------------------------------------------------------------------

    def _admit(self, active: list) -> list[Job]:
        """Under the lock: drop cancelled queued jobs; take queued jobs (in order) while they fit."""
        for j in [j for j in self.pending if j.cancelled]:
            self.pending.remove(j)
            self.cancelled_rows += j.n
        rows = sum(j.n for j, _ in active)
        taken = []
        while self.pending and rows + self.pending[0].n <= self.max_batch:
            j = self.pending.popleft()
            taken.append(j)
            rows += j.n
        if not taken and not active and self.pending:  # n over max_batch cannot happen (the parser caps n)
            taken.append(self.pending.popleft())
        return taken

    def _start(self, job: Job):
        """A job's BatchRun (its plugins' prepare and init_canvas run here), or None after failing the job."""
        from ..loop import start_batch

        t0 = time.perf_counter()
        self.wait_s += t0 - job.enqueued
        job.started = t0
        try:
            run = start_batch(self.model, [job.prompt] * job.n, constraints=[job.constraint] if job.constraint is not None else None,
                              length=job.length, steps=job.steps, temperature=job.temperature, top_p=job.top_p, seed=job.seed)
        except Exception as exc:  # noqa: BLE001 -- this request's error, never another's
            job.finish(exc)
            return None
        finally:
            self.start_s += time.perf_counter() - t0
        self.rows_run += job.n
        return run

    def _main(self) -> None:
        active: list[tuple[Job, Any]] = []
        while True:
            with self._cv:
                while not self._stopping and not active and not self.pending:
                    self._cv.wait()
                if self._stopping:
                    break
                idle = not active
            if idle and self.window_s > 0 and self.max_batch > 1:
                time.sleep(self.window_s)  # let requests that arrive together start in the same step
            try:
                with self._cv:
                    new = self._admit(active)
                for job in new:
                    run = self._start(job)
                    if run is not None:
                        active.append((job, run))
                active = self._drop_cancelled(active)
                if active:
                    active = self._step(active)
            except Exception as exc:  # noqa: BLE001 -- a bug here must fail the running requests, not hang them
                for job, _ in active:
                    job.finish(exc)
                active = []
        for job, _ in active:
            job.finish(asyncio.CancelledError("the server is shutting down"))

    def _drop_cancelled(self, active: list) -> list:
        keep = []
        for job, run in active:
            if job.cancelled:
                self.cancelled_rows += job.n
                job.finish(asyncio.CancelledError("client disconnected"))
            else:
                keep.append((job, run))
        return keep

    def _joint_logits(self, active: list) -> list:
        """The forward passes of one step over every running job's rows: per job, its logits ``(n, T, V)`` or an
        exception. Jobs are grouped by input width so that right padding stays under ``max_padding`` of a
        pass's positions (a CPU pass costs what its positions cost; one group when widths are close)."""
        ins = []
        for job, run in active:
            try:
                ins.append(run.inputs())  # (n, T_j), (n, T_j)
            except Exception as exc:  # noqa: BLE001 -- a stalled canvas is this request's error
                ins.append(exc)
        out: list[Any] = list(ins)
        ok = sorted((i for i, x in enumerate(ins) if not isinstance(x, BaseException)), key=lambda i: -ins[i][0].shape[1])
        group: list[int] = []
        for i in ok:
            if group and ins[i][0].shape[1] < (1 - self.max_padding) * ins[group[0]][0].shape[1]:
                self._pass(group, ins, out, active)
                group = []
            group.append(i)
        if group:
            self._pass(group, ins, out, active)
        return out

    def _pass(self, group: list[int], ins: list, out: list, active: list) -> None:
        """One forward pass over the jobs ``group`` (indices into ``ins``), right-padded to the widest."""
        model = self.model
        T = max(ins[i][0].shape[1] for i in group)
        pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else model.fill_id
        ids = torch.cat([torch.nn.functional.pad(ins[i][0], (0, T - ins[i][0].shape[1]), value=pad) for i in group])  # (R, T)
        attn = torch.cat([torch.nn.functional.pad(ins[i][1], (0, T - ins[i][1].shape[1]), value=0) for i in group])  # (R, T)
        rows = ids.shape[0]
        self.passes += 1
        self.row_passes += rows
        self.max_rows_seen = max(self.max_rows_seen, rows)
        self.positions += rows * T
        self.padded += int((attn == 0).sum())
        t0 = time.perf_counter()
        try:
            raw = model.logits(ids, attn)  # (R, T, V)
        except Exception:  # noqa: BLE001 -- find whose rows fail: each job's pass alone
            for i in group:
                try:
                    out[i] = model.logits(*ins[i])  # (n, T_i, V)
                except Exception as exc:  # noqa: BLE001 -- kept with its own request
                    out[i] = exc
            return
        self.model_s += time.perf_counter() - t0
        k = 0
        for i in group:
            n = ins[i][0].shape[0]
            out[i] = raw[k : k + n]  # (n, T, V): columns past the job's own T are padding, ignored by advance
            active[i][0].batch_rows = max(active[i][0].batch_rows, rows)
            k += n

    def _step(self, active: list) -> list:
        """One step of every running job; finished and failed jobs leave. Returns the jobs still running."""
        logits = self._joint_logits(active)
        t0 = time.perf_counter()
        keep = []
        for (job, run), raw in zip(active, logits):
            try:
                if isinstance(raw, BaseException):
                    raise raw
                run.advance(raw)
                if job.snapshots and not job.cancelled:
                    for i in range(job.n):
                        job.snapshot(i, run.step - 1, run.canvas[i].tolist(), run.masked[i].tolist(), run.committed[i].tolist())
                if run.done:
                    job.finish(run.results())
                    self.jobs_done += 1
                    self.run_s += time.perf_counter() - job.started
                else:
                    keep.append((job, run))
            except Exception as exc:  # noqa: BLE001 -- this request's error, never another's
                job.finish(exc)
        self.step_s += time.perf_counter() - t0
        return keep
