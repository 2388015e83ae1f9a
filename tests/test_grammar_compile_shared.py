"""The grammar engine's shared compile path equals the unshared one (issue 23, grammar speed).

- ``load_lark`` keeps the LALR analysis' item-set table and the compiled engine reads it (``loader.lalr_table``)
  and reuses lark's contextual lexer: the engine's tables equal those of a fresh analysis of a plain
  ``lark.Lark`` (no plugins), and the plugin-built parser accepts, rejects and parses exactly as plain lark on
  sampled texts (valid ones from the engine's own random walks, and their mutations);
- lark's interegular collision search is skipped, its per-terminal checks kept with lark's errors;
- terminal byte DFAs (built by byte class, cached by regex) accept exactly the UTF-8 encodings of the texts
  ``re.fullmatch`` accepts.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

lark = pytest.importorskip("lark")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from steerdiff.errors import GrammarError  # noqa: E402
from steerdiff.testing import tiny_tokenizer  # noqa: E402
from steerdiff.vocab import vocab_for  # noqa: E402
from steerdiff_plugins.grammars.compiled import CompiledGrammar  # noqa: E402
from steerdiff_plugins.grammars.loader import load_lark  # noqa: E402
from steerdiff_plugins.grammars.terminals import regex_to_byte_dfa  # noqa: E402
from steerdiff_plugins.schema.to_lark import compile_graph  # noqa: E402
from steerdiff_plugins.schema.tree_to_lark import tree_to_lark  # noqa: E402

GDIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "grammars"
need_data = pytest.mark.skipif(not (GDIR / "index.json").exists(), reason=f"test data not found at {GDIR}")

# a recursive schema through fill's reference-graph grammar: objects, arrays, enums, numbers, patterns
TREE_SCHEMA = {
    "$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string", "pattern": "^[a-zé]{1,6}$"}, "kind": {"enum": ["leaf", "inner", "ü"]},
        "w": {"type": "integer", "minimum": -5, "maximum": 300}, "x": {"type": "number"},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 3}},
        "required": ["name", "kind"], "additionalProperties": False}},
    "$ref": "#/$defs/node",
}


def _grammars():
    out = [("tree_schema", tree_to_lark(compile_graph(TREE_SCHEMA)[0], budget=True), "start")]
    for f, start in [("syncode/json_grammar.lark", "start"), ("outlines/sql_select.lark", "start"),
                     ("lark-parser_lark/embedded/calc.lark", "start"), ("outlines/csv.lark", "start")]:
        if (GDIR / f).exists():
            out.append((f, (GDIR / f).read_text(), start))
    return out


def _fresh_tables(grammar: str, start: str):
    """The engine's tables computed as before the sharing: plain lark, a second LALR analysis, a new lexer."""
    from lark.lexer import ContextualLexer, _create_unless
    from lark.parsers.lalr_analysis import LALR_Analyzer, Shift

    lk = lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")
    an = LALR_Analyzer(lk.parser.parser_conf, debug=True)
    an.compute_lalr()
    pt = an.parse_table
    order = list(pt.states)
    sid = {s: i for i, s in enumerate(order)}
    actions = [{k: (True, sid[arg]) if a is Shift else (False, (arg.origin.name, len(arg.expansion)))
                for k, (a, arg) in pt.states[s].items()} for s in order]
    items = [[(str(rp.rule), rp.index) for rp in s if rp.index > 0 or rp.rule.origin.name.startswith("$root_")] for s in order]
    cl = ContextualLexer(lk.parser.lexer_conf, {i: list(a) for i, a in enumerate(actions)}, ())
    specs = []
    for i in range(len(actions)):
        bl = cl.lexers[i]
        terms, callbacks = _create_unless(bl.terminals, bl.g_regex_flags, bl.re, bl.use_bytes)
        unless = {n: [t.name for t in cb.scanner.terminals] for n, cb in callbacks.items() if getattr(cb, "scanner", None)}
        specs.append(([t.name for t in terms], unless))
    return actions, items, sid[pt.start_states[start]], sid[pt.end_states[start]], specs


