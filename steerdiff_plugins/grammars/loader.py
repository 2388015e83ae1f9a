"""Loading a lark grammar (LALR, contextual lexer) with errors that name the rule or line."""

from __future__ import annotations

import re
import threading
from collections import defaultdict

from steerdiff.errors import GrammarError


def _line_of(grammar: str, needle: str) -> str:
    for i, line in enumerate(grammar.splitlines(), 1):
        if needle and needle in line:
            return f" (line {i}: {line.strip()!r})"
    return ""


# Productions (an upper bound: rule lines and their "|" characters) lark's LALR analysis takes. Measured on
# this machine under load: schema grammars of 2870 and 6604 productions (numeric bounds as rules) load in
# 11 s and 6 s; one of 9091 (a JSONSchemaBench vega-lite schema) took 20 s and more before failing on a
# conflict. Checked on the grammars schema_to_lark writes for recursive schemas (fill's fallback), which
# then stop at once, by name (compile_budget). A proxy, not a clock: lark's time also grows with terminals.
MAX_GRAMMAR_PRODUCTIONS = 8000


_TERMINAL_LINE = re.compile(r"\s*[A-Z_][A-Z_0-9]*(?:\.-?\d+)?\s*:")


def grammar_productions(grammar: str) -> int:
    """An upper bound on the productions of ``grammar``: one per line, plus the ``|`` characters of the lines
    that do not define a terminal (a terminal's regex alternation is no production)."""
    return sum(1 if _TERMINAL_LINE.match(line) else 1 + line.count("|") for line in grammar.splitlines())


def check_grammar_size(grammar: str) -> None:
    """Raise :class:`~steerdiff_plugins.compile_budget.CompileBudgetExceeded` (stage ``grammar``) when
    ``grammar`` has over ``MAX_GRAMMAR_PRODUCTIONS`` productions (:func:`grammar_productions`)."""
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded

    n = grammar_productions(grammar)
    if n > MAX_GRAMMAR_PRODUCTIONS:
        raise CompileBudgetExceeded("grammar", "grammar", f"about {n} productions (rule lines and '|'), above the limit of "
                                                          f"{MAX_GRAMMAR_PRODUCTIONS} that lark's LALR analysis builds in seconds")


_loaded: dict = {}
_loaded_lock = threading.Lock()


def load_lark(grammar: str, start: str, import_paths: tuple = ()):
    """``lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")``, turning every failure into a
    GrammarError naming the rule or line. Cached per (grammar, start): the constraint's fail-fast check,
    the compiled engine and the validator of finished outputs share one instance (building the LALR table
    of a large schema grammar takes most of a second). ``%import`` reaches lark's bundled grammars only,
    unless ``import_paths`` names directories (``steerdiff.validate.check_grammar_imports``)."""
    key = (grammar, start, tuple(import_paths))
    with _loaded_lock:
        hit = _loaded.get(key)
    if hit is None:
        hit = _load_lark(grammar, start, tuple(import_paths))
        with _loaded_lock:
            if len(_loaded) >= 64:
                _loaded.clear()
            _loaded[key] = hit
    return hit


def _load_lark(grammar: str, start: str, import_paths: tuple = ()):
    import lark
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import UnexpectedInput

    from steerdiff.validate import check_grammar_imports
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded

    if not isinstance(grammar, str) or not grammar.strip():
        raise GrammarError("the grammar is empty: give the text of a lark grammar")
    check_grammar_imports(grammar, import_paths)
    install_lalr_sets()  # lark's FIRST/FOLLOW sweep is quadratic on large schema grammars; the same sets, linear
    try:
        return lark.Lark(grammar, start=start, parser="lalr", lexer="contextual", import_paths=list(import_paths),
                         _plugins=_lark_plugins())
    except UnexpectedInput as exc:
        line = getattr(exc, "line", None)
        raise GrammarError(f"lark grammar syntax error at line {line}, column {getattr(exc, 'column', '?')}: {str(exc).strip().splitlines()[0]}") from None
    except LarkGrammarError as exc:
        msg = str(exc).strip()
        if "NonTerminal" in msg and start in msg and "undefined" in msg.lower():
            raise GrammarError(f"start rule {start!r} is not defined in the grammar") from None
        import re as _re

        m = _re.search(r"'([A-Za-z_0-9]+)' used but not defined \(in rule ([A-Za-z_0-9]+)", msg)
        hint = _line_of(grammar, m.group(2)) if m else ""
        raise GrammarError(f"lark grammar error: {msg}{hint}") from None
    except KeyError as exc:
        raise GrammarError(f"start rule {start!r} is not defined in the grammar (lark: KeyError {exc})") from None
    except CompileBudgetExceeded:  # the compile deadline, checked inside lark's LALR analysis: named as it is
        raise
    except Exception as exc:
        text = str(exc).strip()
        if start in text and ("undefined" in text.lower() or "not defined" in text.lower()):
            raise GrammarError(f"start rule {start!r} is not defined in the grammar: {text}") from None
        raise GrammarError(f"lark could not load the grammar: {type(exc).__name__}: {text}") from None


