"""JSON Schema constraints and ``fill`` with a tiny random-weight model: outputs always validate.

Independent validators: python-jsonschema and pydantic. External data (skipped with a reason when
absent): JSONSchemaBench schemas and nst/JSONTestSuite parsing files under ../shared/testdata.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import jsonschema
import numpy as np
import pytest
from pydantic import BaseModel, Field

from steerdiff.testing import tiny_tokenizer  # noqa: E402

import steerdiff as sd  # noqa: E402
from steerdiff.errors import ConstraintError, UnsupportedSchemaError  # noqa: E402
from steerdiff.fill import canvas_length  # noqa: E402
from steerdiff.vocab import vocab_for  # noqa: E402
from steerdiff_plugins.json_schema import JSONSchema  # noqa: E402
from steerdiff_plugins.schema.compiled import canonical_dumps, schema_to_regex  # noqa: E402
from steerdiff_plugins.automata.byte_level import byte_dfa
from steerdiff_plugins.automata.token_walk import compile_token_dfa  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata"
# every validation of generated output checks formats too (date, date-time, email, uri, ...: the test extra
# installs jsonschema[format-nongpl], without which FormatChecker skips most of them)
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    email: str | None = None
    role: Literal["admin", "user"]


TEXTS = ["Maria Lopez, 34, maria@example.org, admin", "Jack Smith is a 27 year old user", "anonymous"]


def test_fill_pydantic_person_always_validates(model):
    for seed in range(3):
        people = sd.fill(model, Person, TEXTS, seed=seed, temperature=1.0)
        assert len(people) == len(TEXTS)
        for p in people:
            assert isinstance(p, Person)
            jsonschema.validate(p.model_dump(mode="json"), Person.model_json_schema(), format_checker=FORMATS)
            assert 0 <= p.age <= 130 and p.role in ("admin", "user")


def test_fill_greedy_single_text_returns_one_instance(model):
    p = sd.fill(model, Person, TEXTS[0], seed=0)
    assert isinstance(p, Person)


SCHEMAS = [
    {"type": "object", "properties": {
        "id": {"type": "integer", "minimum": -50, "maximum": 1000},
        "price": {"type": "number", "minimum": 0, "maximum": 100},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
        "when": {"type": "string", "format": "date"},
        "ok": {"type": "boolean"},
        "kind": {"enum": ["a", "bb", None, 3]},
    }, "required": ["id", "price", "tags", "ok"]},
    {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
                                      "nested": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
     "required": ["code", "nested"]},
    {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 3}]}, "minItems": 1, "maxItems": 4},
]


@pytest.mark.parametrize("i", range(len(SCHEMAS)))
def test_fill_json_schema_dicts_validate(model, i):
    schema = SCHEMAS[i]
    for seed in range(3):
        values = sd.fill(model, schema, TEXTS[:2], seed=seed, temperature=1.0)
        for v in values:
            jsonschema.validate(v, schema, format_checker=FORMATS)


def test_generate_with_json_schema_sets_value_and_canonical_text(model):
    out = sd.generate(model, "x", length=48, steps=12, constraints=[sd.JSONSchema(SCHEMAS[1])], seed=4, temperature=1.0)
    jsonschema.validate(out.value, SCHEMAS[1], format_checker=FORMATS)
    assert out.text == canonical_dumps(out.value, SCHEMAS[1])


def test_impossible_and_unsupported_schemas_fail_clearly(model):
    with pytest.raises(ConstraintError, match="shortest matching text takes"):
        sd.generate(model, "x", length=6, constraints=[sd.JSONSchema(Person)])
    long_min = sd.JSONSchema({"type": "string", "minLength": 200})  # nested counts: the builder takes it
    assert long_min.check_text is not None and re.fullmatch(long_min.regex(), '"' + "a" * 200 + '"')
    assert not re.fullmatch(long_min.regex(), '"' + "a" * 199 + '"')
    with pytest.raises(UnsupportedSchemaError) as exc:
        sd.JSONSchema({"type": "array", "items": {"type": "object"}, "uniqueItems": True})
    assert exc.value.keyword == "uniqueItems"
    with pytest.raises(ConstraintError, match="invalid"):
        sd.JSONSchema({"type": "object", "properties": {"a": {"type": "strng"}}})


def test_canvas_length_rule(model):
    """What the canvas size must do, not the formula that gives it: a long but typical filled form fits with
    room to spare, the canvas is not wastefully long, and it never runs past the model's positions."""
    c = JSONSchema(Person)
    n = canvas_length(model, c, 10)
    enc = lambda t: len(model.tokenizer.encode(t, add_special_tokens=False))  # noqa: E731
    long_form = '{"name":"Anna Lopez-Garcia","age":130,"email":"anna.lopez.garcia@example.org","role":"admin"}'
    assert n >= enc(long_form) + 2, (n, enc(long_form))  # fits, with padding room
    assert n <= 2 * enc(long_form) + 8, (n, enc(long_form))  # not twice the size of what it holds
    assert n <= model.max_positions - 10
    # a long prompt leaves less room: the canvas shrinks to what is left, never below one position
    room = 7 - len(getattr(model, "suffix_ids", []) or [])  # the model's suffix tokens take positions too
    assert canvas_length(model, c, model.max_positions - 7) == room
    assert canvas_length(model, c, model.max_positions) == 1
    # every row of a fill fits in the model, and the output validates
    p = sd.fill(model, Person, "Anna Lopez-Garcia, 130, anna.lopez.garcia@example.org, admin", seed=0)
    jsonschema.validate(p.model_dump(mode="json"), Person.model_json_schema(), format_checker=FORMATS)


