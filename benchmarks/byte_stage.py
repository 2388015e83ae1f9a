"""Byte stage A/B (issue 23, item 3): regex -> minimal byte DFA (``automata.byte_level.byte_dfa``), a base
revision beside the working tree, regex by regex in one run, and a check that both build the same automaton.

    python -m benchmarks.byte_stage [--base REV] [--ids a,b,... | --llg] [--repeat N] [--out FILE --section KEY]

The regexes are the schema compiler's (``compile_schema(schema).regex``, the working tree's compiler) for every
schema of the public JSONSchemaBench set (``../shared/testdata/jsonschemabench/schemas``), or the schema ids of
``--ids``, or ``--llg`` (the 26 schemas of the llguidance comparison, ``benchmarks/results/issue23_speed.json``);
schemas the compiler refuses are skipped. Two warm worker processes, one importing ``--base`` (``git archive``
of ``steerdiff`` and ``steerdiff_plugins`` into a temporary directory, first on its ``PYTHONPATH``), one the
working tree, each build every regex's byte DFA with cold per-pattern caches (``byte_dfa``, ``to_engine_regex``,
``parse_regex``: the cross-pattern caches of pure functions, such as a character class's text, stay warm as
in a server), ``--repeat`` times, the side that goes first alternating from regex to regex so both see the same load; a
side's time is the median of its repeats. Each side reports a SHA-256 of the result's arrays (``ctrans``, ``bcls``,
``accept`` with dtypes and shapes, and ``start``), or the error (class and message). Any difference between
the sides is listed and the exit status is 1. The summary gives p50, p95 and the sum of both sides' times and
the median of the per-regex ratios. Timings on a shared machine are noisy: compare the two sides of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"
SPEED = ROOT / "benchmarks" / "results" / "issue23_speed.json"


def _worker() -> None:
    """One side: requests on stdin (a JSON line ``{"regex", "repeat"}``), one JSON line each on stdout."""
    import hashlib
    import time

    from steerdiff_plugins.automata import byte_level, engine_regex

    caches = [byte_level.byte_dfa] + [getattr(engine_regex, n) for n in ("to_engine_regex", "parse_regex")
                                      if hasattr(getattr(engine_regex, n, None), "cache_clear")]
    byte_level.byte_dfa('"[a-z]{0,3}"')  # the byte vocabulary and the imports, once
    print(json.dumps({"ready": byte_level.__file__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        times, res = [], None
        for _ in range(req["repeat"]):
            for c in caches:
                c.cache_clear()
            t0 = time.perf_counter()
            try:
                bd = byte_level.byte_dfa(req["regex"])
                err = None
            except Exception as e:  # a refusal: both sides must refuse alike
                bd, err = None, f"{type(e).__name__}: {e}"
            times.append(1000 * (time.perf_counter() - t0))
            if bd is not None:
                h = hashlib.sha256()
                for a in (bd.ctrans, bd.bcls, bd.accept):
                    h.update(f"{a.dtype.str}{a.shape}".encode())
                    h.update(memoryview(a).cast("B"))
                h.update(str(bd.start).encode())
                res = {"sha": h.hexdigest(), "states": int(bd.ctrans.shape[0]), "classes": int(bd.ctrans.shape[1])}
            else:
                res = {"error": err}
        print(json.dumps(dict(res, ms=statistics.median(times))), flush=True)


def _start(path: str):
    env = dict(os.environ, PYTHONPATH=path)  # this file runs as a script: the base revision may not have it
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env, cwd=path)
    print(f"worker ready: {json.loads(p.stdout.readline())['ready']}", flush=True)
    return p


def _ask(p, regex: str, repeat: int) -> dict:
    p.stdin.write(json.dumps({"regex": regex, "repeat": repeat}) + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def _regexes(ids: set | None) -> list[tuple[str, str]]:
    """``[(id, regex)]`` of the public set's schemas (those in ``ids`` when given) the compiler does not refuse."""
    from steerdiff_plugins.schema.compiled import compile_schema

    out = []
    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            if ids is not None and it["id"] not in ids:
                continue
            try:
                out.append((it["id"], compile_schema(it["schema"]).regex))
            except Exception:  # a refusal of the schema stage: nothing reaches the byte stage
                pass
    return out


def _summary(rows: list[dict]) -> dict:
    from benchmarks._common import pct, r

    a = [x["base_ms"] for x in rows]
    b = [x["new_ms"] for x in rows]
    ratio = [x["base_ms"] / x["new_ms"] for x in rows if x["new_ms"] > 0]
    return {"n": len(rows), "base_p50_ms": r(pct(a, 50)), "new_p50_ms": r(pct(b, 50)),
            "base_p95_ms": r(pct(a, 95)), "new_p95_ms": r(pct(b, 95)), "base_sum_s": r(sum(a) / 1000),
            "new_sum_s": r(sum(b) / 1000), "median_speedup": r(statistics.median(ratio)) if ratio else None}


def main(argv=None) -> int:
    from benchmarks._common import r

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main", help="git revision of the old code (default main)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--ids", help="comma-separated schema ids")
    g.add_argument("--llg", action="store_true", help="the 26 schemas of the llguidance comparison")
    ap.add_argument("--repeat", type=int, default=3, help="builds per regex and side (the median is kept)")
    ap.add_argument("--out", help="write rows and summary to this JSON file, under --section")
    ap.add_argument("--section", default="public", help="the key of this run in --out (other keys are kept)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    ids = None
    if args.ids:
        ids = set(args.ids.split(","))
    elif args.llg:
        ids = {x["id"] for x in json.loads(SPEED.read_text())["llguidance"]["rows"] if x["sd_ok"]}
    regexes = _regexes(ids)
    print(f"{len(regexes)} regexes", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "archive", args.base, "steerdiff", "steerdiff_plugins"], cwd=ROOT,
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=arch, check=True)
        base, new = _start(tmp), _start(str(ROOT))
        rows, diff = [], []
        for k, (sid, rx) in enumerate(regexes):
            got = {}
            for side in ((base, new) if k % 2 == 0 else (new, base)):  # which side goes first alternates
                got[side] = _ask(side, rx, args.repeat)
            a, b = got[base], got[new]
            same = {k2: v for k2, v in a.items() if k2 != "ms"} == {k2: v for k2, v in b.items() if k2 != "ms"}
            row = {"id": sid, "chars": len(rx), "base_ms": r(a["ms"], 3), "new_ms": r(b["ms"], 3), "same": same,
                   **({"states": b["states"]} if "states" in b else {"error": b.get("error", "")[:200]})}
            rows.append(row)
            if not same:
                diff.append(sid)
                print(f"DIFFERENT {sid}: base {a} new {b}", flush=True)
            print(f"{sid:<40} {len(rx):>8} ch  base {a['ms']:9.1f} ms  new {b['ms']:9.1f} ms  {'same' if same else 'DIFF'}",
                  flush=True)
        for p in (base, new):
            p.stdin.close()
            p.wait()
    summary = _summary(rows)
    summary["different"] = diff
    print(json.dumps(summary), flush=True)
    if args.out:
        out = Path(args.out)
        doc = json.loads(out.read_text()) if out.exists() else {}
        doc[args.section] = {"base": args.base, "repeat": args.repeat, "summary": summary, "rows": rows}
        out.write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if diff else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker()
    else:
        sys.exit(main())
