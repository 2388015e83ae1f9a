"""``steerdiff serve`` through the real ``openai`` client and raw HTTP: endpoints, constraints, streaming,
every error class, batching equivalence, compile isolation and cancellation (steerdiff-tiny, CPU)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from typing import Literal

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (fastapi, uvicorn) is not installed")
openai = pytest.importorskip("openai", reason="the openai client (test extra) is not installed")
httpx = pytest.importorskip("httpx")

import jsonschema  # noqa: E402 (after importorskip)
import lark  # noqa: E402 (after importorskip)
import torch  # noqa: E402 (after importorskip)
from pydantic import BaseModel, Field  # noqa: E402 (after importorskip)

import steerdiff as sd  # noqa: E402 (after importorskip)
from steerdiff.serve.protocol import Limits  # noqa: E402 (after importorskip)

KEY = "test-key-123"
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 130},
                                           "role": {"enum": ["admin", "user"]}},
          "required": ["name", "age", "role"], "additionalProperties": False}


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=130)
    role: Literal["admin", "user"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Running:
    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return sd.load_model()


@pytest.fixture(scope="module")
def srv(model):
    from steerdiff.serve import create_app

    app = create_app(model, api_key=KEY, limits=Limits(max_length=96, max_batch=8, max_schema_bytes=4096, max_body_bytes=64 << 10,
                                                       max_queue_rows=64), window_s=0.05)
    r = _Running(app)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def client(srv):
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def _post(srv, path, body, key=KEY, timeout=120):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(srv.url + path, content=data, headers={**headers, "Content-Type": "application/json"}, timeout=timeout)


def _chat(text, **kw):
    return {"model": "steerdiff-tiny", "messages": [{"role": "user", "content": text}], **kw}


def test_models_and_health(client, srv):
    assert [m.id for m in client.models.list().data] == ["steerdiff-tiny"]
    h = httpx.get(srv.url + "/health").json()
    assert h["status"] == "ok" and h["max_batch"] == 8


def test_tokenizer_warmed_before_serving(srv, model):
    """The server builds the tokenizer's prefix tree and walks JSON's string at start (``Server.warm_up``), so
    the first request's compile does not."""
    from steerdiff_plugins.automata import token_trie, token_walk
    from steerdiff_plugins.schema.fragments import STRING

    if not token_trie.available():
        pytest.skip("numba is not installed: the numpy walk keeps no prefix tree")
    fv = token_walk._flat_vocab(srv.app.state.server.vocab)
    got = token_trie._tries.get(id(fv))
    assert got is not None and got[0] is fv  # the tree of this server's vocabulary
    tr = got[1]
    before = dict(tr.walks)
    assert before  # JSON's string walked up to its quote and kept
    token_walk.cache_clear()
    token_walk.compile_token_dfa(STRING, srv.app.state.server.vocab, model.fill_id)
    assert set(tr.walks) == set(before)  # compiling JSON's string again walks nothing new: the kept walk was taken


