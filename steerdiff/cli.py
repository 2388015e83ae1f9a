"""The ``steerdiff`` command: generate, fill, rewrite, demo, plugins, --version."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import SteerdiffError


def _model(args):
    from .adapters import load_model

    return load_model(args.model, device=args.device, trust_remote_code=args.trust_remote_code)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="local model directory (default: the embedded steerdiff-tiny)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own modelling code")
    p.add_argument("--seed", type=int, default=0)


def cmd_generate(args) -> int:
    from .loop import generate
    from .plugins import make_constraint

    constraints = []
    if args.template:
        constraints.append(make_constraint({"type": "template", "text": args.template}))
    if args.regex:
        constraints.append(make_constraint({"type": "regex", "pattern": args.regex}))
    if args.grammar:
        with open(args.grammar, encoding="utf-8") as f:
            constraints.append(make_constraint({"type": "grammar", "grammar": f.read(), "start": args.start}))
    if args.schema:
        with open(args.schema, encoding="utf-8") as f:
            constraints.append(make_constraint({"type": "json_schema", "schema": json.load(f)}))
    for spec in args.constraint or []:
        constraints.append(make_constraint(json.loads(spec)))
    model = _model(args)
    out = generate(model, args.prompt, length=args.length, steps=args.steps, schedule=args.schedule,
                   temperature=args.temperature, constraints=constraints, seed=args.seed, watch=args.watch,
                   threshold=args.threshold, block_length=args.block_length)
    if args.trace:
        out.trace.to_jsonl(args.trace)
    print(out.text, flush=True)
    print(f"[{out.steps} steps, {out.forward_passes} forward passes]", file=sys.stderr)
    return 0


def cmd_fill(args) -> int:
    from .fill import fill_cli

    if args.input or args.ray is not None:  # batch mode: steerdiff.batch (issue 20)
        from .batch_cli import cmd_fill_batch

        return cmd_fill_batch(args)
    if not args.schema or args.text is None:
        raise SteerdiffError("fill needs --schema and a text (or --input records.jsonl --output out.jsonl)")

    print(fill_cli(_model(args), args.schema, args.text, length=args.length, steps=args.steps, seed=args.seed,
                   extract=args.extract))
    return 0


def cmd_rewrite(args) -> int:
    from .rewrite import rewrite_cli

    with open(args.template, encoding="utf-8") as f:
        template = f.read()
    guides = {}
    for g in args.guide or []:
        if "=" not in g:
            raise SteerdiffError(f"--guide expects NAME=TARGET (e.g. sentiment=positive), got {g!r}")
        k, v = g.split("=", 1)
        guides[k] = v
    print(rewrite_cli(_model(args), template, guides, seed=args.seed))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

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
    p = argparse.ArgumentParser(prog="steerdiff", description="Controllable generation with masked diffusion language models.")
    p.add_argument("--version", action="version", version=f"steerdiff {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="generate text under constraints")
    _add_model_args(g)
    g.add_argument("--prompt", default="")
    g.add_argument("--length", type=int, default=64)
    g.add_argument("--steps", type=int, default=None)
    g.add_argument("--schedule", default="low_confidence")
    g.add_argument("--threshold", type=float, default=None, help="for --schedule threshold")
    g.add_argument("--block-length", type=int, default=None, help="for --schedule blocks")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--template", help='e.g. "Dear {{name:6}}, your order ships {{when:8}}."')
    g.add_argument("--regex")
    g.add_argument("--grammar", help="a lark grammar file")
    g.add_argument("--start", default="start", help="start rule for --grammar")
    g.add_argument("--schema", help="a JSON Schema file")
    g.add_argument("--constraint", action="append", help='a constraint as JSON, e.g. \'{"type": "regex", "pattern": "[0-9]+"}\'')
    g.add_argument("--watch", action="store_true", help="show the canvas filling in")
    g.add_argument("--trace", help="write the per-step trace as JSON lines to this file")
    g.set_defaults(func=cmd_generate)

    f = sub.add_parser("fill", help="fill a JSON Schema from text; prints the JSON")
    _add_model_args(f)
    f.add_argument("--schema", required=False, help="a JSON Schema file (with --input: for rows that carry none)")
    f.add_argument("--length", type=int, default=None)
    f.add_argument("--steps", type=int, default=None)
    f.add_argument("--extract", action="store_true", help="free strings and numbers must be copied from the text")
    f.add_argument("text", nargs="?")
    from .batch_cli import add_batch_args

    add_batch_args(f)
    f.set_defaults(func=cmd_fill)

    r = sub.add_parser("rewrite", help="rewrite the [[holes]] of a template file, keeping the rest")
    _add_model_args(r)
    r.add_argument("--template", required=True)
    r.add_argument("--guide", action="append", help="NAME=TARGET, e.g. sentiment=positive")
    r.set_defaults(func=cmd_rewrite)

    d = sub.add_parser("demo", help="fill a pydantic form and rewrite a template with the default model")
    d.add_argument("--model", default=None)
    d.add_argument("--device", default="cpu")
    d.set_defaults(func=cmd_demo)

    pl = sub.add_parser("plugins", help="installed plugins and the constraint types they register")
    pl.set_defaults(func=cmd_plugins)

    from .replay import add_subcommand as add_replay
    from .serve import add_subcommand as add_serve

    add_serve(sub)
    add_replay(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SteerdiffError as exc:
        print(f"steerdiff: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"steerdiff: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
