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
