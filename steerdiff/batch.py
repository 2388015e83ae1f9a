"""Batch filling of a JSON-lines file: ``steerdiff fill --input records.jsonl --output out.jsonl``.

Input: one record per line, either a JSON string (the text) or an object ``{"text": ..., "schema": {...},
"id": ...}``; ``schema`` is optional when ``--schema`` gives a default. Output: exactly one line per input
line, ``{"line": n, "id": ..., "value": {...}}`` or ``{"line": n, "id": ..., "error": "..."}`` (a row
that fails never takes its batch mates with it: the batch is retried row by row). Lines are written
and flushed batch by batch, in input order within a batch. ``resume=True`` reads the output first and
skips every input line already answered there (a torn last line from a killed run is cut off), so a
killed run continues where it stopped and no line is lost or answered twice.

:func:`fill_records` is the engine shared with :mod:`steerdiff.ray`: the same records give the same
values on one process and on a Ray cluster (greedy decoding; rows are grouped by schema).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import ConfigError, SteerdiffError


def parse_record(raw: str, default_schema: Any) -> tuple[str, Any, Any]:
    """``(text, schema, id)`` of one input line; raises ConfigError naming what is wrong."""
    try:
        rec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc}") from None
    if isinstance(rec, str):
        rec = {"text": rec}
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise ConfigError("a record must be a JSON string or an object with a string 'text'")
    schema = rec.get("schema", default_schema)
    if isinstance(schema, str):  # a schema given as a JSON string (Ray/Arrow columns carry strings)
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"'schema' is a string that is not JSON: {exc}") from None
    if schema is None:
        raise ConfigError("the record has no 'schema' and no --schema default was given")
    return rec["text"], schema, rec.get("id")


def _fill_group(model, schema, texts: list[str], **kw) -> list[dict]:
    """Fill one schema over ``texts``: ``[{"value": ...} | {"error": ...}]``; a failing batch goes row by row."""
    from .fill import fill

    try:
        values = fill(model, schema, texts, **kw)
        return [{"value": v} for v in values]
    except SteerdiffError:
        if len(texts) == 1:
            raise
    out = []
    for t in texts:
        try:
            out.append({"value": fill(model, schema, t, **kw)})
        except SteerdiffError as exc:
            out.append({"error": f"{type(exc).__name__}: {exc}"})
    return out


def fill_records(model, records: list[tuple[int, str, Any]], default_schema: Any = None, *, batch_size: int = 16,
                 **fill_kwargs) -> Iterator[list[dict]]:
    """Fill ``[(line, raw JSON line, id-or-None)]`` and yield, batch by batch, one output dict per record.

    Consecutive records with the same schema share a batch (up to ``batch_size``); each output dict has
    ``line``, ``id`` and ``value`` or ``error``."""
    pending: list[tuple[int, str, Any, Any]] = []  # (line, text, schema, id)
    key = None
    for line, raw, _ in records:
        try:
            text, schema, rid = parse_record(raw, default_schema)
        except ConfigError as exc:
            if pending:
                yield _emit(model, pending, batch_size, fill_kwargs)
                pending, key = [], None
            yield [{"line": line, "id": None, "error": f"bad record: {exc}"}]
            continue
        k = json.dumps(schema, sort_keys=True)
        if pending and (k != key or len(pending) >= batch_size):
            yield _emit(model, pending, batch_size, fill_kwargs)
            pending = []
        key = k
        pending.append((line, text, schema, rid))
    if pending:
        yield _emit(model, pending, batch_size, fill_kwargs)


def _emit(model, pending, batch_size, fill_kwargs) -> list[dict]:
    schema = pending[0][2]
    try:
        outs = _fill_group(model, schema, [t for _, t, _, _ in pending], **fill_kwargs)
    except SteerdiffError as exc:
        outs = [{"error": f"{type(exc).__name__}: {exc}"}]
    return [{"line": line, "id": rid, **o} for (line, _, _, rid), o in zip(pending, outs)]


def done_lines(output_path: str) -> set[int]:
    """Input lines already answered in ``output_path``; a torn (unterminated or unparsable) last line is cut."""
    if not os.path.exists(output_path):
        return set()
    done: set[int] = set()
    with open(output_path, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
        for raw in data[:keep].splitlines():
            try:
                done.add(int(json.loads(raw)["line"]))
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"{output_path}: a line that is not a steerdiff fill result: {raw[:80]!r}") from None
        if keep != len(data):
            f.truncate(keep)
    return done


def read_input(input_path: str, skip: set[int]) -> list[tuple[int, str, Any]]:
    """``[(line number from 0, raw line, None)]`` of the non-blank input lines not in ``skip``."""
    if not os.path.exists(input_path):
        raise ConfigError(f"--input file {input_path!r} does not exist")
    out = []
    with open(input_path, encoding="utf-8") as f:
        for i, raw in enumerate(f):
            if raw.strip() and i not in skip:
                out.append((i, raw, None))
    return out


def fill_file(model, input_path: str, output_path: str, *, schema: Any = None, resume: bool = False, batch_size: int = 16,
              progress: bool | None = None, **fill_kwargs) -> dict[str, int]:
    """Fill ``input_path`` into ``output_path`` (see the module docstring). Returns counts
    ``{"rows", "skipped", "ok", "errors"}``; without ``resume`` an existing non-empty output is refused."""
    if not resume and os.path.exists(output_path) and os.path.getsize(output_path) > 0:
        raise ConfigError(f"--output {output_path!r} exists; pass --resume to continue it, or remove it")
    skip = done_lines(output_path) if resume else set()
    todo = read_input(input_path, skip)
    return write_results(fill_records(model, todo, schema, batch_size=batch_size, **fill_kwargs), output_path,
                         total=len(todo), skipped=len(skip), progress=progress)


def write_results(batches: Iterable[list[dict]], output_path: str, *, total: int, skipped: int = 0,
                  progress: bool | None = None) -> dict[str, int]:
    """Append each batch's lines to ``output_path`` and flush (fsync) after every batch."""
    show = progress if progress is not None else sys.stderr.isatty()
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="steerdiff fill", unit="row")
    stats = {"rows": total, "skipped": skipped, "ok": 0, "errors": 0}
    with open(output_path, "a", encoding="utf-8") as f:
        for batch in batches:
            for o in batch:
                f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
                stats["errors" if "error" in o else "ok"] += 1
            f.flush()
            os.fsync(f.fileno())
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    return stats
