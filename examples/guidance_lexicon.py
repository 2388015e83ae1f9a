"""Lexicon guidance: VADER's word scores as a token bias, rewriting a negative review toward positive.

    python examples/guidance_lexicon.py
"""
import steerdiff as sd

model = sd.load_model()  # the embedded default model, offline
text = "The food was [[terrible and bland]] and the staff [[ignored us rudely]]."

before = sd.rewrite(model, text)
# repeat_decay: a word already written keeps only half its bias, so the lexicon does not repeat one word
after = sd.rewrite(model, text, guidance=[sd.LexiconGuidance("sentiment", target="positive", scale=1.5, repeat_decay=0.5)])
# any {word: score} dict works too: a token gets the score of the word it spells
mine = sd.rewrite(model, text, guidance=[sd.LexiconGuidance({"friendly": 3, "delicious": 3, "fresh": 2}, scale=2.0, repeat_decay=0.3)])

print("template :", text)
print("unguided :", before.text)
print("VADER    :", after.text, after.fields)
print("own words:", mine.text)
