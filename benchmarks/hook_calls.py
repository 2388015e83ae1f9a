"""Hook-call overhead: the loop's hook calls through pluggy (``plugins.call_each``) against direct calls.

Since issue #22 every hook call goes through pluggy (``pm.hook.NAME(...)``, so hook wrappers and tracing
see it), with each implementation wrapped once to name its plugin. The reference is the pre-#22 way:
a loop over the implementations calling each original function directly (``direct_call_each`` below,
the old ``plugins.call_each`` kept here as the yardstick). Both are measured side by side in one process,
alternating blocks, so machine noise hits both alike:

- ``hooks``: one step's four hook calls (adjust_logits, check_commit, on_commit, on_step_end) with the
  built-in plugins registered and no constraint (pure call overhead), CPU microseconds per step;
- ``loop``: ``sd.generate`` on steerdiff's tiny random-weight model (B = 4, L = 64), with
  ``steerdiff.loop.call_each`` swapped for the reference, the non-model time per step in milliseconds,
  with no constraint and with a template constraint.

    python -m benchmarks.hook_calls [--blocks 15] [--reps 400]
Writes benchmarks/results/hook_calls.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import steerdiff as sd
import steerdiff.loop as loop_mod
from steerdiff.errors import PluginError, SteerdiffError
from steerdiff.plugins import call_each, get_plugin_manager
from steerdiff.run import Run
from steerdiff.testing import tiny_model

HERE = Path(__file__).resolve().parent


def direct_call_each(hook: str, _after=None, **kwargs):
    """The pre-#22 ``call_each``: each implementation's original function called directly (no pluggy call,
    no wrappers, no tracing); the yardstick, not for use."""
    out = []
    for impl in reversed(getattr(get_plugin_manager().hook, hook).get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            continue
        pname = impl.plugin_name
        fn = getattr(impl.function, "__wrapped__", impl.function)
        try:
            res = fn(*[kwargs[a] for a in impl.argnames])
        except SteerdiffError:
            raise
        except Exception as exc:
            raise PluginError(pname, hook, f"{type(exc).__name__}: {exc}") from exc
        if _after is not None:
            _after(pname, res)
        if res is not None:
            out.append((pname, res))
    return out


def step_hooks(call, run, canvas, masked, logits, reps: int) -> float:
    """CPU seconds (this thread's: steadier than wall time on a shared machine) per step for one step's four
    hook calls, over ``reps`` steps."""
    commit = torch.zeros_like(masked)  # (B, L)
    conf = torch.zeros(masked.shape)  # (B, L)
    t0 = time.thread_time()
    for step in range(reps):
        call("adjust_logits", run=run, step=step, canvas=canvas, masked=masked, logits=logits)
        call("check_commit", run=run, step=step, canvas=canvas, masked=masked, proposal=canvas, commit=commit,
             confidence=conf, _after=lambda p, r: None)
        call("on_commit", run=run, step=step, canvas=canvas, masked=masked, committed=commit)
        call("on_step_end", run=run, step=step, canvas=canvas, masked=masked, committed=commit)
    return (time.thread_time() - t0) / reps


def loop_other_ms(model, constraints, *, batch: int, length: int, steps: int) -> list[float]:
    """Non-model milliseconds of each step of one ``sd.generate`` call."""
    outs = sd.generate(model, ["a b c"] * batch, length=length, steps=steps, constraints=constraints, trace=False)
    return [1000 * (t - m) for m, t in outs[0].timings["per_step"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=15, help="alternating blocks per side")
    ap.add_argument("--reps", type=int, default=400, help="steps of hook calls per block (hooks part)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    model = tiny_model("masked")
    B, L = 4, 64
    sd.generate(model, "a", length=8, steps=2)  # warm: plugin manager, vocabulary table
    run = Run(model=model, tokenizer=model.tokenizer, mask_id=model.mask_id, fill_id=model.fill_id, device=model.device,
              length=L, steps=L, prompts=["a"] * B, prompt_ids=[model.prompt_ids("a")] * B, constraints=[[] for _ in range(B)],
              generator=torch.Generator().manual_seed(0))
    canvas = torch.full((B, L), model.mask_id, dtype=torch.long)  # (B, L)
    masked = torch.ones((B, L), dtype=torch.bool)  # (B, L)
    run.masked, run.frozen = masked, torch.zeros_like(masked)
    logits = torch.zeros((B, L, len(model.tokenizer)))  # (B, L, V)
    hooks = {"pluggy": [], "direct": []}
    for _ in range(args.blocks):
        for name, call in (("pluggy", call_each), ("direct", direct_call_each)):
            hooks[name].append(1e6 * step_hooks(call, run, canvas, masked, logits, args.reps))

    template = sd.Template("name: {{name:6}}; age: {{age:3}}")
    loop = {f"{c}/{s}": [] for c in ("none", "template") for s in ("pluggy", "direct")}
    for _ in range(args.blocks):
        for cname, cons in (("none", None), ("template", [template])):
            for side, fn in (("pluggy", call_each), ("direct", direct_call_each)):
                loop_mod.call_each = fn
                try:
                    loop[f"{cname}/{side}"] += loop_other_ms(model, cons, batch=B, length=L, steps=16)
                finally:
                    loop_mod.call_each = call_each

    med = {k: statistics.median(v) for k, v in {**{f"hooks/{k}": v for k, v in hooks.items()}, **loop}.items()}
    result = {
        "benchmark": "hook_calls",
        "machine": f"{platform.machine()} {torch.get_num_threads()} thread(s)",
        "torch": torch.__version__,
        "plugins": [n for n, _ in get_plugin_manager().list_name_plugin()],
        "hooks_us_per_step": {"pluggy": round(med["hooks/pluggy"], 2), "direct": round(med["hooks/direct"], 2),
                              "ratio": round(med["hooks/pluggy"] / med["hooks/direct"], 3), "blocks": args.blocks,
                              "reps": args.reps},
        "loop_other_ms_per_step": {c: {"pluggy": round(med[f"{c}/pluggy"], 3), "direct": round(med[f"{c}/direct"], 3),
                                       "ratio": round(med[f"{c}/pluggy"] / med[f"{c}/direct"], 3),
                                       "steps_measured": len(loop[f"{c}/pluggy"])}
                                   for c in ("none", "template")},
        "canvas": {"batch": B, "length": L, "steps": 16},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = Path(args.out) if args.out else HERE / "results" / "hook_calls.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    h = result["hooks_us_per_step"]
    print(f"one step's hook calls (us): pluggy {h['pluggy']:.1f}  direct {h['direct']:.1f}  ratio {h['ratio']:.3f}")
    for c, v in result["loop_other_ms_per_step"].items():
        print(f"loop, {c:<8} non-model ms/step: pluggy {v['pluggy']:.3f}  direct {v['direct']:.3f}  ratio {v['ratio']:.3f}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
