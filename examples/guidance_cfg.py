"""Classifier-free guidance: each step a second forward pass sees the prompt masked, and the logits
move by scale * (cond - uncond): the output leans harder on the prompt. It costs one extra pass a step.

    python examples/guidance_cfg.py
"""
import steerdiff as sd

model = sd.load_model()
prompt = "Maria Lopez is 34 years old and lives in Lisbon, where she works as a pharmacist."

plain = sd.generate(model, prompt, length=40, steps=20)
cfg = sd.generate(model, prompt, length=40, steps=20, guidance=[sd.ClassifierFreeGuidance(scale=1.5)])
print("prompt :", prompt)
print("plain  :", plain.text, f"({plain.forward_passes} forward passes)")
print("cfg 1.5:", cfg.text, f"({cfg.forward_passes} forward passes)")
