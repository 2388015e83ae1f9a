"""``steerdiff fill --input records.jsonl --output out.jsonl``: one result per line, errors kept, resume."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

import steerdiff as sd
from steerdiff.batch import done_lines, fill_file
from steerdiff.cli import main
from steerdiff.errors import ConfigError

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 130}},
          "required": ["name", "age"], "additionalProperties": False}
CITY = {"type": "object", "properties": {"city": {"enum": ["Paris", "Lyon", "Nice"]}}, "required": ["city"]}


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return sd.load_model()


def _records(tmp_path):
    lines = [
        json.dumps("Maria Lopez, 34"),
        json.dumps({"text": "Jack Smith is 27", "id": "jack"}),
        "",  # blank lines are skipped, not answered
        "{broken json",
        json.dumps({"text": "She lives in Lyon", "schema": CITY, "id": 7}),
        json.dumps({"text": "Anna, 51"}),
        json.dumps({"nope": 1}),
        json.dumps({"text": "Bob, 40", "schema": {"type": "object", "properties": {"a": {"type": "strnig"}}}}),
    ]
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p, lines


def _check(out_path, lines):
    rows = [json.loads(x) for x in out_path.read_text().splitlines()]
    answered = sorted(r["line"] for r in rows)
    assert answered == [i for i, x in enumerate(lines) if x.strip()]  # every non-blank line exactly once
    by = {r["line"]: r for r in rows}
    for i in (0, 1, 5):
        jsonschema.validate(by[i]["value"], PERSON)
    assert by[1]["id"] == "jack" and by[4]["id"] == 7 and by[4]["value"]["city"] in ("Paris", "Lyon", "Nice")
    assert "not JSON" in by[3]["error"] and "'text'" in by[6]["error"] and "strnig" in by[7]["error"]
    return by


def test_fill_file_and_errors(model, tmp_path):
    inp, lines = _records(tmp_path)
    out = tmp_path / "out.jsonl"
    stats = fill_file(model, str(inp), str(out), schema=PERSON, batch_size=4, progress=False)
    assert stats == {"rows": 7, "skipped": 0, "ok": 4, "errors": 3}
    by = _check(out, lines)
    # batched values equal the same rows filled one by one
    assert by[0]["value"] == sd.fill(model, PERSON, "Maria Lopez, 34")
    with pytest.raises(ConfigError, match="--resume"):
        fill_file(model, str(inp), str(out), schema=PERSON)


def test_resume_after_a_killed_run(model, tmp_path):
    inp, _ = _records(tmp_path)
    full = tmp_path / "full.jsonl"
    fill_file(model, str(inp), str(full), schema=PERSON, batch_size=2, progress=False)
    want = {json.loads(x)["line"]: json.loads(x) for x in full.read_text().splitlines()}
    # a run killed after two lines, in the middle of writing the third
    part = tmp_path / "part.jsonl"
    first = full.read_text().splitlines()[:2]
    part.write_text("\n".join(first) + "\n" + first[0][:10])
    assert done_lines(str(part)) == {json.loads(x)["line"] for x in first}
    stats = fill_file(model, str(inp), str(part), schema=PERSON, batch_size=2, resume=True, progress=False)
    assert stats["skipped"] == 2 and stats["ok"] + stats["errors"] == 5
    got = {json.loads(x)["line"]: json.loads(x) for x in part.read_text().splitlines()}
    assert got == want  # nothing lost, nothing twice, the same values


def test_cli_batch(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps(t) for t in ["Maria Lopez, 34", "Jack Smith is 27"]) + "\n")
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    out = tmp_path / "out.jsonl"
    assert main(["fill", "--schema", str(schema), "--input", str(inp), "--output", str(out)]) == 0
    assert "2 filled, 0 errors" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2
    assert main(["fill", "--schema", str(schema), "--input", str(inp), "--output", str(out)]) == 2  # refuses to overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(["fill", "--schema", str(schema), "--input", str(inp), "--output", str(out), "--resume"]) == 0
    assert "0 filled, 0 errors, 2 already done" in capsys.readouterr().err
    assert main(["fill", "--input", str(tmp_path / "missing.jsonl"), "--output", str(out), "--resume"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_generate_progress_bar_by_default_on_long_batches(model, monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    sd.generate(model, ["a"] * 40, length=4, steps=1)
    assert "steerdiff" in capsys.readouterr().err  # the tqdm bar
    sd.generate(model, ["a"] * 3, length=4, steps=1)
    assert "steerdiff" not in capsys.readouterr().err  # short batches stay quiet
