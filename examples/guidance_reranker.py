"""Reranking guidance: an external scorer of whole texts ranks k sampled candidate fills each step; the
best candidate's tokens get a bias. A scorer is any object with ``labels`` and
``score(texts) -> [[score per label], ...]``. Here: VADER's compound score, and a small politeness scorer
(counts of "please", "thank", "kind", "welcome", "sorry").

    python examples/guidance_reranker.py

What it shows, measured (the script prints the scores it measures): a reranker can only choose among the
candidates the model proposes. With steerdiff-tiny the VADER rerank raises the mean compound score of
the four rewrites (measured on a 2-core CPU: +0.14 baseline, +0.51 reranked). The politeness rerank
barely moves them (1 polite word in 4 rewrites, 2 of 4 identical to the baseline): the small model rarely
samples a polite word among its k candidates, and where no candidate has one, every candidate scores 0
and the bias is 0. Larger models, or a scorer that grades words the model does write, give the reranker
something to choose.
"""
from statistics import mean

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import steerdiff as sd
from steerdiff_plugins.scoring.classifiers import register_classifier

POLITE = ("please", "thank", "kind", "welcome", "sorry")


class Politeness:
    labels = ("rude", "polite")

    def score(self, texts):
        n = [sum(w in t.lower() for w in POLITE) for t in texts]
        return [[-x, x] for x in n]


register_classifier("politeness", Politeness, replace=True)  # now usable by name, e.g. from the CLI

model = sd.load_model()
texts = ["The receptionist [[was rude to everyone]] when we arrived.",
         "The waiter [[ignored us]] and the soup was [[cold and bland]].",
         "The support team [[never answered]] my emails.",
         "The driver [[shouted at us]] the whole way."]
before = sd.rewrite(model, texts)
# the small default model rarely samples sentiment words: score many candidates (k) and push hard (scale)
vader = sd.rewrite(model, texts, guidance=[sd.ClassifierGuidance("sentiment", "positive", scale=8.0, mode="scorer", k=32)])
polite = sd.rewrite(model, texts, guidance=[sd.ClassifierGuidance("politeness", "polite", scale=8.0, k=32)])
judge = SentimentIntensityAnalyzer()
for name, rs in (("baseline", before), ("VADER rerank", vader), ("polite rerank", polite)):
    comp = [judge.polarity_scores(r.text)["compound"] for r in rs]
    pol = Politeness().score([r.text for r in rs])
    print(f"{name:<14} mean VADER compound {mean(comp):+.3f}, polite words {sum(p[1] for p in pol)}, "
          f"{rs[0].forward_passes} forward passes per row")
    for r in rs:
        print("   ", r.text)
same = sum(a.text == b.text for a, b in zip(before, polite))
print(f"polite rerank equals the baseline on {same} of {len(texts)} sentences")
