"""Speed guard for CI: catches a catastrophic slowdown (10x), not noise. Ratios measured in one run only.

    python -m benchmarks.speed_guard                    # measure, compare with the baseline, exit 1 on a regression
    python -m benchmarks.speed_guard --write-baseline   # measure and write benchmarks/results/speed_baseline.json

Absolute times depend on the machine; each figure here is a ratio of two medians measured side by side
in the same process, so that a slower or busier CI machine moves both alike:

- ``constraint_vs_forward``: the json_schema plugin's hook time per step (``adjust_logits`` +
  ``check_commit``, as ``benchmarks/constraints.py --parts steps`` times it) over the model's forward pass,
  steerdiff-tiny (``sd.load_model()``, vocabulary 6,144) at B=1, L=128, median over the steps of
  ``sd.generate`` on each form schema of ``FORMS``;
- ``loop_vs_forward``: the rest of a step (sampling, schedule, every hook, bookkeeping: step time minus
  forward) over the forward pass, same runs;
- ``compile_vs_reference``: cold compile (schema -> regex -> byte DFA -> token DFA over steerdiff-tiny's
  vocabulary, every automaton cache cleared) of the fixed schema set ``compile_schemas()``, summed, over a
  fixed reference workload of pure Python and numpy (``reference_workload``), medians of ``--reps`` runs.

A ratio fails when it exceeds ``MARGIN`` (2) times its committed baseline. One torch thread throughout.
Results of the last run: ``benchmarks/results/speed_guard.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "benchmarks" / "results" / "speed_baseline.json"
LAST = ROOT / "benchmarks" / "results" / "speed_guard.json"
MARGIN = 2.0

FORMS = {
    "Person": json.loads((ROOT / "schemas" / "person.json").read_text()),
    "Event": json.loads((ROOT / "schemas" / "event.json").read_text()),
    "Order": {"type": "object", "properties": {
        "id": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"}, "placed": {"type": "string", "format": "date"},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "sku": {"type": "string", "maxLength": 12}, "qty": {"type": "integer", "minimum": 1, "maximum": 99}},
            "required": ["sku", "qty"]}, "minItems": 1, "maxItems": 3},
        "total": {"type": "number", "minimum": 0}, "paid": {"type": "boolean"}},
        "required": ["id", "placed", "items"], "additionalProperties": False},
}


def compile_schemas() -> dict[str, dict]:
    """The fixed compile set: the training record kinds, the repository's example schemas and ``FORMS``."""
    from steerdiff.train.data import schemas

    out = {f"train/{k}": v for k, v in schemas().items()}
    out.update({f"form/{k}": v for k, v in FORMS.items()})
    out["wide"] = {"type": "object", "properties": {f"p{i}": {"type": ["integer", "string", "null"]} for i in range(24)},
                   "required": ["p0"], "additionalProperties": False}
    out["uuid-datetime"] = {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "at": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3}},
        "required": ["id"]}, "maxItems": 2}
    return out


