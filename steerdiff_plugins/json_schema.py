"""Exact JSON Schema constraints: ``JSONSchema(schema)``, through the regular engine.

    out = sd.generate(model, "Extract: ...", length=96, constraints=[sd.JSONSchema(schema)])
    out.value  # the parsed dict, validated by python-jsonschema

The schema becomes a regex of canonical compact JSON (``steerdiff_plugins.schema.compiled``: keys in
``properties`` order, no whitespace), then a token DFA (:mod:`steerdiff_plugins.automata.token_dfa`), exact over
any unmasking order. Recursion is unrolled to ``max_depth``; schemas the regular engine cannot express
exactly raise :class:`steerdiff.errors.UnsupportedSchemaError` naming the keyword and JSON pointer.
``finalize`` parses the JSON, validates it with python-jsonschema and sets ``result.value`` (a dict, or
the pydantic instance when the schema was given as a pydantic model class).

``sd.fill`` gets its constraint from this plugin's ``json_constraint`` hook (:func:`fill_constraint`):
``JSONSchema`` when the regular engine takes the schema; for recursion the regular engine refuses
(``UnsupportedSchemaError`` with keyword ``$ref``) and schemas whose regular expression or automaton would
be too large (keyword ``size``), a :class:`JSONSchemaGrammar`: the exact lark grammar engine over the same
canonical form (``tree_to_lark``: a too-large schema's compiled tree, every keyword the regular engine
takes, shared subtrees written once; ``schema_to_lark``: recursion as recursive rules; ``compile_graph`` +
``tree_to_lark`` when both refuse: every keyword the regular engine takes, one rule per ``$ref`` target), whose output is
validated with python-jsonschema (and pydantic for a model class) into ``result.value`` as well.
"""

from __future__ import annotations

import json
from typing import Any

from steerdiff.constraints import Constraint, RegularConstraint
from steerdiff.errors import AutomatonTooLarge, ConstraintError, UnsupportedSchemaError, ValidationFailed
from steerdiff.hookspecs import hookimpl
from steerdiff.plugins import constraint_types
from steerdiff_plugins.automata.byte_level import byte_dfa, check_regex
from steerdiff_plugins import compile_budget
from steerdiff_plugins.compile_budget import (
    CompileBudgetExceeded,
    CompileDeadlineExceeded,
    check_deadline,
    compile_deadline,
)
from steerdiff_plugins.grammar import Grammar
from steerdiff_plugins.schema.compiled import UNBOUNDED_ANY_NOTE, compile_tree
from steerdiff_plugins.schema.extractive import extractive_schema
from steerdiff_plugins.schema.to_lark import compile_graph, schema_to_lark
from steerdiff_plugins.schema.tree_to_lark import tree_to_lark

from steerdiff_plugins.schema.compiled import compile_schema, schema_from_pydantic
from steerdiff_plugins.automata.regular_hooks import RegularHooks


def _is_pydantic_class(obj) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate")


def _validator_class(schema):
    import jsonschema

    if isinstance(schema, dict):
        return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return jsonschema.Draft202012Validator


def _describe(schema, model) -> str:
    """The model's name, the schema's title, or the start of the schema's JSON."""
    title = model.__name__ if model is not None else (schema.get("title") if isinstance(schema, dict) else None)
    return repr(title) if title else repr(json.dumps(schema)[:60])


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


