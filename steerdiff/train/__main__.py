"""``python -m steerdiff.train --out DIR --steps N --seed 0``: build the data, train steerdiff-tiny, save it."""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from . import TrainConfig, train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m steerdiff.train", description=__doc__)
    for f in dataclasses.fields(TrainConfig):  # every TrainConfig field is a --flag
        if f.name == "command":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name == "out":
            p.add_argument(flag, required=True, help="output directory (model, tokenizer, TRAINING.md)")
        else:
            p.add_argument(flag, type=type(f.default), default=f.default, help=f"default {f.default}")
    a = p.parse_args(argv)
    cfg = TrainConfig(**{k.replace("-", "_"): v for k, v in vars(a).items()})
    cfg.command = "python -m steerdiff.train " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    train(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
