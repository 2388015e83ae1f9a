"""The FastAPI app of ``steerdiff serve``: OpenAI-compatible endpoints over the batcher and compile cache.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``, ``GET /health``
(no key needed), ``GET /ui`` (the canvas replay page, live). Every error is OpenAI-shaped,
``{"error": {"message", "type", "param", "code"}}``: 400 bad request or constraint (schema errors add
``keyword`` and ``pointer``), 401 bad key, 404 unknown model, 413 body/schema/prompt over its limit,
429 queue full, 500 an engine failure. The API key is compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from ..errors import ConfigError, SteerdiffError
from .batcher import Batcher, Job
from .compiler import CompileCache
from .protocol import DEFAULT_LENGTH, APIError, GenRequest, Limits, parse_chat, parse_completion


class Server:
    """Model, limits, compile cache and batcher; :meth:`run` turns a :class:`GenRequest` into a finished Job."""

    def __init__(self, model, *, model_name: str, api_key: str | None, limits: Limits, window_s: float = 0.005,
                 cache_entries: int = 128, compile_workers: int = 4):
        from ..vocab import vocab_for

        self.model, self.model_name, self.api_key, self.limits = model, model_name, api_key, limits
        self.cache = CompileCache(cache_entries, compile_workers)
        self.batcher = Batcher(model, max_batch=limits.max_batch, max_queue_rows=limits.max_queue_rows, window_s=window_s)
        self.vocab = vocab_for(model.tokenizer)
        self.started = int(time.time())

    def warm_up(self) -> None:
        """Build what every compile of this tokenizer shares before the first request, not inside its compile:
        each plugin's ``warm_up`` hook (json_schema's: the tokenizer's prefix tree, the compiled walk's kernels
        and JSON's string walked up to its quote, about a second at Dream's 152k tokens)."""
        from ..plugins import call_each

        call_each("warm_up", tokenizer=self.model.tokenizer, fill_id=self.model.fill_id)

    def check_key(self, request) -> None:
        if not self.api_key:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.api_key.encode("utf-8")):
            raise APIError(401, "invalid API key (send 'Authorization: Bearer <key>')", code="invalid_api_key")

    def check_model(self, body: dict) -> None:
        name = body.get("model")
        if name is not None and name != self.model_name:
            raise APIError(404, f"model {name!r} is not served here; this server serves {self.model_name!r}",
                           param="model", code="model_not_found")

    async def job(self, req: GenRequest) -> Job:
        """Compile (cached, off the loop), size the canvas, warm the plugins, and enqueue the request."""
        from ..fill import canvas_length

        compiled = await self.cache.get(req.kind, req.spec, req.start)
        prompt_len = len(self.model.prompt_ids(req.prompt))
        room = self.model.max_positions - prompt_len - len(getattr(self.model, "suffix_ids", []) or [])
        length = req.length
        if length is None:
            if req.kind == "json":  # fill's size (any lengths share forward passes: see batcher)
                length = canvas_length(self.model, compiled.constraint, prompt_len)
            else:
                length = DEFAULT_LENGTH
            length = min(length, self.limits.max_length, max(room, 1))
        if length > room:
            raise APIError(400, f"the prompt ({prompt_len} tokens) leaves {max(room, 0)} canvas positions in the model's "
                           f"{self.model.max_positions}; max_tokens={length} does not fit", param="max_tokens",
                           code="context_length_exceeded")
        steps = min(req.steps or max(1, length // 4), length)
        await self.cache.warm(compiled, self.model, req.prompt, length)
        job = Job(prompt=req.prompt, constraint=compiled.constraint, length=length, steps=steps, temperature=req.temperature,
                  top_p=req.top_p, seed=req.seed, n=req.n, snapshots=req.snapshots, loop=asyncio.get_running_loop(),
                  vocab=self.vocab, mask_id=self.model.mask_id)
        job.compiled = compiled
        self.batcher.enqueue(job)
        return job

    def outputs(self, job: Job) -> list[dict[str, Any]]:
        """The finished job's rows as ``{"text", "tokens"}``; JSON outputs are re-checked with python-jsonschema."""
        results = job.future.result()
        out = []
        for r in results:
            if job.compiled.validator is not None:
                try:
                    value = json.loads(r.text)
                    errors = list(job.compiled.validator.iter_errors(value))
                except json.JSONDecodeError as exc:
                    errors = [exc]
                if errors:
                    raise APIError(500, f"engine bug: the output does not validate: {errors[0]}", code="invalid_output")
            out.append({"text": r.text, "tokens": sum(1 for t in r.token_ids if t != self.model.fill_id),
                        "steps": r.steps, "forward_passes": r.forward_passes})
        return out


def error_for(exc: BaseException) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, (ConfigError, SteerdiffError)):
        return APIError(400, str(exc), code="invalid_request")
    return APIError(500, f"{type(exc).__name__}: {exc}", code="internal_error")


