"""Cross-request batching: requests that arrive together share the model's forward passes.

Contract. :meth:`Batcher.enqueue` takes a :class:`Job` (one request: ``n`` rows, its own constraint,
canvas length and steps) or raises a 429 :class:`APIError` when ``max_queue_rows`` rows are waiting.
One model thread runs batches one after another; each batch is one ``sd.generate`` call over the rows of
the jobs it takes, each row with its own constraints. Jobs are grouped by ``(length, steps)`` and only
greedy jobs (``temperature == 0``) share a batch: greedy decoding and the low-confidence schedule draw no
random numbers, so a greedy row's output does not depend on its batch mates. A sampled job
(``temperature > 0``) runs in a batch of its own rows, so its ``seed`` reproduces it whatever else is
queued. A batch takes at most ``max_batch`` rows (``max_batch=1``: one request at a time).

Isolation: if a batch of several jobs fails, each job is run again alone, so one request's error is never
another's. Cancellation: :meth:`Job.cancel` (a client disconnect) removes a queued job; a running row
keeps its place in the batch but its result is dropped, and a batch whose jobs are all cancelled stops at
the end of the current step. Per-step canvas snapshots (``snapshots=True``) are pushed to ``Job.events``
from the model thread through the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
import time
from typing import Any

from ..constraints import Constraint
from ..errors import SteerdiffError
from ..hookspecs import hookimpl
from .protocol import APIError


class BatchCancelled(SteerdiffError):
    """Raised from the step hook when every job of the running batch was cancelled."""


class Tap(Constraint):
    """A no-op constraint that tells the server's step hook which job a canvas row belongs to."""

    type_name = "serve_tap"
    guarantee = "soft"

    def __init__(self, job: Job, index: int):
        self.job, self.index = job, index


class TapPlugin:
    """Registered once per process: per-step snapshots and cancellation for rows carrying a :class:`Tap`."""

    @hookimpl
    def on_step_end(self, run, step, canvas, masked, committed):
        taps = list(run.constraints_of(Tap))
        if not taps:
            return
        for row, tap in taps:
            if tap.job.snapshots and not tap.job.cancelled:
                tap.job.snapshot(tap.index, step, canvas[row].tolist(), masked[row].tolist(), committed[row].tolist())
        if all(tap.job.cancelled for _, tap in taps):
            raise BatchCancelled(f"every request of this batch was cancelled (step {step})")
        return


_tap_lock = threading.Lock()
_tap_registered = False


def register_tap() -> None:
    global _tap_registered
    from ..plugins import get_plugin_manager, register_plugin

    with _tap_lock:
        if not _tap_registered and not get_plugin_manager().has_plugin("steerdiff-serve-tap"):
            register_plugin(TapPlugin(), name="steerdiff-serve-tap")
        _tap_registered = True


