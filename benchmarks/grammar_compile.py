"""Compile time of the grammar engine, stage by stage, on the public JSONSchemaBench schemas that ``fill``
compiles only through it (``'ok': 'JSONSchemaGrammar'`` in ``schema_coverage.json`` -> ``fill_path.per_schema``).

    python -m benchmarks.grammar_compile [--ids FILE | --sample N] [--timeout 60] [--ab /work/main]

Per schema, in a forked child killed after ``--timeout`` seconds, with SmolLM2's tokenizer (49,152 tokens) and the
canvas ``fill`` sizes (a model of 2,048 positions, a 16-token prompt):

- ``constraint``: ``fill``'s ``json_constraint`` hook, as ``benchmarks.schema_coverage --fill-path`` times it: the
  regular engine's attempt, the grammar writing and lark's load. Of it: ``lark_write`` (``compile_tree`` /
  ``compile_graph`` / ``tree_to_lark`` / ``schema_to_lark``), ``lark_load`` (``lark.Lark``, LALR included);
- ``prepare``: what the grammar plugin's ``prepare`` hook pays (``compile_grammar`` and the start witness). Of it:
  ``terminals`` (terminal regex -> byte DFA), ``vocab_matrix``;
- ``first_mask``: the allowed set at the start of the canvas (lexer contexts are built lazily, here first);
- ``lalr``: lark's ``LALR_Analyzer.compute_lalr`` wherever it runs (load or prepare), ``contexts``: lexer
  context product DFAs wherever they are built; ``total``: constraint + prepare + first_mask.

Stages are timed by wrapping module attributes both the current code and main's have, so ``--ab DIR`` runs the
same measurement on the code of ``DIR`` (a read-only checkout of main) beside this worktree's: two worker
processes (``PYTHONPATH`` pointing at each checkout), each schema measured by both, the order alternating.
Writes ``benchmarks/results/issue23_grammar_speed.json`` (``--out``) and prints medians and p95 per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"
COVERAGE = ROOT / "benchmarks" / "results" / "schema_coverage.json"
OUT = ROOT / "benchmarks" / "results" / "issue23_grammar_speed.json"
STAGES = ("constraint", "lark_write", "lark_load", "prepare", "terminals", "vocab_matrix", "first_mask", "lalr",
          "contexts", "total")


def grammar_schema_ids() -> list[str]:
    """The schema ids ``fill`` compiled through the grammar engine in the last coverage run."""
    per = json.loads(COVERAGE.read_text())["fill_path"]["per_schema"]
    return sorted(k for k, v in per.items() if v.get("ok") == "JSONSchemaGrammar")


def load_schemas(ids) -> dict:
    want, out = set(ids), {}
    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            if it["id"] in want:
                out[it["id"]] = it["schema"]
    return out


class _Clock:
    """Wraps callables so that the time spent in them (outermost call only) adds up per stage."""

    def __init__(self):
        self.t: dict = {}
        self._depth: dict = {}

    def wrap(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        def timed(*a, **k):
            d = self._depth.get(stage, 0)
            self._depth[stage] = d + 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self._depth[stage] = d
                if d == 0:
                    self.t[stage] = self.t.get(stage, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)


def measure_one(schema, model, vocab) -> dict:
    """Stage times (seconds) of one schema through fill's compile path and the grammar plugin's prepare."""
    from lark.parsers.lalr_analysis import LALR_Analyzer

    from steerdiff.fill import _constraint, schema_canvas_length
    from steerdiff.vocab import canvas_capacity
    from steerdiff_plugins import json_schema
    from steerdiff_plugins.grammars import compiled, loader, vocab_walk

    clock = _Clock()
    for name in ("compile_tree", "compile_graph", "tree_to_lark", "schema_to_lark"):
        clock.wrap(json_schema, name, "lark_write")
    clock.wrap(loader, "_load_lark", "lark_load")
    clock.wrap(LALR_Analyzer, "compute_lalr", "lalr")
    clock.wrap(compiled, "regex_to_byte_dfa", "terminals")
    clock.wrap(compiled, "build_context", "contexts")
    clock.wrap(vocab_walk._VocabWalk, "_build_vocab_matrix", "vocab_matrix")
    t0 = time.perf_counter()
    n = schema_canvas_length(model, schema, 16)
    c = _constraint(schema, capacity=canvas_capacity(n, vocab))
    t1 = time.perf_counter()
    if type(c).__name__ != "JSONSchemaGrammar":
        return {"engine": type(c).__name__}
    cg = compiled.compile_grammar(c.grammar, c.start, vocab, c.import_paths)
    w = cg.witness_at_start(cg.initial)
    t2 = time.perf_counter()
    ids, _ = cg.allowed(cg.initial, 0, n - 1, first=vocab.leading_space, witness=w)
    t3 = time.perf_counter()
    out = {"engine": "JSONSchemaGrammar", "canvas": n, "allowed": int(len(ids)), "constraint": t1 - t0,
           "prepare": t2 - t1, "first_mask": t3 - t2, "total": t3 - t0, "grammar_chars": len(c.grammar)}
    for k in ("lark_write", "lark_load", "lalr", "terminals", "contexts", "vocab_matrix"):
        out[k] = clock.t.get(k, 0.0)
    return out


def worker(timeout: float) -> None:
    """Read schema ids on stdin, answer one JSON line each on stdout: the stage times, measured in a forked
    child killed after ``timeout`` seconds (``{"error": "timeout"}``)."""
    import types

    from benchmarks.constraints import smollm_tokenizer
    from steerdiff.vocab import vocab_for

    import steerdiff_plugins

    tok = smollm_tokenizer()
    vocab = vocab_for(tok)
    model = types.SimpleNamespace(tokenizer=tok, max_positions=2048, suffix_ids=[])
    print(json.dumps({"ready": str(Path(steerdiff_plugins.__file__).parent)}), flush=True)
    schemas: dict = {}
    for line in sys.stdin:
        sid = line.strip()
        if not sid:
            continue
        if sid not in schemas:
            schemas.update(load_schemas([sid]))
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                res = measure_one(schemas[sid], model, vocab)
            except Exception as exc:  # a refusal or a crash, by name
                res = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            with os.fdopen(w, "wb") as fw:
                fw.write(json.dumps(res).encode())
            os._exit(0)
        os.close(w)
        buf, t0, res = bytearray(), time.time(), None
        while res is None:
            left = timeout - (time.time() - t0)
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                res = {"error": "timeout", "limit_s": timeout}
                break
            if select.select([r], [], [], min(left, 0.5))[0]:
                chunk = os.read(r, 1 << 16)
                if chunk:
                    buf.extend(chunk)
                    continue
                try:
                    res = json.loads(buf.decode())
                except ValueError:
                    res = {"error": "crash: the child died without an answer"}
        os.waitpid(pid, 0)
        os.close(r)
        res["id"] = sid
        print(json.dumps(res), flush=True)


def _start(code_dir: Path, timeout: float, tmp: Path) -> subprocess.Popen:
    """A worker importing steerdiff from ``code_dir`` and this worktree's ``benchmarks`` package (a link in
    ``tmp``, the worker's working directory, so neither checkout's root shadows the other)."""
    env = dict(os.environ, PYTHONPATH=f"{tmp}{os.pathsep}{code_dir}")
    p = subprocess.Popen([sys.executable, "-m", "benchmarks.grammar_compile", "--worker", "--timeout", str(timeout)],
                         cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    ready = json.loads(p.stdout.readline())
    if Path(ready["ready"]).resolve() != (code_dir / "steerdiff_plugins").resolve():
        raise SystemExit(f"worker for {code_dir} imported steerdiff_plugins from {ready['ready']}")
    return p


def _ask(p: subprocess.Popen, sid: str) -> dict:
    p.stdin.write(sid + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def summarise(rows: list[dict]) -> dict:
    import numpy as np

    ok = [r for r in rows if "error" not in r and r.get("engine") == "JSONSchemaGrammar"]
    out = {"measured": len(rows), "ok": len(ok), "errors": {r["id"]: r.get("error", r.get("engine")) for r in rows if r not in ok}}
    for k in STAGES:
        v = np.array([r[k] for r in ok])
        if len(v):
            out[k] = {"p50_s": round(float(np.median(v)), 3), "p95_s": round(float(np.percentile(v, 95)), 3),
                      "max_s": round(float(v.max()), 3), "sum_s": round(float(v.sum()), 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", help="a file of schema ids, one a line (default: every grammar-engine schema)")
    ap.add_argument("--sample", type=int, help="this many of them, drawn at random (seed 0)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per schema and variant (default 60)")
    ap.add_argument("--ab", help="a read-only checkout of main: measure its code beside this worktree's, alternating")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.timeout)
    ids = grammar_schema_ids()
    if args.ids:
        want = [x.strip() for x in Path(args.ids).read_text().splitlines() if x.strip()]
        ids = [x for x in want if x]
    if args.sample:
        ids = sorted(random.Random(0).sample(ids, min(args.sample, len(ids))))
    variants = {"this": ROOT}
    if args.ab:
        variants = {"main": Path(args.ab).resolve(), "this": ROOT}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        (tmp / "benchmarks").symlink_to(ROOT / "benchmarks")
        procs = {name: _start(d, args.timeout, tmp) for name, d in variants.items()}
        rows: dict = {name: [] for name in variants}
        t0 = time.time()
        for i, sid in enumerate(ids):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for name in order:
                rows[name].append(_ask(procs[name], sid))
            line = "  ".join(f"{n} {r[-1].get('total', float('nan')):.2f}s" if "error" not in r[-1] else f"{n} {r[-1]['error'][:40]}"
                             for n, r in rows.items())
            print(f"[{i + 1}/{len(ids)} {time.time() - t0:.0f}s] {sid}: {line}", flush=True)
        for p in procs.values():
            p.stdin.close()
            p.wait()
    result = {"schemas": len(ids), "timeout_s": args.timeout, "tokenizer": "SmolLM2 (49,152)",
              "variants": {n: str(d) for n, d in variants.items()},
              "summary": {n: summarise(r) for n, r in rows.items()}, "per_schema": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'stage':>13} " + " ".join(f"{n + ' p50':>11} {n + ' p95':>11}" for n in variants))
    for k in STAGES:
        cells = []
        for n in variants:
            s = result["summary"][n].get(k, {})
            cells.append(f"{s.get('p50_s', float('nan')):>11.3f} {s.get('p95_s', float('nan')):>11.3f}")
        print(f"{k:>13} " + " ".join(cells))
    for n in variants:
        sm = result["summary"][n]
        print(f"{n}: {sm['ok']}/{sm['measured']} measured; not measured: {sm['errors']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
