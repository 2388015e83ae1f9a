"""Argument checks at steerdiff's public boundary: every bad value is a :class:`ConfigError` naming it.

``generate``, ``fill``, ``rewrite``, ``load_model`` and the CLI call these before they allocate or load
anything, so a bad argument never reaches torch (a raw ``OverflowError``, ``RuntimeError`` or
``TypeError``) and no user-given size allocates memory before it is checked. Each helper returns the
value normalised (``numpy.int64`` -> ``int``, a device string -> ``torch.device``).
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError

# The generator is seeded with ``seed + offset`` (one offset per batch chunk, 1000 per rewrite round):
# seeds stay below torch's limit (2**64 - 1) with room for those offsets.
MAX_SEED = 2**63 - 1
# Sizes a user may give (canvas length, template hole budget, top_k, batch size) are refused above this
# before anything proportional to them is built; the model's own limit (max positions) is checked later.
MAX_SIZE = 1_000_000


def _where(who: str, name: str) -> str:
    return f"{who}: {name}" if who else name


def _of_kind(name: str, value: Any, kind: type, want: str, none_ok: bool, who: str) -> Any:
    """``value`` if it is an instance of ``kind`` (a bool never is: ``True`` is no length); else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, kind):
        want += " or None" if none_ok else ""
        raise ConfigError(f"{_where(who, name)} must be {want}, got {type(value).__name__} {value!r:.40}")
    return value


def check_int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None, none_ok: bool = False,
              who: str = "") -> int | None:
    """``value`` as an int in ``[lo, hi]`` (bool refused: ``True`` is no length). None only if ``none_ok``."""
    if value is None and none_ok:
        return None
    v = int(_of_kind(name, value, numbers.Integral, "an integer", none_ok, who))
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ConfigError(f"{_where(who, name)} must be an integer in {rng}, got {v}")
    return v


def check_float(name: str, value: Any, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                none_ok: bool = False, who: str = "") -> float | None:
    """``value`` as a finite float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); nan and inf refused."""
    if value is None and none_ok:
        return None
    v = float(_of_kind(name, value, numbers.Real, "a number", none_ok, who))
    if not math.isfinite(v):
        raise ConfigError(f"{_where(who, name)} must be a finite number, got {v}")
    if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
        rng = f"{'(' if lo_open else '['}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ConfigError(f"{_where(who, name)} must be a number in {rng}, got {v}")
    return v


def check_bool(name: str, value: Any, *, none_ok: bool = False, who: str = "") -> bool | None:
    if value is None and none_ok:
        return None
    if not isinstance(value, bool):
        raise ConfigError(f"{_where(who, name)} must be True or False, got {type(value).__name__} {value!r:.40}")
    return value


def check_seed(seed: Any, who: str = "") -> int:
    return check_int("seed", seed, lo=0, hi=MAX_SEED - 2**32, who=who)


def check_texts(name: str, value: Any, *, who: str = "", empty_list_ok: bool = False) -> tuple[bool, list[str]]:
    """``(single, texts)`` for one string or a non-empty sequence of strings (bytes, None, numbers refused)."""
    if isinstance(value, str):
        return True, [value]
    if isinstance(value, (bytes, bytearray)):
        raise ConfigError(f"{_where(who, name)} must be a str (decode bytes first), got {type(value).__name__}")
    if not isinstance(value, Sequence) or isinstance(value, dict):
        raise ConfigError(f"{_where(who, name)} must be a string or a list of strings, got {type(value).__name__} {value!r:.40}")
    items = list(value)
    if not items and not empty_list_ok:
        raise ConfigError(f"{_where(who, name)}: the list is empty")
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:
        raise ConfigError(f"{_where(who, name)}[{bad}] must be a string, got {type(items[bad]).__name__} {items[bad]!r:.40}")
    return False, items


def check_model(model: Any, who: str) -> None:
    """``model`` is a steerdiff model (an :class:`steerdiff.adapters.Adapter`)."""
    from .adapters import Adapter

    if not isinstance(model, Adapter):
        raise ConfigError(f"{who}: model must be a steerdiff model (sd.load_model() or sd.wrap_model(...)), "
                          f"got {type(model).__name__}")


