"""Model-quality regression: the shipped steerdiff-tiny must keep filling fields right, not only validly.

Exact constraints make every output valid, so a random-weight checkpoint passes every exactness test; this
one it fails. Data: ``tests/fixtures/quality/texts.jsonl``, 45 texts written by hand for this test, never
produced by the training generator (``steerdiff/train/data.py``): 30 of five record kinds the model was
never trained on (Book, Pet, Flight, Vehicle, HotelBooking) and 15 of its training kinds (Person, Contact,
Order, Event) in forms the generator does not write (chat messages, e-mail signatures, key=value forms,
complaints), with names, codes and dates of their own. Schemas: ``tests/fixtures/quality/schemas.json``
(the training kinds copied from ``schemas()`` when the set was written, frozen).

Scored as ``benchmarks/extraction.py`` scores (field exact match, JSON types exact), ``sd.fill`` as a user
calls it (greedy, the canvas and steps ``fill`` chooses, no extraction: the values are the model's own).
Measured when written (steerdiff-tiny, session-9 checkpoint, CPU, one thread): 52 of 202 fields (25.7%;
trained kinds 39/64, new kinds 13/138); a random-weight RoFormer of the same configuration: 3 of 202 (1.5%).
The threshold is that figure minus a small margin. The model is weak off its training distribution,
and this test says so with a number; it guards against a regression, it does not claim quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "quality"
SHIPPED = ROOT / "steerdiff" / "models" / "steerdiff-tiny" / "config.json"

MEASURED = 52  # fields right of 202, steerdiff-tiny when the set was written
THRESHOLD = 45  # MEASURED minus a margin of 7 fields (3.5 points)

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="the embedded steerdiff-tiny checkpoint is not in this checkout")


def _data():
    schemas = json.loads((FIX / "schemas.json").read_text())
    rows = [json.loads(line) for line in (FIX / "texts.jsonl").read_text().splitlines() if line.strip()]
    return schemas, rows


def fields_right(model) -> tuple[int, int, list]:
    """``(fields right, fields expected, outputs)`` of ``sd.fill`` on every fixture text (one call per schema)."""
    import steerdiff as sd
    from benchmarks.extraction import score

    schemas, rows = _data()
    got: list = [None] * len(rows)
    by_schema: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_schema.setdefault(r["schema_name"], []).append(i)
    for name, idx in by_schema.items():
        values = sd.fill(model, schemas[name], [rows[i]["text"] for i in idx], seed=0)
        for i, v in zip(idx, values):
            got[i] = v
    s = score([r["expected"] for r in rows], got)
    return s["fields_correct"], s["fields"], got


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_fixture_is_consistent():
    """Every expected object validates against its schema (formats checked), every free value is written in
    its text, and the set is as large as promised."""
    schemas, rows = _data()
    assert len(rows) >= 40 and len({r["text"] for r in rows}) == len(rows)
    fc = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for r in rows:
        schema = schemas[r["schema_name"]]
        jsonschema.validate(r["expected"], schema, format_checker=fc)
        for k, v in r["expected"].items():
            spec = schema["properties"][k]
            if isinstance(v, str) and "enum" not in spec and "format" not in spec and "pattern" not in spec:
                assert v in r["text"], (k, v, r["text"])
    assert sum(len(r["expected"]) for r in rows) == 202


@pytest.mark.slow  # about a minute of one CPU core (9 schemas compiled, 45 fills)
def test_shipped_model_keeps_its_field_exact_match(one_thread):
    import steerdiff as sd

    right, total, got = fields_right(sd.load_model())
    assert total == 202
    assert right >= THRESHOLD, (f"steerdiff-tiny fills {right}/{total} fields right on the hand-written set, "
                                f"below the threshold {THRESHOLD} (measured {MEASURED} when the set was written)")


@pytest.mark.slow
def test_random_weight_model_fails_the_threshold(one_thread):
    """The same architecture and tokenizer with fresh random weights: valid outputs, wrong values."""
    import steerdiff as sd

    model = sd.load_model()
    torch.manual_seed(0)
    model.model = type(model.model)(model.model.config).eval()  # same config, random initialisation
    right, total, _ = fields_right(model)
    assert right < THRESHOLD, f"a random-weight model reaches {right}/{total}: the threshold tells nothing apart"
