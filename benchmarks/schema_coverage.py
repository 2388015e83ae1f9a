"""Declared coverage, compliance and compile cost of the JSON Schema -> regex compiler.

    python -m benchmarks.schema_coverage [--fsm-timeout 1] [--fsm-share 0.25] [--fsm-max-chars 20000] [--samples 5] [--budget 480]

Over ../shared/testdata/jsonschemabench/schemas/*.json (the public JSONSchemaBench sample):
  * declared coverage per category: share of schemas compiled without an explicit error;
  * refusals counted by keyword (UnsupportedSchemaError.keyword), other ConstraintErrors, crashes;
  * compliance: texts sampled from each compiled regex, parsed and validated with python-jsonschema
    (share of schemas whose every sample validates; any failure is a bug and is listed). These are
    sampler strings, not generated outputs: no model runs on the regex-compiled schemas here;
  * ``declared_coverage_through_fill`` = (regex-compiled + grammar-engine fallbacks) / total. It is what the
    compilers accept, not what ``fill`` was run on: ``fill`` runs only on the fallbacks, and a regex-compiled
    schema whose byte/token automaton is over the state or time limit is still counted (see
    ``benchmarks/constraints.py --parts compile`` for coverage through the automata);
  * regex compile time (schema_to_regex) and interegular FSM build time, p50/p95, reported apart,
    with FSM state counts (FSM builds over --fsm-max-chars or --fsm-timeout are counted, not timed);
  * ``--fill-path``: coverage through ``fill``'s own compile path (the canvas fill sizes, its capacity, the
    json_constraint hook with the byte automaton or the grammar engine, then the prepare-time compiles: token
    automaton or grammar terminals and tables, the shortest text within the canvas; ``--no-prepare`` stops
    before those), SmolLM2's tokenizer, a forked child per schema with a time limit (``--fill-timeout``);
    ``--ids FILE`` re-measures a subset into the last run;
  * the accepted shares on the JSON-Schema-Test-Suite (draft2020-12 + optional/format) and on the
    MaskBench labelled instances (valid instances accepted; invalid instances accepted = bugs).
Writes benchmarks/results/schema_coverage.json and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import sys
import time
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[1]
from steerdiff.errors import ConstraintError, UnsupportedSchemaError  # noqa: E402
from steerdiff_plugins.schema.compiled import compile_schema, sample_text  # noqa: E402
from steerdiff.fill import _constraint as fill_constraint  # noqa: E402
from benchmarks._common import pct  # noqa: E402

DATA = REPO / ".." / "shared" / "testdata"
OUT = REPO / "benchmarks" / "results" / "schema_coverage.json"


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout()


def validator(schema):
    cls = jsonschema.validators.validator_for(schema if isinstance(schema, dict) else {},
                                              default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def compliance(comp, schema, rng, n):
    v = validator(schema)
    for _ in range(n):
        text = sample_text(comp.regex, rng)
        try:
            value = json.loads(text)
        except ValueError:
            return f"non-JSON sample {text[:120]!r}"
        err = next(iter(v.iter_errors(value)), None)
        if err is not None:
            return f"invalid sample {text[:120]!r}: {err.message[:120]}"
    return None


def bench_schemas(args):
    files = sorted((DATA / "jsonschemabench" / "schemas").glob("*.json"))
    if not files:
        sys.exit(f"no JSONSchemaBench schemas under {DATA}")
    rng = random.Random(0)
    fsm_rng = random.Random(1)  # fixed-seed sample of schemas whose FSM build is timed
    cats = {}
    refusals = collections.Counter()
    refusal_examples = {}
    compile_ms, fsm_ms, fsm_states, regex_chars = [], [], [], []
    fsm_skipped = collections.Counter()
    bugs = []
    signal.signal(signal.SIGALRM, _alarm)
    done = 0
    for f in files:
        d = json.loads(f.read_text())
        c = cats.setdefault(d["category"], collections.Counter())
        for it in d["items"]:
            if time.time() > args.deadline:
                c["not_run_budget"] += 1
                continue
            done += 1
            if done % 100 == 0:
                print(f"  [{done} schemas] {time.time() - args.t_start:.0f} s", flush=True)
                args.partial(cats, refusals)
            c["total"] += 1
            t0 = time.perf_counter()
            try:
                signal.alarm(args.compile_timeout)
                comp = compile_schema(it["schema"])
                signal.alarm(0)
            except UnsupportedSchemaError as e:
                signal.alarm(0)
                c["refused"] += 1
                refusals[e.keyword] += 1
                refusal_examples.setdefault(e.keyword, f"{it['id']}: {e}"[:300])
                if e.keyword in ("$ref", "size"):  # sd.fill hands these to the grammar engine
                    try:
                        signal.alarm(args.fallback_timeout)
                        fill_constraint(it["schema"])  # the same path as sd.fill: tree_to_lark or schema_to_lark + LALR
                        signal.alarm(0)
                        c["grammar_fallback"] += 1
                        args.fallback.append((it["id"], it["schema"]))
                    except (UnsupportedSchemaError, ConstraintError, _Timeout):
                        signal.alarm(0)
                continue
            except ConstraintError as e:
                signal.alarm(0)
                c["constraint_error"] += 1
                refusals["ConstraintError"] += 1
                refusal_examples.setdefault("ConstraintError", f"{it['id']}: {e}"[:300])
                continue
            except _Timeout:
                c["compile_timeout"] += 1
                refusals["timeout"] += 1
                continue
            except Exception as e:  # a crash is a bug
                signal.alarm(0)
                c["crash"] += 1
                bugs.append(f"{it['id']}: crash {type(e).__name__}: {e}"[:300])
                continue
            compile_ms.append((time.perf_counter() - t0) * 1000)
            regex_chars.append(len(comp.regex))
            c["compiled"] += 1
            try:
                signal.alarm(args.compile_timeout)
                bad = compliance(comp, it["schema"], rng, args.samples)
                signal.alarm(0)
            except _Timeout:
                bad = None
                c["compliance_timeout"] += 1
            if bad:
                c["noncompliant"] += 1
                bugs.append(f"{it['id']}: {bad}")
            if args.fsm_max_chars and len(comp.regex) > args.fsm_max_chars:
                fsm_skipped["over_max_chars"] += 1
                continue
            if not args.fsm_timeout:
                fsm_skipped["disabled"] += 1
                continue
            if fsm_rng.random() >= args.fsm_share:
                fsm_skipped["not_in_sample"] += 1
                continue
            try:
                import interegular
                t0 = time.perf_counter()
                signal.alarm(args.fsm_timeout)
                fsm = interegular.parse_pattern(comp.regex).to_fsm()
                signal.alarm(0)
                fsm_ms.append((time.perf_counter() - t0) * 1000)
                fsm_states.append(len(fsm.states))
            except _Timeout:
                fsm_skipped["timeout"] += 1
            except Exception as e:
                signal.alarm(0)
                bugs.append(f"{it['id']}: interegular failed: {type(e).__name__}: {e}"[:300])
    return cats, refusals, refusal_examples, compile_ms, fsm_ms, fsm_states, regex_chars, fsm_skipped, bugs


def fallback_compliance(items, seeds: int = 2, length: int = 64, seconds: int = 60) -> dict:
    """``sd.fill`` on the schemas the grammar engine takes over, with a tiny random-weight model
    (tests/tiny.py, 1024 positions): every output must validate (fill checks with python-jsonschema and
    raises ValidationFailed otherwise: a bug of the exact engine). A canvas of ``length`` positions, or
    the schema's shortest text plus 16 when that is longer; ``seconds`` per run (a timeout is counted)."""
    import re

    import steerdiff as sd
    from steerdiff.errors import ValidationFailed
    from steerdiff.testing import tiny_model

    model = tiny_model("masked", "bytelevel", max_positions=1024)
    signal.signal(signal.SIGALRM, _alarm)  # a run past ``seconds`` is counted, not the process killed
    out = {"schemas": len(items), "runs": 0, "valid": 0, "invalid": [], "errors": [], "timeouts": 0}
    for sid, schema in items:
        n = length
        for seed in range(seeds):
            out["runs"] += 1
            for _ in range(2):
                try:
                    signal.alarm(seconds)
                    sd.fill(model, schema, "text", length=n, seed=seed, temperature=1.0 if seed else 0.0)
                    signal.alarm(0)
                    out["valid"] += 1
                except ValidationFailed as e:
                    signal.alarm(0)
                    out["invalid"].append(f"{sid}: {e}"[:300])
                except _Timeout:
                    out["timeouts"] += 1
                except Exception as e:
                    signal.alarm(0)
                    need = re.search(r"(?:needs at least|shortest matching text takes) (\d+) tokens", str(e))
                    if need and n < int(need.group(1)) + 16 <= 1000:
                        n = int(need.group(1)) + 16
                        continue  # the canvas was too short for the schema's shortest text: once more
                    out["errors"].append(f"{sid}: {type(e).__name__}: {e}"[:300])
                break
    return out