def _canonical(actions, items, s0, s1, specs):
    """The tables with states renumbered in breadth-first order from the start state over sorted symbols (two
    LALR analyses number the same automaton differently: lark enumerates a set of item sets), items sorted."""
    new = {s0: 0}
    order = [s0]
    for s in order:
        for sym in sorted(actions[s]):
            shift, arg = actions[s][sym]
            if shift and arg not in new:
                new[arg] = len(order)
                order.append(arg)
    acts = [{k: (True, new[a]) if sh else (False, a) for k, (sh, a) in actions[s].items()} for s in order]
    return acts, [sorted(items[s]) for s in order], new[s1], [specs[s] for s in order], len(actions)


@need_data
@pytest.mark.parametrize("name,grammar,start", _grammars(), ids=[g[0] for g in _grammars()])
def test_shared_tables_equal_a_fresh_analysis(name, grammar, start, monkeypatch):
    from steerdiff_plugins.grammars import loader

    monkeypatch.setattr(loader, "_loaded", {})  # a parser of its own, its table kept
    vocab = vocab_for(tiny_tokenizer())
    kept = load_lark(grammar, start).parser.parser
    assert kept.debug_table is not None
    table = kept.debug_table
    cg = CompiledGrammar(grammar, start, vocab)
    assert cg.lark.parser.parser is kept and kept.debug_table is None  # read, then let go: no second analysis
    assert len(cg.actions) == len(table.states) and cg.start_state == list(table.states).index(table.start_states[start])
    ours = _canonical(cg.actions, [[(str(r), i) for r, i in its] for its in cg.items], cg.start_state, cg.end_state,
                      [cg._ctx_specs[cg.ctx_of_state[i]] for i in range(len(cg.actions))])
    fresh = _canonical(*_fresh_tables(grammar, start))
    assert len(ours[0]) == ours[-1]  # every state reached from the start: the renumbering covers the tables
    assert ours == fresh


@need_data
@pytest.mark.parametrize("name,grammar,start", _grammars(), ids=[g[0] for g in _grammars()])
def test_indexed_includes_lookback_equal_larks(name, grammar, start):
    from lark.parsers.lalr_analysis import LALR_Analyzer

    from steerdiff_plugins.grammars.loader import _lark_plugins

    lk = lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")
    an = _lark_plugins()["LALR_Parser"].Analyzer(lk.parser.parser_conf, debug=True)
    an.compute_lr0_states()
    an.compute_reads_relations()
    LALR_Analyzer.compute_includes_lookback(an)
    theirs = (dict(an.includes), dict(an.lookback))
    an.includes.clear()
    an.lookback.clear()
    an.compute_includes_lookback()
    assert (dict(an.includes), dict(an.lookback)) == theirs
    assert sum(map(len, theirs[0].values())) and sum(map(len, theirs[1].values()))  # non-trivial relations


@need_data
@pytest.mark.parametrize("name,grammar,start", _grammars(), ids=[g[0] for g in _grammars()])
def test_shortest_lengths_equal_the_token_sweep(name, grammar, start):
    """``_nonterminal_lengths`` (plain-str names) gives the costs and rules of the sweep over lark's symbols."""
    from steerdiff_plugins.grammars.terminals import INF

    cg = CompiledGrammar(grammar, start, vocab_for(tiny_tokenizer()))
    cost = {n: (len(s) if s is not None else INF) for n, s in cg.tstr.items()}
    best, changed = {}, True
    for r in cg.lark.rules:
        cost.setdefault(r.origin.name, INF)
    while changed:
        changed = False
        for r in cg.lark.rules:
            c = sum(cost.get(x.name, INF) for x in r.expansion)
            if c < cost[r.origin.name]:
                cost[r.origin.name], best[r.origin.name], changed = c, r, True
    assert cg.symcost == cost
    assert {k: id(r) for k, r in cg.best_rule.items()} == {k: id(r) for k, r in best.items()}
    assert len(best) > 3


@need_data
def test_without_a_kept_table_the_engine_analyses_and_lexes_on_its_own(monkeypatch):
    """A parser without the kept table (not built by load_lark): a fresh analysis, whose state numbers may differ
    from lark's lexer's, so the engine builds its own lexer for them; the tables are the same automaton."""
    name, grammar, start = _grammars()[0]
    monkeypatch.setattr(load_lark(grammar, start).parser.parser, "debug_table", None)
    cg = CompiledGrammar(grammar, start, vocab_for(tiny_tokenizer()))
    ours = _canonical(cg.actions, [[(str(r), i) for r, i in its] for its in cg.items], cg.start_state, cg.end_state,
                      [cg._ctx_specs[cg.ctx_of_state[i]] for i in range(len(cg.actions))])
    assert ours == _canonical(*_fresh_tables(grammar, start))