def reference_workload() -> None:
    """A fixed amount of pure-Python and numpy work, the yardstick for compile time."""
    import numpy as np

    rng = random.Random(0)
    d = {}
    for i in range(60_000):
        d[f"k{rng.randrange(10 ** 6)}"] = (i, str(i))
    json.loads(json.dumps(sorted(d.items())))
    a = np.random.default_rng(0).integers(0, 1000, size=(400, 2000))
    for _ in range(5):
        np.unique(a[:, :500], axis=0)
        np.cumsum(a, axis=1).argmax(axis=1)


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def measure(reps: int = 3, steps: int = 32) -> dict:
    import torch

    import steerdiff as sd
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins import json_schema as jsp
    from steerdiff_plugins.automata import token_walk as td
    from steerdiff_plugins.schema import compiled as jr

    torch.set_num_threads(1)
    model = sd.load_model()
    vocab = vocab_for(model.tokenizer)  # built once per tokenizer, outside the timed compiles

    # --- per step: the constraint's hooks and the rest of the loop beside the forward pass
    hooks = jsp._HOOKS
    times: dict[str, list[float]] = {"adjust_logits": [], "check_commit": []}
    orig = {n: getattr(hooks, n) for n in times}

    def timed(name):
        def w(*a, **k):
            t0 = time.perf_counter()
            try:
                return orig[name](*a, **k)
            finally:
                times[name].append(time.perf_counter() - t0)
        return w

    hook_s, fwd_s, rest_s = [], [], []
    for n in times:
        setattr(hooks, n, timed(n))
    try:
        sd.generate(model, "warm up", length=128, steps=4, constraints=[sd.JSONSchema(FORMS["Person"])], trace=False)
        for name, schema in FORMS.items():
            for n in times:
                times[n].clear()
            out = sd.generate(model, "Fill the form:", length=128, steps=steps, constraints=[sd.JSONSchema(schema)],
                              seed=0, temperature=1.0, trace=False)
            per_step = out.timings["per_step"]  # [(model s, step s)]
            k = min(len(times["adjust_logits"]), len(times["check_commit"]), len(per_step))
            hook_s += [times["adjust_logits"][i] + times["check_commit"][i] for i in range(k)]
            fwd_s += [m for m, _ in per_step[:k]]
            rest_s += [s - m for m, s in per_step[:k]]
    finally:
        for n in times:
            setattr(hooks, n, orig[n])
    fwd = statistics.median(fwd_s)

    # --- compile: the fixed schema set, cold caches, against the reference workload
    schemas = compile_schemas()

    def compile_all():
        td.cache_clear()
        jr._CACHE.clear()
        jr._TREES.clear()
        for s in schemas.values():
            comp = jr.compile_schema(s)
            td.compile_token_dfa(comp.regex, vocab, model.fill_id)

    compile_all()  # first use: imports, lazily built tables
    reference_workload()
    t_compile = _median_time(compile_all, reps)
    t_ref = _median_time(reference_workload, reps)
    return {
        "ratios": {
            "constraint_vs_forward": statistics.median(hook_s) / fwd,
            "loop_vs_forward": statistics.median(rest_s) / fwd,
            "compile_vs_reference": t_compile / t_ref,
        },
        "measured_ms": {
            "forward_median": 1000 * fwd, "constraint_per_step_median": 1000 * statistics.median(hook_s),
            "loop_rest_per_step_median": 1000 * statistics.median(rest_s),
            "compile_set_median": 1000 * t_compile, "reference_median": 1000 * t_ref,
        },
        "setup": {"model": "steerdiff-tiny (sd.load_model())", "B": 1, "L": 128, "steps": steps,
                  "forms": list(FORMS), "compile_set": list(schemas), "reps": reps, "torch_threads": 1,
                  "steps_timed": len(hook_s)},
        "machine": {"python": platform.python_version(), "machine": platform.machine(),
                    "processor": platform.processor() or platform.machine()},
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def compare(result: dict, baseline: dict, margin: float = MARGIN) -> list[str]:
    """The failures: each ratio above ``margin`` times its baseline (empty list: the guard passes)."""
    bad = []
    for name, base in baseline["ratios"].items():
        got = result["ratios"].get(name)
        if got is None:
            bad.append(f"{name}: not measured")
        elif got > margin * base:
            bad.append(f"{name}: {got:.3f} > {margin:g} x baseline {base:.3f}")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-baseline", action="store_true", help=f"write {BASELINE.relative_to(ROOT)} from this run")
    ap.add_argument("--reps", type=int, default=3, help="compile and reference repetitions (median)")
    args = ap.parse_args(argv)
    result = measure(reps=args.reps)
    LAST.write_text(json.dumps(result, indent=1) + "\n")
    for name, v in result["ratios"].items():
        print(f"{name:<24} {v:8.3f}")
    for name, v in result["measured_ms"].items():
        print(f"  {name:<32} {v:9.2f} ms")
    if args.write_baseline:
        BASELINE.write_text(json.dumps({**result, "margin": MARGIN,
                                        "note": "ratios measured side by side in one run; the guard fails above "
                                                "margin x these"}, indent=1) + "\n")
        print(f"baseline written to {BASELINE.relative_to(ROOT)}")
        return 0
    if not BASELINE.exists():
        print(f"no baseline at {BASELINE}; run with --write-baseline", file=sys.stderr)
        return 2
    bad = compare(result, json.loads(BASELINE.read_text()))
    if bad:
        print("speed guard FAILED:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    print(f"speed guard passed (every ratio within {MARGIN:g}x of {BASELINE.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
