"""Gradient guidance: a differentiable classifier over one-hot tokens steers every masked position by
scale * d log p(positive | x) / d onehot(x).  "sentiment-probe" is a linear probe over the model's own
input embeddings (fitted to VADER's word scores on first use); any object with ``labels`` and
``log_probs(x: (B, L, V)) -> (B, C)`` works the same way.

    python examples/guidance_gradient.py
"""
import steerdiff as sd

model = sd.load_model()
text = "After two weeks the kettle [[stopped working and leaked everywhere]]."

before = sd.rewrite(model, text)
after = sd.rewrite(model, text, guidance=[sd.ClassifierGuidance("sentiment-probe", target="positive", scale=3.0)])
print("template:", text)
print("before  :", before.text)
print("after   :", after.text)