def _walk_texts(cg, rng: random.Random, n: int, max_len: int = 40) -> list[bytes]:
    """Texts the engine accepts: random writable bytes while the configuration stays alive, then its witness."""
    out = []
    writable = np.nonzero(cg.writable)[0].tolist()
    for _ in range(n):
        stack, q, text = cg.initial, 0, b""
        for _ in range(rng.randrange(max_len)):
            b = bytes([rng.choice(writable)])
            nxt = cg.feed_bytes(stack, q, b)
            if nxt is not None and cg.witness(*nxt) is not None:
                (stack, q), text = nxt, text + b
        w = cg.witness(stack, q)
        assert w is not None
        out.append(text + w)
    return out


def _parse(lk, text: str):
    try:
        return True, lk.parse(text)
    except lark.exceptions.LarkError:
        return False, None


@need_data
@pytest.mark.parametrize("name,grammar,start", _grammars(), ids=[g[0] for g in _grammars()])
def test_plugin_parser_parses_like_plain_lark(name, grammar, start):
    vocab = vocab_for(tiny_tokenizer())
    cg = CompiledGrammar(grammar, start, vocab)
    ours, plain = load_lark(grammar, start), lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")
    rng = random.Random(7)
    valid = [t.decode("utf-8") for t in _walk_texts(cg, rng, 40)]
    mutated = []
    for t in valid:
        k = rng.randrange(len(t) + 1)
        mutated += [t[:k] + t[k + 1:], t[:k] + rng.choice('{}[],:"0a ') + t[k:]]
    n_ok = 0
    for text in valid + mutated:
        a, b = _parse(ours, text), _parse(plain, text)
        assert a[0] == b[0] and a[1] == b[1], text
        n_ok += a[0]
    assert n_ok >= len(valid)  # every engine-accepted text parses (and both parsers agree on the mutations)
    assert n_ok < len(valid) + len(mutated)  # some mutations are rejected: the comparison can fail


@pytest.mark.parametrize("grammar,needle", [
    ('start: A\nA: /a*/\n', "zero-width"),
    ('start: "a"\n%ignore WS\n', "WS"),
])
def test_lexer_checks_kept(grammar, needle):
    with pytest.raises(GrammarError, match=needle):
        load_lark(grammar, "start")


REGEXES = [r"[a-zé]{1,6}", r'"(?:[^"\\]|\\.)*"', r"[^a]", r"ü|ö+x", r"-?\d{1,3}(?:\.\d+)?", r"(?i:abc)", r"[^\x00-\x7f]+",
           r"(?s:.)", "\u0100[\u0080-\u07ff]*\U0001F600?"]  # the last one with the characters themselves


def _accepts(dfa, data: bytes) -> bool:
    s = dfa.initial
    for b in data:
        s = int(dfa.trans[s, b])
        if s < 0:
            return False
    return bool(dfa.accept[s])


def _re_accepts(regex: str, data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return re.fullmatch(regex, text) is not None


_CHARS = st.sampled_from(list("abcxAé\"\\ü ö.-0129\n\x00") + ["\u0100", "\u0080", "\u07ff", "😀", "\u20ac"])


@settings(max_examples=300, deadline=None)
@given(k=st.integers(0, len(REGEXES) - 1), text=st.lists(_CHARS, max_size=8).map("".join),
       cut=st.integers(0, 3))
def test_byte_dfa_is_re_fullmatch(k, text, cut):
    regex = REGEXES[k]
    dfa = regex_to_byte_dfa(regex, "T")
    data = text.encode("utf-8")
    assert _accepts(dfa, data) == _re_accepts(regex, data), (regex, text)
    if cut and len(data) > cut:  # a cut UTF-8 sequence is never accepted
        assert _accepts(dfa, data[:-cut]) == _re_accepts(regex, data[:-cut])


def test_byte_dfa_cache_is_shared_and_read_only():
    a = regex_to_byte_dfa(r"[a-z]{2,5}q", "A")
    b = regex_to_byte_dfa(r"[a-z]{2,5}q", "B")
    assert a is b
    with pytest.raises(ValueError):
        a.trans[0, 0] = 1
    with pytest.raises(GrammarError, match="terminal C"):  # errors name the terminal, never cached
        regex_to_byte_dfa(r"(?<=a)b", "C")
