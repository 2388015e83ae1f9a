"""The README's plugin example works as written; the command line works end to end."""

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import steerdiff as sd
from steerdiff.testing import tiny_model

ROOT = Path(__file__).resolve().parent.parent


def test_readme_plugin_example_runs():
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(# my_plugin\.py\n.*?)```", readme, re.S).group(1)
    mod = types.ModuleType("my_plugin")
    exec(compile(code, "README:my_plugin", "exec"), mod.__dict__)
    name = sd.register_plugin(mod, "readme_no_digits")
    try:
        model = tiny_model("masked")
        vocab = sd.vocab.vocab_for(model.tokenizer)
        for seed in range(3):
            out = sd.generate(model, "1 2 3", length=16, steps=4, constraints=[{"type": "no_digits"}], seed=seed, temperature=2.0)
            assert not re.search(r"\d", out.text)
            assert all(not any(c in b"0123456789" for c in vocab.token_bytes[t]) for t in out.token_ids)
    finally:
        sd.unregister_plugin(name)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tinybert")
    m = tiny_model("masked")
    m.model.save_pretrained(d)
    m.tokenizer.save_pretrained(d)
    return d


def _cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "steerdiff.cli", *args], capture_output=True, text=True, timeout=180)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_version_and_plugins():
    assert _cli("--version").stdout.strip() == f"steerdiff {sd.__version__}"
    out = _cli("plugins").stdout
    assert "template" in out and "steerdiff_plugins.template" in out


def test_generate_with_template_trace_and_watch(model_dir, tmp_path):
    trace = tmp_path / "trace.jsonl"
    proc = _cli("generate", "--model", str(model_dir), "--prompt", "hi", "--length", "24", "--steps", "4",
                "--template", "Dear {{name:4}}, ok {{when:4}}.", "--trace", str(trace), "--watch")
    text = proc.stdout.strip()
    assert text.startswith("Dear ") and ", ok " in text and text.endswith(".")
    assert "4 steps, 4 forward passes" in proc.stderr
    assert proc.stderr.count("step ") >= 4 and "░" in proc.stderr
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert len(lines) == 4


def test_cli_errors_are_one_line(model_dir):
    proc = _cli("generate", "--model", str(model_dir), "--length", "8", "--steps", "20", check=False)
    assert proc.returncode == 2 and "steerdiff: error: steps must be" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("generate", "--model", "/nonexistent/dir", check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = _cli("generate", "--model", str(model_dir), "--schedule", "zigzag", check=False)
    assert proc.returncode == 2 and "invalid choice: 'zigzag'" in proc.stderr  # --schedule lists its choices


SHIPPED = ROOT / "steerdiff" / "models" / "steerdiff-tiny" / "config.json"


@pytest.mark.skipif(not SHIPPED.exists(), reason="the embedded steerdiff-tiny checkpoint is not in this checkout")
def test_shipped_model_fills_a_pydantic_form():
    from steerdiff.demo import PARAGRAPH, Person

    model = sd.load_model()
    assert model.family == "masked"
    person = sd.fill(model, Person, PARAGRAPH)
    assert isinstance(person, Person)
    import jsonschema  # an independent validator, formats checked (not pydantic on its own dump)

    jsonschema.validate(person.model_dump(mode="json"), Person.model_json_schema(),
                        format_checker=jsonschema.FormatChecker())
    batch = sd.fill(model, Person, [PARAGRAPH, "John Smith, 52, signs in as an admin."])
    assert len(batch) == 2 and all(isinstance(p, Person) for p in batch)


@pytest.mark.skipif(not SHIPPED.exists(), reason="the embedded steerdiff-tiny checkpoint is not in this checkout")
def test_demo_command_runs():
    proc = _cli("demo")
    assert "result: Person(" in proc.stdout and "forward passes" in proc.stdout
    assert "The food was " in proc.stdout and " and the staff " in proc.stdout


def test_form_and_template_examples_run_on_the_shipped_model():
    """examples/fill_form.py and examples/template_and_grammar.py as a user runs them: valid forms, the
    template's fixed text and slot constraints kept, a grammar output lark parses."""
    import jsonschema
    import lark

    run = lambda name: subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True,  # noqa: E731
                                      text=True, timeout=300, check=True).stdout.splitlines()
    *people, event = run("fill_form.py")
    assert all(p.startswith("Person(name=") for p in people)
    jsonschema.validate(json.loads(event), json.loads((ROOT / "schemas" / "event.json").read_text()),
                        format_checker=jsonschema.FormatChecker())
    text, fields, calc = run("template_and_grammar.py")
    assert text.startswith("Dear ") and ", your order " in text and " ships on " in text and text.endswith(".")
    f = eval(fields)  # the printed dict of hole values
    assert re.fullmatch(r"#[0-9]{5}", f["id"]) and re.fullmatch(r"2026-[01][0-9]-[0-3][0-9]", f["date"])
    lark.Lark((ROOT / "schemas" / "calc.lark").read_text(), parser="lalr").parse(calc.rsplit(" (", 1)[0])


