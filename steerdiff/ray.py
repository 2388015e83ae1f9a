"""Batch filling on Ray Data: a callable class for ``ray.data.Dataset.map_batches`` (extra ``ray``).

    import ray, steerdiff.ray as sdray
    ds = ray.data.read_json("records.jsonl")                 # a "text" column, optionally "schema", "id"
    out = sdray.fill_dataset(ds, schema=PERSON, concurrency=2, num_gpus=0)
    out.write_json("out/")                                    # "value" (JSON text) or "error" per row

:class:`FillBatch` loads the model once per actor (``__init__``) and fills each batch with
:func:`steerdiff.batch.fill_records`, the same engine as ``steerdiff fill --input``: greedy decoding,
rows grouped by schema, so a record gets the same value on one process and on a cluster. Rows may carry
their own ``schema`` (a dict or its JSON text); ``schema=`` is the default for rows without one. A row
that fails gets its ``error`` and an empty ``value``; the other rows of its batch are unaffected.
``num_gpus``, ``concurrency`` and ``batch_size`` pass through to ``map_batches``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any

from .errors import ConfigError


def _missing(value: Any) -> bool:
    """A row without its own schema: None, "" or a NaN of any float type (a block whose schema column is all
    missing reaches the actor as a numpy float32 NaN, which is not a Python float)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    return isinstance(value, numbers.Real) and math.isnan(value)


class FillBatch:
    """``map_batches`` callable: ``{"text": [...], ("schema": [...]), ("id": [...])}`` ->
    the same columns plus ``value`` (compact JSON text, "" on error) and ``error`` ("" on success)."""

    def __init__(self, schema: Any = None, model_path: str | None = None, device: str = "cpu", batch_size: int = 16,
                 threads: int | None = None, **fill_kwargs):
        import torch

        from .validate import load_model

        if threads:
            torch.set_num_threads(threads)
        self.schema, self.batch_size, self.fill_kwargs = schema, batch_size, fill_kwargs
        self.model = load_model(model_path, device=device)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from .batch import fill_records

        texts = list(batch["text"])
        schemas = list(batch["schema"]) if "schema" in batch else [None] * len(texts)
        records = []
        for i, (t, s) in enumerate(zip(texts, schemas)):
            rec: dict[str, Any] = {"text": t if isinstance(t, str) else str(t)}
            if not _missing(s):
                rec["schema"] = s
            records.append((i, json.dumps(rec), None))
        outs: dict[int, dict] = {}
        for group in fill_records(self.model, records, self.schema, batch_size=self.batch_size, **self.fill_kwargs):
            for o in group:
                outs[o["line"]] = o
        values = [json.dumps(outs[i]["value"], ensure_ascii=False, separators=(",", ":")) if "value" in outs[i] else ""
                  for i in range(len(texts))]
        errors = [outs[i].get("error", "") for i in range(len(texts))]
        return {**{k: list(v) for k, v in batch.items()}, "value": values, "error": errors}


def fill_dataset(ds, *, schema: Any = None, model_path: str | None = None, device: str = "cpu", batch_size: int = 16,
                 concurrency: int = 1, num_gpus: float = 0, num_cpus: float | None = None, **fill_kwargs):
    """``ds.map_batches(FillBatch, ...)``: one model per actor, ``concurrency`` actors, ``num_gpus`` each."""
    import ray.data

    opts: dict[str, Any] = {"compute": ray.data.ActorPoolStrategy(size=concurrency), "batch_size": batch_size,
                            "batch_format": "numpy"}
    if num_gpus:
        opts["num_gpus"] = num_gpus
    if num_cpus is not None:
        opts["num_cpus"] = num_cpus
    return ds.map_batches(FillBatch, fn_constructor_kwargs={"schema": schema, "model_path": model_path, "device": device,
                                                            "batch_size": batch_size, **fill_kwargs}, **opts)


def fill_file_ray(input_path: str, output_path: str, *, schema: Any = None, resume: bool = False, address: str = "local",
                  batch_size: int = 16, concurrency: int = 1, num_gpus: float = 0, model_path: str | None = None,
                  device: str = "cpu", **fill_kwargs) -> dict[str, int]:
    """``steerdiff fill --input ... --output ... --ray [ADDRESS]``: the records are read here, filled on the cluster,
    and written here with the same lines and resume rules as :func:`steerdiff.batch.fill_file`."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the 'ray' extra: pip install 'steerdiff[ray]'") from None
    from .batch import done_lines, parse_record, read_input, write_results

    if not resume and os.path.exists(output_path) and os.path.getsize(output_path) > 0:
        raise ConfigError(f"--output {output_path!r} exists; pass --resume to continue it, or remove it")
    skip = done_lines(output_path) if resume else set()
    todo = read_input(input_path, skip)
    good, bad = [], []
    for line, raw, _ in todo:  # checked here with the single-process rules, so a bad line gets the same error
        try:
            _, _, rid = parse_record(raw, schema)
        except ConfigError as exc:
            bad.append({"line": line, "id": None, "error": f"bad record: {exc}"})
            continue
        rec = json.loads(raw)
        rec = {"text": rec} if isinstance(rec, str) else rec
        own = rec.get("schema")
        good.append({"line": line, "text": rec["text"], "id": json.dumps(rid),
                     "schema": (own if isinstance(own, str) else json.dumps(own)) if own is not None else ""})
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, ignore_reinit_error=True)
    rows: list[dict] = []
    if good:
        ds = ray.data.from_items(good)  # "schema": JSON text, "" for none (a string column in every block)
        out = fill_dataset(ds, schema=schema, model_path=model_path, device=device, batch_size=batch_size,
                           concurrency=concurrency, num_gpus=num_gpus, **fill_kwargs)
        for r in out.iter_rows():
            o = {"line": int(r["line"]), "id": json.loads(r["id"])}
            o.update({"value": json.loads(r["value"])} if r["value"] else {"error": r["error"]})
            rows.append(o)
    results = sorted(rows + bad, key=lambda o: o["line"])
    return write_results([results], output_path, total=len(todo), skipped=len(skip), progress=False)