def _checked_schema(schema):
    """The python-jsonschema validator class of ``schema`` (a dict or a bool), after checking its shape (too deep,
    a ``$ref`` cycle) and its validity against its metaschema; raises ConstraintError naming the problem."""
    from steerdiff.validate import check_schema_shape

    check_schema_shape(schema, "JSONSchema")  # too deep or a $ref cycle: named before any recursive check
    import jsonschema

    cls = _validator_class(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "#"
        raise ConstraintError(f"JSONSchema: the schema itself is invalid at {where}: {exc.message}") from None
    except (OverflowError, RecursionError) as exc:  # the metaschema's "regex" format check: re.compile raises
        path, pattern = _first_bad_regex(schema, []) or ([], "")  # these for counts past MAXREPEAT, deep nesting
        shown = repr(pattern) if len(pattern) <= 120 else repr(pattern[:120]) + f"... ({len(pattern)} characters)"
        raise ConstraintError(f"JSONSchema: the schema itself is invalid at {'/'.join(path) or '#'}: {shown} is not "
                              f"a regex Python compiles ({exc})") from None
    return cls


def _first_bad_regex(node, path: list):
    """``(path, pattern)`` of the first ``pattern`` value or ``patternProperties`` key under ``node`` (at ``path``)
    that ``re.compile`` refuses, or None."""
    import re

    if isinstance(node, dict):
        for k, v in node.items():
            tried = [([*path, k], v)] if k == "pattern" and isinstance(v, str) else \
                [([*path, k, p], p) for p in v] if k == "patternProperties" and isinstance(v, dict) else []
            for at, p in tried:
                try:
                    re.compile(p)
                except (re.error, OverflowError, RecursionError):
                    return at, p
            got = _first_bad_regex(v, [*path, str(k)])
            if got:
                return got
    elif isinstance(node, list):
        for i, v in enumerate(node):
            got = _first_bad_regex(v, [*path, str(i)])
            if got:
                return got
    return None


class JSONSchema(RegularConstraint):
    """The span's text is compact canonical JSON valid under ``schema`` (a dict, a bool, or a pydantic
    model class). ``max_depth``: recursion/any-value nesting unrolled; ``max_items``: array cap where the
    schema sets no ``maxItems``; ``max_string``: string cap where it sets no ``maxLength`` (None: none).
    ``extract_from``: a source text; free strings and numbers must then be copied from it
    (``steerdiff.extractive``); outputs are still validated against the original schema.
    ``capacity``: the most bytes the span's text can hold (``canvas_bounds.canvas_capacity``; ``fill`` sets
    it): length bounds beyond it compile as absent, the same language on such a span, and a span that could
    hold more is refused at prepare. None: every bound is built.
    ``extra_keys``: objects may also hold keys they do not declare, where ``additionalProperties`` allows
    them exactly (written before the declared keys; an int ``n``: only objects nested at most ``n`` deep;
    see ``steerdiff_plugins.schema.compiled``). False (the default) writes declared keys only, as a form
    fill wants; True brings the language closer to every valid instance (MaskBench valid acceptance).
    ``any_depth``: levels any values nest deeper than ``max_depth`` gives them, where the regex stays under the
    size limits (``compile_schema``; 0, the default: as deep as ``max_depth`` says). ``any_depth=None``: any values
    of every depth, a context-free language: refused here (``UnsupportedSchemaError``, keyword ``any_depth``) for
    a schema that has any values; ``sd.fill`` then takes the grammar engine (:func:`fill_constraint`)."""

    type_name = "json_schema"
    guarantee = "exact"

    def __init__(self, schema, span=None, max_depth: int = 3, max_items: int | None = None, max_string: int | None = None,
                 extract_from: str | None = None, capacity: int | None = None, extra_keys: bool | int = False,
                 any_depth: int | None = 0):
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
        cls = _checked_schema(schema)
        self.schema = schema
        self.max_depth, self.max_items, self.max_string = max_depth, max_items, max_string
        self.extra_keys, self.any_depth = extra_keys, any_depth
        self._validator = cls(schema)
        self.compiled_schema = schema  # the schema the constraint compiles (narrowed when extractive)
        if extract_from is not None:
            if not isinstance(extract_from, str):
                raise ConstraintError(f"JSONSchema extract_from must be the source text, got {type(extract_from).__name__}")
            self.compiled_schema = extractive_schema(schema, extract_from)
        self.capacity = capacity
        with compile_deadline():  # joins fill's deadline when there is one (compile_budget)
            self._compiled = compile_schema(self.compiled_schema, max_depth=max_depth, max_items=max_items,
                                            max_string=max_string, capacity=capacity, extra_keys=extra_keys,
                                            any_depth=any_depth)
        if len(self._compiled.regex) <= compile_budget.MAX_BYTE_REGEX_CHARS:  # a syntax check; a longer regex is
            try:  # refused by the byte stage at once, where Python's parse took 15 s
                check_regex(self._compiled.regex)  # (its parse and NFA are kept for the byte stage)
            except AutomatonTooLarge as big:  # a repetition count beyond the automaton: a size refusal, named where
                # (fill_constraint then hands the schema to the grammar engine, as for a too-large byte automaton)
                from steerdiff_plugins.schema.compiled import largest_count

                where, what = largest_count(self._compiled.node)
                raise UnsupportedSchemaError("size", where, f"{what}: {big}") from None
        if span is not None:
            s, e = (int(x) for x in span)
            self.span = (s, e)

    @property
    def notes(self) -> list[str]:
        """Narrowings the compiler applied (see ``steerdiff_plugins.schema.compiled``)."""
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
                              max_string=self.max_string, capacity=canvas_capacity(positions, vocab),
                              extra_keys=self.extra_keys, any_depth=self.any_depth).regex

    def describe(self) -> str:
        return _describe(self.schema, self.model)

    def parse(self, text: str):
        """Parse and validate ``text``; returns the dict (or pydantic instance). Raises ValidationFailed."""
        return validated_value(text, self._validator, self.model, f"json_schema constraint {self.describe()}", " (engine bug)")

    def shortest_tokens(self, vocab, fill_id: int | None) -> int:
        """The token automaton's minimum length (cached: ``prepare`` reuses the automaton)."""
        from steerdiff_plugins.automata.token_walk import compile_token_dfa

        with compile_deadline():
            return max(0, compile_token_dfa(self.regex(), vocab, fill_id).min_tokens)

    def check_text(self, text: str, result) -> None:
        value = self.parse(text)
        if self.span is None or result.value is None:
            result.value = value