def test_fill_extract_from_the_command_line(model_dir):
    from steerdiff.extractive import candidate_numbers, candidate_spans

    text = "Maria Lopez, 34, maria@example.org, signs in as a user."
    proc = _cli("fill", "--model", str(model_dir), "--extract", "--schema", str(ROOT / "schemas" / "person.json"), text)
    value = json.loads(proc.stdout)
    schema = json.loads((ROOT / "schemas" / "person.json").read_text())
    import jsonschema

    jsonschema.validate(value, schema)
    assert value["name"] in candidate_spans(text) and value["age"] in candidate_numbers(text)


def _readme_shell_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"From the shell:\n\n```bash\n(.*?)```", readme, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip().startswith("steerdiff")]


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.exists(), reason="the embedded steerdiff-tiny checkpoint is not in this checkout")
def test_readme_shell_commands_run_as_written():
    """Every command of the README's "From the shell" block, run by bash from the repository root with the
    environment's ``steerdiff`` script first on PATH: exit 0, no traceback, and the output each one promises."""
    import jsonschema
    import lark

    commands = _readme_shell_commands()
    assert len(commands) >= 8 and any("rewrite --template examples/review.txt" in c for c in commands)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    person = json.loads((ROOT / "schemas" / "person.json").read_text())
    for cmd in commands:
        proc = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (cmd, proc.stderr[-2000:])
        out = proc.stdout.strip()
        if "--template \"Dear" in cmd:
            assert out.startswith("Dear ") and ", your order ships " in out and out.endswith("."), out
            m = re.search(r"\[(\d+) steps of the 16 asked: only (\d+) canvas positions were left to fill", proc.stderr)
            assert m and m.group(1) == m.group(2), proc.stderr  # fewer steps than asked, and why
        elif "--grammar" in cmd:
            lark.Lark((ROOT / "schemas" / "calc.lark").read_text(), parser="lalr").parse(out)
        elif cmd.startswith("steerdiff fill"):
            jsonschema.validate(json.loads(out), person, format_checker=jsonschema.FormatChecker())
        elif "review.txt" in cmd:
            assert out.startswith("The food was ") and " and the staff " in out and out.endswith("."), out
        elif cmd.startswith("steerdiff rewrite"):
            assert out.startswith("The room was ") and out.endswith("."), out
        elif cmd == "steerdiff plugins":
            assert "steerdiff_plugins.template (built-in)" in out
        elif cmd == "steerdiff --version":
            assert out == f"steerdiff {sd.__version__}"


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.exists(), reason="the embedded steerdiff-tiny checkpoint is not in this checkout")
def test_guidance_examples_print_what_their_docstrings_claim():
    """examples/guidance_*.py print measured effects; each claim of their docstrings holds for what they print."""
    def run(name):
        return subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True,
                              timeout=900, check=True, cwd=ROOT).stdout

    out = run("guidance_gradient.py")  # claim: no real effect on steerdiff-tiny
    m = re.search(r"mean VADER compound: before ([-+.\d]+), after ([-+.\d]+)", out)
    assert m and abs(float(m.group(2)) - float(m.group(1))) < 0.25, out
    out = run("guidance_reranker.py")  # claim: the VADER rerank raises the score; politeness barely moves
    means = dict(re.findall(r"^(baseline|VADER rerank|polite rerank)\s+mean VADER compound ([-+.\d]+)", out, re.M))
    assert float(means["VADER rerank"]) > float(means["baseline"]), out
    assert re.search(r"polite rerank equals the baseline on \d of 4 sentences", out), out
    out = run("guidance_cfg.py")  # claim: it prints the copied share and CFG's extra forward passes
    m = re.search(r"forward passes per batch: plain (\d+), cfg (\d+)", out)
    assert m and int(m.group(2)) == 2 * int(m.group(1)), out
