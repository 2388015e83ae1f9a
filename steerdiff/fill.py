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
of slack (values may end early with padding). The result is at least the constraint's shortest text and
at most the positions the model has left after the prompt. ``steps`` defaults to a quarter of the
length (several positions commit per step; the exact constraint defers any that clash).

Recursion the regular engine refuses (``UnsupportedSchemaError`` with keyword ``$ref``) and schemas whose
regular expression or automaton would be too large (keyword ``size``) fall back to the exact lark grammar
engine (``steerdiff_plugins.grammar_jsonschema``): a too-large schema's compiled tree becomes a grammar
(``tree_to_lark``: the same language, every keyword the regular engine takes, shared subtrees written
once), and recursion becomes recursive rules (``schema_to_lark``). That output is then parsed and
validated here with python-jsonschema (and pydantic for a model class).
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import AutomatonTooLarge, ConfigError, ConstraintError, UnsupportedSchemaError, ValidationFailed

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
        n = max(lo, min(3, hi if isinstance(hi, int) else 3))
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [typical_maximal(items, root, depth - 1) for _ in range(n)] if depth > 0 else []
    if t == "string":
        width = _FORMAT_WIDTH.get(schema.get("format"), STRING_BUDGET)
        if isinstance(schema.get("maxLength"), int):
            width = min(width, schema["maxLength"])
        width = max(width, int(schema.get("minLength", 0)))
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
    """The canvas length ``fill`` uses for ``constraint`` (a ``JSONSchema``) after a prompt of this size."""
    # the original schema, also for an extractive constraint: its longest candidate spans would size the
    # canvas far beyond typical values
    return schema_canvas_length(model, getattr(constraint, "_fill_schema", None) or constraint.schema, prompt_ids_len)


def schema_canvas_length(model, schema, prompt_ids_len: int) -> int:
    """The canvas length ``fill`` uses for ``schema`` (a dict or bool) after a prompt of this size."""
    inst = typical_maximal(schema)
    text = json.dumps(inst, ensure_ascii=False, separators=(",", ":"), default=str)
    n = len(model.tokenizer.encode(text, add_special_tokens=False))
    want = int(n * 1.25) + 4
    room = model.max_positions - prompt_ids_len - len(getattr(model, "suffix_ids", []) or [])
    return max(1, min(want, room))


def _constraint(schema_or_model, **kw):
    from .plugins import constraint_types

    types = constraint_types()
    if "json_schema" not in types:
        raise ConfigError("the json_schema plugin is not installed (steerdiff's built-in entry point is missing)")
    try:
        constraint = types["json_schema"][0](schema_or_model, **kw)
        regex = getattr(getattr(constraint, "_compiled", None), "regex", None)
        if regex is not None:  # build the byte automaton now (it is cached): too large -> the grammar engine
            from steerdiff_plugins.compile_budget import CompileBudgetExceeded
            from steerdiff_plugins.tokendfa import byte_dfa

            try:
                byte_dfa(regex)
            except AutomatonTooLarge as big:
                raise UnsupportedSchemaError("size", "#", str(big)) from None
            except CompileBudgetExceeded as over:  # name the subschema with the largest count
                from steerdiff_plugins.jsonschema_regex import largest_count

                where, what = largest_count(constraint._compiled.node)
                raise UnsupportedSchemaError("size", where, f"{what}: {over.what}") from None
        return constraint
    except UnsupportedSchemaError as exc:
        if exc.keyword not in ("$ref", "size") or "grammar" not in types:
            raise
        # Recursion the regular engine cannot unroll, or a schema whose regular expression or automaton
        # would be too large (rules share subexpressions that a regex must repeat): the exact grammar engine.
        from steerdiff_plugins.grammar_jsonschema import schema_to_lark
        from steerdiff_plugins.jsonschema_regex import schema_from_pydantic

        pyd = schema_or_model if isinstance(schema_or_model, type) and hasattr(schema_or_model, "model_validate") else None
        schema = schema_from_pydantic(pyd) if pyd is not None else schema_or_model
        narrowed = schema
        if kw.get("extract_from") is not None:
            from .extractive import extractive_schema

            narrowed = extractive_schema(schema, kw["extract_from"])
        grammar, reasons = None, []
        if exc.keyword == "size":  # the compiled tree as a grammar: every keyword the regular engine takes
            from steerdiff_plugins.grammar_jsonschema import tree_to_lark
            from steerdiff_plugins.jsonschema_regex import compile_tree

            depth = {k: kw[k] for k in ("max_depth", "max_items", "max_string", "capacity") if k in kw}
            try:
                grammar = tree_to_lark(compile_tree(narrowed, **depth)[0])
            except UnsupportedSchemaError as texc:
                reasons.append(str(texc))
        if grammar is None:  # recursion as rules, or a tree over the node limit: the schema-level grammar
            try:
                grammar = schema_to_lark(narrowed, capacity=kw.get("capacity"))
            except UnsupportedSchemaError as gexc:
                reasons.append(str(gexc))
                raise UnsupportedSchemaError(exc.keyword, exc.pointer, f"{exc.why}; the grammar engine cannot take it "
                                             f"either ({'; '.join(reasons)})") from None
        constraint = types["grammar"][0](grammar)
        constraint._fill_schema, constraint._fill_model = schema, pyd
        return constraint


