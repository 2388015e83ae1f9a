"""Reference graphs (``to_lark.compile_graph`` -> ``tree_to_lark``: one rule per ``$ref`` target, recursion as
a cycle) and the linear FIRST/FOLLOW sets the grammar loader gives lark.

Judges: python-jsonschema with its format checker (every derivation sampled from the grammar validates),
lark's own parser, the regular engine's unrolled regex (every text it accepts, the graph's grammar accepts
too, up to the lexer narrowing ``test_tree_grammar`` describes), MaskBench's labelled invalid instances
(rejected), and lark's original ``calculate_sets`` (the same sets)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

lark = pytest.importorskip("lark")

from steerdiff.errors import ConstraintError, UnsupportedSchemaError  # noqa: E402
from steerdiff_plugins.grammars import loader  # noqa: E402
from steerdiff_plugins.grammars.loader import load_lark  # noqa: E402
from steerdiff_plugins.json_schema import JSONSchemaGrammar, fill_constraint  # noqa: E402
from steerdiff_plugins.schema.compiled import compile_schema, sample_text  # noqa: E402
from steerdiff_plugins.schema.to_lark import compile_graph  # noqa: E402
from steerdiff_plugins.schema.tree_to_lark import Ref, tree_to_lark  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench"


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _samples(parser, rng, n: int, depth: int = 6) -> list[str]:
    """``n`` random derivations of ``parser``'s grammar (lark's expanded rules; past ``depth`` rule levels the
    cheapest alternative), terminals drawn with ``sample_text`` from their regexes."""
    by_origin: dict = {}
    for r in parser.rules:
        by_origin.setdefault(r.origin.name, []).append(r.expansion)
    terms = {t.name: t.pattern for t in parser.terminals}
    cost = {name: float("inf") for name in by_origin}  # fewest derivation steps to a terminal string
    changed = True
    while changed:
        changed = False
        for name, alts in by_origin.items():
            c = min(1 + sum(0 if s.is_term else cost[s.name] for s in alt) for alt in alts)
            if c < cost[name]:
                cost[name], changed = c, True

    def term(name):
        p = terms[name]
        return p.value if p.type == "str" else sample_text(p.value, rng)

    def gen(name, d):
        alts = by_origin[name]
        if d > depth:
            alts = [min(alts, key=lambda a: sum(0 if s.is_term else cost[s.name] for s in a))]
        alt = rng.choice(alts)
        return "".join(term(s.name) if s.is_term else gen(s.name, d + 1) for s in alt)

    return [gen("start", 0) for _ in range(n)]


def _graph_parser(schema, **kw):
    grammar = tree_to_lark(compile_graph(schema, **kw)[0], budget=True)
    return load_lark(grammar, "start"), grammar


TREE = {"$defs": {"node": {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 5}, "n": {"type": "integer", "minimum": -3, "maximum": 40},
    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 3}}, "required": ["name"]}},
    "$ref": "#/$defs/node"}

# mutual recursion through oneOf / anyOf / allOf, formats and patterns: keywords schema_to_lark refuses
WEB = {"definitions": {
    "person": {"type": "object", "properties": {"name": {"type": "string", "pattern": "^[A-Z][a-z]{1,8}$"},
                                                "image": {"$ref": "#/definitions/image"},
                                                "email": {"type": "string", "format": "email"}},
               "required": ["name"], "additionalProperties": False},
    "image": {"type": "object", "properties": {"url": {"type": "string", "format": "uri"},
                                               "credits": {"$ref": "#/definitions/credits"}},
              "required": ["url"]},
    "credits": {"type": "object", "properties": {"by": {"type": "array", "items": {"oneOf": [
        {"$ref": "#/definitions/person"}, {"type": "string", "enum": ["staff", "wire"]}]}}}},
    "story": {"allOf": [{"$ref": "#/definitions/credits"}, {"properties": {"headline": {"type": "string"}},
                                                            "required": ["headline"]}]}},
    "type": "object", "properties": {"story": {"$ref": "#/definitions/story"},
                                     "lead": {"anyOf": [{"$ref": "#/definitions/image"}, {"type": "null"}]}},
    "required": ["story"]}


# a union that reaches its own object again by seeing through a reference (a forward rule closes the cycle)
CYCLE = {"$defs": {"A": {"type": "object", "properties": {
    "k": {"type": "integer"}, "x": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}}},
    "$ref": "#/$defs/A"}


@pytest.mark.parametrize("schema", [TREE, WEB, CYCLE], ids=["tree", "web", "cycle"])
def test_graph_grammar_is_sound(schema):
    """Every derivation of the graph's grammar is JSON valid under the schema; recursion is one rule per
    target (no unrolling: the grammar does not grow with depth)."""
    parser, grammar = _graph_parser(schema)
    v, rng = _validator(schema), random.Random(0)
    texts = _samples(parser, rng, 300, depth=12)
    for text in texts:
        assert v.is_valid(json.loads(text)), text
    assert max(t.count("{") for t in texts) >= 3  # recursion was taken, not only the shortest texts


@pytest.mark.parametrize("schema", [TREE, WEB, CYCLE], ids=["tree", "web", "cycle"])
def test_graph_grammar_keeps_the_unrolled_language(schema):
    """What the regular engine's regex (recursion unrolled max_depth times) accepts, the graph's grammar
    accepts: the graph only lifts the depth narrowing."""
    parser, _ = _graph_parser(schema)
    comp, rng = compile_schema(schema, max_depth=2), random.Random(1)
    for _ in range(200):
        text = sample_text(comp.regex, rng)
        parser.parse(text)


def test_graph_grammar_is_deeper_than_any_unrolling():
    """A tree nested 12 deep: beyond any max_depth the regular engine unrolls to, one grammar."""
    text = '{"name":"a"}'
    for _ in range(12):
        text = '{"name":"b","kids":[' + text + "]}"
    parser, _ = _graph_parser(TREE)
    parser.parse(text)
    assert _validator(TREE).is_valid(json.loads(text))
    with pytest.raises(lark.exceptions.LarkError):  # and still exact: maxLength 5 holds at depth 12
        parser.parse(text.replace('"a"', '"abcdef"'))


def test_refs_are_shared_and_cycles_have_no_regex():
    node, _ = compile_graph(TREE)
    assert isinstance(node, Ref) and node.target is not None
    with pytest.raises(UnsupportedSchemaError) as e:
        node.regex()
    assert e.value.keyword == "$ref"


def test_required_recursion_is_refused_by_name():
    """A reference every instance of which would be infinite: refused, naming it (no rule without a finite
    derivation reaches the engine)."""
    s = {"$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}, "required": ["x"]}},
         "type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}}
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_graph(s)
    assert e.value.keyword == "$ref" and "no finite instance" in e.value.why
    with pytest.raises(ConstraintError):
        compile_graph({"$ref": "#/$defs/a", "$defs": s["$defs"]})


def _bench(sid):
    for f in sorted((DATA / "schemas").glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            if it["id"] == sid:
                return it["schema"]
    pytest.skip(f"{sid} not in ../shared/testdata")


def test_maskbench_invalid_instances_are_rejected():
    """minecraft-predicate (MaskBench, JsonSchemaStore): through the graph; its labelled invalid instances
    are rejected, its samples validate."""
    path = DATA / "maskbench_tests" / "JsonSchemaStore.json"
    if not path.exists():
        pytest.skip("no MaskBench data")
    item = next((it for it in json.loads(path.read_text())["items"] if it["id"] == "minecraft-predicate"), None)
    if item is None:
        pytest.skip("minecraft-predicate not in MaskBench")
    schema = item["schema"]
    parser, _ = _graph_parser(schema, capacity=2048)
    v = _validator(schema)
    invalid = [t for t in item["tests"] if not t["valid"]]
    assert invalid
    for t in invalid:
        for text in (json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False), json.dumps(t["data"])):
            with pytest.raises(lark.exceptions.LarkError):
                parser.parse(text)
    for text in _samples(parser, random.Random(2), 200):
        assert v.is_valid(json.loads(text)), text


def test_fill_takes_the_graph_where_both_other_engines_refuse():
    """minecraft-predicate: the regular engine refuses it as too large (``size``: its $ref web unrolled),
    schema_to_lark refuses its allOf: fill's fallback takes the reference graph, and the grammar it hands the
    engine is the graph's."""
    schema = _bench("minecraft-predicate")
    with pytest.raises(UnsupportedSchemaError):
        compile_schema(schema, capacity=2048)
    c = fill_constraint(schema, capacity=2048)
    assert isinstance(c, JSONSchemaGrammar)
    assert c.grammar == _graph_parser(schema, capacity=2048)[1]


