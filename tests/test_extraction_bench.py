"""The extraction benchmark's core: structure, 100 % validity under the exact constraint, scoring, prefix cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

from benchmarks.extraction import PrefixCachedCausal, check_output, run_model, same_value, score  # noqa: E402
from benchmarks.extraction_data import heldout  # noqa: E402
from steerdiff.testing import tiny_model  # noqa: E402


def test_score_hand_made():
    exp = [{"name": "Robert Smith", "age": 56, "role": "user"}, {"street": "1 Main St", "city": "Paris"}]
    assert score(exp, [dict(e) for e in exp]) == {
        "n": 2, "fields": 5, "fields_correct": 5, "field_exact_match": 1.0, "examples_correct": 2,
        "example_exact_match": 1.0, "extra_fields": 0}
    one = {"name": "Robert Smith", "age": 57, "role": "user"}  # one wrong field of 3
    s = score(exp[:1], [one])
    assert s["field_exact_match"] == pytest.approx(2 / 3) and s["example_exact_match"] == 0.0
    s = score(exp, [one, None])  # an unparsable output scores no field
    assert s["fields_correct"] == 2 and s["field_exact_match"] == pytest.approx(2 / 5) and s["examples_correct"] == 0
    s = score(exp[1:], [{"street": "1 Main St", "city": "Paris", "zip": "75001"}])  # an extra field: fields right, example wrong
    assert s["field_exact_match"] == 1.0 and s["examples_correct"] == 0 and s["extra_fields"] == 1
    s = score(exp[:1], [{"name": "Robert Smith", "role": "user"}])  # a missing field is wrong
    assert s["field_exact_match"] == pytest.approx(2 / 3)


def test_same_value_is_type_exact():
    assert same_value(2, 2.0) and same_value(True, True) and same_value("a", "a")
    assert not same_value(1, True) and not same_value("3", 3) and not same_value(0, False) and not same_value(None, "")


def test_check_output_validates_with_jsonschema():
    schema = heldout(1)[0]["schema"]  # Person
    assert check_output(schema, '{"name":"A","age":3,"role":"user"}') == (True, {"name": "A", "age": 3, "role": "user"})
    assert check_output(schema, '{"name":"A","age":3}')[0] is False  # role is required
    assert check_output(schema, '{"name":"A",')[0] is False
    order = heldout(6)[4]["schema"]  # Order: "date" has "format": "date", which must be checked
    assert order["properties"]["date"]["format"] == "date"
    ok = '{"order_id":"X1","customer":"B","date":"2027-02-11"}'
    assert check_output(order, ok)[0] is True
    assert check_output(order, ok.replace("2027-02-11", "2027-02-30"))[0] is False  # no such day


def test_run_model_tiny_masked():
    model = tiny_model("masked")
    examples = heldout(3)
    out = run_model(model, examples, ks=(8, 16))
    assert set(out["per_k"]) == {8, 16} and set(out["outputs"]) == {8, 16}
    assert set(out["canvas_lengths"]) == {ex["schema_name"] for ex in examples}
    for k, m in out["per_k"].items():
        assert m["n"] == 3 and m["valid"] == 3 and m["valid_share"] == 1.0, m["errors"]  # exact constraint: always valid
        assert m["errors"] == []
        assert m["fields"] == sum(len(ex["expected"]) for ex in examples)
        # the figure recounted here field by field, independently of score()
        vals = [json.loads(t) for t in out["outputs"][k]]
        right = sum(k2 in v and v[k2] == x and isinstance(v[k2], bool) == isinstance(x, bool)
                    for ex, v in zip(examples, vals) for k2, x in ex["expected"].items())
        assert m["fields_correct"] == right and m["field_exact_match"] == pytest.approx(right / m["fields"])
        assert m["forward_passes_per_example"] >= min(m["steps"].values())  # deferred commits may add steps
        assert m["seconds_per_example"] > 0
        for name, L in out["canvas_lengths"].items():
            assert m["steps"][name] == -(-L // k)  # ceil(L / k)
        # the reported figures are the score of the outputs
        vals = [json.loads(t) for t in out["outputs"][k]]
        assert score([ex["expected"] for ex in examples], vals)["field_exact_match"] == m["field_exact_match"]
    # fewer commits per step never costs fewer forward passes
    assert out["per_k"][8]["forward_passes_per_example"] >= out["per_k"][16]["forward_passes_per_example"]


def test_prefix_cached_causal_matches_plain():
    import torch

    plain, cached = tiny_model("causal"), PrefixCachedCausal.wrap(tiny_model("causal"))
    x = torch.randint(6, 300, (2, 20))
    am = torch.ones_like(x)
    am[1, 15:] = 0
    for col in (None, 12, 14, 3):
        if col is not None:
            x = x.clone()
            x[0, col] = 7
        assert torch.allclose(plain.logits(x, am), cached.logits(x, am), atol=1e-5)
    import steerdiff as sd

    prompts = ["Robert Smith is 56", "a longer prompt with more words"]
    a = sd.generate(plain, prompts, length=10, trace=False)
    b = sd.generate(cached, prompts, length=10, trace=False)
    assert [r.text for r in a] == [r.text for r in b] and a[0].forward_passes == b[0].forward_passes == 10
