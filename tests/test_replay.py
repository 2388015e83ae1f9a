"""``steerdiff replay``: the page replays every step of a known trace in a real headless browser (Chromium)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest
import torch

import steerdiff as sd
from steerdiff.cli import main
from steerdiff.errors import ConfigError
from steerdiff.replay import canvas_after, final_text, load_trace, page_data, record, render_page


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on PATH (scripts/setup.sh installs Debian's 'chromium' where apt-get is available)")


def dump_dom(path, tmp_path, query: str = "") -> str:
    exe = _chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
           f"file://{path}{query}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return sd.load_model()


def _items(dom: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<li data-step="\d+">(.*?)</li>', dom, re.DOTALL)]


def test_page_in_browser_from_recorded_trace(model, tmp_path):
    trace = tmp_path / "trace.jsonl"
    out = record(model, "Call me at", str(trace), length=10, steps=5, constraints=[sd.Regex(r"[0-9]{3}-[0-9]{4}")])
    steps = load_trace(str(trace))
    assert len(steps) == out.steps and all(s["confidence"] is not None for s in steps)
    data = page_data(steps)
    assert final_text(data).replace("_", "") == out.text or final_text(data) == out.text
    page = tmp_path / "fill.html"
    page.write_text(render_page(data))
    dom = dump_dom(page, tmp_path)
    items = _items(dom)
    assert items == [canvas_after(data, k) for k in range(len(data["steps"]))]  # every step rendered, in order
    assert items[0].count("_") > items[-1].count("_")
    final = html.unescape(re.search(r'<div id="final">(.*?)</div>', dom, re.DOTALL).group(1))
    assert final == final_text(data) and re.fullmatch(r"[0-9]{3}-[0-9]{4}", out.text)
    assert "confidence" in dom and 'class="cell' in dom
    # ?step=0 opens the first step: the committed positions of step 0 are highlighted, the rest masked
    dom0 = dump_dom(page, tmp_path, "?step=0")
    assert dom0.count('cell new') == len(data["steps"][0]["positions"])


def test_cli_replay_of_generate_trace(model, tmp_path, capsys):
    trace, page = tmp_path / "t.jsonl", tmp_path / "fill.html"
    assert main(["generate", "--prompt", "Dear", "--length", "12", "--steps", "4", "--template", "Dear {{name:4}}, thanks.",
                 "--trace", str(trace)]) == 0
    text = capsys.readouterr().out.splitlines()[0]
    assert main(["replay", str(trace), "-o", str(page)]) == 0
    assert re.search(r": 4 steps, \d+ positions", capsys.readouterr().out)
    doc = page.read_text()
    assert "<script src" not in doc and "http" not in doc.split("<script>")[1]  # self-contained
    data = page_data(load_trace(str(trace)), model.tokenizer)
    items = _items(dump_dom(page, tmp_path))
    assert items == [canvas_after(data, k) for k in range(len(data["steps"]))]
    assert len(items) == len(data["steps"]) >= 1
    assert "thanks" in text  # the template's fixed text is frozen before step 0: not in a generate trace


def test_recorded_trace_keeps_fixed_positions(model, tmp_path):
    trace = tmp_path / "t.jsonl"
    out = record(model, "Dear", str(trace), length=12, steps=4, constraints=[sd.Template("Dear {{name:4}}, thanks.")])
    data = page_data(load_trace(str(trace)))
    assert data["steps"][0]["step"] == -1  # the positions fixed before the loop
    assert "_" not in final_text(data) and "thanks" in final_text(data) and "thanks" in out.text


def test_bad_trace_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 0}\n')
    with pytest.raises(ConfigError, match="line 1"):
        load_trace(str(bad))
    assert main(["replay", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "x.html")]) == 2
    assert "trace file" in capsys.readouterr().err


def test_script_cannot_be_closed_by_trace_text():
    data = {"title": "t", "length": 1, "steps": [{"step": 0, "positions": [0], "pieces": ["</script><b>"], "confidence": [0.5],
                                                  "remasked": []}]}
    page = render_page(data)
    assert page.count("</script>") == 1 and json.dumps("x")
