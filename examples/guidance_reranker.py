"""Reranking guidance: an external scorer of whole texts (here VADER's compound score, and a toy
politeness scorer) ranks k sampled candidate fills each step; the best candidate's tokens get a bias.
A scorer is any object with ``labels`` and ``score(texts) -> [[score per label], ...]``.

    python examples/guidance_reranker.py
"""
import steerdiff as sd
from steerdiff_plugins.scoring.classifiers import register_classifier


class Politeness:
    labels = ("rude", "polite")

    def score(self, texts):
        n = [sum(w in t.lower() for w in ("please", "thank", "kind", "welcome", "sorry")) for t in texts]
        return [[-x, x] for x in n]


register_classifier("politeness", Politeness, replace=True)  # now usable by name, e.g. from the CLI

model = sd.load_model()
text = "The receptionist [[was rude to everyone]] when we arrived."
before = sd.rewrite(model, text)
# the small default model rarely samples sentiment words: score many candidates (k) and push hard (scale)
vader = sd.rewrite(model, text, guidance=[sd.ClassifierGuidance("sentiment", "positive", scale=8.0, mode="scorer", k=32)])
polite = sd.rewrite(model, text, guidance=[sd.ClassifierGuidance("politeness", "polite", scale=8.0, k=32)])
print("template     :", text)
print("before       :", before.text)
print("VADER rerank :", vader.text, f"({vader.forward_passes} forward passes)")
print("polite rerank:", polite.text)