class JSONSchemaGrammar(Grammar):
    """A JSON Schema through the exact grammar engine: ``grammar`` (from ``schema_to_lark`` or ``tree_to_lark``)
    generates canonical JSON, and ``finalize`` validates each output against ``schema`` (the original
    schema, not the extractive narrowing) with python-jsonschema, and ``model`` (a pydantic class, or None),
    into ``result.value``. Built by :func:`fill_constraint`; handled by the grammar plugin's hooks."""

    def __init__(self, grammar: str, schema, model=None):
        super().__init__(grammar)
        self.schema, self.model = schema, model
        self._validator = _validator_class(schema)(schema)

    def __eq__(self, other):
        return (isinstance(other, JSONSchemaGrammar) and super().__eq__(other)
                and (self.schema, self.model) == (other.schema, other.model))

    __hash__ = Grammar.__hash__

    def describe(self) -> str:
        return _describe(self.schema, self.model)

    def result_value(self, text: str, tree) -> Any:
        return validated_value(text, self._validator, self.model, "fill")


def fill_constraint(schema_or_model, compile_seconds: float | None = None, **kw) -> Constraint:
    """The exact constraint for a JSON Schema or pydantic model class that ``sd.fill`` uses (``kw``: the
    ``JSONSchema`` options). The regular engine when it takes the schema (its byte automaton is built now,
    and cached, so a too-large one is known here); otherwise, for recursion (``$ref``) or size (``size``),
    a :class:`JSONSchemaGrammar` when the grammar plugin is installed. Raises the regular engine's
    :class:`UnsupportedSchemaError` for anything else, or naming both engines' reasons when neither takes it.

    ``any_depth=None`` (any values of every depth): a schema with any values is written by the grammar engine,
    ``tree_to_lark(compile_tree(schema, any_depth=None, extra_keys=...))`` (undeclared keys included, except on
    object branches of a union, which it merges closed); where the grammar engine cannot take that tree, the
    constraint of ``any_depth=0`` (bounded any values, a subset of that language); a schema without any values
    compiles as with ``any_depth=0``.
    The whole build, the regular try and every fallback, runs under one compile deadline of
    ``compile_seconds`` (None: ``compile_budget.COMPILE_SECONDS``); past it, ``CompileDeadlineExceeded``."""
    with compile_deadline(compile_seconds):
        out = _fill_constraint(schema_or_model, **kw)
        check_deadline("fill", "#")  # a check some try swallowed on the way still stops the compile: no result
        return out