def test_wp_schema_compiles_as_a_graph():
    """wp_53 (Washington Post ANS, mutually recursive credits/by/image/...): refused by both engines before;
    the graph's grammar is within the grammar stage's budget, and its derivations validate."""
    schema = _bench("wp_53_Normalized")
    parser, grammar = _graph_parser(schema, capacity=8192)
    assert loader.grammar_productions(grammar) <= loader.MAX_GRAMMAR_PRODUCTIONS
    v = _validator(schema)
    for text in _samples(parser, random.Random(3), 60, depth=4):
        assert v.is_valid(json.loads(text)), text[:300]


_SHAPES = [
    'start: a b\na: "x" a | \nb: "y" [b] "z" | c\nc: ("q" c)* "w"\n',
    'start: e\ne: e "+" t | t\nt: t "*" f | f\nf: "(" e ")" | N\nN: /[0-9]+/\n',
    'start: s\ns: [a] [b] [c] "." | a s\na: "a" | \nb: "b" [a]\nc: b c | "c"\n',
]


@pytest.mark.parametrize("grammar", _SHAPES + ["graph"])
def test_lalr_sets_equal_larks(grammar):
    """calculate_sets gives lark's own FIRST, FOLLOW and NULLABLE (nullable chains, left and right recursion,
    [..] and (..)* expansions, a schema graph's merged objects)."""
    from lark.grammar import NonTerminal, Rule, Terminal
    from lark.parsers import grammar_analysis

    if grammar == "graph":
        grammar = _graph_parser(WEB)[1]
    rules = _lark_rules(grammar) + [Rule(NonTerminal("$root_start"), [NonTerminal("start"), Terminal("$END")])]
    loader.install_lalr_sets()
    original = loader._LARK_CALCULATE_SETS
    assert original is not loader.calculate_sets and grammar_analysis.calculate_sets is loader.calculate_sets
    assert loader.calculate_sets(rules) == original(rules)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.lists(st.integers(0, 7), max_size=4)), min_size=1, max_size=12))
