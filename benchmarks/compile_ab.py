"""Compile speed A/B: a base revision beside the working tree, schema by schema, in one run.

    python -m benchmarks.compile_ab [--base main] [--per-category 4] [--ids FILE] [--seed 23] [--out FILE]

Two warm worker processes, one importing the code of ``--base`` (``git archive`` of ``steerdiff``,
``steerdiff_plugins`` and ``benchmarks`` into a temporary directory, first on its ``PYTHONPATH``), one the
working tree. Each gets every schema in turn (which side goes first alternates), compiles it with cold caches
like ``benchmarks.constraints._compile_stages`` (schema -> regex, engine regex + byte DFA, token DFA over
SmolLM2's 49,152 tokens) and reports the stage times and a digest of the byte DFA and the token DFA (tables,
classes, acceptance, start), so the run also checks that both sides build identical automata. Prints p50/p95
per stage for both and the median per-schema ratio; ``--out`` writes the rows as JSON. Timings on a shared
machine are noisy: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"


def _worker() -> None:
    """One side: schema ids on stdin, one JSON line per schema on stdout."""
    import hashlib
    import time

    from benchmarks.constraints import smollm_tokenizer
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.automata import byte_level
    from steerdiff_plugins.automata import token_walk as td
    from steerdiff_plugins.schema import compiled as jr

    schemas = {it["id"]: it["schema"] for f in sorted(DATA.glob("*.json")) for it in json.loads(f.read_text())["items"]}
    tok = smollm_tokenizer()
    vocab, fill = vocab_for(tok), tok.eos_token_id
    byte_level._byte_vocabulary()
    td._flat_vocab(vocab)
    print(json.dumps({"ready": jr.__file__}), flush=True)
    for line in sys.stdin:
        sid = line.strip()
        td.cache_clear()
        jr._CACHE.clear()
        jr._TREES.clear()
        out: dict = {"id": sid}
        try:
            t0 = time.perf_counter()
            comp = jr.compile_schema(schemas[sid])
            t1 = time.perf_counter()
            byte_level.check_regex(comp.regex)  # JSONSchema's syntax check (kept for byte_dfa)
            bd = td.byte_dfa(comp.regex)
            t2 = time.perf_counter()
            dfa = td.compile_token_dfa(comp.regex, vocab, fill)
            t3 = time.perf_counter()
            h = hashlib.sha256()
            for a in (bd.ctrans, bd.bcls, bd.accept, dfa.table, dfa.tok2cls, dfa.accept):
                h.update(a.tobytes())
            h.update(f"{bd.start},{dfa.start},{dfa.min_tokens}".encode())
            out.update(regex_ms=1000 * (t1 - t0), byte_ms=1000 * (t2 - t1), token_ms=1000 * (t3 - t2),
                       total_ms=1000 * (t3 - t0), states=int(bd.ctrans.shape[0] - 1), digest=h.hexdigest())
        except Exception as e:  # a refusal: both sides must refuse alike
            out["error"] = f"{type(e).__name__}: {str(e)[:120]}"
        print(json.dumps(out), flush=True)


def _start(path: str):
    # this file runs as a script (the base revision may not have it); the packages come from ``path``
    env = dict(os.environ, PYTHONPATH=path)
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env, cwd=path)
    ready = json.loads(p.stdout.readline())
    print(f"worker ready: {ready['ready']}", flush=True)
    return p


def _ask(p, sid: str) -> dict:
    p.stdin.write(sid + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))] if v else None


def main() -> None:
    if "--worker" in sys.argv:
        _worker()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main", help="git revision compared with the working tree")
    ap.add_argument("--per-category", type=int, default=4, help="schemas per JSONSchemaBench category (fixed seed)")
    ap.add_argument("--ids", type=Path, help="a file of schema ids (one a line) instead of the sample")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--out", type=Path, help="write the rows and the summary as JSON")
    a = ap.parse_args()
    if a.ids is not None:
        ids = a.ids.read_text().split()
    else:
        rng = random.Random(a.seed)
        ids = []
        for f in sorted(DATA.glob("*.json")):
            items = json.loads(f.read_text())["items"]
            ids += [it["id"] for it in rng.sample(items, min(a.per_category, len(items)))]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", a.base, "steerdiff", "steerdiff_plugins", "benchmarks"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        sides = {"base": _start(tmp), "tree": _start(str(ROOT))}
        rows = []
        try:
            for k, sid in enumerate(ids):
                order = ["base", "tree"] if k % 2 == 0 else ["tree", "base"]
                res = {name: _ask(sides[name], sid) for name in order}
                b, t = res["base"], res["tree"]
                same = b.get("digest", b.get("error")) == t.get("digest", t.get("error"))
                rows.append({"id": sid, "base": b, "tree": t, "identical": same})
                print(f"  {sid:<40} base {b.get('total_ms', -1):8.1f} ms  tree {t.get('total_ms', -1):8.1f} ms  "
                      f"{'identical' if same else 'DIFFERENT'} {b.get('error', '')[:50]}", flush=True)
        finally:
            for p in sides.values():
                p.stdin.close()
                p.wait()
    both = [r for r in rows if "total_ms" in r["base"] and "total_ms" in r["tree"]]
    summary = {"base": a.base, "schemas": len(rows), "compiled_both": len(both),
               "identical": sum(r["identical"] for r in rows)}
    for key in ("total_ms", "regex_ms", "byte_ms", "token_ms"):
        vb, vt = [r["base"][key] for r in both], [r["tree"][key] for r in both]
        summary[key] = {"base_p50": _pct(vb, 50), "base_p95": _pct(vb, 95), "tree_p50": _pct(vt, 50),
                        "tree_p95": _pct(vt, 95),
                        "median_ratio": statistics.median([y / x for x, y in zip(vb, vt) if x > 0]) if both else None}
        s = summary[key]
        print(f"{key}: base p50 {s['base_p50']:.1f} p95 {s['base_p95']:.1f}; tree p50 {s['tree_p50']:.1f} "
              f"p95 {s['tree_p95']:.1f}; median tree/base {s['median_ratio']:.3f}")
    print(f"identical automata (or identical refusals): {summary['identical']} of {len(rows)}")
    if a.out:
        a.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
