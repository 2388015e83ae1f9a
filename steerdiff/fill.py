"""``fill``: structured extraction into a pydantic model or a JSON Schema, never invalid.

    person = sd.fill(model, Person, "Maria Lopez, 34, maria@example.org, admin")   # a Person
    data = sd.fill(model, {"type": "object", ...}, "text")                        # a dict

The text is the prompt; the canvas holds the compact canonical JSON (keys in ``properties`` order) under
an exact ``json_schema`` constraint, so the output always parses and validates.

Canvas length (when ``length`` is None): the token count, with the model's tokenizer, of a *typical
maximal* canonical instance: every declared property present, strings ``min(maxLength, budget)``
characters of ordinary words (``budget``: 24, or the fixed width of a ``format`` such as date 10,
date-time 25, uuid 36), integers as wide as their bounds allow (6 digits unbounded), numbers 9
characters, arrays ``min(maxItems, 3)`` items (at least ``minItems``), the longest ``enum``/``const``,
the largest ``anyOf``/``oneOf`` branch, local ``$ref`` followed 3 levels deep; plus 25 % and 4 tokens
of slack (values may end early with padding). The result is at least the constraint's shortest text
(``shortest_tokens``) and at most the positions the model has left after the prompt. ``steps`` defaults to a quarter of the
length (several positions commit per step; the exact constraint defers any that clash).

The canvas is sized from the schema first, and the constraint is compiled for that canvas's capacity
(``canvas_capacity``: its tokens times the longest token's bytes, rounded up to a power of two): length,
item and pattern bounds no text of that size reaches are not built (``steerdiff_plugins.canvas_bounds``),
so ``maxLength: 65535`` costs nothing on a 60-token canvas, and the language on the canvas is unchanged.

The constraint comes from the plugins' ``json_constraint`` hook (the core imports no plugin): the built-in
json_schema plugin returns the regular engine's ``JSONSchema``, or for recursion the regular engine
refuses and schemas whose regular expression or automaton would be too large, an exact lark grammar over
the same canonical form. Either way each row's ``result.value`` is the validated value (python-jsonschema,
and pydantic for a model class), which ``fill`` returns.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import ConfigError, ConstraintError, ValidationFailed
from .vocab import canvas_capacity, vocab_for

STRING_BUDGET = 24
# default copy-guidance bias (steerdiff_plugins.copy); 0 is off. Off since the GPU-trained steerdiff-tiny:
# on held-out texts (seed 4243, n=96, k=2) it lowers field EM from 91.1% to 89.8% (scale 3) or 89.1% (scale
# 1) and leaves extract=True level (92.3% / 92.7%); it helped the earlier, under-trained checkpoints.
COPY_SCALE = 0.0
_WORDS = "anna lopez works at acme inc in paris france since the year one "
_FORMAT_WIDTH = {"date": 10, "time": 8, "date-time": 25, "email": 24, "uuid": 36, "ipv4": 15, "uri": 30, "hostname": 20}


def _resolve(schema: dict, root: dict, depth: int):
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and depth > 0:
        node: Any = root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit():
                node = node[int(part)]
            else:
                return {}, depth
        return node, depth - 1
    return schema, depth


# A user's minItems / minLength may be huge: the typical instance stops here (the canvas is clamped to the
# model's room anyway, and fill grows a sized canvas to the constraint's shortest text when it can).
_TYPICAL_MAX_ITEMS, _TYPICAL_MAX_CHARS = 64, 4096


def typical_maximal(schema: Any, root: Any = None, depth: int = 3) -> Any:
    """A typical maximal instance of ``schema`` used to size the canvas (see the module docstring)."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return "x" * 8
    if not isinstance(schema, dict):
        return None
    schema, depth = _resolve(schema, root, depth)
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return max(schema["enum"], key=lambda v: len(json.dumps(v, ensure_ascii=False)))
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            opts = [typical_maximal(s, root, depth) for s in schema[key]]
            return max(opts, key=lambda v: len(json.dumps(v, ensure_ascii=False, default=str)))
    if isinstance(schema.get("allOf"), list):
        merged: dict = {}
        for s in schema["allOf"]:
            s, _ = _resolve(s, root, depth) if isinstance(s, dict) else ({}, depth)
            for k, v in (s.items() if isinstance(s, dict) else []):
                if k == "properties" and isinstance(v, dict):
                    merged.setdefault("properties", {}).update(v)
                else:
                    merged.setdefault(k, v)
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return typical_maximal(merged, root, depth)
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), t[0] if t else None)
    if t is None:
        t = "object" if "properties" in schema else "array" if "items" in schema else "string" if (
            "maxLength" in schema or "pattern" in schema or "format" in schema) else None
    if t == "object":
        props = schema.get("properties") or {}
        if depth <= 0:
            return {k: None for k in schema.get("required", [])}
        return {k: typical_maximal(v, root, depth - 1) for k, v in props.items()}
    if t == "array":
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        n = min(max(lo, min(3, hi if isinstance(hi, int) else 3)), _TYPICAL_MAX_ITEMS)
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [typical_maximal(items, root, depth - 1) for _ in range(n)] if depth > 0 else []
    if t == "string":
        width = _FORMAT_WIDTH.get(schema.get("format"), STRING_BUDGET)
        if isinstance(schema.get("maxLength"), int):
            width = min(width, schema["maxLength"])
        width = min(max(width, int(schema.get("minLength", 0))), _TYPICAL_MAX_CHARS)
        return (_WORDS * (width // len(_WORDS) + 1))[:width]
    if t == "integer":
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        cands = [int(b) for b in (hi, lo) if isinstance(b, (int, float)) and not isinstance(b, bool)]
        return max(cands, key=lambda v: len(str(v))) if cands else 123456
    if t == "number":
        return -12345.678
    if t == "boolean":
        return False
    if t == "null":
        return None
    return "x" * 8


def canvas_length(model, constraint, prompt_ids_len: int) -> int:
    """The canvas length ``fill`` uses for ``constraint`` (from ``json_constraint``; its ``schema`` is the
    original schema) after a prompt of this size."""
    # the original schema (never the extractive narrowing), also for an extractive constraint: its longest
    # candidate spans would size the canvas far beyond typical values
    n = schema_canvas_length(model, constraint.schema, prompt_ids_len)
    return max(n, min(shortest_tokens(model, constraint), _room(model, prompt_ids_len)))


def schema_canvas_length(model, schema, prompt_ids_len: int) -> int:
    """The canvas length ``fill`` uses for ``schema`` (a dict or bool) after a prompt of this size."""
    inst = typical_maximal(schema)
    text = json.dumps(inst, ensure_ascii=False, separators=(",", ":"), default=str)
    n = len(model.tokenizer.encode(text, add_special_tokens=False))
    return max(1, min(int(n * 1.25) + 4, _room(model, prompt_ids_len)))


def _room(model, prompt_ids_len: int) -> int:
    """Canvas positions the model has left after a prompt of this size (and its closing tokens)."""
    return model.max_positions - prompt_ids_len - len(getattr(model, "suffix_ids", []) or [])


def _rows(model, schema_or_model, texts: list[str], length: int, extract: bool, **kw) -> list:
    """One constraint per text (``extract``: narrowed to that text's spans), compiled for a canvas of ``length``."""
    cap = canvas_capacity(length, vocab_for(model.tokenizer))
    if extract:
        return [_constraint(schema_or_model, extract_from=t, capacity=cap, **kw) for t in texts]
    return [_constraint(schema_or_model, capacity=cap, **kw)] * len(texts)


def shortest_tokens(model, constraint) -> int:
    """Canvas positions the shortest valid text of ``constraint`` takes with ``model``'s tokenizer (the
    constraint's own ``shortest_tokens``: the token automaton's minimum, or the grammar engine's shortest
    completion); 0 when unknown."""
    from .vocab import vocab_for

    return constraint.shortest_tokens(vocab_for(model.tokenizer), model.fill_id)


def _constraint(schema_or_model, **kw):
    """The exact constraint for ``schema_or_model`` (``kw``: ``JSONSchema`` options), from the
    ``json_constraint`` hook."""
    from .plugins import get_plugin_manager

    if isinstance(schema_or_model, (dict, bool)):
        from .validate import check_schema_shape

        check_schema_shape(schema_or_model, "fill")  # a $ref cycle or deep nesting, named before any compile
    try:
        constraint = get_plugin_manager().hook.json_constraint(schema=schema_or_model, options=kw)
    except RecursionError:  # a shape check_schema_shape does not foresee: still a named error
        raise ConstraintError("fill: the schema nests too deeply to compile (Python's recursion limit); flatten it with "
                              "$defs and $ref") from None
    if constraint is None:
        raise ConfigError("no plugin builds JSON Schema constraints: the json_schema plugin is not installed "
                          "(steerdiff's built-in entry point is missing)")
    return constraint


def _plain_schema(schema_or_model):
    """The JSON Schema of a pydantic model class (as ``schema_from_pydantic`` writes it) or of a JSON string,
    else the argument itself: what the canvas is sized from."""
    if isinstance(schema_or_model, type) and hasattr(schema_or_model, "model_json_schema"):
        return schema_or_model.model_json_schema(ref_template="#/$defs/{model}")
    if isinstance(schema_or_model, str):
        try:
            return json.loads(schema_or_model)
        except json.JSONDecodeError:
            return {}  # the constraint reports it
    return schema_or_model


def fill(model, schema_or_pydantic_model, text_or_list, *, length: int | None = None, steps: int | None = None,
         schedule: str = "low_confidence", seed: int = 0, max_depth: int = 3, max_items: int | None = None,
         copy: float | None = None, extract: bool = False, any_depth: int | None = 0,
         compile_seconds: float | None = None, **generate_kwargs):
    """Extract ``schema_or_pydantic_model`` from ``text_or_list``.

    Returns a pydantic instance (for a model class) or a dict (for a JSON Schema), or a list of them for a
    list of texts. ``copy``: scale of the copy guidance (prefer tokens that occur in the text; soft, so
    validity is untouched); default ``COPY_SCALE``, 0 for none. Raises :class:`ValidationFailed` (with
    the raw text) if an output does not validate,
    ``extract``: free strings and numbers must be spans of the row's own text (``steerdiff.extractive``;
    one constraint per text),
    :class:`UnsupportedSchemaError` for schemas the exact engine cannot express.
    ``any_depth``: levels free-form values (the empty schema, untyped properties) nest beyond ``max_depth`` (the
    JSON Schema plugin's option of that name); ``None``: any depth, written by the grammar engine (a
    context-free language), so a free-form value of any nesting that fits the canvas can be produced.
    ``compile_seconds``: the time budget of the constraint's compile, all its tries and fallbacks together
    (None: the json_schema plugin's default, ``compile_budget.COMPILE_SECONDS``); past it the compile stops
    with a named ``ConstraintError`` (``CompileDeadlineExceeded``: stage, schema pointer, seconds).
    """
    from .loop import generate
    from .validate import MAX_SIZE, check_bool, check_float, check_int, check_model, check_seed, check_texts

    check_model(model, "fill")
    single, texts = check_texts("text_or_list", text_or_list, who="fill")
    length = check_int("length", length, lo=1, hi=MAX_SIZE, none_ok=True, who="fill")
    steps = check_int("steps", steps, lo=1, none_ok=True, who="fill")
    seed = check_seed(seed, who="fill")
    max_depth = check_int("max_depth", max_depth, lo=0, hi=64, who="fill")
    max_items = check_int("max_items", max_items, lo=0, hi=MAX_SIZE, none_ok=True, who="fill")
    copy = check_float("copy", copy, lo=0.0, none_ok=True, who="fill")
    extract = check_bool("extract", extract, who="fill")
    any_depth = check_int("any_depth", any_depth, lo=0, hi=64, none_ok=True, who="fill")
    budget = {}
    if compile_seconds is not None:  # passed on only when set: a third-party json_constraint need not know it
        budget["compile_seconds"] = check_float("compile_seconds", compile_seconds, lo=0.0, lo_open=True, who="fill")
    if isinstance(schema_or_pydantic_model, (dict, bool)):
        from .validate import check_schema_shape

        check_schema_shape(schema_or_pydantic_model, "fill")  # a $ref cycle or deep nesting, before sizing the canvas
    sized = length is None
    plen = max(len(model.prompt_ids(t)) for t in texts)  # the longest prompt, tokenized once
    room = _room(model, plen)
    if sized:  # from the original schema (the same for every row), after the longest prompt
        length = schema_canvas_length(model, _plain_schema(schema_or_pydantic_model), plen)
    # bounds the canvas cannot reach are not built (steerdiff_plugins.canvas_bounds)
    try:
        rows = _rows(model, schema_or_pydantic_model, texts, length, extract, max_depth=max_depth, max_items=max_items,
                     any_depth=any_depth, **budget)
    except ConstraintError as exc:  # a minimum beyond the estimated canvas: try the most the model holds, once
        if not sized or "fits a canvas of" not in str(exc) or room <= length:
            raise
        length = room
        rows = _rows(model, schema_or_pydantic_model, texts, length, extract, max_depth=max_depth, max_items=max_items,
                     any_depth=any_depth, **budget)
    if sized:  # never shorter than the shortest valid text (when the model has the room): grow, then recompile
        need = min(shortest_tokens(model, rows[0]), room)
        if need > length:
            length = need
            rows = _rows(model, schema_or_pydantic_model, texts, length, extract, max_depth=max_depth, max_items=max_items,
                     any_depth=any_depth, **budget)
    if steps is None:
        steps = max(1, length // 4)
    steps = min(steps, length)
    scale = COPY_SCALE if copy is None else copy
    if scale:
        from .plugins import constraint_types

        guidance = list(generate_kwargs.pop("guidance", None) or []) + [constraint_types()["copy"][0](scale=scale)]
        generate_kwargs["guidance"] = guidance
    outs = generate(model, texts, length=length, steps=steps, schedule=schedule, constraints=[[c] for c in rows], seed=seed,
                    **generate_kwargs)
    values = []
    for r in outs:
        if r.value is None and r.text.strip() != "null":  # JSON null is a value (``"type": "null"``)
            raise ValidationFailed("fill: no value was parsed from the output", r.text)
        values.append(r.value)
    return values[0] if single else values


def fill_cli(model, schema_path: str, text: str, *, length: int | None = None, steps: int | None = None, seed: int = 0,
             extract: bool = False) -> str:
    """``steerdiff fill --schema person.json "text"``: the filled JSON as a compact string."""
    if not os.path.exists(schema_path):
        raise ConfigError(f"schema file {schema_path!r} does not exist")
    try:
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
    except json.JSONDecodeError as exc:
        raise ConstraintError(f"schema file {schema_path!r} is not JSON: {exc}") from None
    value = fill(model, schema, text, length=length, steps=steps, seed=seed, extract=extract)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