def _fill_constraint(schema_or_model, **kw) -> Constraint:
    if kw.get("any_depth", 0) is None and "grammar" in constraint_types():
        grammar = unbounded_any_grammar(schema_or_model, kw)
        if grammar is not None:
            return grammar
        kw = {**kw, "any_depth": 0}
    try:
        constraint = JSONSchema(schema_or_model, **kw)
        try:
            byte_dfa(constraint.regex())
        except AutomatonTooLarge as big:
            raise UnsupportedSchemaError("size", "#", str(big)) from None
        except CompileDeadlineExceeded:  # the whole compile's time: no fallback
            raise
        except CompileBudgetExceeded as over:  # name the subschema with the largest count
            from steerdiff_plugins.schema.compiled import largest_count

            where, what = largest_count(constraint._compiled.node)
            raise UnsupportedSchemaError("size", where, f"{what}: {over.what}") from None
        return constraint
    except UnsupportedSchemaError as exc:
        if exc.keyword not in ("$ref", "size") or "grammar" not in constraint_types():
            raise
        # Recursion the regular engine cannot unroll, or a schema whose regular expression or automaton
        # would be too large (rules share subexpressions that a regex must repeat): the exact grammar engine.
        pyd = schema_or_model if _is_pydantic_class(schema_or_model) else None
        schema = schema_from_pydantic(pyd) if pyd is not None else schema_or_model
        narrowed = schema
        if kw.get("extract_from") is not None:
            narrowed = extractive_schema(schema, kw["extract_from"])
        grammar, reasons = None, []
        # the tree compiler's own refusal (over its node or time budget, stage 'schema') would only repeat
        tree_refused = exc.keyword == "size" and not kw.get("extra_keys") and ("subschemas" in exc.why or "compile stage 'schema'" in exc.why)
        if exc.keyword == "size" and not tree_refused:  # the compiled tree as a grammar: every keyword the regular engine takes
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
        if grammar is None:  # every keyword the regular engine takes, each $ref target compiled once and
            # written as one rule (to_lark.compile_graph: recursion is a cycle, not unrolled); closed objects, as above
            depth = {k: kw[k] for k in ("max_depth", "max_items", "max_string", "capacity") if k in kw}
            try:
                grammar = tree_to_lark(compile_graph(narrowed, **depth)[0], budget=True)
            except UnsupportedSchemaError as rexc:
                reasons.append(f"as a reference graph: {rexc}")
            except CompileDeadlineExceeded:  # the whole compile's clock ran out: no engine is left to try
                raise
            except ConstraintError as cexc:  # (CompileBudgetExceeded too) named, with the other engines' reasons
                reasons.append(f"as a reference graph: {cexc}")
        if grammar is None:
            raise UnsupportedSchemaError(exc.keyword, exc.pointer, f"{exc.why}; the grammar engine cannot take it "
                                         f"either ({'; '.join(reasons)})") from None
        return JSONSchemaGrammar(grammar, schema, pyd)


def unbounded_any_grammar(schema_or_model, kw) -> JSONSchemaGrammar | None:
    """The grammar-engine constraint of ``fill_constraint`` for ``any_depth=None``; None when the schema has no
    any values (the regular engine's compile is the same) or the grammar engine refuses its tree (then the
    bounded compile is used: a subset)."""
    pyd = schema_or_model if _is_pydantic_class(schema_or_model) else None
    schema = schema_from_pydantic(pyd) if pyd is not None else schema_or_model
    if not isinstance(schema, (dict, bool)):
        return None  # a schema string (or a wrong type): the regular engine's constructor reads or names it
    _checked_schema(schema)
    narrowed = extractive_schema(schema, kw["extract_from"]) if kw.get("extract_from") is not None else schema
    opts = {k: kw[k] for k in ("max_depth", "max_items", "max_string", "capacity", "extra_keys") if k in kw}
    try:
        node, notes = compile_tree(narrowed, any_depth=None, **opts)
        if UNBOUNDED_ANY_NOTE not in notes:
            return None
        return JSONSchemaGrammar(tree_to_lark(node, budget=True), schema, pyd)
    except UnsupportedSchemaError:
        return None


_HOOKS = RegularHooks("json_schema", JSONSchema)


@hookimpl
def register_constraints(register):
    register("json_schema", JSONSchema)


@hookimpl
def json_constraint(schema, options):
    return fill_constraint(schema, **options)


@hookimpl
def warm_up(tokenizer, fill_id):
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.automata.token_walk import warm_up as warm_token_walk

    warm_token_walk(vocab_for(tokenizer), fill_id)


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
