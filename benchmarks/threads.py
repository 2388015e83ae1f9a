"""torch CPU threads for the embedded steerdiff-tiny: 1 thread versus torch's default, side by side.

    python -m benchmarks.threads [--rounds 5] [--threads 1,2]

Each round runs the same three workloads (the demo's extractive ``fill`` of a pydantic form, a
64-token template ``generate``, the demo's ``rewrite``) once per thread count, the counts interleaved
within the round, so load from other processes falls on every setting alike. Prints the median
seconds per workload and the ratio to one thread, and writes ``benchmarks/results/threads.json``.
The machine's load (``os.getloadavg``) is recorded with the figures: on a shared machine the ratio,
not the absolute time, is the result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import steerdiff as sd
from steerdiff.demo import PARAGRAPH, TEMPLATE, Person

OUT = Path(__file__).resolve().parent / "results" / "threads.json"


def workloads(model):
    tpl = sd.Template("Dear {{name:6}}, your order ships {{when:8}}.")
    return {
        "fill_extract": lambda: sd.fill(model, Person, PARAGRAPH, extract=True),
        "generate_template_64": lambda: sd.generate(model, "Write a note.", length=64, steps=16, constraints=[tpl]),
        "rewrite_sentiment": lambda: sd.rewrite(model, TEMPLATE, guidance=[
            sd.ClassifierGuidance("sentiment", target="positive", scale=3.0)]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default=f"1,{torch.get_num_threads()}", help="comma-separated thread counts")
    ap.add_argument("--only", default=None, help="comma-separated workload names (default: all)")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",")]
    default = torch.get_num_threads()
    model = sd.load_model()
    work = workloads(model)
    if args.only:
        work = {k: v for k, v in work.items() if k in args.only.split(",")}
    for f in work.values():  # warm-up: caches (automata, classifier tables) built once, outside the timing
        f()
    times: dict[int, dict[str, list[float]]] = {n: {k: [] for k in work} for n in counts}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, f in work.items():
            for n in (counts if r % 2 == 0 else counts[::-1]):  # alternate the order round by round
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                f()
                times[n][name].append(time.perf_counter() - t0)
    torch.set_num_threads(default)
    med = {n: {k: statistics.median(v) for k, v in times[n].items()} for n in counts}
    base = counts[0]
    print(f"torch default threads {default}, cores {os.cpu_count()}, load average during the run {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'workload':<22}" + "".join(f"{f'{n} thr (s)':>12}" for n in counts) + "".join(f"{f'{n}/{base}':>8}" for n in counts[1:]))
    for k in work:
        row = f"{k:<22}" + "".join(f"{med[n][k]:>12.3f}" for n in counts)
        row += "".join(f"{med[n][k] / med[base][k]:>8.2f}" for n in counts[1:])
        print(row)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({
        "what": "median seconds per workload, thread counts interleaved within each round (benchmarks/threads.py)",
        "torch_default_threads": default, "cpu_count": os.cpu_count(), "rounds": args.rounds,
        "load_average_1min": loads, "median_s": {str(n): med[n] for n in counts},
        "all_s": {str(n): times[n] for n in counts},
    }, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
