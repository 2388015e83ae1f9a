"""The ``steerdiff`` command: generate, fill, rewrite, demo, plugins, --version.

Every error is one line on stderr (``steerdiff: error: ...``) with exit code 2: argparse's own errors,
steerdiff's errors, unreadable files. Arguments and files are checked before the model is loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from . import __version__
from .errors import ConfigError, SteerdiffError

# ---- validation helpers (argument types, files, threads): everything here runs before a model loads

# torch CPU threads for the CLI (see README, "Threads": measured on the 2-core development machine);
# --threads N or STEERDIFF_THREADS=N changes it, 0 keeps torch's own default.
DEFAULT_THREADS = 1


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) with exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_in(lo: int, hi: int | None = None):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi if hi is not None else 'inf'}], got {v}")
        return v

    parse.__name__ = "integer"
    return parse


def _finite_float(lo: float = 0.0, hi: float | None = None, lo_open: bool = False):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v) or (v <= lo if lo_open else v < lo) or (hi is not None and v > hi):
            rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}]"
            raise argparse.ArgumentTypeError(f"expected a finite number in {rng}, got {text!r}")
        return v

    parse.__name__ = "number"
    return parse


def _text_or_file(value: str, option: str, marker: str) -> str:
    """``--template``: the template itself, or a file holding it (a value naming an existing path is read)."""
    from .validate import read_text_file

    if os.path.exists(value):
        return read_text_file(value, option)
    if marker not in value:
        raise ConfigError(f"{option} {value!r} is neither a file nor a template (a template marks its holes with {marker})")
    return value


def _json(text: str, option: str, path: str | None = None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f" {path!r}" if path else ""
        raise ConfigError(f"{option}{where} is not JSON: {exc}") from None


def _check_model_args(args) -> None:
    """--model and --device, before anything loads."""
    from .validate import check_device

    check_device(args.device, who="--device")
    if args.model is not None and not os.path.isdir(args.model):
        why = "does not exist" if not os.path.exists(args.model) else "is not a directory"
        raise ConfigError(f"--model {args.model!r} {why} (pass a local model directory)")


def _set_threads(args) -> None:
    n = getattr(args, "threads", None)
    if n is None:
        env = os.environ.get("STEERDIFF_THREADS", "").strip()
        try:
            n = int(env) if env else DEFAULT_THREADS
        except ValueError:
            raise ConfigError(f"STEERDIFF_THREADS must be an integer, got {env!r}") from None
    if n > 0:
        import torch

        torch.set_num_threads(n)


def _model(args):
    from .validate import load_model

    _set_threads(args)
    return load_model(args.model, device=args.device, trust_remote_code=args.trust_remote_code)


def _add_model_args(p: argparse.ArgumentParser, seed: bool = True) -> None:
    from .validate import MAX_SEED

    p.add_argument("--model", default=None, metavar="DIR", help="local model directory (default: the embedded steerdiff-tiny)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own modelling code")
    p.add_argument("--threads", type=_int_in(0, 1024), default=None, metavar="N",
                   help=f"torch CPU threads (default: $STEERDIFF_THREADS, else {DEFAULT_THREADS}; 0: torch's default)")
    if seed:
        p.add_argument("--seed", type=_int_in(0, MAX_SEED - 2**32), default=0,
                       help="random seed; the same seed gives the same output")


# ---- commands


def cmd_generate(args) -> int:
    from .loop import generate
    from .plugins import make_constraint
    from .validate import read_text_file

    _check_model_args(args)
    if args.steps is not None and args.steps > args.length:
        raise ConfigError(f"steps must be in [1, --length={args.length}] (a step fills at least one position), got --steps {args.steps}")
    constraints = []
    if args.template:
        constraints.append(make_constraint({"type": "template", "text": _text_or_file(args.template, "--template", "{{")}))
    if args.regex:
        constraints.append(make_constraint({"type": "regex", "pattern": args.regex}))
    if args.grammar:
        constraints.append(make_constraint({"type": "grammar", "grammar": read_text_file(args.grammar, "--grammar"),
                                            "start": args.start}))
    if args.schema:
        schema = _json(read_text_file(args.schema, "--schema"), "--schema", args.schema)
        constraints.append(make_constraint({"type": "json_schema", "schema": schema}))
    for spec in args.constraint or []:
        constraints.append(make_constraint(_json(spec, "--constraint")))
    model = _model(args)
    out = generate(model, args.prompt, length=args.length, steps=args.steps, schedule=args.schedule,
                   temperature=args.temperature, constraints=constraints, seed=args.seed, watch=args.watch,
                   threshold=args.threshold, block_length=args.block_length)
    if args.trace:
        try:
            out.trace.to_jsonl(args.trace)
        except OSError as exc:
            raise ConfigError(f"--trace {args.trace!r} cannot be written: {exc.strerror or exc}") from None
    print(out.text, flush=True)
    asked = args.steps if args.steps is not None else args.length
    note = ""
    if out.steps < asked and not model.autoregressive:
        note = (f" of the {asked} asked: only {out.to_fill} canvas positions were left to fill"
                + (" (the template fixes the others)" if args.template else "") + ", and a step fills at least one")
    print(f"[{out.steps} steps{note}, {out.forward_passes} forward passes]", file=sys.stderr)
    return 0


def cmd_fill(args) -> int:
    from .fill import _constraint, fill
    from .validate import read_text_file

    if args.input or args.ray is not None:  # batch mode: steerdiff.batch_cli (one result line per input line)
        from .batch_cli import cmd_fill_batch

        return cmd_fill_batch(args)
    if not args.schema or args.text is None:
        raise ConfigError("fill needs --schema FILE and a TEXT (or --input records.jsonl --output out.jsonl)")
    _check_model_args(args)
    schema = _json(read_text_file(args.schema, "--schema"), "--schema", args.schema)
    _constraint(schema)  # the schema compiles (or names its problem) before the model loads
    value = fill(_model(args), schema, args.text, length=args.length, steps=args.steps, seed=args.seed, extract=args.extract)
    print(json.dumps(value, ensure_ascii=False, separators=(",", ":")), flush=True)
    return 0


def cmd_rewrite(args) -> int:
    from .rewrite import cli_guidance, parse_template, rewrite

    _check_model_args(args)
    template = _text_or_file(args.template, "--template", "[[")
    parse_template(template)
    guides = {}
    for g in args.guide or []:
        if "=" not in g:
            raise ConfigError(f"--guide expects NAME=TARGET (e.g. sentiment=positive), got {g!r}")
        k, v = g.split("=", 1)
        guides[k] = v
    guidance = cli_guidance(guides, scale=args.scale)
    print(rewrite(_model(args), template, guidance=guidance, seed=args.seed).text, flush=True)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    _check_model_args(args)
    _set_threads(args)
    return run_demo(model_path=args.model, device=args.device)


def cmd_plugins(args) -> int:
    from .plugins import plugin_table

    rows = plugin_table()
    width = max((len(n) for n, _, _ in rows), default=6)
    for name, origin, types in rows:
        print(f"{name:<{width}}  {origin}")
        print(f"{'':<{width}}  constraints: {', '.join(types) if types else '(none)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .schedules import SCHEDULES

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = _Parser(prog="steerdiff", description="Controllable generation with masked diffusion language models.")
    p.add_argument("--version", action="version", version=f"steerdiff {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="generate text under constraints", formatter_class=fmt,
                       description="Generate --length tokens after --prompt in --steps denoising steps.")
    _add_model_args(g)
    g.add_argument("--prompt", default="", help="text before the canvas")
    g.add_argument("--length", type=_int_in(1, 1_000_000), default=64, help="canvas length in tokens")
    g.add_argument("--steps", type=_int_in(1, 1_000_000), default=None,
                   help="denoising steps, at most --length (default: --length, one position per step)")
    g.add_argument("--schedule", default="low_confidence", choices=sorted(SCHEDULES),
                   help="which masked positions to commit each step")
    g.add_argument("--threshold", type=_finite_float(0.0, 1.0, lo_open=True), default=None,
                   help="confidence threshold in (0, 1] for --schedule threshold (default: 0.9)")
    g.add_argument("--block-length", type=_int_in(1, 1_000_000), default=None,
                   help="block size for --schedule blocks (default: 32)")
    g.add_argument("--temperature", type=_finite_float(0.0), default=0.0, help="sampling temperature; 0 is greedy")
    g.add_argument("--template", metavar="TEXT_OR_FILE",
                   help='a template or a file holding one, e.g. "Dear {{name:6}}, your order ships {{when:8}}."')
    g.add_argument("--regex", help="a regular expression the canvas must match")
    g.add_argument("--grammar", metavar="FILE", help="a lark grammar file the canvas must parse with")
    g.add_argument("--start", default="start", help="start rule for --grammar")
    g.add_argument("--schema", metavar="FILE", help="a JSON Schema file the canvas must validate against")
    g.add_argument("--constraint", action="append", metavar="JSON",
                   help='a constraint as JSON, e.g. \'{"type": "regex", "pattern": "[0-9]+"}\' (repeatable)')
    g.add_argument("--watch", action="store_true", help="show the canvas filling in, on stderr")
    g.add_argument("--trace", metavar="FILE", help="write the per-step trace as JSON lines to this file")
    g.set_defaults(func=cmd_generate)

    f = sub.add_parser("fill", help="fill a JSON Schema from text; prints the JSON", formatter_class=fmt,
                       description="Extract a JSON value valid under --schema from TEXT.")
    _add_model_args(f)
    f.add_argument("--schema", metavar="FILE", help="a JSON Schema file (with --input: for rows that carry none)")
    f.add_argument("--length", type=_int_in(1, 1_000_000), default=None,
                   help="canvas length in tokens (default: sized from the schema)")
    f.add_argument("--steps", type=_int_in(1, 1_000_000), default=None,
                   help="denoising steps (default: a quarter of the length)")
    f.add_argument("--extract", action="store_true", help="free strings and numbers must be copied from the text")
    f.add_argument("text", nargs="?", help="the text to extract from (omit with --input)")
    from .batch_cli import add_batch_args

    add_batch_args(f)
    f.set_defaults(func=cmd_fill)

    r = sub.add_parser("rewrite", help="rewrite the [[holes]] of a template, keeping the rest", formatter_class=fmt,
                       description="Rewrite the [[spans]] of a template; the text outside them stays byte-identical.")
    _add_model_args(r)
    r.add_argument("--template", required=True, metavar="TEXT_OR_FILE",
                   help='the template or a file holding one, e.g. "The food was [[cold and bland]]." (required)')
    r.add_argument("--guide", action="append", metavar="NAME=TARGET",
                   help="guidance, e.g. sentiment=positive, or cfg=1.5 for classifier-free guidance (repeatable)")
    r.add_argument("--scale", type=_finite_float(0.0), default=3.0, help="strength of every classifier guide")
    r.set_defaults(func=cmd_rewrite)

    d = sub.add_parser("demo", help="fill a pydantic form and rewrite a template with the default model", formatter_class=fmt)
    _add_model_args(d, seed=False)
    d.set_defaults(func=cmd_demo)

    pl = sub.add_parser("plugins", help="installed plugins and the constraint types they register")
    pl.set_defaults(func=cmd_plugins)

    from .replay import add_subcommand as add_replay
    from .serve import add_subcommand as add_serve

    add_serve(sub)
    add_replay(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; every failure is one line on stderr and exit code 2 (130 on Ctrl-C).
    A closed stdout (``steerdiff fill ... | head -c 1``) ends the command quietly with exit code 0."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except SteerdiffError as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as exc:  # a bug, not a bad input: still one line, with the type to report it by
        if os.environ.get("STEERDIFF_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _fail(f"unexpected {type(exc).__name__}: {first} (set STEERDIFF_DEBUG=1 for the traceback)")


def _fail(msg: str) -> int:
    try:
        print(f"steerdiff: error: {msg}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass
    return 2


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
