"""Every CLI error is one line on stderr, exit code 2, no traceback; arguments and files are checked
before the model loads; a closed pipe ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import steerdiff.validate
from steerdiff import cli

ROOT = Path(__file__).resolve().parent.parent
PERSON = str(ROOT / "schemas" / "person.json")


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model is a test failure: these errors must come before it."""
    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the bad argument was reported")

    monkeypatch.setattr(steerdiff.validate, "load_model", refuse)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "latin1.json").write_bytes(b'{"title": "caf\xe9"}')
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "adir").mkdir()
    locked = tmp_path / "locked.lark"
    locked.write_text('start: "a"\n')
    locked.chmod(0)
    (tmp_path / "secret.lark").write_text('FOO: "x"\n')
    (tmp_path / "imports.lark").write_text("start: FOO\n%import .secret.FOO\n")
    (tmp_path / "circular.json").write_text(json.dumps(
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}))
    return tmp_path


CASES = [
    # (argv, words the one line must hold)
    (["generate", "--temperature", "nan"], "argument --temperature: expected a finite number"),
    (["generate", "--temperature", "-1"], "argument --temperature"),
    (["generate", "--temperature", "inf"], "argument --temperature"),
    (["generate", "--length", "0"], "argument --length"),
    (["generate", "--length", "ten"], "argument --length: expected an integer"),
    (["generate", "--steps", "20", "--length", "8"], "steps must be in [1, --length=8]"),
    (["generate", "--seed", str(2**64)], "argument --seed"),
    (["generate", "--schedule", "zigzag"], "argument --schedule: invalid choice: 'zigzag'"),
    (["generate", "--threshold", "1.5", "--schedule", "threshold"], "argument --threshold"),
    (["generate", "--device", "gpu"], "--device: device 'gpu' is not a torch device"),
    (["generate", "--device", "nonsense"], "--device: device 'nonsense'"),
    (["generate", "--model", "/nonexistent/dir"], "--model '/nonexistent/dir' does not exist"),
    (["generate", "--schema", "{d}/nosuch.json"], "--schema '{d}/nosuch.json': no such file"),
    (["generate", "--schema", "{d}/adir"], "is a directory, not a file"),
    (["generate", "--schema", "{d}/latin1.json"], "is not UTF-8 text"),
    (["generate", "--schema", "{d}/bad.json"], "--schema '{d}/bad.json' is not JSON"),
    (["generate", "--grammar", "{d}/imports.lark"], "relative import '%import .secret.FOO' is refused"),
    (["generate", "--template", "no holes here"], "--template 'no holes here' is neither a file nor a template"),
    (["generate", "--template", "A {{x:999999999}}"], "hole 'x' has size 999999999"),
    (["generate", "--constraint", "{nope"], "--constraint is not JSON"),
    (["generate", "--constraint", '{"type": "nope"}'], "unknown constraint type 'nope'"),
    (["generate", "--regex", "(a"], "regex"),
    (["fill", "--schema", "{d}/nosuch.json", "text"], "--schema '{d}/nosuch.json': no such file"),
    (["fill", "--schema", "{d}/latin1.json", "text"], "is not UTF-8 text"),
    (["fill", "--schema", "{d}/circular.json", "text"], "circular reference #/$defs/a -> #/$defs/b -> #/$defs/a"),
    (["fill", "--schema", PERSON, "--device", "gpu", "text"], "--device"),
    (["fill", "--schema", PERSON], "fill needs --schema FILE and a TEXT"),
    (["rewrite", "--template", "nosuch.txt"], "--template 'nosuch.txt' is neither a file nor a template"),
    (["rewrite", "--template", "a [[b]]", "--guide", "sentiment"], "--guide expects NAME=TARGET"),
    (["rewrite", "--template", "a [[b]]", "--guide", "mood=happy"], "unknown classifier 'mood'"),
    (["rewrite", "--template", "a [[b]]", "--guide", "cfg=nan"], "cfg=SCALE needs a finite number"),
    (["rewrite", "--template", "a [[b", "--guide", "cfg=1"], "unbalanced brackets"),
    (["demo", "--device", "gpu"], "--device"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("argv,words", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_cli_error_is_one_line_exit_2_before_the_model(argv, words, files, no_model, capsys):
    argv = [a.replace("{d}", str(files)) for a in argv]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert words.replace("{d}", str(files)) in err, err
    assert "Traceback" not in err and out == ""


def test_batch_fill_and_ray_workers_check_the_device(files, capsys):
    """The batch path of ``fill`` and the Ray workers load the model through the checked
    ``steerdiff.validate.load_model``: a bad device is a named ConfigError, not torch's RuntimeError."""
    (files / "in.jsonl").write_text('"Ann is 30"\n')
    argv = ["fill", "--schema", PERSON, "--input", str(files / "in.jsonl"), "--output", str(files / "out.jsonl"),
            "--device", "gpu"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "load_model: device 'gpu' is not a torch device" in err and "unexpected" not in err, err
    from steerdiff.errors import ConfigError
    from steerdiff.ray import FillBatch

    with pytest.raises(ConfigError, match="load_model: device 'gpu' is not a torch device"):
        FillBatch(device="gpu")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_file_is_one_line(files, no_model, capsys):
    assert cli.main(["generate", "--grammar", str(files / "locked.lark")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_an_unexpected_failure_is_still_one_line(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("simulated bug\nsecond line")

    monkeypatch.setattr(cli, "cmd_plugins", boom)
    assert cli.main(["plugins"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError: simulated bug" in err and "STEERDIFF_DEBUG" in err


def test_every_option_has_help_text_and_shows_its_default():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, f"steerdiff {name} {action.option_strings or action.dest}: no help text"
        text = p.format_help()
        if name == "generate":
            assert "(default: 64)" in text and "{blocks,entropy," in text
    assert "threads" in sub.choices["fill"].format_help()


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "steerdiff.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, **kw)


def test_missing_schema_file_fails_fast_without_loading_the_model():
    """The subprocess imports steerdiff (torch) but never the model: no transformers import."""
    code = ("import sys; from steerdiff import cli; rc = cli.main(['fill', '--schema', 'nosuch.json', 'x']); "
            "print('transformers' in sys.modules, rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.stdout.split() == ["False", "2"], proc.stdout + proc.stderr
    assert proc.stderr.strip() == "steerdiff: error: --schema 'nosuch.json': no such file"


SHIPPED = ROOT / "steerdiff" / "models" / "steerdiff-tiny" / "config.json"


@pytest.mark.skipif(not SHIPPED.exists(), reason="the embedded steerdiff-tiny checkpoint is not in this checkout")
def test_closed_pipe_ends_quietly():
    """`steerdiff fill ... | head -c 1`: no BrokenPipeError traceback, exit 0."""
    cmd = (f"{sys.executable} -m steerdiff.cli fill --schema schemas/person.json "
           "'Maria Lopez, 34, maria@example.org, signs in as a user.' | head -c 1; echo \" rc=${PIPESTATUS[0]}\"")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.stdout == "{ rc=0\n", proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
