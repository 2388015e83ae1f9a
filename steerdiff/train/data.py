"""Training data for steerdiff-tiny, built locally and reproducibly from a seed.

Three parts (mixed about 60 / 20 / 20):

* extraction: faker records of six kinds (``Person``, ``Contact``, ``Address``, ``Product``, ``Order``,
  ``Event``) written as English text in many phrasings; prompt = the text, target = compact JSON
  (``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``) with keys in schema order.
  Optional fields that the text does not mention are ABSENT from the JSON (never null).
* template fill: English sentences (restaurant/hotel/shop reviews, positive and negative, plus neutral
  sentences) with an empty prompt; the canvas is the sentence, and in about half of them a span in the
  middle is followed by a run of 1-6 ``[EOS]`` before the text continues (a hole padded inside).
* plain text: WordNet glosses and usage examples (Debian ``wordnet-base``), when installed.

An example is ``{"kind": ..., "prompt": str, "canvas": [str | int, ...]}``: canvas segments are text
(tokenized one by one and concatenated) or an int ``k`` meaning ``k`` ``[EOS]`` tokens.

The record generators and JSON Schemas are shared with ``benchmarks/extraction_data.py``, which writes
the same records with its own, different sentence templates.
"""
from __future__ import annotations

import random

from faker import Faker

# The parts, re-exported: ``data`` is the one name the trainer, tests and benchmarks import.
from .records import (KINDS, MONTHS, _SCHEMAS, make_record, ordered, say_date, say_money, say_time,  # noqa: F401
                      schemas, to_json)
from .templates import (TRAIN, extraction_example, nonce_record, nonce_word, render_train, surface,  # noqa: F401
                        with_context)
from .text import (ASPECTS, NEG, POS, REVIEW_TPL, WORDNET_DIR, copy_example, fill_example, plain_example,  # noqa: F401
                   review, review_sentence, wordnet_sentences)

# --------------------------------------------------------------------------------------------------
# The mix
# --------------------------------------------------------------------------------------------------
def build_dataset(n: int = 200_000, seed: int = 0, mix=(0.6, 0.2, 0.2), nonce: float = 0.0,
                  copy: float = 0.0, context: float = 0.0, data: str = "records") -> dict:
    """``n`` examples: extraction / fill / plain in proportions ``mix``; reproducible from ``seed``.
    A share ``nonce`` of the extraction records get made-up names and places (``nonce_record``); a share
    ``copy`` of all examples are pure copy tasks (``copy_example``), taken out of the extraction share; a
    share ``context`` of the extraction texts have unrelated WordNet words around them (``with_context``).

    Returns ``{"examples": [...], "sizes": {...}}``. When WordNet is not installed its share goes to fill.
    ``data="open"``: open-ended extraction tasks instead (``tasks.build_open_dataset``; nonce/copy/context unused).
    """
    if data == "open":
        from .tasks import build_open_dataset

        return build_open_dataset(n, seed, mix=mix)
    if data != "records":
        raise ValueError(f"unknown data {data!r}: choose 'records' (six fixed record kinds) or 'open' (open-ended tasks)")
    rng = random.Random(seed)
    fk = Faker("en_US")
    fk.seed_instance(seed)
    wn = wordnet_sentences()
    n_ext = int(n * mix[0])
    n_plain = int(n * mix[2]) if wn else 0
    n_fill = n - n_ext - n_plain
    n_copy = int(n * copy)
    n_ext -= n_copy
    ex = [extraction_example(fk, rng, nonce=nonce, context=context, wn=wn) for _ in range(n_ext)]
    ex += [copy_example(rng, fk, wn) for _ in range(n_copy)]
    # fill: mostly reviews; a fifth neutral WordNet sentences (also seen as plain text)
    fill = []
    for _ in range(n_fill):
        text = review(rng) if (not wn or rng.random() < 0.8) else rng.choice(wn)
        fill.append(fill_example(text, rng))
    plain = [plain_example(s, rng) for s in (rng.sample(wn, min(n_plain, len(wn))) if wn else [])]
    while len(plain) < n_plain:
        plain.append(plain_example(rng.choice(wn), rng))
    allx = ex + fill + plain
    rng.shuffle(allx)
    sizes = {"extraction": n_ext, "copy": n_copy, "fill": len(fill), "plain": len(plain), "total": len(allx),
             "wordnet_sentences_available": len(wn),
             "chars": sum(len(e["prompt"]) + sum(len(s) for s in e["canvas"] if isinstance(s, str)) for e in allx)}
    return {"examples": allx, "sizes": sizes}


def eval_set(n: int = 16, seed: int = 999) -> list[dict]:
    """Extraction examples from a faker seed not used in training (same templates): ``prompt``, ``expected``."""
    rng = random.Random(seed)
    fk = Faker("en_US")
    fk.seed_instance(seed)
    out = []
    for i in range(n):
        e = extraction_example(fk, rng, KINDS[i % len(KINDS)])
        out.append({"schema_name": e["schema"], "text": e["prompt"], "expected_json": e["canvas"][0]})
    return out


def texts_for_tokenizer(examples: list[dict]):
    for e in examples:
        if e["prompt"]:
            yield e["prompt"]
        for s in e["canvas"]:
            if isinstance(s, str):
                yield s