# ---------------------------------------------------------------------------------------------------------
# Two lark classes replaced through lark's ``_plugins`` option, for the same parser and lexer in less time:
# - the LALR parser keeps the analysis' parse table with its LR item sets (``lalr_table``), which the compiled
#   engine reads instead of running the analysis a second time (grammars/compiled.py);
# - the contextual lexer skips interegular's search for colliding terminals, whose only outcome outside lark's
#   strict mode (never used here) is a warning on lark's logger, silenced at CRITICAL by lark itself: a third of
#   lark's load on large schema grammars. The checks lark makes per terminal (it compiles, it is not zero-width,
#   every %ignore terminal is defined) are made once, on the terminals lark would check, with lark's messages.

_PLUGINS: dict = {}


def _lark_plugins() -> dict:
    if _PLUGINS:
        return _PLUGINS
    from copy import copy

    from lark.exceptions import LexError
    from lark.lexer import ContextualLexer
    from lark.parsers.lalr_analysis import IntParseTable, LALR_Analyzer
    from lark.parsers.lalr_parser import LALR_Parser, _Parser

    from steerdiff_plugins import compile_budget

    class Analyzer(LALR_Analyzer):
        """lark's ``LALR_Analyzer`` with ``compute_includes_lookback`` indexed: lark's scans the whole closure of
        a state for each of its nonterminal transitions, and the closure of the target state for each rule,
        comparing symbols and rules by value (lark ``Token`` names); on large schema grammars that is most of
        the analysis (o39532: 72 of 117 s profiled). The same relations: each state's closure grouped once by
        origin (in closure order), each target state's satisfied items once by rule (same ``==``). The compile
        deadline (stage ``grammar``) is checked every 64 transitions."""

        def compute_includes_lookback(self):
            by_origin: dict = {}
            satisfied: dict = {}
            reads, nullable = self.reads, self.NULLABLE
            for k, nt in enumerate(self.nonterminal_transitions):
                if not k & 63:
                    compile_budget.check_deadline("grammar", "LALR table")
                state, nonterminal = nt
                groups = by_origin.get(state)
                if groups is None:
                    groups = by_origin[state] = defaultdict(list)
                    for rp in state.closure:
                        groups[rp.rule.origin].append(rp)
                includes = []
                lookback = self.lookback[nt]
                for rp in groups.get(nonterminal, ()):
                    exp = rp.rule.expansion
                    state2 = state
                    for i in range(rp.index, len(exp)):
                        s = exp[i]
                        nt2 = (state2, s)
                        state2 = state2.transitions[s]
                        if nt2 not in reads:
                            continue
                        for j in range(i + 1, len(exp)):
                            if exp[j] not in nullable:
                                break
                        else:
                            includes.append(nt2)
                    if rp.index == 0:
                        done = satisfied.get(state2)
                        if done is None:
                            done = satisfied[state2] = defaultdict(list)
                            for rp2 in state2.closure:
                                if rp2.is_satisfied:
                                    done[rp2.rule].append(rp2.rule)
                        for rule in done.get(rp.rule, ()):
                            lookback.add((state2, rule))
                for nt2 in includes:
                    self.includes[nt2].add(nt)

    class TableKeepingParser(LALR_Parser):
        """lark's ``LALR_Parser`` (same analysis, same integer table), keeping ``debug_table``: the parse table
        keyed by LR item sets, whose enumeration order numbers the integer table's states."""

        def __init__(self, parser_conf, debug=False, strict=False):
            analysis = Analyzer(parser_conf, debug=True, strict=strict)  # debug: keep the item-set table
            analysis.compute_lalr()
            self.debug_table = analysis.parse_table
            self._parse_table = IntParseTable.from_ParseTable(analysis.parse_table)
            self.parser_conf = parser_conf
            self.parser = _Parser(self._parse_table, parser_conf.callbacks, debug)

    TableKeepingParser.Analyzer = Analyzer  # (tests compare its relations with lark's)

    class QuietContextualLexer(ContextualLexer):
        """lark's ``ContextualLexer`` without the interegular collision search (see above)."""

        def __init__(self, conf, states, always_accept=()):
            if not conf.strict and not conf.skip_validation:
                used = set(conf.ignore) | set(always_accept) | {n for acc in states.values() for n in acc}
                for t in conf.terminals:
                    if t.name not in used:
                        continue
                    try:
                        conf.re_module.compile(t.pattern.to_regexp(), conf.g_regex_flags)
                    except conf.re_module.error:
                        raise LexError("Cannot compile token %s: %s" % (t.name, t.pattern)) from None
                    if t.pattern.min_width == 0:
                        raise LexError("Lexer does not allow zero-width terminals. (%s: %s)" % (t.name, t.pattern))
                if not set(conf.ignore) <= {t.name for t in conf.terminals}:
                    raise LexError("Ignore terminals are not defined: %s" % (set(conf.ignore) - {t.name for t in conf.terminals}))
                conf = copy(conf)
                conf.skip_validation = True
            super().__init__(conf, states, always_accept)

    _PLUGINS.update(LALR_Parser=TableKeepingParser, ContextualLexer=QuietContextualLexer)
    return _PLUGINS


