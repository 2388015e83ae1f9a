"""Classifier-free guidance: each step a second forward pass sees the prompt masked, and the logits
move by scale * (cond - uncond): the output leans harder on the prompt. It costs one extra pass a step.

    python examples/guidance_cfg.py

What it shows, measured: on steerdiff-tiny, CFG changes little here. steerdiff-tiny was trained to write
JSON records of such texts, so it answers each prompt with a record, guided or not. Over these three
prompts (2-core CPU run) the share of output words copied from the prompt went from 60% (plain) to 61%
(cfg 1.5) at twice the forward passes (20 -> 40), and the guided outputs added a field the prompt does
not support ("company": "pharmacist") and a stray '"}' after one record. Leaning on the prompt is all
CFG does: it does not make the output true or well-formed (use an exact constraint for the shape,
``sd.fill`` for records). The script prints the outputs, the copied share and the passes.
"""
import re
from statistics import mean

import steerdiff as sd

model = sd.load_model()
prompts = ["Maria Lopez is 34 years old and lives in Lisbon, where she works as a pharmacist.",
           "Tom Berg, 52, is the new admin; reach him at tom.berg@example.com.",
           "The harvest fair opens on 2026-09-12 at 10:30 in Springfield."]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def copied(prompt: str, text: str) -> float:
    out, src = words(text), set(words(prompt))
    return sum(w in src for w in out) / max(1, len(out))


plain = sd.generate(model, prompts, length=40, steps=20)
cfg = sd.generate(model, prompts, length=40, steps=20, guidance=[sd.ClassifierFreeGuidance(scale=1.5)])
for p, a, b in zip(prompts, plain, cfg):
    print("prompt :", p)
    print(f"plain  : {a.text}  (copied {copied(p, a.text):.0%})")
    print(f"cfg 1.5: {b.text}  (copied {copied(p, b.text):.0%})")
print(f"share of output words copied from the prompt: plain {mean(copied(p, r.text) for p, r in zip(prompts, plain)):.0%}, "
      f"cfg {mean(copied(p, r.text) for p, r in zip(prompts, cfg)):.0%}; forward passes per batch: plain "
      f"{plain[0].forward_passes}, cfg {cfg[0].forward_passes}")