def create_app(model=None, *, model_name: str | None = None, api_key: str | None = None, limits: Limits | None = None,
               window_s: float = 0.005, cache_entries: int = 128, compile_workers: int = 4):
    """The ASGI app (this module imports fastapi: the 'serve' extra). ``model``: an Adapter (default ``sd.load_model()``, steerdiff-tiny)."""
    from ..validate import load_model

    model = model if model is not None else load_model()
    limits = limits or Limits()
    server = Server(model, model_name=model_name or "steerdiff-tiny", api_key=api_key, limits=limits, window_s=window_s,
                    cache_entries=cache_entries, compile_workers=compile_workers)

    @asynccontextmanager
    async def lifespan(app):
        await asyncio.get_running_loop().run_in_executor(None, server.warm_up)  # before serving (off the loop)
        server.batcher.start()
        yield
        await server.batcher.stop()
        server.cache.close()

    app = FastAPI(title="steerdiff serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server

    @app.exception_handler(APIError)
    async def _api_error(request, exc: APIError):
        headers = {"Retry-After": "1"} if exc.status == 429 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(Exception)
    async def _any_error(request, exc: Exception):
        e = error_for(exc)
        return JSONResponse(e.body(), status_code=e.status)

    async def read_json(request: Request) -> Any:
        cl = request.headers.get("content-length")
        if cl is not None and cl.isdigit() and int(cl) > limits.max_body_bytes:
            raise APIError(413, f"the body is {cl} bytes; this server takes at most {limits.max_body_bytes}", code="body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise APIError(413, f"the body is over {limits.max_body_bytes} bytes", code="body_too_large")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise APIError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
        except RecursionError:
            raise APIError(400, "the body is nested too deeply", code="invalid_json") from None

    async def wait_job(job: Job, request: Request) -> None:
        """Wait for the job; a client that disconnects cancels it."""
        try:
            while not job.future.done():
                await asyncio.wait({job.future}, timeout=0.2)
                if not job.future.done() and await request.is_disconnected():
                    job.cancel()
                    raise APIError(499, "client disconnected", code="client_closed")
        finally:
            if not job.future.done():
                job.cancel()

    def usage(job: Job, outs: list[dict]) -> dict:
        p = len(server.model.prompt_ids(job.prompt))
        c = sum(o["tokens"] for o in outs)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    async def handle(request: Request, chat: bool):
        server.check_key(request)
        body = await read_json(request)
        req = (parse_chat if chat else parse_completion)(body, limits)
        server.check_model(body)
        job = await server.job(req)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        obj = "chat.completion" if chat else "text_completion"
        if req.stream:
            return StreamingResponse(stream(job, req, rid, chat), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        await wait_job(job, request)
        try:
            outs = server.outputs(job)
        except BaseException as exc:  # noqa: BLE001 -- every failure becomes this request's OpenAI-style error
            raise error_for(exc) from None
        choices = []
        for i, o in enumerate(outs):
            if chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": o["text"], "refusal": None},
                                "finish_reason": "stop", "logprobs": None})
            else:
                choices.append({"index": i, "text": o["text"], "finish_reason": "stop", "logprobs": None})
        return {"id": rid, "object": obj, "created": int(time.time()), "model": server.model_name, "choices": choices,
                "usage": usage(job, outs), "steerdiff": {"length": job.length, "steps": outs[0]["steps"],
                                                         "forward_passes": outs[0]["forward_passes"], "batch_rows": job.batch_rows}}

    async def stream(job: Job, req: GenRequest, rid: str, chat: bool):
        obj = "chat.completion.chunk" if chat else "text_completion"
        created = int(time.time())

        def chunk(choices, **extra) -> str:
            d = {"id": rid, "object": obj, "created": created, "model": server.model_name, "choices": choices}
            d.update(extra)
            return f"data: {json.dumps(d)}\n\n"

        def choice(i, text=None, finish=None, role=False):
            if chat:
                delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text is not None else {})
                return {"index": i, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {"index": i, "text": text or "", "finish_reason": finish, "logprobs": None}

        try:
            if chat:
                yield chunk([choice(i, role=True) for i in range(job.n)])
            while not job.future.done():
                get = asyncio.ensure_future(job.events.get())
                await asyncio.wait({get, job.future}, return_when=asyncio.FIRST_COMPLETED)
                if get.done():
                    yield chunk([], steerdiff=get.result())
                else:
                    get.cancel()
            while not job.events.empty():
                yield chunk([], steerdiff=job.events.get_nowait())
            try:
                outs = server.outputs(job)
            except BaseException as exc:  # noqa: BLE001 -- every failure becomes this request's OpenAI-style error
                yield f"data: {json.dumps(error_for(exc).body())}\n\n"
                return
            for i, o in enumerate(outs):
                yield chunk([choice(i, text=o["text"])])
                yield chunk([choice(i, finish="stop")])
            if req.include_usage:
                yield chunk([], usage=usage(job, outs))
            yield "data: [DONE]\n\n"
        finally:
            if not job.future.done():
                job.cancel()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, chat=False)

    @app.get("/v1/models")
    async def models(request: Request):
        server.check_key(request)
        return {"object": "list", "data": [{"id": server.model_name, "object": "model", "created": server.started,
                                            "owned_by": "steerdiff"}]}

    @app.get("/health")
    async def health():
        b, c = server.batcher, server.cache
        return {"status": "ok", "model": server.model_name, "queue_rows": b.queued_rows, "forward_passes": b.passes,
                "rows": b.rows_run, "cancelled_rows": b.cancelled_rows, "max_batch": b.max_batch,
                "profile": {"row_passes": b.row_passes, "max_rows_per_pass": b.max_rows_seen, "positions": b.positions,
                            "padded_positions": b.padded, "jobs_done": b.jobs_done,
                            **{k: round(getattr(b, k), 3) for k in ("model_s", "step_s", "start_s", "wait_s", "run_s")}},
                "compile_cache": {"entries": len(c), "limit": c.max_entries, "hits": c.hits, "misses": c.misses}}

    @app.get("/ui")
    async def ui():
        from ..replay import live_page

        return HTMLResponse(live_page(server.model_name))

    return app
