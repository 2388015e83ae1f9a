"""``steerdiff fill --input/--output`` on the command line: its arguments, and the choice between one
process (``steerdiff.batch``) and a Ray cluster (``steerdiff.ray``). Kept apart so batch and ray do not import
each other."""
from __future__ import annotations

import json
import os
import sys

from .batch import fill_file
from .errors import ConfigError


def add_batch_args(p) -> None:
    """``--input``, ``--output``, ``--resume``, ``--batch-size`` and ``--ray [ADDRESS]`` on ``steerdiff fill``."""
    p.add_argument("--input", help="JSON lines: a text, or {\"text\", \"schema\", \"id\"} per line")
    p.add_argument("--output", help="JSON lines: one result per input line (value or error)")
    p.add_argument("--resume", action="store_true", help="skip input lines already answered in --output")
    p.add_argument("--batch-size", type=int, default=16, help="rows per forward pass in batch mode")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster (ADDRESS, or a local one when omitted); needs the 'ray' extra")
    p.add_argument("--concurrency", type=int, default=1, help="with --ray: model-holding actors")
    p.add_argument("--num-gpus", type=float, default=0, help="with --ray: GPUs per actor")


def cmd_fill_batch(args) -> int:
    """The batch mode of ``steerdiff fill``; prints one summary line to stderr."""
    if not args.input or not args.output:
        raise ConfigError("batch fill needs both --input and --output")
    if args.text is not None:
        raise ConfigError("give either a text or --input, not both")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    schema = None
    if args.schema:
        if not os.path.exists(args.schema):
            raise ConfigError(f"schema file {args.schema!r} does not exist")
        with open(args.schema, encoding="utf-8") as f:
            try:
                schema = json.load(f)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"schema file {args.schema!r} is not JSON: {exc}") from None
    kw = {"length": args.length, "steps": args.steps, "seed": args.seed, "extract": args.extract}
    if args.ray is not None:
        from .ray import fill_file_ray

        stats = fill_file_ray(args.input, args.output, schema=schema, resume=args.resume, address=args.ray,
                              batch_size=args.batch_size, concurrency=args.concurrency, num_gpus=args.num_gpus,
                              model_path=args.model, device=args.device, **kw)
    else:
        from .validate import load_model

        model = load_model(args.model, device=args.device, trust_remote_code=args.trust_remote_code)
        stats = fill_file(model, args.input, args.output, schema=schema, resume=args.resume, batch_size=args.batch_size, **kw)
    print(f"steerdiff fill: {stats['ok']} filled, {stats['errors']} errors, {stats['skipped']} already done "
          f"-> {args.output}", file=sys.stderr)
    return 0
