"""A compiled schema tree as a lark grammar (``grammar_jsonschema.tree_to_lark``), checked against the
regex of the same tree (``re.fullmatch``), lark's own LALR parser and python-jsonschema.

The contract: every text the grammar accepts is valid under the schema, and every text the tree's regex
accepts the grammar accepts too, except where two overlapping terminals meet in one lexer context, as
when a union has two branches of one JSON type (lark then types the lexeme by the first terminal that
matches, e.g. a declared key's literal before a map's key pattern: a narrowing, never an invalid text)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

lark = pytest.importorskip("lark")

sys.path.insert(0, str(Path(__file__).parent))
from test_jsonschema_regex import SUITE, _instances, _need, _schemas  # noqa: E402

from steerdiff.errors import ConstraintError, UnsupportedSchemaError  # noqa: E402
from steerdiff_plugins.grammar import validator  # noqa: E402
from steerdiff_plugins.schema.tree_to_lark import lark_regex, tree_to_lark  # noqa: E402
from steerdiff_plugins.schema.compiled import compile_schema, compile_tree, sample_text  # noqa: E402


def _accepts(parser, text: str) -> bool:
    try:
        parser.parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


def _valid(schema, value) -> bool:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


def _check(schema, instances, rng, samples=5):
    """(texts the regex accepts, of them the grammar accepts); asserts soundness on the way."""
    comp = compile_schema(schema)
    parser = validator(tree_to_lark(compile_tree(schema)[0]), "start")
    texts = [comp.dumps(v) for v in instances] + [json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in instances]
    texts += [sample_text(comp.regex, rng) for _ in range(samples)]
    in_regex = in_both = 0
    for text in texts:
        ok = _accepts(parser, text)
        if ok:
            assert _valid(schema, json.loads(text)), (schema, text)  # the grammar never admits an invalid text
        if comp.fullmatch(text):
            in_regex += 1
            in_both += ok
    return in_regex, in_both


def test_lark_reads_the_regex_back():
    """Quotes, escaped quotes, slashes and control characters survive lark's reading of a /.../ literal."""
    for regex in [r'"a\\"b"', r'"[^"\\\x00-\x1f/]*"', r"it's/\.\x0a", r'"(?:\\["\\/bfnrt])+"', "é[^\x7f]"]:
        grammar = f"start: T\nT: /{lark_regex(regex)}/\n"
        read = validator(grammar, "start").terminals[0].pattern.value
        import re

        for text in ['"a\\"b"', '"q/"', "it's/.\n", '"\\/\\n"', "éz"]:
            assert bool(re.fullmatch(regex, text)) == bool(re.fullmatch(read, text)), (regex, read, text)


def test_numbers_are_lexed_whole():
    """lark lexes a terminal with re.match (leftmost-first alternation): an integer range such as
    ``(?:0|-(?:[1-9]|[1-9][0-9]+))`` as one terminal would lex ``-8534`` as ``-8``. Numbers are rules."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 0}, "e": {"enum": [1, 12, "x"]}}}
    parser = validator(tree_to_lark(compile_tree(schema)[0]), "start")
    for text in ['{"n":-8534}', '{"n":0,"e":12}', '{"e":1}', '{"e":"x"}']:
        assert _accepts(parser, text), text
    for text in ['{"n":1}', '{"n":-0}', '{"e":2}', '{"n":-85.5}']:
        assert not _accepts(parser, text), text


def test_tree_grammar_agrees_with_the_regex_on_the_test_suite():
    """JSON-Schema-Test-Suite (draft 2020-12): for every schema the regular engine compiles, the tree
    grammar accepts no invalid instance, and accepts what the regex accepts."""
    _need(SUITE)
    rng = random.Random(3)
    built = refused = in_regex = in_both = 0
    for f in sorted(SUITE.glob("*.json")) + sorted((SUITE / "optional" / "format").glob("*.json")):
        for case in json.loads(f.read_text()):
            try:
                compile_schema(case["schema"])
            except (UnsupportedSchemaError, ConstraintError):
                continue
            try:
                r, b = _check(case["schema"], [t["data"] for t in case["tests"]], rng)
            except UnsupportedSchemaError:  # overlapping branches lark cannot build a table for
                refused += 1
                continue
            built += 1
            in_regex, in_both = in_regex + r, in_both + b
    assert built >= 150 and refused <= built // 20, (built, refused)
    assert in_both / in_regex >= 0.98, (in_both, in_regex)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=__import__("hypothesis").strategies.data())
def test_fuzz_tree_grammar_is_sound_and_keeps_the_regex_language(data):
    schema = data.draw(_schemas())
    try:
        compile_schema(schema)
    except (UnsupportedSchemaError, ConstraintError):
        return
    values = [data.draw(_instances(schema)) for _ in range(3)]
    try:
        r, b = _check(schema, values, random.Random(0), samples=8)
    except UnsupportedSchemaError as exc:  # overlapping anyOf branches: refused by name, never wrong
        assert exc.keyword in ("anyOf", "maxItems"), exc
        return
    # equal languages, unless a union has two branches of one JSON type: lark's lexer then types a lexeme
    # by its first matching terminal (a key literal before a map's key pattern), a narrowing, still sound
    assert b == r or _same_type_branches(schema), (schema, r, b)


def _types(s) -> set:
    if "enum" in s:
        return {"null" if v is None else "boolean" if isinstance(v, bool) else "number" if isinstance(v, (int, float))
                else "string" for v in s["enum"]}
    if "anyOf" in s:
        return set().union(*(_types(x) for x in s["anyOf"]))
    t = s["type"] if isinstance(s["type"], list) else [s["type"]]
    return {"number" if x == "integer" else x for x in t}


def _same_type_branches(s) -> bool:
    """Whether some anyOf in the fuzz schema ``s`` has two branches that share a JSON type."""
    if "anyOf" in s:
        kinds = [_types(x) for x in s["anyOf"]]
        if any(kinds[i] & kinds[j] for i in range(len(kinds)) for j in range(i)):
            return True
    subs = list(s.get("anyOf", [])) + list(s.get("properties", {}).values()) + ([s["items"]] if "items" in s else [])
    return any(_same_type_branches(x) for x in subs)


def test_too_large_is_refused_every_time():
    """compile_tree caches trees; a tree whose regex is too large must raise ``size`` on every compile,
    not hand back the oversized regex the second time (it would then be built into an automaton)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_grammar_jsonschema import _wide

    wide = {"anyOf": [{"$ref": "#/$defs/w"}], "type": "object", "$defs": {"w": _wide(4, width=9)}}
    for _ in range(2):
        with pytest.raises(UnsupportedSchemaError) as exc:
            compile_schema(wide)
        assert exc.value.keyword == "size"


def test_wide_item_bounds_are_a_chain_of_rules():
    """maxItems - minItems over 8 is a chain of rules, not nested optionals (lark's loader recursed once per
    nesting level and hit Python's recursion limit on a JSONSchemaBench schema with maxItems 256)."""
    schema = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "minItems": 2, "maxItems": 200}
    parser = validator(tree_to_lark(compile_tree(schema)[0]), "start")
    for n, ok in [(1, False), (2, True), (3, True), (150, True), (200, True), (201, False)]:
        assert _accepts(parser, "[" + ",".join(["7"] * n) + "]") is ok, n
