"""Plain-language training text: review sentences for template fill, and WordNet glosses and examples."""
from __future__ import annotations

import glob
import os
import random
import re

from faker import Faker

from .templates import nonce_word

# --------------------------------------------------------------------------------------------------
# Template fill: review sentences with sentiment, and holes padded with [EOS] inside the canvas
# --------------------------------------------------------------------------------------------------
ASPECTS = ["food", "service", "staff", "waiter", "waitress", "pasta", "pizza", "coffee", "dessert", "soup", "steak",
           "atmosphere", "music", "room", "bed", "breakfast", "hotel", "price", "menu", "wine", "salad", "bread",
           "manager", "delivery", "shop", "checkout", "location", "view", "pool", "lobby", "team", "support"]
POS = ["great", "excellent", "wonderful", "delicious", "friendly", "amazing", "fantastic", "lovely", "perfect",
       "superb", "fresh", "helpful", "warm", "pleasant", "outstanding", "charming", "clean", "cozy", "tasty", "kind",
       "quick", "attentive", "beautiful", "good", "nice", "brilliant", "impressive", "generous", "relaxing", "fun"]
NEG = ["terrible", "awful", "bland", "rude", "horrible", "cold", "slow", "dirty", "disappointing", "poor", "bad",
       "stale", "noisy", "unfriendly", "overpriced", "greasy", "boring", "careless", "sloppy", "mediocre", "dull",
       "messy", "unhelpful", "annoying", "ugly", "weak", "dreadful", "soggy", "cramped", "nasty"]
ADV = ["", "", "", "really ", "very ", "truly ", "quite ", "so ", "incredibly ", "rather ", "absolutely ", "pretty "]
REVIEW_TPL = [
    "The {a} was {adv}{w}.", "The {a} is {adv}{w}.", "Our {a} was {adv}{w}.", "We found the {a} {adv}{w}.",
    "I thought the {a} was {adv}{w}.", "Honestly, the {a} was {adv}{w}.", "What a {w} {a}!", "The {a} here is always {w}.",
    "Everyone agreed the {a} was {adv}{w}.", "My friends said the {a} was {w}.", "The {a} felt {adv}{w} tonight.",
    "Overall, the {a} was {adv}{w}.", "I have to say the {a} was {adv}{w}.", "The {a} was {w} and the {a2} was {w2}.",
    "The {a} was {w}, but the {a2} was {w2}.", "We loved how {w} the {a} was.", "Such a {w} {a}.",
    "The {a} and the {a2} were both {adv}{w}.", "It was a {adv}{w} evening and the {a} was {w2}.",
    "I would call the {a} {adv}{w}.", "The {a} turned out {adv}{w}.", "{A} was {adv}{w}.",
]
CLOSERS_POS = ["We will come back.", "Highly recommended.", "Five stars.", "Can't wait to return.", "Thank you!",
               "I would recommend it to anyone.", "Best meal in a while."]
CLOSERS_NEG = ["We will not come back.", "Not recommended.", "One star.", "Never again.", "What a waste of money.",
               "I would not recommend it.", "Avoid this place."]


def review_sentence(rng: random.Random, polarity: str | None = None) -> str:
    pol = polarity or rng.choice(["pos", "neg"])
    words = POS if pol == "pos" else NEG
    tpl = rng.choice(REVIEW_TPL)
    a, a2 = rng.sample(ASPECTS, 2)
    mixed = "but" in tpl
    w2pool = (NEG if pol == "pos" else POS) if mixed else words
    s = tpl.format(a=a, a2=a2, A=a.capitalize(), adv=rng.choice(ADV), w=rng.choice(words), w2=rng.choice(w2pool))
    s = s[0].upper() + s[1:]
    s = s.replace("a excellent", "an excellent").replace("a amazing", "an amazing").replace("a awful", "an awful") \
         .replace("a outstanding", "an outstanding").replace("a ugly", "an ugly").replace("a impressive", "an impressive") \
         .replace("a overpriced", "an overpriced").replace("a unfriendly", "an unfriendly").replace("a annoying", "an annoying") \
         .replace("a unhelpful", "an unhelpful").replace("a absolutely", "an absolutely").replace("a incredibly", "an incredibly")
    return s


