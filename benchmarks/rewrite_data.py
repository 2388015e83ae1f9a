"""Held-out negative review sentences with marked ``[[spans]]`` for the rewrite benchmark.

Restaurant, hotel, product, airline and app reviews written from sentence frames and word lists of
this file only: none of the frames below is a training template of steerdiff-tiny
(``steerdiff/train/data.py`` REVIEW_TPL), and the negative words are VADER-negative ones, so every
source sentence scores below zero. The spans mark the negative part to rewrite; the rest (subject,
context, punctuation) is fixed text that must come back byte-identical.

    heldout(n=120, seed=2024) -> [{"id", "domain", "template", "source"}, ...]

``template`` holds the ``[[span]]`` marks; ``source`` is the same sentence without them.
"""

from __future__ import annotations

import random

NEG_ADJ = ["horrible", "awful", "terrible", "disgusting", "broken", "useless", "rude", "disappointing",
           "miserable", "pathetic", "worthless", "nasty", "dreadful", "gross", "annoying", "painful", "dirty",
           "lousy", "boring", "unpleasant", "poor", "bad", "unacceptable", "ridiculous", "frustrating", "rotten"]
NEG_VP = ["stopped working after a week", "broke on the first day", "failed twice", "was a total disaster",
          "made me angry", "was a complete waste of money", "ruined our evening", "caused endless problems",
          "was the worst purchase I ever made", "left me frustrated", "damaged my table", "was a scam"]
NEG_STAFF = ["ignored us rudely", "was rude to everyone", "seemed angry and hostile", "lost our booking",
             "was careless and incompetent", "kept us waiting in anger", "mocked our complaint"]

DOMAINS: dict[str, dict[str, list[str]]] = {
    "restaurant": {
        "thing": ["the lasagna", "my burger", "the fish tacos", "the curry", "our dumplings", "the risotto",
                  "the chocolate cake", "the ramen", "the tasting menu", "the house wine"],
        "frames": [
            "We ordered {thing} and it was [[{adj} and {adj2}]].",
            "Frankly, {thing} tasted [[{adj}]], and the waiter [[{staff}]].",
            "I had high hopes, but {thing} [[{vp}]].",
            "Dinner for two cost a fortune and {thing} was [[{adj}]].",
        ],
    },
    "hotel": {
        "thing": ["the bathroom", "our suite", "the shower", "the pillow", "the carpet", "the balcony",
                  "the breakfast buffet", "the elevator", "the air conditioning", "the front desk"],
        "frames": [
            "On arrival, {thing} was [[{adj} and {adj2}]].",
            "We paid for a sea view, yet {thing} [[{vp}]].",
            "The receptionist [[{staff}]] when we mentioned {thing}.",
            "Three nights here and {thing} stayed [[{adj}]] the whole time.",
        ],
    },
    "product": {
        "thing": ["this blender", "the vacuum cleaner", "my new phone case", "the office chair", "this kettle",
                  "the headphones", "the garden hose", "this backpack", "the desk lamp", "the coffee grinder"],
        "frames": [
            "After two weeks {thing} [[{vp}]].",
            "I regret buying {thing}: it is [[{adj} and {adj2}]].",
            "Out of the box, {thing} looked [[{adj}]] (see photos).",
            "Customer support [[{staff}]] when {thing} [[{vp}]].",
        ],
    },
    "airline": {
        "thing": ["the flight to Lisbon", "our connection in Denver", "the overnight flight", "the shuttle to Rome"],
        "frames": [
            "Boarding for {thing} was [[{adj}]], and the crew [[{staff}]].",
            "The seats on {thing} were [[{adj} and {adj2}]].",
            "Sadly, {thing} [[{vp}]].",
        ],
    },
    "app": {
        "thing": ["the latest update", "the booking app", "the new checkout page", "version 2.3"],
        "frames": [
            "Since {thing}, the app feels [[{adj} and {adj2}]].",
            "Five minutes with {thing} and it [[{vp}]].",
            "Their service desk [[{staff}]] about {thing}.",
        ],
    },
}


def heldout(n: int = 120, seed: int = 2024) -> list[dict]:
    """``n`` distinct sentences (round-robin over domains), reproducible from ``seed``."""
    rng = random.Random(seed)
    names = list(DOMAINS)
    out, seen = [], set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n:
            raise RuntimeError(f"could not draw {n} distinct sentences")
        dom = names[len(out) % len(names)]
        d = DOMAINS[dom]
        adj, adj2 = rng.sample(NEG_ADJ, 2)
        tpl = rng.choice(d["frames"]).format(thing=rng.choice(d["thing"]), adj=adj, adj2=adj2,
                                             vp=rng.choice(NEG_VP), staff=rng.choice(NEG_STAFF))
        tpl = tpl[0].upper() + tpl[1:]
        if tpl in seen:
            continue
        seen.add(tpl)
        out.append({"id": len(out), "domain": dom, "template": tpl, "source": tpl.replace("[[", "").replace("]]", "")})
    return out


if __name__ == "__main__":
    for ex in heldout(12):
        print(ex["domain"], "|", ex["template"])
