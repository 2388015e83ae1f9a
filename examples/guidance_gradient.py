"""Gradient guidance: a differentiable classifier over one-hot tokens steers every masked position by
scale * d log p(positive | x) / d onehot(x).  "sentiment-probe" is a linear probe over the model's own
input embeddings (fitted to VADER's word scores on first use); any object with ``labels`` and
``log_probs(x: (B, L, V)) -> (B, C)`` works the same way.

    python examples/guidance_gradient.py

What it shows, measured: the API, and an honest negative result. With the small steerdiff-tiny model the
probe does not make rewrites more positive: VADER's mean compound score of the guided rewrites is about
that of the unguided ones (this script prints both; on a 2-core CPU run its six sentences gave -0.068
unguided, -0.052 guided, five of six rewrites unchanged or nearly so; over 40 held-out sentences,
``benchmarks/results/rewrite.json``: probe 0.011, unguided 0.021, lexicon guidance 0.580). The gradient
of a linear probe through 8M-parameter embeddings is too weak a signal here; the lexicon guidance
(``examples/guidance_lexicon.py``) is the one that moves this model.
"""
from statistics import mean

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import steerdiff as sd

model = sd.load_model()
texts = ["After two weeks the kettle [[stopped working and leaked everywhere]].",
         "The hotel room was [[dirty and noisy]] all night.",
         "Our waiter was [[rude and slow]], and the soup was [[cold]].",
         "The new update made the app [[slow and useless]].",
         "The flight was [[delayed for hours]] and the crew [[ignored us]].",
         "The chair [[broke on the first day]]."]

before = sd.rewrite(model, texts)  # one batch, one Result per text
after = sd.rewrite(model, texts, guidance=[sd.ClassifierGuidance("sentiment-probe", target="positive", scale=3.0)])
judge = SentimentIntensityAnalyzer()  # an independent judge: VADER's compound score in [-1, 1]
score = [[judge.polarity_scores(r.text)["compound"] for r in rs] for rs in (before, after)]
for b, a, sb, sa in zip(before, after, *score):
    print(f"before {sb:+.2f}: {b.text}\nafter  {sa:+.2f}: {a.text}")
print(f"mean VADER compound: before {mean(score[0]):+.3f}, after {mean(score[1]):+.3f} "
      f"(difference {mean(score[1]) - mean(score[0]):+.3f} over {len(texts)} sentences)")
