"""Regex stage A/B (issue 23, item 3): JSON Schema -> regex (``compile_schema``), a base revision beside the
working tree, schema by schema in one run, and a check that both write the same regex.

    python -m benchmarks.regex_stage [--base main] [--ids FILE | --llg] [--options JSON] [--repeat N]
                                     [--no-budget] [--out FILE]

Two warm worker processes, one importing the code of ``--base`` (``git archive`` of ``steerdiff`` and
``steerdiff_plugins`` into a temporary directory, first on its ``PYTHONPATH``), one the working tree. Each
compiles every schema of the public JSONSchemaBench set (``../shared/testdata/jsonschemabench/schemas``; or the
ids of ``--ids``, or ``--llg``: the 26 schemas of the llguidance comparison in
``benchmarks/results/issue23_speed.json``) with cold caches (``_CACHE``, ``_TREES``, the ``strings_meet`` memo and
the pattern memos where a side has them; a process's lru-cached Unicode sets stay), ``--repeat`` times
(the time kept is the fastest), alternating which side goes first. A schema is keyed ``file:index`` (ids repeat
across files). Each side reports the time, the regex's SHA-256 and length, or the refusal (class, keyword,
pointer, message). The run prints p50/p95 of both sides and counts the schemas whose regex (or refusal) differ:
any difference is listed and the exit status is 1. ``--options`` passes keyword arguments to ``compile_schema``
(e.g. ``'{"capacity": 4096, "extra_keys": true, "any_depth": 2}'``). ``--out`` writes rows and summary as JSON (with
the 26 llguidance-comparison schemas' figures apart when the run holds them and more).
Timings on a shared machine are noisy: compare the two sides of one run, not runs.

The schema stage's time budgets (``compile_budget.SCHEMA_SECONDS``, wall time; ``COMPILE_SECONDS``, CPU time)
make a refusal depend on the machine's speed and load: where the budget stopped a side, which subschema it had
reached (and whether the other side got to a different refusal first) is chance. Such a difference is counted
apart (``budget_bound``) and does not fail the run. ``--no-budget`` lifts both budgets (1e6 s) in both workers, so
every refusal is deterministic and every difference counts (slow: the schemas the budget stops run to their end).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"


def _schemas() -> dict:
    """``{"File.json:index": (id, schema)}`` over the public set."""
    out = {}
    for f in sorted(DATA.glob("*.json")):
        for k, it in enumerate(json.loads(f.read_text())["items"]):
            out[f"{f.name}:{k}"] = (it["id"], it["schema"])
    return out


def _worker(options: dict, no_budget: bool) -> None:
    """One side: schema keys on stdin (``key repeat``), one JSON line per schema on stdout."""
    import hashlib
    import time

    from steerdiff_plugins import compile_budget
    from steerdiff_plugins.schema import char_languages
    from steerdiff_plugins.schema import compiled as jr
    from steerdiff_plugins.schema import pattern

    if no_budget:
        compile_budget.SCHEMA_SECONDS = compile_budget.COMPILE_SECONDS = 1e6

    schemas = _schemas()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    print(json.dumps({"ready": jr.__file__}), flush=True)
    for line in sys.stdin:
        key, repeat = line.split()
        best, out = None, {"key": key}
        for _ in range(int(repeat)):
            jr._CACHE.clear()
            jr._TREES.clear()
            getattr(char_languages, "_MEMO", {}).clear()  # strings_meet's answers, kept across compiles
            for name in ("pattern_to_regex", "pattern_length_bounds", "length_bounded", "_matches_every_string"):
                getattr(getattr(pattern, name), "cache_clear", lambda: None)()  # pattern memos (where there are)
            t0 = time.perf_counter()
            try:
                comp = jr.compile_schema(schemas[key][1], **options)
                res = {"sha": hashlib.sha256(comp.regex.encode("utf-8", "surrogatepass")).hexdigest(),
                       "chars": len(comp.regex), "notes": comp.notes}
            except Exception as e:  # a refusal: both sides must refuse alike
                res = {"error": f"{type(e).__name__}: {getattr(e, 'keyword', '')} {getattr(e, 'pointer', '')} "
                                f"{e}"}
            ms = 1000 * (time.perf_counter() - t0)
            best = ms if best is None else min(best, ms)
            out.update(res)
        out["ms"] = best
        print(json.dumps(out), flush=True)


def _start(path: str, options: dict, no_budget: bool):
    # this file runs as a script (the base revision may not have it); the packages come from ``path``
    env = dict(os.environ, PYTHONPATH=path)
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(options)]
                         + (["--no-budget"] if no_budget else []),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=path)
    ready = json.loads(p.stdout.readline())
    print(f"worker ready: {ready['ready']}", flush=True)
    return p


def _ask(p, key: str, repeat: int) -> dict:
    p.stdin.write(f"{key} {repeat}\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))] if v else None


def _llg_ids() -> set:
    """The ids of the llguidance comparison's schemas steerdiff compiled (``issue23_speed.json``)."""
    d = json.loads((ROOT / "benchmarks" / "results" / "issue23_speed.json").read_text())["llguidance"]
    return {row["id"] for row in d["rows"] if row["sd_ok"]}


def _side_stats(rows) -> dict:
    vb, vt = [r["base"]["ms"] for r in rows], [r["tree"]["ms"] for r in rows]
    return {"schemas": len(rows), "base_p50_ms": _pct(vb, 50), "base_p95_ms": _pct(vb, 95),
            "tree_p50_ms": _pct(vt, 50), "tree_p95_ms": _pct(vt, 95),
            "median_ratio": _pct([y / x for x, y in zip(vb, vt) if x > 0], 50)}


