"""Exact JSON Schema constraints: ``JSONSchema(schema)``, through the regular engine.

    out = sd.generate(model, "Extract: ...", length=96, constraints=[sd.JSONSchema(schema)])
    out.value  # the parsed dict, validated by python-jsonschema

The schema becomes a regex of canonical compact JSON (``steerdiff_plugins.jsonschema_regex``: keys in
``properties`` order, no whitespace), then a token DFA (:mod:`steerdiff_plugins.tokendfa`), exact over
any unmasking order. Recursion is unrolled to ``max_depth``; schemas the regular engine cannot express
exactly raise :class:`steerdiff.errors.UnsupportedSchemaError` naming the keyword and JSON pointer.
``finalize`` parses the JSON, validates it with python-jsonschema and sets ``result.value`` (a dict, or
the pydantic instance when the schema was given as a pydantic model class).
"""

from __future__ import annotations

import json

from steerdiff.constraints import Constraint
from steerdiff.errors import ConstraintError
from steerdiff.hookspecs import hookimpl

from .jsonschema_regex import compile_schema, schema_from_pydantic
from .tokendfa import RegularHooks, to_engine_regex


def _is_pydantic_class(obj) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate")


class JSONSchema(Constraint):
    """The span's text is compact canonical JSON valid under ``schema`` (a dict, a bool, or a pydantic
    model class). ``max_depth``: recursion/any-value nesting unrolled; ``max_items``: array cap where the
    schema sets no ``maxItems``; ``max_string``: string cap where it sets no ``maxLength`` (None: none).
    ``extract_from``: a source text; free strings and numbers must then be copied from it
    (``steerdiff.extractive``); outputs are still validated against the original schema.
    ``capacity``: the most bytes the span's text can hold (``canvas_bounds.canvas_capacity``; ``fill`` sets
    it): length bounds beyond it compile as absent, the same language on such a span, and a span that could
    hold more is refused at prepare. None: every bound is built."""

    type_name = "json_schema"
    guarantee = "exact"

    def __init__(self, schema, span=None, max_depth: int = 3, max_items: int | None = None, max_string: int | None = None,
                 extract_from: str | None = None, capacity: int | None = None):
        self.model = schema if _is_pydantic_class(schema) else None
        if self.model is not None:
            schema = schema_from_pydantic(self.model)
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                raise ConstraintError(f"JSONSchema: the schema string is not JSON: {exc}") from None
        if not isinstance(schema, (dict, bool)):
            raise ConstraintError(f"JSONSchema needs a dict, a bool or a pydantic model class, got {type(schema).__name__}")
        import jsonschema

        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator) if isinstance(schema, dict) else jsonschema.Draft202012Validator
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "#"
            raise ConstraintError(f"JSONSchema: the schema itself is invalid at {where}: {exc.message}") from None
        self.schema = schema
        self.max_depth, self.max_items, self.max_string = max_depth, max_items, max_string
        self._validator = cls(schema)
        self.compiled_schema = schema  # the schema the constraint compiles (narrowed when extractive)
        if extract_from is not None:
            if not isinstance(extract_from, str):
                raise ConstraintError(f"JSONSchema extract_from must be the source text, got {type(extract_from).__name__}")
            from steerdiff.extractive import extractive_schema

            self.compiled_schema = extractive_schema(schema, extract_from)
        self.capacity = capacity
        self._compiled = compile_schema(self.compiled_schema, max_depth=max_depth, max_items=max_items, max_string=max_string,
                                        capacity=capacity)
        to_engine_regex(self._compiled.regex)
        if span is not None:
            s, e = (int(x) for x in span)
            self.span = (s, e)

    @property
    def notes(self) -> list[str]:
        """Narrowings the compiler applied (see ``jsonschema_regex``)."""
        return list(self._compiled.notes)

    def regex(self) -> str:
        return self._compiled.regex

    def regex_on(self, positions: int, vocab) -> str:
        """The regex for a span of ``positions`` tokens of ``vocab``: compiled for that span's capacity
        (``canvas_bounds``) when the constraint was built without one, so bounds the span cannot reach are
        not built."""
        if self.capacity is not None:
            return self._compiled.regex
        from steerdiff_plugins.canvas_bounds import canvas_capacity

        return compile_schema(self.compiled_schema, max_depth=self.max_depth, max_items=self.max_items,
                              max_string=self.max_string, capacity=canvas_capacity(positions, vocab)).regex

    def describe(self) -> str:
        title = self.model.__name__ if self.model is not None else (self.schema.get("title") if isinstance(self.schema, dict) else None)
        return repr(title) if title else repr(json.dumps(self.schema)[:60])

    def parse(self, text: str):
        """Parse and validate ``text``; returns the dict (or pydantic instance). Raises ValidationFailed."""
        from steerdiff.fill import validated_value

        return validated_value(text, self._validator, self.model, f"json_schema constraint {self.describe()}", " (engine bug)")

    def check_text(self, text: str, result) -> None:
        value = self.parse(text)
        if self.span is None or result.value is None:
            result.value = value


_HOOKS = RegularHooks("json_schema", JSONSchema)


@hookimpl
def register_constraints(register):
    register("json_schema", JSONSchema)


@hookimpl
def prepare(run):
    _HOOKS.prepare(run)


@hookimpl
def adjust_logits(run, canvas, masked, logits):
    return _HOOKS.adjust_logits(run, canvas, masked, logits)


@hookimpl
def check_commit(run, canvas, masked, proposal, commit, confidence):
    _HOOKS.check_commit(run, canvas, proposal, commit, masked=masked, confidence=confidence)


@hookimpl
def finalize(run, results):
    _HOOKS.finalize(run, results)