def review(rng: random.Random) -> str:
    pol = rng.choice(["pos", "neg"])
    n = rng.choice([1, 1, 2, 2, 3])
    sents = [review_sentence(rng, pol) for _ in range(n)]
    if rng.random() < 0.3:
        sents.append(rng.choice(CLOSERS_POS if pol == "pos" else CLOSERS_NEG))
    return " ".join(sents)


def fill_example(text: str, rng: random.Random) -> dict:
    """Canvas = the sentence; about half the time a middle span is followed by 1-6 [EOS] (hole padding)."""
    if rng.random() < 0.5:
        return {"kind": "fill", "prompt": "", "canvas": [text]}
    cuts = [m.start() for m in re.finditer(r" ", text)]
    if len(cuts) < 2:
        return {"kind": "fill", "prompt": "", "canvas": [text]}
    i, j = sorted(rng.sample(cuts, 2))
    if rng.random() < 0.25:
        j = len(text) - 1 if text[-1] in ".!?" else len(text)  # hole up to the final punctuation
    segs = [s for s in (text[:i], text[i:j], rng.randint(1, 6), text[j:]) if s != ""]
    return {"kind": "fill", "prompt": "", "canvas": segs}


# --------------------------------------------------------------------------------------------------
# Plain text: WordNet glosses and examples
# --------------------------------------------------------------------------------------------------
WORDNET_DIR = os.environ.get("STEERDIFF_WORDNET_DIR", "/usr/share/wordnet")  # the variable: a copy elsewhere (a GPU box)


def wordnet_sentences() -> list[str]:
    """Glosses (as sentences) and quoted usage examples from WordNet's data.* files; [] if not installed."""
    out, seen = [], set()
    for path in sorted(glob.glob(os.path.join(WORDNET_DIR, "data.*"))):
        if path.endswith((".exc",)) or not re.search(r"data\.(noun|verb|adj|adv)$", path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                gloss = line.split("|", 1)[1].strip()
                head = line.split()[4].replace("_", " ")
                for part in gloss.split("; "):
                    part = part.strip()
                    if not part:
                        continue
                    if part.startswith('"'):
                        s = part.strip('"').strip()
                        s = s.rstrip('"')
                    else:
                        s = f"{head[0].upper() + head[1:]}: {part}" if len(part) < 60 and rng_free_bool(part) else part[0].upper() + part[1:]
                        s = s if s.endswith((".", "!", "?")) else s + "."
                    if 12 <= len(s) <= 300 and s not in seen:
                        seen.add(s)
                        out.append(s)
    return out


def rng_free_bool(s: str) -> bool:
    """Deterministic coin from the text itself (so the sentence list does not depend on a seed)."""
    return (sum(map(ord, s)) % 3) == 0


def plain_example(text: str, rng: random.Random) -> dict:
    words = text.split(" ")
    if len(words) > 6 and rng.random() < 0.4:  # continuation: prompt = the beginning
        k = rng.randint(2, len(words) - 3)
        return {"kind": "plain", "prompt": " ".join(words[:k]), "canvas": [" " + " ".join(words[k:])]}
    return {"kind": "plain", "prompt": "", "canvas": [text]}


def copy_example(rng: random.Random, fk: Faker, wn: list[str]) -> dict:
    """A pure copy task (teaches the model to look values up in the prompt): the prompt is a sentence, a
    run of nonce words or a faker line; the canvas is the whole prompt (half the time) or one span of
    1-6 of its words. Nothing but the prompt predicts the canvas."""
    r = rng.random()
    if r < 0.4 and wn:
        text = rng.choice(wn)
    elif r < 0.7:
        text = " ".join(nonce_word(rng) if rng.random() < 0.7 else str(rng.randint(0, 9999)) for _ in range(rng.randint(2, 12)))
    else:
        text = rng.choice([fk.name(), fk.address().replace("\n", ", "), fk.company(), fk.email(), fk.phone_number(),
                           fk.job(), f"{fk.name()} {fk.email()}"])
    words = text.split(" ")
    if rng.random() < 0.5 and len(words) > 1:
        a = rng.randrange(len(words))
        b = min(len(words), a + rng.randint(1, 6))
        return {"kind": "copy", "prompt": text, "canvas": [" ".join(words[a:b])]}
    return {"kind": "copy", "prompt": text, "canvas": [text]}