def _guarded(fn, *a, seconds=5):
    """fn(*a) under a SIGALRM time limit; None on timeout."""
    signal.signal(signal.SIGALRM, _alarm)
    try:
        signal.alarm(seconds)
        return fn(*a)
    except _Timeout:
        return None
    finally:
        signal.alarm(0)


def suite_shares(deadline=float("inf")):
    root = DATA / "json-schema-test-suite" / "tests" / "draft2020-12"
    files = sorted(root.glob("*.json")) + sorted((root / "optional" / "format").glob("*.json"))
    s = collections.Counter()
    bugs = []
    for f in files:
        for case in json.loads(f.read_text()):
            if time.time() > deadline:
                s["not_run_budget"] += 1
                continue
            s["cases"] += 1
            try:
                comp = _guarded(compile_schema, case["schema"])
            except (UnsupportedSchemaError, ConstraintError):
                continue
            if comp is None:
                s["compile_timeout"] += 1
                continue
            s["compiled"] += 1
            for t in _invalid_accepted(comp, case["tests"], s):
                bugs.append(f"{f.name}: {case['description']} / {t['description']}")
    return s, bugs


def _invalid_accepted(comp, tests, s):
    """Match each labelled instance, written the way the constraint writes JSON, against ``comp``;
    counts into ``s`` (valid / valid_accepted / invalid / match_timeout) and yields every invalid
    instance the language accepts (as written, or in plain compact JSON): each is a bug."""
    for t in tests:
        text = _guarded(comp.dumps, t["data"], seconds=2)  # dumps tries union branches with Python's re
        ok = None if text is None else _guarded(comp.fullmatch, text, seconds=2)
        if ok is None:
            s["match_timeout"] += 1
            continue
        if t["valid"]:
            s["valid"] += 1
            s["valid_accepted"] += ok
        else:
            s["invalid"] += 1
            compact = json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False)
            if ok or _guarded(comp.fullmatch, compact, seconds=2):
                yield t