def _slim(side: dict) -> dict:
    """A side's row for the results file: no notes (the comparison used them), the SHA-256 cut to 16 digits, a
    refusal cut to its first and last 150 characters (unrolled pointers run to thousands)."""
    out = {k: v for k, v in side.items() if k != "notes"}
    if "sha" in out:
        out["sha"] = out["sha"][:16]
    if len(out.get("error", "")) > 300:
        out["error"] = out["error"][:150] + " ... " + out["error"][-150:]
    return out


def _write(path: Path, summary: dict, rows: list) -> None:
    """The summary and one line per row."""
    slim = [{**r, "base": _slim(r["base"]), "tree": _slim(r["tree"])} for r in rows]
    path.write_text("{\"summary\": " + json.dumps(summary, indent=1) + ",\n\"rows\": [\n"
                    + ",\n".join(json.dumps(r) for r in slim) + "\n]}\n")


def _keys(a, schemas: dict) -> list[str]:
    if a.llg:
        wanted = _llg_ids()
    elif a.ids is not None:
        wanted = set(a.ids.read_text().split())
    else:
        return list(schemas)
    keys = [k for k, (sid, _) in schemas.items() if sid in wanted]
    missing = wanted - {schemas[k][0] for k in keys}
    if missing:
        raise SystemExit(f"schema ids not in the public set: {sorted(missing)[:10]}")
    return keys


def main() -> None:
    if "--worker" in sys.argv:
        _worker(json.loads(sys.argv[sys.argv.index("--worker") + 1]), "--no-budget" in sys.argv)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main", help="git revision compared with the working tree")
    ap.add_argument("--ids", type=Path, help="a file of schema ids (one a line) instead of the whole set")
    ap.add_argument("--llg", action="store_true", help="the 26 schemas of the llguidance comparison")
    ap.add_argument("--options", default="{}", help="compile_schema keyword arguments, as JSON")
    ap.add_argument("--repeat", type=int, default=1, help="compiles per schema and side; the fastest is kept")
    ap.add_argument("--no-budget", action="store_true", help="lift the schema stage's time budgets (both sides)")
    ap.add_argument("--out", type=Path, help="write the rows and the summary as JSON")
    a = ap.parse_args()
    options = json.loads(a.options)
    if not isinstance(options, dict):
        raise SystemExit(f"--options must be a JSON object, got {a.options!r}")
    if a.repeat < 1:
        raise SystemExit(f"--repeat must be at least 1, got {a.repeat}")
    schemas = _schemas()
    keys = _keys(a, schemas)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", a.base, "steerdiff", "steerdiff_plugins"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        sides = {"base": _start(tmp, options, a.no_budget), "tree": _start(str(ROOT), options, a.no_budget)}
        rows = []
        try:
            for k, key in enumerate(keys):
                order = ["base", "tree"] if k % 2 == 0 else ["tree", "base"]
                res = {name: _ask(sides[name], key, a.repeat) for name in order}
                b, t = res["base"], res["tree"]
                same = all(b.get(f) == t.get(f) for f in ("sha", "chars", "error", "notes"))
                budget = not same and any("over its budget" in x.get("error", "") or
                                          "CompileDeadlineExceeded" in x.get("error", "") for x in (b, t))
                rows.append({"key": key, "id": schemas[key][0], "base": b, "tree": t, "identical": same,
                             "budget_bound": budget})
                print(f"  {key:<28} {schemas[key][0][:28]:<28} base {b['ms']:8.1f} ms  tree {t['ms']:8.1f} ms  "
                      f"{'same' if same else 'budget-bound' if budget else 'DIFFERENT'} {b.get('error', '')[:60]}", flush=True)
        finally:
            for p in sides.values():
                p.stdin.close()
                p.wait()
    vb, vt = [r["base"]["ms"] for r in rows], [r["tree"]["ms"] for r in rows]
    ok = [r for r in rows if "sha" in r["base"]]
    summary = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "load_avg_1min": os.getloadavg()[0], "base": a.base, "options": options, "repeat": a.repeat, "schemas": len(rows),
               "compiled": len(ok), "identical": sum(r["identical"] for r in rows),
               "budget_bound": [r["key"] for r in rows if r["budget_bound"]], "no_budget": a.no_budget,
               "base_p50_ms": _pct(vb, 50), "base_p95_ms": _pct(vb, 95), "base_max_ms": max(vb, default=None),
               "tree_p50_ms": _pct(vt, 50), "tree_p95_ms": _pct(vt, 95), "tree_max_ms": max(vt, default=None),
               "base_total_s": sum(vb) / 1000, "tree_total_s": sum(vt) / 1000,
               "median_ratio": _pct([y / x for x, y in zip(vb, vt) if x > 0], 50)}
    llg = [r for r in rows if r["id"] in _llg_ids()]
    if llg and len(llg) < len(rows):
        summary["llguidance_schemas"] = _side_stats(llg)  # the 26 of the llguidance comparison, in this run
    print(json.dumps(summary, indent=1))
    diff = [r["key"] for r in rows if not r["identical"] and not r["budget_bound"]]
    if diff:
        print(f"DIFFERENT regex or refusal on {len(diff)}: {diff[:20]}")
    if a.out:
        _write(a.out, summary, rows)
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
