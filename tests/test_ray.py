"""steerdiff.ray on a local Ray cluster (ray.init(num_cpus=2)): 200 rows, all valid, the same values as
the single-process path (steerdiff.batch.fill_file). Skips when the 'ray' extra is not installed."""

from __future__ import annotations

import json

import jsonschema
import pytest

ray = pytest.importorskip("ray", reason="the 'ray' extra (ray[data]) is not installed: pip install 'steerdiff[ray]'")
pytest.importorskip("ray.data", reason="ray is installed without ray[data]")

from steerdiff.batch import fill_file  # noqa: E402 (after importorskip)
from steerdiff.ray import fill_file_ray  # noqa: E402 (after importorskip)

AGE = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 130}}, "required": ["age"],
       "additionalProperties": False}  # small canvases: 200 rows twice (Ray and one process) stay cheap in CI
CITY = {"type": "object", "properties": {"city": {"enum": ["Paris", "Lyon", "Nice"]}}, "required": ["city"]}
NAMES = ["Maria Lopez", "Jack Smith", "Anna Berg", "Li Wei", "Omar Haddad"]


@pytest.fixture(scope="module")
def cluster():
    for attempt in range(2):  # Ray waits a fixed 30 s for its raylet: on a loaded machine, try once more
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            break
        except Exception:  # "The current node timed out during startup" (re-raised the second time)
            ray.shutdown()
            if attempt:
                raise
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_fill_200_rows_equals_single_process(cluster, tmp_path):
    import torch

    import steerdiff as sd

    lines = []
    for i in range(200):
        if i % 5 == 4:  # rows with their own schema
            lines.append({"id": i, "text": f"{NAMES[i % 5]} moved to {['Paris', 'Lyon', 'Nice'][i % 3]}.", "schema": CITY})
        else:
            lines.append({"id": i, "text": f"{NAMES[i % 5]} is {18 + i % 70} years old."})
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    on_ray, local = tmp_path / "ray.jsonl", tmp_path / "local.jsonl"
    stats = fill_file_ray(str(inp), str(on_ray), schema=AGE, batch_size=20, concurrency=2, threads=1)
    assert stats["ok"] == 200 and stats["errors"] == 0
    torch.set_num_threads(1)
    fill_file(sd.load_model(), str(inp), str(local), schema=AGE, batch_size=20, progress=False)
    got = {json.loads(x)["line"]: json.loads(x) for x in on_ray.read_text().splitlines()}
    want = {json.loads(x)["line"]: json.loads(x) for x in local.read_text().splitlines()}
    assert sorted(got) == list(range(200)) and got == want
    for i, rec in enumerate(lines):
        jsonschema.validate(got[i]["value"], rec.get("schema", AGE))
        assert got[i]["id"] == i


def _cli(*args, timeout=120):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "steerdiff.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_fill_ray_address_resume_equals_single_process(cluster, tmp_path, capsys):
    """``steerdiff fill --input --output --ray ADDRESS`` in a separate process against the running local cluster:
    every line answered once (bad records get their error), values equal ``steerdiff fill --input`` without
    Ray, and ``--resume`` after a cut-short output answers only the missing lines."""
    from steerdiff.cli import main

    gcs = ray.get_runtime_context().gcs_address
    lines = [json.dumps({"text": f"{n} is {20 + i} years old.", "id": i}) for i, n in enumerate(NAMES)]
    lines += ["{broken json", json.dumps({"text": "She moved to Nice.", "schema": CITY, "id": "c"}), json.dumps({"nope": 1})]
    inp, schema = tmp_path / "in.jsonl", tmp_path / "age.json"
    inp.write_text("\n".join(lines) + "\n")
    schema.write_text(json.dumps(AGE))
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    base = ["fill", "--schema", str(schema), "--input", str(inp), "--batch-size", "4"]
    assert main([*base, "--output", str(local)]) == 0  # one process, in this one
    r = _cli(*base, "--output", str(on_ray), "--ray", gcs)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "6 filled, 2 errors, 0 already done" in r.stderr, r.stderr[-2000:]
    want = {json.loads(x)["line"]: json.loads(x) for x in local.read_text().splitlines()}
    got = {json.loads(x)["line"]: json.loads(x) for x in on_ray.read_text().splitlines()}
    assert got == want and sorted(got) == list(range(len(lines)))
    assert "not JSON" in got[5]["error"] and "'text'" in got[7]["error"] and got[6]["value"]["city"] in ("Paris", "Lyon", "Nice")
    for i in range(5):
        jsonschema.validate(got[i]["value"], AGE)
        assert got[i]["id"] == i
    # cut the output short (as if the job was killed) and resume on the cluster: only the missing lines run
    kept = on_ray.read_text().splitlines()[:3]
    on_ray.write_text("\n".join(kept) + "\n")
    assert main([*base, "--output", str(on_ray), "--ray", gcs]) != 0  # an existing output is never overwritten
    assert "--resume" in capsys.readouterr().err
    r = _cli(*base, "--output", str(on_ray), "--ray", gcs, "--resume")
    assert r.returncode == 0 and "3 already done" in r.stderr, r.stderr[-2000:]
    got = {json.loads(x)["line"]: json.loads(x) for x in on_ray.read_text().splitlines()}
    assert got == want and len(on_ray.read_text().splitlines()) == len(lines)
