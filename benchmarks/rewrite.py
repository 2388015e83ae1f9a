"""Rewrite benchmark: negative reviews rewritten toward positive, with and without guidance (same seeds).

    python benchmarks/rewrite.py                 # the embedded default model (exits 2 if it is missing)
    python benchmarks/rewrite.py --tiny          # smoke run on a random-weight tiny model
    python benchmarks/rewrite.py --n 120 --scale 3 --settings unguided,lexicon,rerank,probe

Data: ``benchmarks/rewrite_data.py`` (held-out sentences, VADER-negative, with ``[[spans]]``).
For every setting, on the same sentences and seeds, it reports:

- ``mean_compound``: mean VADER compound score of the outputs (source sentences: ``source_compound``),
  and ``delta_vs_unguided`` (the goal is >= 0.5 for the guided settings);
- ``fixed_identical``: fraction of outputs whose text outside the spans is byte-identical (must be 1.0):
  the output must equal the template with each span replaced by its field, and match the fixed parts;
- ``pll_per_token``: fluency proxy, the model's own pseudo-log-likelihood of the hole tokens (padding
  excluded): each hole token is masked in turn, the rest of the sentence visible, and its log-probability
  read off (exact PLL, one masked copy per token, batched); higher is more fluent. The source sentences'
  spans get the same score (``source_pll_per_token``) as a reference;
- ``forward_passes_per_output``: model passes spent per sentence (guidance that needs extra passes or
  refinement rounds counts them; batched passes count once per row, as each row's own pass);
- ``seconds``: wall time of the setting.

Settings: ``unguided``; ``lexicon`` (VADER table, ``ClassifierGuidance("sentiment", mode="table",
repeat_decay=--repeat-decay)``);
``rerank`` (VADER compound as an external scorer, k candidates per step); ``probe`` (gradient guidance
with the embedding probe ``"sentiment-probe"``); ``lexicon_refine`` (lexicon plus one refinement round).
Results go to ``benchmarks/results/rewrite.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SETTINGS = ("unguided", "lexicon", "rerank", "probe", "lexicon_refine")


def guidance_for(setting: str, args):
    import steerdiff as sd

    scale, decay = args.scale, args.repeat_decay
    if setting == "unguided":
        return [], {}
    if setting == "lexicon":
        return [sd.ClassifierGuidance("sentiment", target="positive", scale=scale, mode="table", repeat_decay=decay)], {}
    if setting == "lexicon_refine":
        return [sd.ClassifierGuidance("sentiment", target="positive", scale=scale, mode="table", repeat_decay=decay)], {"refine_rounds": 1}
    if setting == "rerank":
        return [sd.ClassifierGuidance("sentiment", target="positive", scale=args.rerank_scale, mode="scorer", k=args.k)], {}
    if setting == "probe":
        return [sd.ClassifierGuidance("sentiment-probe", target="positive", scale=args.probe_scale)], {}
    raise SystemExit(f"unknown setting {setting!r}; choose from {', '.join(SETTINGS)}")


def hole_pll(model, plans, token_ids_rows) -> list[float]:
    """Mean exact pseudo-log-likelihood per hole token (padding excluded) of each row; nan for no tokens."""
    import torch

    from steerdiff.rewrite import token_logprobs

    L = max(len(r) for r in token_ids_rows)
    canvas = torch.full((len(token_ids_rows), L), model.fill_id, dtype=torch.long)
    positions = []
    for b, (p, ids) in enumerate(zip(plans, token_ids_rows)):
        canvas[b, : len(ids)] = torch.tensor(ids)
        positions.append([i for s, e in p.spans for i in range(s, e) if ids[i] != model.fill_id])
    scores, _ = token_logprobs(model, "", canvas, positions, groups=None)
    return [float(s.mean()) if len(s) else float("nan") for s in scores]


def source_rows(model, plans, items):
    """The source sentences laid out like their templates (the original span tokens in each hole)."""
    rows = []
    tk = model.tokenizer
    for p, it in zip(plans, items):
        ids = []
        n = 0
        for part in p.template.parts:
            if isinstance(part, str):
                ids += tk(part, add_special_tokens=False)["input_ids"]
            else:
                ids += [None] * part[1]
        # spans: original text (with the moved space) tokenized into the hole, exact size (grow=0 plans)
        for (s, e), (pos, space), span in zip(p.spans, p.starts, p.tpl.spans):
            toks = tk((" " if space else "") + span, add_special_tokens=False)["input_ids"]
            assert len(toks) == e - s, "source plans use grow=0"
            ids[s:e] = toks
        rows.append(ids)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="random-weight tiny model (smoke run; numbers mean nothing)")
    ap.add_argument("--model", default=None, help="model directory (default: the embedded steerdiff-tiny)")
    ap.add_argument("--n", type=int, default=120, help="sentences (>= 100 for a real run)")
    ap.add_argument("--scale", type=float, default=1.5, help="lexicon settings (bias = scale * VADER word score)")
    ap.add_argument("--probe-scale", type=float, default=3.0, help="probe (gradient) setting")
    ap.add_argument("--rerank-scale", type=float, default=8.0, help="rerank setting (bias toward the best candidate)")
    ap.add_argument("--k", type=int, default=32, help="candidates per step for rerank")
    ap.add_argument("--repeat-decay", type=float, default=0.5, help="lexicon settings: bias kept for a word already written")
    ap.add_argument("--grow", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8, help="sentences per generate batch")
    ap.add_argument("--settings", default="unguided,lexicon,rerank,probe,lexicon_refine")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", default=str(HERE / "results" / "rewrite.json"))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import steerdiff as sd
    from steerdiff.adapters import default_model_dir
    from steerdiff.rewrite import parse_template, plan_template
    from steerdiff_plugins.scoring.classifiers import get_classifier

    from rewrite_data import heldout

    if args.tiny:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from tiny import tiny_model

        model, model_name = tiny_model("masked", "wordpiece"), "tiny random BERT (wordpiece) -- smoke run"
    else:
        mdir = Path(args.model) if args.model else default_model_dir()
        if not (mdir / "config.json").exists():
            print(f"the model is not present at {mdir} (no config.json); "
                  "train it (python -m steerdiff.train) or pass --tiny for a smoke run", file=sys.stderr)
            return 2
        model, model_name = sd.load_model(mdir), "steerdiff-tiny" if not args.model else str(mdir)
        notes = mdir / "TRAINING.md"
        if notes.exists():  # say which checkpoint was measured
            lines = notes.read_text().splitlines()
            # the checkpoint's own record comes first; the earlier records below it repeat these lines
            first = [next((l.strip("- ") for l in lines if l.startswith(k)), None) for k in ("Status:", "- steps done")]
            model_name += " | " + " | ".join(x for x in first if x)
    vader = get_classifier("sentiment")
    items = heldout(args.n)
    templates = [it["template"] for it in items]
    plans = [plan_template(model, t, grow=args.grow) for t in templates]
    src_plans = [plan_template(model, t, grow=0) for t in templates]
    src_pll = hole_pll(model, src_plans, source_rows(model, src_plans, items))
    source_compound = sum(vader.compound(it["source"]) for it in items) / len(items)

    report = {
        "model": model_name, "n": len(items), "scale": args.scale, "probe_scale": args.probe_scale,
        "rerank_scale": args.rerank_scale, "k": args.k, "repeat_decay": args.repeat_decay, "grow": args.grow,
        "temperature": args.temperature, "seed": args.seed, "batch": args.batch,
        "source_compound": round(source_compound, 4),
        "source_pll_per_token": round(_mean(src_pll), 4),
        "settings": {},
    }
    for setting in [s.strip() for s in args.settings.split(",") if s.strip()]:
        guidance, extra = guidance_for(setting, args)
        t0 = time.perf_counter()
        outs = []
        for ci, i in enumerate(range(0, len(templates), args.batch)):
            outs += sd.rewrite(model, templates[i : i + args.batch], guidance=guidance, grow=args.grow,
                               temperature=args.temperature, seed=args.seed + ci, **extra)
        secs = time.perf_counter() - t0
        compounds = [vader.compound(o.text) for o in outs]
        faithful = []
        for t, o in zip(templates, outs):
            tpl = parse_template(t)
            rebuilt = "".join(p if isinstance(p, str) else o.fields[tpl.names[p]] for p in tpl.parts)
            faithful.append(o.text == rebuilt and bool(tpl.pattern().fullmatch(o.text)))
        pll = hole_pll(model, plans, [o.token_ids for o in outs])
        report["settings"][setting] = {
            "mean_compound": round(sum(compounds) / len(compounds), 4),
            "fixed_identical": sum(faithful) / len(faithful),
            "pll_per_token": round(_mean(pll), 4),
            "forward_passes_per_output": round(sum(o.forward_passes for o in outs) / len(outs), 2),
            "seconds": round(secs, 2),
            "examples": [{"source": it["source"], "output": o.text, "compound": round(c, 3)}
                         for it, o, c in list(zip(items, outs, compounds))[:6]],
        }
        print(f"{setting:15s} compound {report['settings'][setting]['mean_compound']:+.3f}  fixed {sum(faithful)}/{len(faithful)}  "
              f"pll/token {_mean(pll):.3f}  passes/output {report['settings'][setting]['forward_passes_per_output']}  {secs:.1f}s", flush=True)
    base = report["settings"].get("unguided")
    if base:
        for name, r in report["settings"].items():
            if name != "unguided":
                r["delta_vs_unguided"] = round(r["mean_compound"] - base["mean_compound"], 4)
                r["goal_delta_0.5_met"] = r["delta_vs_unguided"] >= 0.5
    print(f"source sentences: compound {source_compound:+.3f}, pll/token {_mean(src_pll):.3f}")
    for name, r in report["settings"].items():
        if "delta_vs_unguided" in r:
            print(f"  {name}: delta vs unguided {r['delta_vs_unguided']:+.3f} ({'meets' if r['goal_delta_0.5_met'] else 'misses'} the +0.5 goal)")
    if args.tiny and args.out == str(HERE / "results" / "rewrite.json"):
        args.out = str(HERE / "results" / "rewrite_tiny.json")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    print(f"wrote {args.out}")
    ok = all(r["fixed_identical"] == 1.0 for r in report["settings"].values())
    return 0 if ok else 1


def _mean(xs):
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")


if __name__ == "__main__":
    sys.exit(main())