# ------------------------------------------------------------------------------- JSONSchemaBench

def _bench_sample(per_category: int = 2):
    root = DATA / "jsonschemabench" / "schemas"
    if not root.is_dir():
        pytest.skip(f"JSONSchemaBench schemas not found at {root} (see /work/shared/testdata/README.md)")
    out = []
    for f in sorted(root.glob("*.json")):
        items = json.loads(f.read_text())["items"]
        out.extend((f.stem, it["id"], it["schema"]) for it in items[:per_category * 4])
    return out


def test_jsonschemabench_sample_outputs_validate(model):
    vocab = vocab_for(model.tokenizer)
    cap = 96
    chosen, refused = [], 0
    by_cat: dict[str, int] = {}
    for cat, sid, schema in _bench_sample():
        if by_cat.get(cat, 0) >= 1:
            continue
        try:
            if len(schema_to_regex(schema)) > 1500:
                continue  # keep the test fast: big schemas are measured in benchmarks/constraints.py
            c = sd.JSONSchema(schema)
            dfa = compile_token_dfa(c.regex(), vocab, model.fill_id)
        except ConstraintError:
            refused += 1
            continue
        if not 0 <= dfa.min_tokens <= cap // 2 or dfa.n_states > 400:
            continue
        chosen.append((cat, sid, schema, c))
        by_cat[cat] = by_cat.get(cat, 0) + 1
    assert len(chosen) >= 5, f"too few compiled schemas in the sample ({len(chosen)}, {refused} refused)"
    outs = sd.generate(model, ["extract"] * len(chosen), length=cap, steps=8,
                       constraints=[[c] for *_, c in chosen], seed=0, temperature=1.0)
    for (cat, sid, schema, _), r in zip(chosen, outs):
        v = json.loads(r.text)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls(schema, format_checker=cls.FORMAT_CHECKER).validate(v)
        assert r.value == v, (cat, sid)


# ------------------------------------------------------------------------------- nst JSONTestSuite

def _depth(v) -> int:
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def test_any_json_language_against_jsontestsuite():
    root = DATA / "json-test-suite-nst" / "test_parsing"
    if not root.is_dir():
        pytest.skip(f"nst JSONTestSuite not found at {root}")
    depth = 3
    regex = schema_to_regex({}, max_depth=depth, max_items=None)
    bd = byte_dfa(regex)
    tok = tiny_tokenizer("bytelevel")
    dfa = compile_token_dfa(regex, vocab_for(tok), tok.eos_token_id)
    accepted = skipped = 0
    for f in sorted(root.glob("y_*.json")):
        obj = json.loads(f.read_bytes())
        if _depth(obj) > depth:
            skipped += 1
            continue
        try:
            text = canonical_dumps(obj, {}, max_depth=depth, max_items=None)
        except (ValueError, OverflowError):
            skipped += 1  # e.g. a number Python reads as inf
            continue
        assert re.fullmatch(regex, text), f.name
        if "\U0010ffff" in text:
            skipped += 1  # documented narrowing: U+10FFFF is the engine's end marker, never generated
            continue
        assert bd.accepts(text.encode("utf-8")), f.name
        ids = tok.encode(text, add_special_tokens=False)
        cls = dfa.tok2cls[ids]
        assert dfa.completable(cls, np.zeros(len(ids), dtype=bool)), f.name
        accepted += 1
    assert accepted >= 60, (accepted, skipped)
    for f in sorted(root.glob("n_*.json")):
        raw = f.read_bytes()
        assert not bd.accepts(raw), f"{f.name} accepted by the any-JSON language"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert re.fullmatch(regex, text) is None, f.name