def validated_value(text: str, validator, model, who: str, suffix: str = ""):
    """``text`` parsed as JSON, checked by the python-jsonschema ``validator`` and, when ``model`` (a
    pydantic class) is given, returned as its instance. Raises :class:`ValidationFailed` naming ``who``
    and the first failing path, with ``suffix`` appended (e.g. " (engine bug)" for an exact engine)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{who}: output is not JSON ({exc}){suffix}", text) from None
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "#"
        raise ValidationFailed(f"{who}: output does not validate at {where}: {errors[0].message}{suffix}", text)
    if model is not None:
        try:
            return model.model_validate(obj)
        except Exception as exc:  # pydantic.ValidationError
            raise ValidationFailed(f"{model.__name__}: pydantic rejects the output: {exc}", text) from None
    return obj


def _grammar_value(constraint, text: str):
    """Parse and validate a grammar-fallback output with python-jsonschema (and pydantic for a model class)."""
    import jsonschema

    schema = constraint._fill_schema
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return validated_value(text, cls(schema), constraint._fill_model, "fill")


def _plain_schema(schema_or_model):
    """The JSON Schema of a pydantic model class (or a JSON string), else the argument itself."""
    if isinstance(schema_or_model, type) and hasattr(schema_or_model, "model_json_schema"):
        from steerdiff_plugins.jsonschema_regex import schema_from_pydantic

        return schema_from_pydantic(schema_or_model)
    if isinstance(schema_or_model, str):
        try:
            return json.loads(schema_or_model)
        except json.JSONDecodeError:
            return {}  # the constraint reports it
    return schema_or_model


def _capacity(model, length: int) -> int:
    """The bucketed byte capacity of a canvas of ``length`` tokens of the model's tokenizer."""
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.canvas_bounds import canvas_capacity

    return canvas_capacity(length, vocab_for(model.tokenizer))


def fill(model, schema_or_pydantic_model, text_or_list, *, length: int | None = None, steps: int | None = None,
         schedule: str = "low_confidence", seed: int = 0, max_depth: int = 3, max_items: int | None = None,
         copy: float | None = None, extract: bool = False, **generate_kwargs):
    """Extract ``schema_or_pydantic_model`` from ``text_or_list``.

    Returns a pydantic instance (for a model class) or a dict (for a JSON Schema), or a list of them for a
    list of texts. ``copy``: scale of the copy guidance (prefer tokens that occur in the text; soft, so
    validity is untouched); default ``COPY_SCALE``, 0 for none. Raises :class:`ValidationFailed` (with
    the raw text) if an output does not validate,
    ``extract``: free strings and numbers must be spans of the row's own text (``steerdiff.extractive``;
    one constraint per text),
    :class:`UnsupportedSchemaError` for schemas the exact engine cannot express.
    """
    from .loop import generate

    single = isinstance(text_or_list, str)
    texts = [text_or_list] if single else list(text_or_list)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigError("fill needs a text or a non-empty list of texts")
    if length is None:  # sized from the original schema (the same for every row), after the longest prompt
        length = schema_canvas_length(model, _plain_schema(schema_or_pydantic_model), max(len(model.prompt_ids(t)) for t in texts))
    cap = _capacity(model, length)  # bounds the canvas cannot reach are not built (steerdiff_plugins.canvas_bounds)
    if extract:
        rows = [_constraint(schema_or_pydantic_model, max_depth=max_depth, max_items=max_items, extract_from=t, capacity=cap)
                for t in texts]
    else:
        rows = [_constraint(schema_or_pydantic_model, max_depth=max_depth, max_items=max_items, capacity=cap)] * len(texts)
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
    for r, constraint in zip(outs, rows):
        if hasattr(constraint, "_fill_schema"):
            values.append(_grammar_value(constraint, r.text))
            continue
        if r.value is None:
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