def maskbench_shares(deadline=float("inf")):
    s = collections.Counter()
    bugs = []
    for f in sorted((DATA / "jsonschemabench" / "maskbench_tests").glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            if time.time() > deadline:
                s["not_run_budget"] += 1
                continue
            s["schemas"] += 1
            try:
                comp = _guarded(compile_schema, it["schema"])
            except (UnsupportedSchemaError, ConstraintError):
                continue
            if comp is None:
                s["compile_timeout"] += 1
                continue
            s["compiled"] += 1
            if len(comp.regex) > 200_000:
                s["skipped_regex_over_200k_chars"] += 1  # Python re backtracking gets slow; covered by sampling
                continue
            for t in _invalid_accepted(comp, it.get("tests", []), s):
                bugs.append(f"{it['id']}: {t['description']} (py_jsonschema_agrees={t.get('py_jsonschema_agrees')})")
    return s, bugs


def _fill_path_one(schema, model, vocab, prepare: bool = True) -> dict:
    """``fill``'s compile path for one schema: the canvas ``fill`` sizes for it, that canvas's capacity, and
    the ``json_constraint`` hook (regular engine with its byte automaton, or the grammar engine). ``prepare``:
    also what the plugins' ``prepare`` hooks compile before the first step, each under its own compile deadline
    as there (the regular engine's token automaton over ``vocab``; the grammar engine's terminals, tables and
    start witness), with ``fill``'s growth of a canvas shorter than the shortest text (recompiled for the
    longer canvas; the shortest text must fit the model), so a schema counts as covered only when ``sd.fill``
    could start denoising it."""
    from steerdiff.fill import _constraint, schema_canvas_length
    from steerdiff.vocab import canvas_capacity
    from steerdiff_plugins.compile_budget import compile_deadline

    try:
        n = schema_canvas_length(model, schema, 16)
        room = model.max_positions - 16 - len(model.suffix_ids)
        c = _constraint(schema, capacity=canvas_capacity(n, vocab))
        for grown in (False, True):  # like fill: a canvas shorter than the shortest text grows to it, once
            if not prepare:
                break
            with compile_deadline():
                if hasattr(c, "grammar"):
                    from steerdiff_plugins.grammars.compiled import compile_grammar

                    cg = compile_grammar(c.grammar, c.start, vocab, getattr(c, "import_paths", ()))
                    need = len(cg.witness_at_start(cg.initial))
                else:
                    from steerdiff_plugins.automata.token_walk import compile_token_dfa

                    need = compile_token_dfa(c.regex_on(n, vocab), vocab, model.tokenizer.eos_token_id).min_tokens
            if need < 0 or need > room:
                return {"kw": "canvas", "msg": f"the shortest text takes {need} tokens, the model has room for {room}"}
            if need <= n or grown:
                break
            n = need
            c = _constraint(schema, capacity=canvas_capacity(n, vocab))
        return {"ok": type(c).__name__}
    except UnsupportedSchemaError as e:
        return {"kw": e.keyword, "msg": str(e)[:300]}
    except ConstraintError as e:
        return {"kw": "ConstraintError", "msg": str(e)[:300]}
    except Exception as e:  # a crash is a bug
        return {"kw": f"crash:{type(e).__name__}", "msg": str(e)[:300]}


def fill_path_coverage(ids=None, timeout: float = 30, parallel: int = 2, max_positions: int = 2048,
                       prepare: bool = True) -> dict:
    """Declared coverage through ``fill``'s own compile path (``_fill_path_one``) with SmolLM2's tokenizer and a
    model of ``max_positions`` positions: each schema in a forked child, killed after ``timeout`` seconds (a
    ``timeout``), ``parallel`` at a time. ``ids``: only these schema ids (a re-measure of a subset).
    ``prepare``: a schema is covered once the plugins' ``prepare`` compiles have run too (see
    ``_fill_path_one``); False counts a constraint as covered when it is built (the figure before session
    fourteen, which overstated the grammar engine: some of its terminals are refused at ``prepare``)."""
    import os
    import select
    import types

    from benchmarks.constraints import smollm_tokenizer
    from steerdiff.vocab import vocab_for

    tok = smollm_tokenizer()
    vocab = vocab_for(tok)
    model = types.SimpleNamespace(tokenizer=tok, max_positions=max_positions, suffix_ids=[])
    items = []
    for f in sorted((DATA / "jsonschemabench" / "schemas").glob("*.json")):
        d = json.loads(f.read_text())
        items += [(d["category"], it["id"], it["schema"]) for it in d["items"] if ids is None or it["id"] in ids]
    results, running, t0, k = {}, {}, time.time(), 0
    while k < len(items) or running:
        while k < len(items) and len(running) < parallel:
            cat, sid, schema = items[k]
            k += 1
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: one schema, its answer as JSON on the pipe
                os.close(r)
                with os.fdopen(w, "wb") as fw:
                    fw.write(json.dumps(_fill_path_one(schema, model, vocab, prepare)).encode())
                os._exit(0)
            os.close(w)
            running[pid] = (cat, sid, r, time.time(), bytearray())
        for pid, (cat, sid, r, ts, buf) in list(running.items()):
            if select.select([r], [], [], 0.02)[0]:
                chunk = os.read(r, 1 << 16)
                if chunk:
                    buf.extend(chunk)
                    continue
                os.close(r)
                os.waitpid(pid, 0)
                try:
                    res = json.loads(buf.decode())
                except ValueError:
                    res = {"kw": "crash:worker"}
            elif time.time() - ts > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(r)
                res = {"kw": "timeout"}
            else:
                continue
            res["s"] = round(time.time() - ts, 2)
            results[sid] = (cat, res)
            del running[pid]
            if len(results) % 50 == 0:
                print(f"  [fill path: {len(results)}/{len(items)} schemas] {time.time() - t0:.0f} s", flush=True)
    cats: dict = collections.defaultdict(collections.Counter)
    refusals, engines = collections.Counter(), collections.Counter()
    for sid, (cat, res) in results.items():
        cats[cat]["total"] += 1
        if "ok" in res:
            cats[cat]["covered"] += 1
            engines[res["ok"]] += 1
        else:
            refusals[res["kw"]] += 1
    total, covered = len(results), sum(c["covered"] for c in cats.values())
    return {"schemas": total, "subset": ids is not None, "covered": covered,
            "share": round(covered / max(total, 1), 4), "by_engine": dict(engines), "timeout_s": timeout,
            "parallel": parallel, "tokenizer": "SmolLM2-135M-Instruct (49,152 tokens)", "max_positions": max_positions,
            "through_prepare": prepare, "per_category": {c: dict(v) for c, v in sorted(cats.items())}, "refusals": dict(refusals.most_common()),
            "per_schema": {sid: res for sid, (_, res) in sorted(results.items())}, "wall_s": round(time.time() - t0, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fill-path", action="store_true", help="only the coverage through fill's compile path (forked "
                    "workers, SmolLM2's tokenizer): section fill_path of the results file, the rest kept")
    ap.add_argument("--fill-timeout", type=float, default=30, help="seconds per schema on the fill path")
    ap.add_argument("--no-prepare", action="store_true", help="with --fill-path: count a constraint as covered "
                    "once built, without the prepare-time compiles (token automaton, grammar terminals)")
    ap.add_argument("--ids", help="with --fill-path: a file of schema ids (one a line) to re-measure; their "
                    "results replace those of the last full run in section fill_path")
    ap.add_argument("--samples", type=int, default=5, help="regex samples validated per schema")
    ap.add_argument("--fsm-timeout", type=int, default=1, help="seconds per interegular FSM build (0: skip FSM builds)")
    ap.add_argument("--fsm-share", type=float, default=0.25, help="fixed-seed share of compiled schemas whose FSM is built")
    ap.add_argument("--fsm-max-chars", type=int, default=20_000, help="skip FSM builds of longer regexes")
    ap.add_argument("--compile-timeout", type=int, default=5, help="seconds per schema_to_regex call (a timeout is a refusal)")
    ap.add_argument("--fallback-seeds", type=int, default=1, help="fill runs per grammar-engine schema (seed 0 greedy)")
    ap.add_argument("--fallback-timeout", type=int, default=20, help="seconds to build the grammar-engine fallback")
    ap.add_argument("--budget", type=float, default=480, help="seconds in all; past it schemas are counted as not run")
    ap.add_argument("--no-suites", action="store_true", help="skip the test-suite / MaskBench shares")
    args = ap.parse_args()
    if args.fill_path:
        old = json.loads(OUT.read_text()) if OUT.exists() else {}
        ids = set(Path(args.ids).read_text().split()) if args.ids else None
        fp = fill_path_coverage(ids, timeout=args.fill_timeout, prepare=not args.no_prepare)
        if ids is not None and "fill_path" in old:  # merge the subset into the last full run
            base = old["fill_path"]
            per = {**base["per_schema"], **fp["per_schema"]}
            fp = {**fp, "schemas": len(per), "subset": False, "remeasured": sorted(ids), "per_schema": per}
            fp["covered"] = sum("ok" in r for r in per.values())
            fp["share"] = round(fp["covered"] / max(len(per), 1), 4)
            fp["refusals"] = dict(collections.Counter(r["kw"] for r in per.values() if "ok" not in r).most_common())
            fp["by_engine"] = dict(collections.Counter(r["ok"] for r in per.values() if "ok" in r))
            fp.pop("per_category")
        old["fill_path"] = fp
        OUT.write_text(json.dumps(old, indent=1) + "\n")
        print(f"through fill's compile path: {fp['covered']}/{fp['schemas']} ({fp['share']:.1%}) {fp['by_engine']}; "
              f"refusals {fp['refusals']}")
        return

    t_start = time.time()
    args.t_start = t_start
    args.deadline = t_start + args.budget * (0.7 if not args.no_suites else 1.0)

    kept = {}  # the --fill-path section is measured apart: kept through partial and final writes
    if OUT.exists():
        kept = {k: v for k, v in json.loads(OUT.read_text()).items() if k == "fill_path"}

    def partial(cats, refusals):
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps({"complete": False, "per_category": {k: dict(v) for k, v in cats.items()},
                                   "refusals_by_keyword": dict(refusals), **kept}, indent=1) + "\n")

    args.partial = partial
    args.fallback = []
    cats, refusals, examples, cms, fms, states, chars, fskip, bugs = bench_schemas(args)
    total = sum(c["total"] for c in cats.values())
    compiled = sum(c["compiled"] for c in cats.values())
    fallback = sum(c["grammar_fallback"] for c in cats.values())
    fb = fallback_compliance(args.fallback, seeds=args.fallback_seeds)
    print(f"grammar-engine fallback (refused as $ref/size, taken by tree_to_lark or schema_to_lark): {fallback} schemas; "
          f"fill with a tiny model: {fb['valid']}/{fb['runs']} valid, {len(fb['invalid'])} invalid, "
          f"{len(fb['errors'])} other errors, {fb['timeouts']} timeouts")
    noncompliant = sum(c["noncompliant"] for c in cats.values())
    print(f"{'category':<18}{'total':>6}{'compiled':>9}{'coverage':>10}{'refused':>8}{'other':>6}")
    per_cat = {}
    for name, c in sorted(cats.items()):
        cov = c["compiled"] / max(c["total"], 1)
        other = c["constraint_error"] + c["crash"] + c["compile_timeout"]
        print(f"{name:<18}{c['total']:>6}{c['compiled']:>9}{cov:>10.1%}{c['refused']:>8}{other:>6}")
        per_cat[name] = {**dict(c), "declared_coverage": round(cov, 4)}
    print(f"{'ALL':<18}{total:>6}{compiled:>9}{compiled / max(total, 1):>10.1%}")
    print(f"compliance (all {args.samples} samples per schema validate): "
          f"{compiled - noncompliant}/{compiled}")
    print("refusals by keyword:", ", ".join(f"{k}={v}" for k, v in refusals.most_common()))

    def ms(xs):
        return {"p50": pct(xs, 50), "p95": pct(xs, 95), "max": max(xs) if xs else None, "n": len(xs)}

    print(f"schema_to_regex ms: p50={pct(cms, 50) or 0:.2f} p95={pct(cms, 95) or 0:.2f}  "
          f"regex chars p50={pct(chars, 50)} p95={pct(chars, 95)} max={max(chars) if chars else None}")
    if fms:
        print(f"interegular FSM ms: p50={pct(fms, 50):.1f} p95={pct(fms, 95):.1f} (n={len(fms)}); "
              f"states p50={pct(states, 50)} p95={pct(states, 95)} max={max(states)}; skipped {dict(fskip)}")
    result = {
        "data": "jsonschemabench/schemas (public JSONSchemaBench sample)",
        "complete": not any(c["not_run_budget"] for c in cats.values()),
        "timeouts_s": {"compile": args.compile_timeout, "fsm": args.fsm_timeout, "budget": args.budget},
        "fsm_sample_share": args.fsm_share, "fsm_max_chars": args.fsm_max_chars,
        "total": total, "compiled": compiled, "declared_coverage": round(compiled / max(total, 1), 4),
        "grammar_fallback": fallback,
        "declared_coverage_through_fill": round((compiled + fallback) / max(total, 1), 4),
        "declared_coverage_through_fill_means": "(regex-compiled + grammar fallbacks) / total: fill ran only on the "
                                                "fallbacks; automata over the state/time limit are not checked here",
        "grammar_fallback_compliance": fb,
        "compliance": {"compiled": compiled, "all_samples_valid": compiled - noncompliant,
                       "samples_per_schema": args.samples},
        "per_category": per_cat,
        "refusals_by_keyword": dict(refusals.most_common()),
        "refusal_examples": examples,
        "schema_to_regex_ms": ms(cms),
        "regex_chars": {"p50": pct(chars, 50), "p95": pct(chars, 95), "max": max(chars) if chars else None},
        "interegular_fsm_ms": ms(fms),
        "fsm_states": {"p50": pct(states, 50), "p95": pct(states, 95), "max": max(states) if states else None},
        "fsm_skipped": dict(fskip),
        "bugs": bugs,
    }
    if not args.no_suites:
        deadline = t_start + args.budget
        s, sbugs = suite_shares(max(time.time() + 30, t_start + args.budget * 0.8))
        print(f"  suites done at {time.time() - t_start:.0f} s", flush=True)
        m, mbugs = maskbench_shares(max(time.time() + 60, deadline))
        print(f"JSON-Schema-Test-Suite: compiled {s['compiled']}/{s['cases']} cases, valid accepted "
              f"{s['valid_accepted']}/{s['valid']} ({s['valid_accepted'] / max(s['valid'], 1):.1%}), "
              f"invalid accepted {len(sbugs)}")
        print(f"MaskBench: compiled {m['compiled']}/{m['schemas']} schemas, valid accepted "
              f"{m['valid_accepted']}/{m['valid']} ({m['valid_accepted'] / max(m['valid'], 1):.1%}), "
              f"invalid accepted {len(mbugs)}")
        result["json_schema_test_suite"] = {**dict(s), "invalid_accepted": sbugs}
        result["maskbench"] = {**dict(m), "invalid_accepted": mbugs}
        result["complete"] = result["complete"] and not s["not_run_budget"] and not m["not_run_budget"]
    for b in bugs[:20]:
        print("BUG", b)
    result["wall_s"] = round(time.time() - t_start, 1)
    result.update(kept)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} in {result['wall_s']} s")


if __name__ == "__main__":
    main()
