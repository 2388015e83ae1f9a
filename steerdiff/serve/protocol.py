"""OpenAI request bodies -> a :class:`GenRequest`, and OpenAI-style error bodies.

Contract: :func:`parse_chat` / :func:`parse_completion` take the decoded JSON body and the server
:class:`Limits`, and either return a :class:`GenRequest` or raise :class:`APIError` whose
``status``/``param``/``code`` name the problem. Nothing here compiles a constraint or touches the model.

Constraint fields (one per request):
  ``response_format``: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``,
  ``{"type": "json_object"}`` or ``{"type": "text"}``.
  ``structured_outputs`` (vLLM's names): ``json`` (a JSON Schema), ``regex``, ``choice`` (a list of
  strings), ``grammar`` (a lark grammar; steerdiff's extra ``start`` names the start rule),
  ``json_object`` (true); steerdiff's extra ``template`` (``"Dear {{name:6}}, ..."``).
Sampling: ``temperature`` (default 0: greedy, unlike OpenAI's 1), ``top_p``, ``seed`` (default 0),
``n``, ``max_tokens``/``max_completion_tokens`` (the canvas length; default: sized from the schema for
JSON as ``fill`` sizes it, else ``DEFAULT_LENGTH``), steerdiff's extra ``steps`` (denoising steps, default length // 4).
Streaming: ``stream``; steerdiff's extra ``canvas_snapshots: true`` adds a ``steerdiff`` field with the
canvas to every per-step chunk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LENGTH = 32
UNSUPPORTED = ("tools", "functions", "logit_bias")  # accepted by OpenAI, not by this server: refused by name


@dataclass
class Limits:
    """Server limits. ``max_length``: canvas tokens; ``max_batch``: rows per forward pass (1: batching off)."""

    max_length: int = 256
    max_batch: int = 16
    max_n: int = 8
    max_body_bytes: int = 1 << 20
    max_schema_bytes: int = 64 << 10
    max_prompt_chars: int = 16_000
    max_queue_rows: int = 256


class APIError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}`` with HTTP ``status``."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or ("invalid_request_error" if status < 500 else "server_error")
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        err = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        err.update(self.extra)
        return {"error": err}


@dataclass
class GenRequest:
    """One request, ready for compiling and batching. ``kind``/``spec``: what to constrain (``None``: free
    text); ``length`` None means "size it from the schema"."""

    prompt: str
    kind: str | None = None
    spec: Any = None
    start: str = "start"
    length: int | None = None
    steps: int | None = None
    temperature: float = 0.0
    top_p: float | None = None
    seed: int = 0
    n: int = 1
    stream: bool = False
    snapshots: bool = False
    include_usage: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def cache_key(self) -> tuple:
        """What identifies the compiled constraint (not the sampling options)."""
        spec = json.dumps(self.spec, sort_keys=True, separators=(",", ":")) if self.kind in ("json", "choice") else self.spec
        return (self.kind, spec, self.start)


def _bad(message: str, param: str | None, code: str = "invalid_value", status: int = 400) -> APIError:
    return APIError(status, message, param=param, code=code)


def _num(body: dict, name: str, kind: type, lo: float, hi: float, default):
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise _bad(f"{name} must be {'an integer' if kind is int else 'a number'}, got {v!r}", name, "invalid_type")
    if not lo <= v <= hi:
        raise _bad(f"{name} must be in [{lo}, {hi}], got {v!r}", name)
    return kind(v)


def _schema_size_ok(schema: Any, param: str, limits: Limits) -> None:
    size = len(json.dumps(schema))
    if size > limits.max_schema_bytes:
        raise APIError(413, f"the schema is {size} bytes; this server takes at most {limits.max_schema_bytes}",
                       param=param, code="schema_too_large")
    if not isinstance(schema, (dict, bool)):
        raise _bad(f"a JSON Schema must be an object or a boolean, got {type(schema).__name__}", param, "invalid_schema")


def _constraint_fields(body: dict, limits: Limits) -> tuple[str | None, Any, str]:
    """``(kind, spec, start)`` from ``response_format`` / ``structured_outputs`` (at most one constraint)."""
    found: list[tuple[str, Any, str, str]] = []  # (kind, spec, start, param)
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise _bad("response_format.type must be 'text', 'json_object' or 'json_schema'", "response_format.type")
        if rf["type"] == "json_object":
            found.append(("json", {"type": "object"}, "start", "response_format"))
        elif rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict) or "schema" not in js:
                raise _bad("response_format.json_schema must be an object with a 'schema'", "response_format.json_schema")
            _schema_size_ok(js["schema"], "response_format.json_schema.schema", limits)
            found.append(("json", js["schema"], "start", "response_format.json_schema.schema"))
    so = body.get("structured_outputs")
    if so is not None:
        if not isinstance(so, dict):
            raise _bad("structured_outputs must be an object", "structured_outputs", "invalid_type")
        unknown = set(so) - {"json", "regex", "choice", "grammar", "json_object", "template", "start"}
        if unknown:
            raise _bad(f"structured_outputs: unknown field(s) {sorted(unknown)}; this server takes json, regex, choice, "
                       "grammar, json_object, template (and start for grammar)", "structured_outputs", "unsupported_parameter")
        start = so.get("start", "start")
        if not isinstance(start, str) or not re.fullmatch(r"[a-z_][a-z_0-9]*", start):
            raise _bad(f"structured_outputs.start must be a lark rule name, got {start!r}", "structured_outputs.start")
        for key in ("json", "regex", "choice", "grammar", "template"):
            if key not in so or so[key] is None:
                continue
            v, param = so[key], f"structured_outputs.{key}"
            if key == "json":
                if isinstance(v, str):
                    try:
                        v = json.loads(v)
                    except json.JSONDecodeError as exc:
                        raise _bad(f"{param} is a string that is not JSON: {exc}", param, "invalid_schema") from None
                _schema_size_ok(v, param, limits)
            elif key == "choice":
                if not isinstance(v, list) or not v or not all(isinstance(c, str) and c for c in v):
                    raise _bad(f"{param} must be a non-empty list of non-empty strings", param)
                if len(json.dumps(v)) > limits.max_schema_bytes:
                    raise APIError(413, f"{param} is over {limits.max_schema_bytes} bytes", param=param, code="schema_too_large")
            else:
                if not isinstance(v, str) or not v:
                    raise _bad(f"{param} must be a non-empty string", param, "invalid_type")
                if len(v) > limits.max_schema_bytes:
                    raise APIError(413, f"{param} is {len(v)} characters; this server takes at most {limits.max_schema_bytes}",
                                   param=param, code="schema_too_large")
            found.append((key, v, start, param))
        if so.get("json_object"):
            found.append(("json", {"type": "object"}, "start", "structured_outputs.json_object"))
    if len(found) > 1:
        raise _bad(f"give one constraint, got {len(found)}: {', '.join(p for *_, p in found)}", found[1][3], "conflicting_constraints")
    if not found:
        return None, None, "start"
    kind, spec, start, _ = found[0]
    return kind, spec, start


def _common(body: dict, prompt: str, limits: Limits) -> GenRequest:
    for name in UNSUPPORTED:
        if body.get(name):
            raise _bad(f"{name} is not supported by steerdiff serve", name, "unsupported_parameter")
    if body.get("logprobs"):
        raise _bad("logprobs are not supported by steerdiff serve", "logprobs", "unsupported_parameter")
    if len(prompt) > limits.max_prompt_chars:
        raise APIError(413, f"the prompt is {len(prompt)} characters; this server takes at most {limits.max_prompt_chars}",
                       param="messages", code="prompt_too_long")
    kind, spec, start = _constraint_fields(body, limits)
    length = body.get("max_completion_tokens", body.get("max_tokens"))
    if length is not None:
        pname = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise _bad(f"{pname} must be a positive integer, got {length!r}", pname, "invalid_type")
        if length > limits.max_length:
            raise _bad(f"{pname}={length} is over this server's canvas limit of {limits.max_length} tokens (--max-length)",
                       pname, "canvas_too_long")
    steps = _num(body, "steps", int, 1, limits.max_length, None)
    n = _num(body, "n", int, 1, min(limits.max_n, limits.max_batch), 1)
    stream_opts = body.get("stream_options") or {}
    if not isinstance(stream_opts, dict):
        raise _bad("stream_options must be an object", "stream_options", "invalid_type")
    return GenRequest(
        prompt=prompt, kind=kind, spec=spec, start=start, length=length, steps=steps,
        temperature=_num(body, "temperature", float, 0.0, 2.0, 0.0), top_p=_num(body, "top_p", float, 1e-9, 1.0, None),
        seed=_num(body, "seed", int, -(2**63), 2**63 - 1, 0), n=n, stream=bool(body.get("stream", False)),
        snapshots=bool(body.get("canvas_snapshots", False)), include_usage=bool(stream_opts.get("include_usage")),
    )


def _text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"{param}[{i}]: only text parts are supported", f"{param}[{i}]", "unsupported_content")
            parts.append(part["text"])
        return "".join(parts)
    if content is None:
        return ""
    raise _bad(f"{param} must be a string or a list of text parts", param, "invalid_type")


def parse_chat(body: Any, limits: Limits) -> GenRequest:
    """A chat body: the prompt is the messages' text contents joined by blank lines, in order."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", None, "invalid_body")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages must be a non-empty list", "messages", "invalid_value")
    texts = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"messages[{i}] must be an object with a role", f"messages[{i}]")
        texts.append(_text(m.get("content"), f"messages[{i}].content"))
    return _common(body, "\n\n".join(t for t in texts if t), limits)


def parse_completion(body: Any, limits: Limits) -> GenRequest:
    """A completions body: ``prompt`` is one string (token-id and list prompts are refused by name)."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object", None, "invalid_body")
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad("prompt must be one string (send one request per prompt; they are batched together)", "prompt", "invalid_type")
    if body.get("echo") or body.get("suffix"):
        raise _bad("echo and suffix are not supported", "echo" if body.get("echo") else "suffix", "unsupported_parameter")
    return _common(body, prompt, limits)