def check_device(device: Any, who: str = ""):
    """A ``torch.device`` for ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``; a
    device this machine does not have is refused here (not by torch, later, with a RuntimeError)."""
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except (RuntimeError, ValueError):
            raise ConfigError(f"{_where(who, 'device')} {device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'") from None
    else:
        raise ConfigError(f"{_where(who, 'device')} must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{_where(who, 'device')} {str(device)!r} requested but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{_where(who, 'device')} {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"{_where(who, 'device')} 'mps' requested but MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ConfigError(f"{_where(who, 'device')} {str(device)!r}: steerdiff runs on 'cpu', 'cuda' or 'mps'")
    return dev


def check_generate_args(*, length, steps, schedule, threshold, block_length, temperature, top_k, top_p, seed,
                        batch_size, trace, watch, progress) -> dict:
    """Check ``generate``'s keyword arguments; returns them normalised (see :func:`steerdiff.generate`)."""
    from .schedules import Schedule

    w = "generate"
    out = dict(
        length=check_int("length", length, lo=1, hi=MAX_SIZE, who=w),
        threshold=check_float("threshold", threshold, lo=0.0, hi=1.0, lo_open=True, none_ok=True, who=w),
        block_length=check_int("block_length", block_length, lo=1, hi=MAX_SIZE, none_ok=True, who=w),
        temperature=check_float("temperature", temperature, lo=0.0, who=w),
        top_k=check_int("top_k", top_k, lo=1, none_ok=True, who=w),
        top_p=check_float("top_p", top_p, lo=0.0, hi=1.0, lo_open=True, none_ok=True, who=w),
        seed=check_seed(seed, who=w),
        batch_size=check_int("batch_size", batch_size, lo=1, none_ok=True, who=w),
        trace=check_bool("trace", trace, who=w),
        watch=check_bool("watch", watch, who=w),
        progress=check_bool("progress", progress, none_ok=True, who=w),
    )
    out["steps"] = check_int("steps", steps, lo=1, hi=out["length"], none_ok=True, who=w)
    if not isinstance(schedule, (str, Schedule)):
        raise ConfigError(f"generate: schedule must be a schedule name or a steerdiff.schedules.Schedule, got {type(schedule).__name__}")
    out["schedule"] = schedule
    return out


def check_load_model_args(path, device, family, trust_remote_code, dtype, gguf_file) -> None:
    """``load_model``'s arguments, before any file is read."""
    import torch

    w = "load_model"
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{w}: path must be a directory (str or os.PathLike) or None, got {type(path).__name__}")
    check_device(device, who=w)
    families = ("masked", "llada", "dream", "causal", "block_diffusion")
    if family is not None and family not in families:
        raise ConfigError(f"{w}: unknown model family {family!r}; family must be one of {list(families)} or None")
    check_bool("trust_remote_code", trust_remote_code, who=w)
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise ConfigError(f"{w}: dtype must be a torch.dtype (e.g. torch.bfloat16) or None, got {dtype!r:.40}")
    if gguf_file is not None and not isinstance(gguf_file, (str, os.PathLike)):
        raise ConfigError(f"{w}: gguf_file must be a file name or None, got {type(gguf_file).__name__}")


def read_text_file(path: str, what: str) -> str:
    """The UTF-8 text of ``path`` for the CLI option ``what`` (e.g. ``--schema``); a missing, unreadable,
    directory or non-UTF-8 file is one ConfigError naming the option and the path."""
    if not os.path.exists(path):
        raise ConfigError(f"{what} {path!r}: no such file")
    if os.path.isdir(path):
        raise ConfigError(f"{what} {path!r} is a directory, not a file")
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024 * 1024 + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > 64 * 1024 * 1024:
        raise ConfigError(f"{what} {path!r} is larger than 64 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path!r} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None


def load_model(path=None, *, device="cpu", family=None, trust_remote_code=False, dtype=None, gguf_file=None):
    """``sd.load_model``: :func:`steerdiff.adapters.load_model` (a local directory, ``None`` for the embedded
    steerdiff-tiny) after :func:`check_load_model_args`, so a bad path type, device (``"gpu"``), family or
    dtype is a ConfigError naming it before any file is read."""
    from .adapters import load_model as _load

    check_load_model_args(path, device, family, trust_remote_code, dtype, gguf_file)
    return _load(path, device=device, family=family, trust_remote_code=trust_remote_code, dtype=dtype, gguf_file=gguf_file)


# A JSON Schema nested deeper than this (dicts and lists, counted together) is refused before any
# recursive code (python-jsonschema's own checks, the compilers) sees it: a RecursionError names nothing.
# 128 is about 64 object levels; the deepest of the 282 shared test-data schema files nests 66 (a suite file).
MAX_SCHEMA_DEPTH = 128


def _ptr(tokens: tuple) -> str:
    return "#" + "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def check_schema_shape(schema: Any, who: str = "JSON Schema") -> None:
    """Refuse, naming the keyword and the JSON pointers, a schema nested deeper than ``MAX_SCHEMA_DEPTH``
    and a circular ``$ref`` that never reaches a value (``a -> b -> a`` through ``$ref`` and ``allOf``
    alone: no validator can finish it). Iterative: any depth is checked without recursion."""
    from .errors import ConstraintError, UnsupportedSchemaError

    nodes: dict[tuple, dict] = {}
    stack = [((), schema, 1)]
    while stack:
        tokens, node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise ConstraintError(f"{who}: nested more than {MAX_SCHEMA_DEPTH} levels deep at {_ptr(tokens[:8])}/...; "
                                  "flatten it with $defs and $ref")
        if isinstance(node, dict):
            nodes[tokens] = node
            stack.extend((tokens + (k,), v, depth + 1) for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((tokens + (i,), v, depth + 1) for i, v in enumerate(node) if isinstance(v, (dict, list)))

    def target(ref: str) -> tuple | None:
        if not ref.startswith("#") or (len(ref) > 1 and not ref.startswith("#/")):
            return None  # anchors, remote and relative references: left to the compilers
        out = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")] if len(ref) > 1 else []
        key = tuple(int(p) if p.isdigit() else p for p in out)  # digits index a list (allOf/0) ...
        if key in nodes:
            return key
        return tuple(out) if tuple(out) in nodes else None  # ... or name a property

    def edges(key: tuple) -> list[tuple[str, tuple]]:
        node, out = nodes[key], []
        if isinstance(node.get("$ref"), str):
            t = target(node["$ref"])
            if t is not None:
                out.append(("$ref", t))
        if isinstance(node.get("allOf"), list):
            out.extend(("allOf", key + ("allOf", i)) for i, s in enumerate(node["allOf"]) if isinstance(s, dict))
        return out

    color: dict[tuple, int] = {}  # 1: on the current path, 2: done
    for start in nodes:
        if start in color:
            continue
        path, it = [start], [iter(edges(start))]
        color[start] = 1
        while path:
            nxt = next(it[-1], None)
            if nxt is None:
                color[path.pop()] = 2
                it.pop()
                continue
            _, t = nxt
            if color.get(t) == 1:
                cycle = path[path.index(t):] + [t]
                shown = " -> ".join(_ptr(c) for c in cycle)
                raise UnsupportedSchemaError("$ref", _ptr(cycle[0]), f"circular reference {shown}: the cycle goes through "
                                             "$ref/allOf only and never reaches a value")
            if t not in color:
                color[t] = 1
                path.append(t)
                it.append(iter(edges(t)))


def check_grammar_imports(grammar: str, import_paths: Sequence = ()) -> None:
    """A lark grammar's ``%import`` lines may reach lark's bundled grammars (``common``, ``unicode``, ...)
    only, unless the caller names ``import_paths`` (directories it trusts). Relative imports
    (``%import .x.Y``) are refused either way: for a grammar given as a string they resolve against
    the current directory. The error names the line."""
    import re

    import lark

    from .errors import GrammarError

    bundled = sorted(p.stem for p in (Path(lark.__file__).parent / "grammars").glob("*.lark"))
    for m in re.finditer(r"^[ \t]*%import[ \t]+([.\w]+)[ \t]*(\()?", grammar, re.M):
        path = m.group(1)
        line = grammar.count("\n", 0, m.start()) + 1
        if path.startswith("."):
            raise GrammarError(f"grammar line {line}: relative import '%import {path}' is refused (it would read files from the "
                               f"current directory); import from a directory given in import_paths instead")
        module = path if m.group(2) else path.rpartition(".")[0]
        if module in bundled or import_paths:
            continue
        raise GrammarError(f"grammar line {line}: '%import {path}' names no grammar bundled with lark ({', '.join(bundled)}); "
                           "pass import_paths=[directory] to import your own grammars")