def test_chat_json_schema_validates(client):
    out = client.chat.completions.create(
        model="steerdiff-tiny", messages=[{"role": "user", "content": "Maria Lopez, 34, signs in as a user."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    value = json.loads(out.choices[0].message.content)
    jsonschema.Draft202012Validator(PERSON, format_checker=jsonschema.FormatChecker()).validate(value)
    assert out.choices[0].finish_reason == "stop" and out.usage.completion_tokens > 0


def test_parse_helper_with_pydantic(client):
    parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    out = parse(model="steerdiff-tiny", messages=[{"role": "user", "content": "Jack Smith, 27, admin."}], response_format=Person)
    p = out.choices[0].message.parsed
    assert isinstance(p, Person) and 0 <= p.age <= 130


def test_json_object(client):
    out = client.chat.completions.create(model="steerdiff-tiny", messages=[{"role": "user", "content": "Maria, 34"}],
                                         response_format={"type": "json_object"}, max_tokens=24)
    assert isinstance(json.loads(out.choices[0].message.content), dict)


def test_structured_outputs_regex_choice_grammar_template(client):
    regex = r"[0-9]{3}-[0-9]{4}"
    out = client.completions.create(model="steerdiff-tiny", prompt="Call me at", max_tokens=12,
                                    extra_body={"structured_outputs": {"regex": regex}})
    assert re.fullmatch(regex, out.choices[0].text)
    out = client.chat.completions.create(model="steerdiff-tiny", messages=[{"role": "user", "content": "The food was great"}],
                                         max_tokens=4, extra_body={"structured_outputs": {"choice": ["positive", "negative"]}})
    assert out.choices[0].message.content in ("positive", "negative")
    grammar = 'start: NUMBER ("+" NUMBER)*\n%import common.NUMBER\n'
    out = client.completions.create(model="steerdiff-tiny", prompt="1 + 2", max_tokens=10,
                                    extra_body={"structured_outputs": {"grammar": grammar}})
    lark.Lark(grammar, parser="lalr").parse(out.choices[0].text)
    out = client.completions.create(model="steerdiff-tiny", prompt="", max_tokens=16,
                                    extra_body={"structured_outputs": {"template": "Dear {{name:4}}, thanks."}})
    assert re.fullmatch(r"Dear .*, thanks\.", out.choices[0].text, re.DOTALL)


def test_n_and_sampling_seed_reproducible(client):
    kw = {"model": "steerdiff-tiny", "prompt": "Call me at", "max_tokens": 12, "n": 3, "temperature": 1.0, "seed": 7,
              "extra_body": {"structured_outputs": {"regex": r"[0-9]{3}-[0-9]{4}"}}}
    a = [c.text for c in client.completions.create(**kw).choices]
    b = [c.text for c in client.completions.create(**kw).choices]
    assert len(a) == 3 and a == b and all(re.fullmatch(r"[0-9]{3}-[0-9]{4}", t) for t in a)


def test_streaming_with_openai_client_and_snapshots(client, srv):
    stream = client.chat.completions.create(model="steerdiff-tiny", messages=[{"role": "user", "content": "Maria Lopez, 34, user"}],
                                            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
                                            stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
        usage = chunk.usage or usage
    jsonschema.validate(json.loads(text), PERSON)
    assert usage is not None and usage.completion_tokens > 0
    # the extension: a per-step canvas snapshot in a field ordinary clients ignore
    r = _post(srv, "/v1/completions", {"prompt": "Call me at", "max_tokens": 8, "stream": True, "canvas_snapshots": True,
                                       "structured_outputs": {"regex": "[0-9]{3}-[0-9]{4}"}})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    snaps = [e["steerdiff"] for e in events if "steerdiff" in e]
    assert snaps and snaps[-1]["canvas"].count(None) == 0 and snaps[0]["canvas"].count(None) > 0
    final = "".join(c["text"] for e in events for c in e["choices"])
    assert re.fullmatch("[0-9]{3}-[0-9]{4}", final)
    assert r.text.rstrip().endswith("data: [DONE]")


def _err(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert set(body) >= {"message", "type", "param", "code"}
    if code:
        assert body["code"] == code, body
    return body


def test_error_classes(srv, client):
    _err(_post(srv, "/v1/chat/completions", _chat("x"), key="wrong"), 401, "invalid_api_key")
    _err(_post(srv, "/v1/chat/completions", _chat("x"), key=None), 401, "invalid_api_key")
    _err(_post(srv, "/v1/chat/completions", b"{not json"), 400, "invalid_json")
    _err(_post(srv, "/v1/chat/completions", {"messages": []}), 400)
    _err(_post(srv, "/v1/chat/completions", _chat("x", model="gpt-4")), 404, "model_not_found")
    e = _err(_post(srv, "/v1/chat/completions", _chat("x", max_tokens=100000)), 400, "canvas_too_long")
    assert e["param"] == "max_tokens" and "96" in e["message"]
    _err(_post(srv, "/v1/chat/completions", b"x" * (70 << 10)), 413, "body_too_large")
    big = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(300)}}
    e = _err(_post(srv, "/v1/chat/completions", _chat("x", response_format={"type": "json_schema", "json_schema": {"name": "b", "schema": big}})), 413, "schema_too_large")
    assert e["param"] == "response_format.json_schema.schema"
    bad = {"type": "object", "properties": {"a": {"type": "strnig"}}}
    e = _err(_post(srv, "/v1/chat/completions", _chat("x", response_format={"type": "json_schema", "json_schema": {"name": "b", "schema": bad}})), 400, "invalid_schema")
    assert e["keyword"] and e["pointer"].startswith("#/properties/a")
    unsupported = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(a)\\1"}}}
    e = _err(_post(srv, "/v1/chat/completions", _chat("x", response_format={"type": "json_schema", "json_schema": {"name": "b", "schema": unsupported}})), 400)
    assert "pattern" in e["message"] or e.get("keyword") == "pattern"
    # a remote or file $ref is never fetched: a 400 naming the keyword and where it is
    remote = {"type": "object", "properties": {"a": {"$ref": "file:///etc/hostname"}}}
    e = _err(_post(srv, "/v1/completions", {"prompt": "x", "structured_outputs": {"json": remote}}), 400, "unsupported_schema")
    assert e["keyword"] == "$ref" and e["pointer"] == "#/properties/a/$ref" and "not fetched" in e["message"]
    _err(_post(srv, "/v1/completions", {"prompt": "x", "structured_outputs": {"regex": "(unclosed"}}), 400, "invalid_constraint")
    _err(_post(srv, "/v1/completions", {"prompt": "x", "structured_outputs": {"regex": "a", "choice": ["b"]}}), 400, "conflicting_constraints")
    _err(_post(srv, "/v1/completions", {"prompt": "x", "structured_outputs": {"bogus": 1}}), 400, "unsupported_parameter")
    _err(_post(srv, "/v1/completions", {"prompt": "x", "temperature": "hot"}), 400, "invalid_type")
    _err(_post(srv, "/v1/completions", {"prompt": "x", "tools": [{"type": "function"}]}), 400, "unsupported_parameter")
    # a canvas too short for the constraint: this request's 400, named
    e = _err(_post(srv, "/v1/completions", {"prompt": "x", "max_tokens": 2, "structured_outputs": {"regex": "[0-9]{3}-[0-9]{4}"}}), 400)
    assert "2" in e["message"]
    # the openai client raises its own error classes for these
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="steerdiff-tiny", prompt="x", extra_body={"structured_outputs": {"regex": "(x"}})
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")
    assert httpx.get(srv.url + "/health").json()["status"] == "ok"  # still up


def test_grammar_import_of_local_file_refused(srv, tmp_path, monkeypatch):
    (tmp_path / "secret.lark").write_text("SECRET: \"s3cr3t\"\n")
    monkeypatch.chdir(tmp_path)
    for target in ("secret.SECRET", ".secret.SECRET", "common.NUMBER"):
        g = f"start: X\n%import {target} -> X\n"
        r = _post(srv, "/v1/completions", {"prompt": "x", "max_tokens": 8, "structured_outputs": {"grammar": g}})
        if target.startswith("common"):
            assert r.status_code == 200, r.text
        else:
            e = _err(r, 400, "grammar_import_refused")
            assert "secret" in e["message"] and "s3cr3t" not in r.text


def test_queue_full_is_429(model):
    from steerdiff.serve.batcher import Batcher, Job
    from steerdiff.serve.protocol import APIError

    async def go():
        b = Batcher(model, max_batch=2, max_queue_rows=2)  # not started: jobs stay queued
        loop = asyncio.get_running_loop()
        def mk():
            return Job(prompt="x", constraint=None, length=4, steps=1, temperature=0.0, top_p=None, seed=0, n=1,
                                 snapshots=False, loop=loop)
        b.enqueue(mk())
        b.enqueue(mk())
        with pytest.raises(APIError) as ei:
            b.enqueue(mk())
        assert ei.value.status == 429 and ei.value.body()["error"]["code"] == "queue_full"

    asyncio.run(go())


def test_batching_equivalence_and_shared_passes(srv, client):
    """Requests in flight together share forward passes (continuous batching: different lengths, step counts,
    temperatures); each result equals the same request sent alone with the same seed."""
    reqs = [
        {"prompt": "Maria Lopez, 34, user", "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}},
        {"prompt": "Call me at", "max_tokens": 12, "extra_body": {"structured_outputs": {"regex": r"[0-9]{3}-[0-9]{4}"}}},
        {"prompt": "Jack Smith, 27, admin", "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}},
        {"prompt": "The food was bad", "max_tokens": 12, "extra_body": {"structured_outputs": {"choice": ["positive", "negative"]}}},
        {"prompt": "Call me at", "max_tokens": 12, "extra_body": {"structured_outputs": {"regex": r"[0-9]{3} [0-9]{2}"}}},
        {"prompt": "Anna, 51, admin", "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}},
        {"prompt": "1 + 2", "max_tokens": 10, "extra_body": {"steps": 7, "structured_outputs": {"grammar": 'start: /[0-9]+/ ("+" /[0-9]+/)*'}}},
        {"prompt": "Pick one", "max_tokens": 9, "temperature": 1.0, "extra_body": {"structured_outputs": {"regex": "[a-z]{3,8}"}}},
    ]

    def one(kw):
        kw = dict(kw)
        prompt = kw.pop("prompt")
        r = client.chat.completions.create(model="steerdiff-tiny", messages=[{"role": "user", "content": prompt}], seed=3, **kw)
        ext = r.model_extra["steerdiff"]
        return r.choices[0].message.content, ext["batch_rows"], ext["forward_passes"]

    alone = [one(kw) for kw in reqs]
    assert all(rows == 1 for _, rows, _ in alone), alone
    before = httpx.get(srv.url + "/health").json()["forward_passes"]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(reqs)) as ex:
        together = list(ex.map(one, reqs))
    after = httpx.get(srv.url + "/health").json()["forward_passes"]
    assert [t for t, *_ in together] == [t for t, *_ in alone]
    assert [p for *_, p in together] == [p for *_, p in alone]  # each request ran its own number of steps
    assert max(rows for _, rows, _ in together) >= 2, together  # some requests did share forward passes
    assert after - before < sum(p for *_, p in alone), (after - before, alone)  # shared: fewer passes than alone


def test_slow_compile_does_not_stall_others(srv, client, monkeypatch):
    import steerdiff.serve.compiler as comp

    real = comp._compile
    slow_started = threading.Event()

    def slow(kind, spec, start):
        if kind == "regex" and spec == "[a-z]{5}":
            slow_started.set()
            time.sleep(4)
        return real(kind, spec, start)

    monkeypatch.setattr(comp, "_compile", slow)
    res = {}

    def slow_req():
        t = time.perf_counter()
        client.completions.create(model="steerdiff-tiny", prompt="x", max_tokens=6, extra_body={"structured_outputs": {"regex": "[a-z]{5}"}})
        res["slow"] = time.perf_counter() - t

    th = threading.Thread(target=slow_req)
    th.start()
    assert slow_started.wait(30)
    t = time.perf_counter()
    out = client.completions.create(model="steerdiff-tiny", prompt="Call me at", max_tokens=8,
                                    extra_body={"structured_outputs": {"regex": "[0-9]{3}-[0-9]{2}"}})
    fast = time.perf_counter() - t
    th.join()
    assert re.fullmatch("[0-9]{3}-[0-9]{2}", out.choices[0].text)
    assert fast < res["slow"] - 1.0, (fast, res)


def test_disconnect_cancels_queued_row(model):
    from steerdiff.serve.batcher import Batcher, Job

    async def go():
        b = Batcher(model, max_batch=1, max_queue_rows=8, window_s=0)
        b.start()
        loop = asyncio.get_running_loop()
        jobs = [Job(prompt="x", constraint=None, length=16, steps=16, temperature=0.0, top_p=None, seed=0, n=1,
                    snapshots=False, loop=loop) for _ in range(3)]
        for j in jobs:
            b.enqueue(j)
        jobs[2].cancel()  # the client went away while queued
        await asyncio.wait_for(jobs[1].future, 60)
        await asyncio.sleep(0.05)
        assert jobs[2].future.cancelled() and b.rows_run == 2 and b.cancelled_rows == 1
        await b.stop()

    asyncio.run(go())


def test_http_disconnect_cancels(srv):
    before = httpx.get(srv.url + "/health").json()
    body = {"prompt": "x", "max_tokens": 96, "steps": 96}
    with pytest.raises(httpx.ReadTimeout):
        _post(srv, "/v1/completions", body, timeout=0.3)
    deadline = time.time() + 30
    while time.time() < deadline:
        h = httpx.get(srv.url + "/health").json()
        if h["cancelled_rows"] > before["cancelled_rows"]:
            break
        time.sleep(0.2)
    assert h["cancelled_rows"] > before["cancelled_rows"], h


def test_ui_page(srv):
    r = httpx.get(srv.url + "/ui")
    assert r.status_code == 200 and "canvas_snapshots" in r.text and "<script>" in r.text


def test_cli_serve_args():
    from steerdiff.cli import build_parser

    a = build_parser().parse_args(["serve"])
    assert a.host == "127.0.0.1" and a.port == 8000 and a.max_batch == 16


def test_batcher_continuous_equals_generate_alone(model):
    """Jobs of different widths, lengths, steps and temperatures run through the model thread together: each
    result equals ``sd.generate`` of the same request alone; widths far apart go in separate passes
    (``max_padding``), and a job that finishes early leaves while the others go on."""
    from steerdiff.plugins import make_constraint
    from steerdiff.serve.batcher import Batcher, Job

    digits = make_constraint({"type": "regex", "pattern": "[0-9]{2,6}"})
    specs = [("Call me at", digits, 8, 2, 0.0, 1), ("word " * 60, None, 12, 12, 0.0, 1),  # much wider input
             ("Pick a number", digits, 10, 5, 1.0, 2), ("Call me at", None, 6, 3, 0.0, 1)]

    async def go():
        b = Batcher(model, max_batch=8, max_queue_rows=16, window_s=0.05)
        b.start()
        loop = asyncio.get_running_loop()
        jobs = [Job(prompt=p, constraint=c, length=L, steps=s, temperature=t, top_p=None, seed=5, n=n, snapshots=False, loop=loop)
                for p, c, L, s, t, n in specs]
        for j in jobs:
            b.enqueue(j)
        res = [await asyncio.wait_for(j.future, 120) for j in jobs]
        await b.stop()
        return b, jobs, res

    b, jobs, res = asyncio.run(go())
    for (p, c, L, s, t, n), out in zip(specs, res):
        alone = sd.generate(model, [p] * n, length=L, steps=s, temperature=t, seed=5, constraints=[c] if c else None, trace=False)
        assert [r.text for r in out] == [r.text for r in alone] and out[0].steps == alone[0].steps
        if c is not None:
            assert all(re.fullmatch("[0-9]{2,6}", r.text) for r in out)
    assert max(j.batch_rows for j in jobs) >= 3  # narrow jobs shared passes
    assert b.passes > max(r[0].steps for r in res)  # the wide job ran in passes of its own
    assert b.padded / b.positions <= 0.2 and b.jobs_done == 4


def test_batcher_survives_an_internal_error(model):
    """A failure inside the model thread's own loop fails the running requests with it and the thread goes on."""
    from steerdiff.serve.batcher import Batcher, Job

    async def go():
        b = Batcher(model, max_batch=4, max_queue_rows=8, window_s=0)
        real, calls = b._step, []

        def broken_once(active):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom in the step loop")
            return real(active)

        b._step = broken_once
        b.start()
        loop = asyncio.get_running_loop()
        mk = lambda: Job(prompt="x", constraint=None, length=4, steps=2, temperature=0.0, top_p=None, seed=0, n=1,  # noqa: E731
                         snapshots=False, loop=loop)
        first = mk()
        b.enqueue(first)
        with pytest.raises(RuntimeError, match="boom"):
            await asyncio.wait_for(first.future, 60)
        second = mk()
        b.enqueue(second)
        out = await asyncio.wait_for(second.future, 60)
        await b.stop()
        return out

    out = asyncio.run(go())
    assert len(out) == 1 and out[0].steps == 2
