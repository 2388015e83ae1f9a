"""Constraint compiling for the server: off the event loop, cached, one compile per distinct spec at a time.

Contract: ``await cache.get(kind, spec, start)`` returns a :class:`Compiled` (or raises
:class:`~steerdiff.serve.protocol.APIError` 400 naming the problem: for a schema the keyword and its JSON
pointer). Compiles run in a small thread pool of their own, so a schema that takes seconds to compile
delays only the requests that carry it; the model's batches and cache hits go on. Results and errors
are kept in an LRU cache of ``max_entries`` specs. ``await cache.warm(compiled, model, prompt, length)``
runs the plugins' ``prepare`` hooks for one row in that pool too (token automata, grammar tables,
length checks), once per compiled spec and canvas length, so the batch loop never compiles and a
too-short canvas is this request's 400.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConstraintError, SteerdiffError, UnsupportedSchemaError
from .protocol import APIError

_IMPORT = re.compile(r"^[ \t]*%import[ \t]+(\S+)", re.MULTILINE)
_REGEX_SPECIAL = set("\\.^$*+?{}[]()|")


def bundled_lark_grammars() -> set[str]:
    """Names of the grammars that ship inside lark (``common``, ``lark``, ``python``, ``unicode``)."""
    import lark

    folder = os.path.join(os.path.dirname(lark.__file__), "grammars")
    return {f[:-5] for f in os.listdir(folder) if f.endswith(".lark")}


def check_imports(grammar: str) -> None:
    """Refuse ``%import`` of anything but lark's bundled grammars: a request must never make the server
    read a file of its own choosing (lark resolves other imports against the working directory)."""
    allowed = bundled_lark_grammars()
    for m in _IMPORT.finditer(grammar):
        target = m.group(1)
        head = target.split(".")[0]
        if target.startswith(".") or head not in allowed or "/" in target or "\\" in target:
            line = grammar.count("\n", 0, m.start()) + 1
            raise APIError(400, f"grammar line {line}: %import {target} is refused: only lark's bundled grammars "
                           f"({', '.join(sorted(allowed))}) may be imported", param="structured_outputs.grammar",
                           code="grammar_import_refused")


def choice_regex(choices: list[str]) -> str:
    """A regex matching exactly one of ``choices``."""
    esc = ["".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in c) for c in choices]
    return "(" + "|".join(esc) + ")"


@dataclass
class Compiled:
    """A compiled request constraint. ``validator``: python-jsonschema validator for JSON outputs."""

    kind: str | None
    constraint: Any = None
    schema: Any = None
    validator: Any = None
    warmed: set = field(default_factory=set)  # canvas lengths whose prepare already ran (and passed)


def _param(kind: str | None) -> str:
    return {"json": "response_format.json_schema.schema", "regex": "structured_outputs.regex", "choice": "structured_outputs.choice",
            "grammar": "structured_outputs.grammar", "template": "structured_outputs.template"}.get(kind or "", "messages")


def constraint_error(exc: Exception, kind: str | None) -> APIError:
    """A ConstraintError (or jsonschema SchemaError) as a 400 that names keyword and pointer where known."""
    extra: dict[str, Any] = {}
    code = "invalid_constraint"
    if isinstance(exc, UnsupportedSchemaError):
        extra = {"keyword": exc.keyword, "pointer": exc.pointer or "#"}
        code = "unsupported_schema"
    return APIError(400, f"{_param(kind)}: {exc}", param=_param(kind), code=code, extra=extra)


def _compile(kind: str | None, spec: Any, start: str) -> Compiled:
    from ..fill import _constraint
    from ..plugins import make_constraint

    if kind is None:
        return Compiled(None)
    if kind == "json":
        import jsonschema

        cls = jsonschema.validators.validator_for(spec, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(spec)
        except jsonschema.SchemaError as exc:
            pointer = "#" + "".join(f"/{p}" for p in exc.path)
            raise APIError(400, f"response_format.json_schema.schema: invalid JSON Schema: keyword {exc.validator!r} at "
                           f"{pointer}: {exc.message}", param=_param(kind), code="invalid_schema",
                           extra={"keyword": exc.validator, "pointer": pointer}) from None
        return Compiled(kind, _constraint(spec), spec, cls(spec, format_checker=jsonschema.FormatChecker()))
    if kind in ("regex", "choice"):
        pattern = spec if kind == "regex" else choice_regex(spec)
        return Compiled(kind, make_constraint({"type": "regex", "pattern": pattern}))
    if kind == "grammar":
        check_imports(spec)
        return Compiled(kind, make_constraint({"type": "grammar", "grammar": spec, "start": start}))
    if kind == "template":
        return Compiled(kind, make_constraint({"type": "template", "text": spec}))
    raise APIError(400, f"unknown constraint kind {kind!r}", param="structured_outputs")


def _warm(model, constraint, prompt: str, length: int) -> None:
    from ..plugins import call_each
    from ..run import Run

    ids = model.prompt_ids(prompt)
    run = Run(model=model, tokenizer=model.tokenizer, mask_id=model.mask_id, fill_id=model.fill_id, device=model.device,
              length=length, steps=length, prompts=[prompt], prompt_ids=[ids], constraints=[[constraint]],
              generator=torch.Generator().manual_seed(0))
    call_each("prepare", run=run)


class CompileCache:
    """LRU cache of compiled specs (results and errors), compiled in ``workers`` threads of its own."""

    def __init__(self, max_entries: int = 128, workers: int = 4):
        self.max_entries = max_entries
        self.pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="steerdiff-compile")
        self._lru: OrderedDict[tuple, Compiled | APIError] = OrderedDict()
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._lru)

    def _store(self, key: tuple, value: Compiled | APIError) -> None:
        with self._lock:
            self._lru[key] = value
            self._lru.move_to_end(key)
            while len(self._lru) > self.max_entries:
                self._lru.popitem(last=False)

    async def get(self, kind: str | None, spec: Any, start: str = "start") -> Compiled:
        key = (kind, json.dumps(spec, sort_keys=True) if not isinstance(spec, str) else spec, start)
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
        if hit is not None:
            self.hits += 1
            if isinstance(hit, APIError):
                raise hit
            return hit
        fut = self._inflight.get(key)
        if fut is None:  # single flight: concurrent requests for one spec share one compile
            self.misses += 1
            fut = asyncio.get_running_loop().run_in_executor(self.pool, self._compile_safe, kind, spec, start)
            self._inflight[key] = fut
            fut.add_done_callback(lambda _f, k=key: self._inflight.pop(k, None))
        value = await asyncio.shield(fut)
        if isinstance(value, APIError):
            raise value
        return value

    def _compile_safe(self, kind, spec, start) -> Compiled | APIError:
        key = (kind, json.dumps(spec, sort_keys=True) if not isinstance(spec, str) else spec, start)
        try:
            value: Compiled | APIError = _compile(kind, spec, start)
        except APIError as exc:
            value = exc
        except (ConstraintError, SteerdiffError) as exc:
            value = constraint_error(exc, kind)
        except RecursionError:
            value = APIError(400, f"{_param(kind)}: nested too deeply", param=_param(kind), code="invalid_constraint")
        self._store(key, value)
        return value

    async def warm(self, compiled: Compiled, model, prompt: str, length: int) -> None:
        """Run the plugins' ``prepare`` for one row of this request (see the module docstring)."""
        if compiled.constraint is None or length in compiled.warmed:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self.pool, _warm, model, compiled.constraint, prompt, length)
        except (ConstraintError, SteerdiffError) as exc:
            raise constraint_error(exc, compiled.kind) from None
        compiled.warmed.add(length)  # prepare depends on the canvas length, not on the prompt

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