def test_lalr_sets_equal_larks_on_random_rule_sets(spec):
    """Random rule sets (5 nonterminals, 3 terminals; empty, left-, right- and mutually recursive rules):
    the linear sets equal lark's own quadratic calculate_sets, which lark then uses for every grammar."""
    from lark.grammar import NonTerminal, Rule, Terminal

    def sym(k):
        return NonTerminal(f"n{k}") if k < 5 else Terminal("ABC"[k - 5])

    rules = [Rule(NonTerminal(f"n{o}"), [sym(k) for k in exp]) for o, exp in spec]
    rules.append(Rule(NonTerminal("$root"), [NonTerminal(f"n{spec[0][0]}"), Terminal("$END")]))
    loader.install_lalr_sets()
    assert loader.calculate_sets(rules) == loader._LARK_CALCULATE_SETS(rules)


def _relations(rules, start, fn):
    """``includes`` and ``lookback`` after ``fn`` ran on lark's LALR analysis of ``rules``, states named by
    their kernels (comparable across two analyses)."""
    from lark.common import ParserConf
    from lark.parsers.lalr_analysis import LALR_Analyzer

    an = LALR_Analyzer(ParserConf(rules, {}, [start]))
    an.compute_lr0_states()
    an.compute_reads_relations()
    fn(an)

    def key(state):
        return frozenset((rp.rule, rp.index) for rp in state.kernel)

    inc = {(key(s), x): {(key(s2), y) for s2, y in v} for (s, x), v in an.includes.items() if v}
    look = {(key(s), x): {(key(s2), r) for s2, r in v} for (s, x), v in an.lookback.items() if v}
    return inc, look


def _lark_rules(grammar: str):
    from lark.load_grammar import load_grammar

    g, _ = load_grammar(grammar, "<test>", [], False)
    _, rules, _ = g.compile(["start"], set())
    return rules


def _ours():
    """The loader's indexed ``compute_includes_lookback`` (lark's parser plugin), as a function of the analyzer."""
    return loader._lark_plugins()["LALR_Parser"].Analyzer.compute_includes_lookback


def _larks():
    from lark.parsers.lalr_analysis import LALR_Analyzer

    return LALR_Analyzer.compute_includes_lookback


@pytest.mark.parametrize("grammar", _SHAPES + ["graph", "schema"])
def test_includes_lookback_equal_larks(grammar):
    from steerdiff_plugins.schema.to_lark import schema_to_lark

    loader.install_lalr_sets()
    if grammar == "graph":
        grammar = _graph_parser(WEB)[1]
    elif grammar == "schema":
        grammar = schema_to_lark({"$defs": {"t": {"type": "object", "properties": {
            "kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}, "name": {"type": "string"},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}}, "$ref": "#/$defs/t"})
    rules = _lark_rules(grammar)
    ours = _relations(rules, "start", _ours())
    assert ours == _relations(rules, "start", _larks()) and ours[1]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.lists(st.integers(0, 7), max_size=4)), min_size=1, max_size=12))
def test_includes_lookback_equal_larks_on_random_rule_sets(spec):
    from lark.grammar import NonTerminal, Rule, Terminal

    def sym(k):
        return NonTerminal(f"n{k}") if k < 5 else Terminal("ABC"[k - 5])

    rules = list({Rule(NonTerminal(f"n{o}"), [sym(k) for k in exp]): None for o, exp in spec})  # no rule twice
    defined = {o for o, _ in spec}
    rules += [Rule(NonTerminal(f"n{k}"), [Terminal("C")]) for k in range(5) if k not in defined]
    loader.install_lalr_sets()
    start = f"n{spec[0][0]}"
    assert _relations(rules, start, _ours()) == _relations(rules, start, _larks())