class Job:
    """One request's rows. ``future`` gets the list of ``n`` :class:`~steerdiff.run.Result` or an exception."""

    def __init__(self, *, prompt: str, constraint: Any, length: int, steps: int, temperature: float, top_p: float | None,
                 seed: int, n: int, snapshots: bool, loop: asyncio.AbstractEventLoop, vocab=None, mask_id: int = -1):
        self.prompt, self.constraint, self.length, self.steps = prompt, constraint, length, steps
        self.temperature, self.top_p, self.seed, self.n = temperature, top_p, seed, n
        self.snapshots, self.loop, self.vocab, self.mask_id = snapshots, loop, vocab, mask_id
        self.future: asyncio.Future = loop.create_future()
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.enqueued = time.perf_counter()
        self.batch_rows = 0  # rows of the batch this job ran in
        self.key = (length, steps) if temperature == 0 else ("own", id(self))

    def cancel(self) -> None:
        self.cancelled = True

    def snapshot(self, index: int, step: int, tokens: list[int], masked: list[bool], committed: list[bool]) -> None:
        """Called from the model thread: the row's canvas after ``step`` (``None`` for a masked position)."""
        pieces = [None if m else self.vocab.decode([t]) for t, m in zip(tokens, masked)]
        event = {"index": index, "step": step, "canvas": pieces, "committed": [i for i, c in enumerate(committed) if c]}
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class Batcher:
    """Queue, grouping and the model thread (see the module docstring)."""

    def __init__(self, model, *, max_batch: int = 16, max_queue_rows: int = 256, window_s: float = 0.005):
        self.model, self.max_batch, self.max_queue_rows, self.window_s = model, max_batch, max_queue_rows, window_s
        self.pending: list[Job] = []
        self.pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="steerdiff-model")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.batches = self.rows_run = self.cancelled_rows = 0
        register_tap()

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)

    @property
    def queued_rows(self) -> int:
        return sum(j.n for j in self.pending)

    def enqueue(self, job: Job) -> None:
        if self.queued_rows + job.n > self.max_queue_rows:
            raise APIError(429, f"the server queue is full ({self.queued_rows} rows waiting, limit {self.max_queue_rows}); "
                           "retry later", code="queue_full", type="rate_limit_exceeded")
        self.pending.append(job)
        assert self._wake is not None, "Batcher.start() was not called"
        self._wake.set()

    def _take(self) -> list[Job]:
        for j in [j for j in self.pending if j.cancelled]:
            self.pending.remove(j)
            self.cancelled_rows += j.n
            if not j.future.done():
                j.future.cancel()
        if not self.pending:
            return []
        key = self.pending[0].key
        taken, rows = [], 0
        for j in list(self.pending):
            if j.key == key and rows + j.n <= self.max_batch:
                taken.append(j)
                rows += j.n
                self.pending.remove(j)
        if not taken:  # n over max_batch cannot happen (the parser caps n); take the head alone anyway
            taken = [self.pending.pop(0)]
        return taken

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                if self.window_s > 0 and self.max_batch > 1 and self.queued_rows < self.max_batch:
                    await asyncio.sleep(self.window_s)  # let requests that arrive together join one batch
                jobs = self._take()
                if not jobs:
                    continue
                outcomes = await loop.run_in_executor(self.pool, self._run_jobs, jobs)
                for job, out in outcomes:
                    if job.cancelled:  # dropped (or stopped early): counted once, here
                        self.cancelled_rows += job.n
                        if not job.future.done():
                            job.future.cancel()
                        continue
                    if job.future.done():
                        continue
                    if isinstance(out, BaseException):
                        job.future.set_exception(out)
                    else:
                        job.future.set_result(out)

    def _generate(self, jobs: list[Job]):
        from ..loop import generate

        prompts, rows = [], []
        for job in jobs:
            for i in range(job.n):
                prompts.append(job.prompt)
                rows.append(([job.constraint] if job.constraint is not None else []) + [Tap(job, i)])
        head = jobs[0]
        out = generate(self.model, prompts, length=head.length, steps=head.steps, temperature=head.temperature,
                       top_p=head.top_p, constraints=rows, seed=head.seed, trace=False, progress=False)
        res, k = [], 0
        for job in jobs:
            res.append((job, out[k : k + job.n]))
            job.batch_rows = len(prompts)
            k += job.n
        return res

    def _run_jobs(self, jobs: list[Job]) -> list[tuple[Job, Any]]:
        """In the model thread: one batch; on failure each job alone, so errors stay with their request."""
        live = [j for j in jobs if not j.cancelled]
        if not live:
            return [(j, asyncio.CancelledError()) for j in jobs]
        self.batches += 1
        self.rows_run += sum(j.n for j in live)
        try:
            return self._generate(live)
        except BatchCancelled as exc:
            return [(j, asyncio.CancelledError(str(exc))) for j in live]
        except Exception as exc:  # noqa: BLE001 -- kept with its own request, never its batch mates'
            if len(live) == 1:
                return [(live[0], exc)]
        out = []
        for j in live:  # one culprit: run each job alone
            try:
                out.extend(self._generate([j]))
            except Exception as exc:  # noqa: BLE001 -- kept with its own request, never its batch mates'
                out.append((j, exc))
        return out