def lalr_table(lk):
    """The LALR parse table keyed by LR item sets (lark's debug ``ParseTable``) of a parser ``load_lark``
    built: the one its analysis made (no second analysis), or, for a Lark object built otherwise, a fresh
    analysis of its parser configuration (the same table). Raises lark's GrammarError like the analysis."""
    kept = getattr(getattr(lk.parser, "parser", None), "debug_table", None)
    if kept is not None:
        return kept
    from lark.parsers.lalr_analysis import LALR_Analyzer

    an = LALR_Analyzer(lk.parser.parser_conf, debug=True)
    an.compute_lalr()
    return an.parse_table


# ---------------------------------------------------------------------------------------------------------
# FIRST / FOLLOW / NULLABLE for lark's LALR analysis in time linear in the grammar (times the terminals).
# lark 1.x computes them (``lark.parsers.grammar_analysis.calculate_sets``) by sweeping every rule until nothing
# changes, testing ``set(prefix) <= NULLABLE`` for every prefix of every rule on every sweep: on the grammars
# fill's fallback writes for large recursive schemas (about 1,000 rules, 4,000 alternatives: the Washington Post
# ANS schemas) that took 10-25 s (wp_78: 17.6 s against 0.19 s here). calculate_sets returns the same three
# least fixpoints by propagation along a dependency graph; tests/test_tree_grammar_refs.py checks that they
# equal lark's own on grammars of every shape the engine writes.

def calculate_sets(rules):
    """``(FIRST, FOLLOW, NULLABLE)`` of lark ``Rule`` objects, equal to lark's ``calculate_sets(rules)``:
    FIRST and FOLLOW map every symbol (terminals too: FIRST of a terminal is itself) to a set of terminals,
    NULLABLE is the set of nonterminals that derive the empty text."""
    symbols = {sym for rule in rules for sym in rule.expansion} | {rule.origin for rule in rules}
    FIRST = {sym: ({sym} if sym.is_term else set()) for sym in symbols}
    FOLLOW = {sym: set() for sym in symbols}

    # NULLABLE: a rule is nullable once all its symbols are; count the ones not yet known nullable
    NULLABLE: set = set()
    missing = []
    users = defaultdict(list)  # symbol -> indexes of the rules that hold it (once per occurrence)
    todo = []
    for k, rule in enumerate(rules):
        missing.append(len(rule.expansion))
        for sym in rule.expansion:
            users[sym].append(k)
        if not rule.expansion:
            todo.append(rule.origin)
    while todo:
        sym = todo.pop()
        if sym in NULLABLE:
            continue
        NULLABLE.add(sym)
        for k in users[sym]:
            missing[k] -= 1
            if missing[k] == 0 and rules[k].origin not in NULLABLE:
                todo.append(rules[k].origin)

    def propagate(sets, edges, seeds):
        """Least sets with ``sets[b] >= sets[a]`` for every edge a -> b, from their current contents."""
        work = list(seeds)
        while work:
            a = work.pop()
            src = sets[a]
            for b in edges.get(a, ()):
                dst = sets[b]
                if not src <= dst:
                    dst |= src
                    work.append(b)

    # FIRST(X) >= FIRST(Y_i) for each rule X -> Y_1..Y_k while Y_1..Y_{i-1} are nullable
    into = defaultdict(set)
    for rule in rules:
        for sym in rule.expansion:
            if sym != rule.origin:
                into[sym].add(rule.origin)
            if sym not in NULLABLE:
                break
    propagate(FIRST, into, [s for s in symbols if s.is_term])

    # FOLLOW(Y_i) >= FIRST(Y_j) (j > i, Y_{i+1}..Y_{j-1} nullable); FOLLOW(Y_i) >= FOLLOW(X) (Y_{i+1}.. nullable)
    into = defaultdict(set)
    for rule in rules:
        exp = rule.expansion
        for i, sym in enumerate(exp):
            for j in range(i + 1, len(exp)):
                FOLLOW[sym] |= FIRST[exp[j]]
                if exp[j] not in NULLABLE:
                    break
            else:
                if sym != rule.origin:
                    into[rule.origin].add(sym)
    propagate(FOLLOW, into, list(symbols))
    return FIRST, FOLLOW, NULLABLE


_LARK_CALCULATE_SETS = None  # lark's own, kept once replaced (tests compare the two)


def install_lalr_sets() -> None:
    """Make lark's LALR analysis use :func:`calculate_sets` (idempotent; the same results, see above)."""
    global _LARK_CALCULATE_SETS
    if _LARK_CALCULATE_SETS is not None:
        return
    from lark.parsers import grammar_analysis

    _LARK_CALCULATE_SETS = grammar_analysis.calculate_sets
    grammar_analysis.calculate_sets = calculate_sets
