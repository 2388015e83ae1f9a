"""Byte stage A/B (issue 23, item 3): outlines_core's builder (``byte_level.outlines_dfa``) beside our own
(``byte_build``: Thompson NFA, subset construction and Valmari's minimisation in numba, ``byte_level.byte_dfa``),
regex by regex in one process, and a check that both give the same canonical minimal DFA.

    python -m benchmarks.byte_build [--ids a,b,... | --llg | --public] [--repeat N] [--out FILE]

The regexes are the schema compiler's (``compile_schema(schema).regex``) for the public JSONSchemaBench set
(``../shared/testdata/jsonschemabench/schemas``; refusals of the schema stage skipped), or the ids of ``--ids``,
or ``--llg`` (the 26 schemas of the llguidance comparison, ``benchmarks/results/issue23_speed.json``). Without a
choice both ``llg26`` (``--repeat``, default 5) and ``public`` (one build per side) are run. Every build starts
with cold per-pattern caches (``byte_dfa``, ``to_engine_regex``, ``parse_regex``); the side that goes first
alternates from regex to regex; a side's time is the median of its repeats. Both sides must give identical
arrays (``ctrans``, ``bcls``, ``accept``, ``start``) or the same error class: differences are listed and the
exit status is 1. Where the outlines path refuses a regex as too large (its raw automaton, before
minimising, over ``MAX_STATES``) and ours builds it (``MAX_STATES`` bounds our minimal automaton), the row is
``gained``, checked against ``re.fullmatch`` on sampled texts (:func:`sample_check`) instead; the timing
summary covers the regexes both sides treat alike. The outlines side includes what it needs beyond the Rust build (dicts to arrays, marker
removal, minimising twice, the canonical numbering). Set ``NUMBA_NUM_THREADS=1`` for timings; the kernels are
compiled (or loaded from numba's cache) before timing. Results go to ``--out`` (default
``benchmarks/results/issue23_byte_build.json``), one section per run, other sections kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks._common import pct, r
from benchmarks.byte_stage import SPEED, _regexes

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "issue23_byte_build.json"


def _clear() -> None:
    from steerdiff_plugins.automata import byte_level, engine_regex

    byte_level.byte_dfa.cache_clear()
    engine_regex.to_engine_regex.cache_clear()
    engine_regex.parse_regex.cache_clear()


def _build(fn, rx: str):
    _clear()
    t0 = time.perf_counter()
    try:
        out = fn(rx)
    except Exception as exc:  # a refusal: both sides must refuse alike
        out = type(exc).__name__
    return out, 1000 * (time.perf_counter() - t0)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a.start == b.start and all(np.array_equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype == getattr(b, f).dtype
                                      for f in ("ctrans", "bcls", "accept"))


def sample_check(bd, rx: str, n: int = 40, seed: int = 0) -> tuple[int, int]:
    """For a regex only our builder takes (the outlines path refused it as too large): ``(agreeing, checked)``
    texts on which ``bd`` and ``re.fullmatch`` agree, the texts being random walks of ``bd`` to an accepting
    state and one-character mutations of them (U+10FFFF, never generated, left out)."""
    import random
    import re

    rnd = random.Random(seed)
    comp = re.compile(rx)
    members = {}
    for b, c in enumerate(bd.bcls.tolist()):
        members.setdefault(c, []).append(b)
    texts = []
    for _ in range(n):
        s, out = bd.start, bytearray()
        for _ in range(4000):
            if bd.accept[s] and rnd.random() < 0.08:
                break
            live = [c for c in range(bd.ctrans.shape[1]) if bd.ctrans[s, c] != bd.dead]
            if not live:
                break
            c = rnd.choice(live)
            out.append(rnd.choice(members[c]))
            s = bd.ctrans[s, c]
        if bd.accept[s]:
            t = out.decode()
            texts.append(t)
            if t:
                i = rnd.randrange(len(t))
                texts.append(t[:i] + rnd.choice('a"0 ,{}[]:é\\') + t[i + 1:])
    ok = sum(bd.accepts(t.encode()) == (comp.fullmatch(t) is not None and "\U0010ffff" not in t) for t in texts)
    return ok, len(texts)


def run_section(regexes: list[tuple[str, str]], repeat: int) -> dict:
    from steerdiff_plugins.automata import byte_level

    sides = {"old": byte_level.outlines_dfa, "new": byte_level.byte_dfa}
    rows, diff, gains = [], [], []
    for k, (sid, rx) in enumerate(regexes):
        times: dict = {"old": [], "new": []}
        got: dict = {}
        for j in range(repeat):
            order = ("old", "new") if (k + j) % 2 == 0 else ("new", "old")
            for side in order:
                out, ms = _build(sides[side], rx)
                times[side].append(ms)
                got[side] = out
        same = _same(got["old"], got["new"])
        b = got["new"]
        gained = got["old"] == "AutomatonTooLarge" and not isinstance(b, str)
        row = {"id": sid, "chars": len(rx), "old_ms": r(statistics.median(times["old"]), 3),
               "new_ms": r(statistics.median(times["new"]), 3), "same": same,
               **({"states": int(b.ctrans.shape[0]) - 1} if not isinstance(b, str) else {"error": b})}
        if gained:  # the outlines path's raw automaton was over MAX_STATES; ours bounds the minimal one
            row["old_error"] = got["old"]
            row["sampled_agree"], row["sampled"] = sample_check(b, rx)
            gains.append(sid)
        rows.append(row)
        if not same and not (gained and row["sampled_agree"] == row["sampled"]):
            diff.append(sid)
        print(f"{sid:<40} {len(rx):>8} ch  old {row['old_ms']:9.1f} ms  new {row['new_ms']:9.1f} ms  "
              f"{'same' if same else 'GAINED (old ' + got['old'] + ')' if gained else 'DIFFERENT'}", flush=True)
    both = [x for x in rows if x["same"]]  # timings: the regexes both sides build (or refuse) alike
    a = [x["old_ms"] for x in both]
    b = [x["new_ms"] for x in both]
    ratio = [x["old_ms"] / x["new_ms"] for x in both if x["new_ms"] > 0]
    summary = {"n": len(rows), "n_same": len(both), "gained": gains, "old_p50_ms": r(pct(a, 50)), "new_p50_ms": r(pct(b, 50)), "old_p95_ms": r(pct(a, 95)),
               "new_p95_ms": r(pct(b, 95)), "old_sum_s": r(sum(a) / 1000), "new_sum_s": r(sum(b) / 1000),
               "median_speedup": r(statistics.median(ratio)) if ratio else None, "different": diff}
    print(json.dumps(summary), flush=True)
    return {"repeat": repeat, "summary": summary, "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--ids", help="comma-separated schema ids")
    g.add_argument("--llg", action="store_true", help="the 26 schemas of the llguidance comparison")
    g.add_argument("--public", action="store_true", help="every public schema the compiler takes")
    ap.add_argument("--repeat", type=int, default=5, help="builds per regex and side for --ids/--llg (median kept)")
    ap.add_argument("--out", default=str(OUT), help="results file (sections replaced, others kept)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    from steerdiff_plugins.automata import byte_build, byte_level

    if not byte_build.available():
        ap.error("our builder is not available here (numba missing, or STEERDIFF_BYTE_BUILD=outlines)")
    byte_level.outlines_dfa('"[a-z]{0,3}é*"')  # the byte vocabulary, imports and kernels, before timing
    byte_level.byte_dfa('"[a-z]{0,3}é*"')
    llg = {x["id"] for x in json.loads(SPEED.read_text())["llguidance"]["rows"] if x["sd_ok"]}
    if args.ids:
        plan = [("ids", set(args.ids.split(",")), args.repeat)]
    elif args.llg:
        plan = [("llg26", llg, args.repeat)]
    elif args.public:
        plan = [("public", None, 1)]
    else:
        plan = [("llg26", llg, args.repeat), ("public", None, 1)]
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    bad = False
    for name, ids, repeat in plan:
        regexes = _regexes(ids)
        print(f"{name}: {len(regexes)} regexes", flush=True)
        sec = run_section(regexes, repeat)
        sec.update(load_avg_1min=r(os.getloadavg()[0]), numba_threads=os.environ.get("NUMBA_NUM_THREADS"),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        doc[name] = sec
        out.write_text(json.dumps(doc, indent=1) + "\n")
        bad = bad or bool(sec["summary"]["different"])
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
