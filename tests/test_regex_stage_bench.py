"""benchmarks.regex_stage compares a base revision's regexes with the working tree's, schema by schema: a run over
a few schemas against HEAD reports them identical (and times both sides); an id outside the set is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.regex_stage import DATA, _schemas, _slim

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata is not checked out")


def test_run_against_head_is_identical(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("o66589\nkb_81_Normalized\n")
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.regex_stage", "--base", "HEAD", "--ids", str(ids),
                        "--repeat", "2", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(out.read_text())
    assert d["summary"]["schemas"] == len(d["rows"]) >= 2 and d["summary"]["identical"] == len(d["rows"])
    assert all(row["base"]["sha"] == row["tree"]["sha"] and row["tree"]["ms"] > 0 for row in d["rows"])


def test_unknown_id_is_named(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("no-such-schema\n")
    r = subprocess.run([sys.executable, "-m", "benchmarks.regex_stage", "--ids", str(ids)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "no-such-schema" in r.stderr


def test_slim_row():
    side = {"sha": "a" * 64, "notes": ["n"], "ms": 1.0, "error": "x" * 1000}
    s = _slim(side)
    assert "notes" not in s and len(s["sha"]) == 16 and len(s["error"]) == 305 and s["ms"] == 1.0
    assert len(_schemas()) > 900
