"""Lexicon guidance: VADER's word scores as a token bias, rewriting a negative review toward positive.

    python examples/guidance_lexicon.py
"""
import steerdiff as sd

model = sd.load_model()  # the embedded default model, offline
text = "The food was [[terrible and bland]] and the staff [[ignored us rudely]]."

before = sd.rewrite(model, text)
after = sd.rewrite(model, text, guidance=[sd.LexiconGuidance("sentiment", target="positive", scale=3.0)])
# any {word: score} dict works too: a token gets the score of the word it spells
mine = sd.rewrite(model, text, guidance=[sd.LexiconGuidance({"friendly": 3, "delicious": 3, "fresh": 2}, scale=3.0)])

print("template :", text)
print("unguided :", before.text)
print("VADER    :", after.text, after.fields)
print("own words:", mine.text)
