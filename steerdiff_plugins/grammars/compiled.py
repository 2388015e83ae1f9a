"""The compiled side of :class:`steerdiff_plugins.grammar.Grammar`: a lark grammar as a byte-level
lexer/parser model, the vocabulary walk that yields the exact token mask at the frontier, and
verified completion witnesses that keep every allowed token completable within the canvas.

The model is lark's own LALR + contextual-lexer semantics, replicated so that every text it accepts
is accepted by ``lark.Lark(grammar, parser="lalr")``:

- Parse table and LR items come from lark's ``LALR_Analyzer`` (same grammar compiler, same conflict
  resolution; a reduce/reduce collision is a :class:`GrammarError`): the very analysis lark ran when
  ``load_lark`` built the parser (``loader.lalr_table``), read once and then let go, so its state numbers
  are those of lark's own contextual lexer, which is reused.
- Lexer contexts are lark's ``ContextualLexer`` lexers (one per parser state, shared per accept set):
  the terminals in lark's sort order, string terminals absorbed by a regex terminal (lark's
  ``_create_unless``) kept as *shadow* slots that only retype a finished lexeme, plus ``%ignore``.
- Each terminal regex becomes a character FSM (interegular), expanded to a byte DFA (UTF-8 aware:
  multi-byte characters the regex does not name are one "any other character" class).
- A lexer context is the product DFA of its slots. A lexeme ends when the next byte extends no slot
  (longest match, as Python's ``re`` alternation of lark's sorted greedy terminals does); the lexeme's
  type is the first terminal in lark's order that accepts it, and the lexeme is refused when a
  terminal earlier in lark's order matched a shorter prefix (lark would have taken that one). This
  keeps the model's language a subset of lark's, and equal to it on the grammars we test.

Per row, a configuration is ``(stack, q)``: the LALR state stack (a tuple) and the product state of
the pending lexeme in the context of the stack's top state. A *witness* is a byte string that
completes the configuration into an accepted text, checked by feeding it through the model; every
byte of a witness is writable by a single token, so a witness of ``n`` bytes needs at most ``n``
tokens.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from steerdiff.errors import GrammarError
from steerdiff_plugins.compile_budget import check_deadline
from steerdiff_plugins.grammars.lexer import Context, build_context
from steerdiff_plugins.grammars.loader import lalr_table, load_lark
from steerdiff_plugins.grammars.terminals import (
    _ROOT,
    INF,
    TerminalDFA,
    regex_to_byte_dfa,
)
from steerdiff_plugins.grammars.vocab_walk import _VocabWalk
from steerdiff_plugins.grammars.witness import _Witnesses


class CompiledGrammar(_Witnesses, _VocabWalk):
    """Immutable after construction except for memo tables (guarded by a lock; results never change)."""

    def __init__(self, grammar: str, start: str, vocab, fill_bytes_ok: bool = True, import_paths: tuple = ()):
        from lark.exceptions import GrammarError as LarkGrammarError
        from lark.lexer import ContextualLexer, _create_unless
        from lark.parsers.lalr_analysis import Shift

        self.grammar, self.start, self.vocab = grammar, start, vocab
        self._lock = threading.RLock()
        lk = load_lark(grammar, start, import_paths)
        self.lark = lk
        pf = lk.parser
        if pf.lexer_conf.postlex is not None:
            raise GrammarError("grammars with a post-lexer (indentation _INDENT/_DEDENT) are not supported")
        # --- parse table with items (the analysis lark ran at load, kept with its LR items: loader.lalr_table)
        try:
            pt = lalr_table(lk)
        except LarkGrammarError as exc:
            raise GrammarError(f"grammar is not LALR(1): {exc}") from None
        order = list(pt.states)
        sid = {s: i for i, s in enumerate(order)}
        self.actions: list[dict] = []
        for s in order:
            acts = {}
            for k, (a, arg) in pt.states[s].items():
                acts[k] = (True, sid[arg]) if a is Shift else (False, (arg.origin.name, len(arg.expansion)))
            self.actions.append(acts)
        self.items = [[(rp.rule, rp.index) for rp in s if rp.index > 0 or rp.rule.origin.name.startswith(_ROOT)] for s in order]
        self.start_state = sid[pt.start_states[start]]
        self.end_state = sid[pt.end_states[start]]
        # --- terminals
        conf = pf.lexer_conf
        self.ignore = frozenset(conf.ignore)
        self.terminal_defs = {t.name: t for t in conf.terminals}
        undef = [t.name for t in conf.terminals if t.pattern is None]
        self.dfas: dict[str, TerminalDFA] = {}
        for t in conf.terminals:
            check_deadline("terminal automaton", f"terminal {t.name}")  # the whole compile's clock (compile_budget)
            self.dfas[t.name] = regex_to_byte_dfa(t.pattern.to_regexp(), t.name)
            if t.pattern.flags - {"i"}:
                # lark applies flags inside to_regexp(); interegular honours (?i:...) and (?s:...)
                pass
        # --- writable bytes: those a single token writes on its own anywhere in a text
        tb = vocab.token_bytes
        self.byte_token = {}
        for tid, b in enumerate(tb):
            if len(b) == 1 and tid not in vocab.special and b[0] not in self.byte_token:
                self.byte_token[b[0]] = tid
        writable = np.zeros(256, dtype=bool)
        writable[list(self.byte_token)] = True
        self.writable = writable
        self._pref = sorted(np.nonzero(writable)[0].tolist(), key=self._byte_pref)
        # --- contexts (one per distinct accept set, as lark's ContextualLexer shares them)
        states_accepts = {i: list(a.keys()) for i, a in enumerate(self.actions)}
        cl = pf.lexer  # lark's own, built at load from this very table (same state numbers), when the table is kept
        if getattr(pf.parser, "debug_table", None) is not pt or not isinstance(cl, ContextualLexer):
            cl = ContextualLexer(conf, states_accepts, ())
        self.ctx_of_state = [0] * len(self.actions)
        self._ctx_specs: list = []
        spec_ids: dict = {}
        for i in range(len(self.actions)):
            bl = cl.lexers[i]
            key = id(bl)
            if key not in spec_ids:
                terms, callbacks = _create_unless(bl.terminals, bl.g_regex_flags, bl.re, bl.use_bytes)
                unless = {}
                for name, cb in callbacks.items():
                    sc = getattr(cb, "scanner", None)
                    if sc is not None:
                        unless[name] = [t.name for t in sc.terminals]
                spec_ids[key] = len(self._ctx_specs)
                self._ctx_specs.append(([t.name for t in terms], unless))
            self.ctx_of_state[i] = spec_ids[key]
        self._ctxs: dict[int, Context] = {}
        if getattr(pf.parser, "debug_table", None) is pt:  # read: let go of its item sets (MBs on large grammars);
            pf.parser.debug_table = None  # another vocabulary's engine for this grammar analyses afresh
        # --- shortest strings: terminals (over writable bytes), then nonterminals
        self.tstr: dict[str, bytes | None] = {n: self._shortest(d) for n, d in self.dfas.items()}
        self._nonterminal_lengths(undef)
        self.sep = None
        for n in sorted(self.ignore, key=lambda n: len(self.tstr.get(n) or b"xxxxxxxx")):
            if self.tstr.get(n):
                self.sep = self.tstr[n]
                break
        # --- vocabulary matrices for the vectorised walk
        self._build_vocab_matrix()
        self._memo_feed: dict = {}
        self._memo_wit: dict = {}
        self._memo_costvec: dict = {}
        self._memo_walk: dict = {}
        self._memo_dist: dict = {}
        self.initial = (self.start_state,)
        w = self.witness_at_start(self.initial)
        if w is None:
            raise GrammarError(f"the language of rule {start!r} is empty: no finite text derives it with this tokenizer's single-byte tokens")

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _byte_pref(b: int) -> tuple:
        c = chr(b)
        if c.islower():
            return (0, b)
        if c.isdigit():
            return (1, b)
        if c.isupper():
            return (2, b)
        if c == " ":
            return (3, b)
        if 33 <= b < 127:
            return (4, b)
        return (5, b)

    def _shortest(self, d: TerminalDFA) -> bytes | None:
        prev = {d.initial: None}
        dq = deque([d.initial])
        while dq:
            s = dq.popleft()
            if d.accept[s]:
                out = []
                while prev[s] is not None:
                    s, b = prev[s]
                    out.append(b)
                return bytes(reversed(out))
            for b in self._pref:
                t = int(d.trans[s, b])
                if t >= 0 and t not in prev:
                    prev[t] = (s, b)
                    dq.append(t)
        return None

    def _nonterminal_lengths(self, undef: list[str]) -> None:
        """``symcost``: the length of each symbol's shortest text (INF: none), ``best_rule``: the rule giving it,
        by sweeps over the rules in lark's order until nothing changes. Names as plain ``str`` (lark's ``Token``
        names compare in Python: most of the sweeps' time on large schema grammars)."""
        rules = [(str(r.origin.name), [str(x.name) for x in r.expansion], r) for r in self.lark.rules]
        cost = {str(n): (len(s) if s is not None else INF) for n, s in self.tstr.items()}
        for n in undef:
            cost[str(n)] = INF
        best_rule: dict = {}
        changed = True
        nts = {origin for origin, _, _ in rules}
        for n in nts:
            cost.setdefault(n, INF)
        get = cost.get
        while changed:
            changed = False
            for origin, names, r in rules:
                c = 0
                for x in names:
                    c += get(x, INF)
                    if c >= INF:
                        break
                if c < cost[origin]:
                    cost[origin] = c
                    best_rule[origin] = r
                    changed = True
        self.symcost = cost
        self.best_rule = best_rule
        if cost.get(self.start, INF) >= INF:
            dead = sorted(n for n in nts if cost[n] >= INF and not n.startswith("__"))
            unwritable = sorted(n for n, t in self.tstr.items() if t is None and n not in undef and bool(self.dfas[n].accept.any()))
            why = (f"; terminals this tokenizer cannot write with single-byte tokens: {', '.join(unwritable)}" if unwritable else "")
            raise GrammarError(f"the language of start rule {self.start!r} is empty: rules with no finite derivation: {', '.join(dead) or self.start}{why}")

    def expand(self, name: str, out: list) -> None:
        """Append the terminals of ``name``'s shortest derivation."""
        if name in self.tstr:
            out.append(name)
            return
        for x in self.best_rule[name].expansion:
            self.expand(x.name, out)

    def context(self, cid: int) -> Context:
        c = self._ctxs.get(cid)
        if c is None:
            with self._lock:
                c = self._ctxs.get(cid)
                if c is None:
                    main, unless = self._ctx_specs[cid]
                    c = build_context(main, unless, self.dfas, self.ignore, self.writable)
                    self._ctxs[cid] = c
        return c

    def ctx_for(self, stack: tuple) -> Context:
        return self.context(self.ctx_of_state[stack[-1]])

    # ---------------------------------------------------------------- parser
    def feed(self, stack: tuple, term: str):
        """The stack after shifting ``term`` (reductions included), or None when the parser refuses it."""
        key = (stack, term)
        hit = self._memo_feed.get(key, 0)
        if hit != 0:
            return hit
        st = list(stack)
        acts = self.actions
        res = None
        while True:
            a = acts[st[-1]].get(term)
            if a is None:
                break
            if a[0]:
                st.append(a[1])
                res = tuple(st)
                break
            origin, n = a[1]
            if n:
                del st[-n:]
            g = acts[st[-1]].get(origin)
            if g is None:
                break
            st.append(g[1])
            if term == "$END" and st[-1] == self.end_state:
                res = tuple(st)
                break
        if len(stack) <= 256:  # deep stacks are rare; memoising them would cost O(depth) memory each
            if len(self._memo_feed) > 500_000:
                self._memo_feed.clear()
            self._memo_feed[key] = res
        return res

    def accepts_end(self, stack: tuple) -> bool:
        if stack[-1] == self.end_state:
            return True
        return self.feed(stack, "$END") is not None

    # ---------------------------------------------------------------- byte-level model
    def feed_bytes(self, stack: tuple, q: int, data: bytes):
        """Feed bytes to configuration ``(stack, q)``; the new configuration or None when refused."""
        ctx = self.ctx_for(stack)
        for b in data:
            nq = int(ctx.trans[q, b])
            while nq < 0:
                stack = self._end_lexeme(stack, q)
                if stack is None:
                    return None
                ctx = self.ctx_for(stack)
                q = 0
                nq = int(ctx.trans[0, b])
                if nq < 0:
                    return None
            q = nq
        return stack, q

    def _end_lexeme(self, stack: tuple, q: int):
        """The stack after the pending lexeme (product state ``q``) ends: its terminal fed to the parser unless
        ``%ignore``d; None when ``q`` ends no terminal or the parser refuses it."""
        name = self.ctx_for(stack).emit[q]
        if name is None:
            return None
        return stack if name in self.ignore else self.feed(stack, name)

    def accepts_eof(self, stack: tuple, q: int) -> bool:
        if q != 0:
            stack = self._end_lexeme(stack, q)
            if stack is None:
                return False
        return self.accepts_end(stack)

_compiled: dict = {}
_compiled_lock = threading.Lock()


def compile_grammar(grammar: str, start: str, vocab, import_paths: tuple = ()) -> CompiledGrammar:
    """The compiled grammar for (grammar text, start rule, tokenizer vocabulary), built once and cached."""
    key = (grammar, start, id(vocab), tuple(import_paths))
    with _compiled_lock:
        hit = _compiled.get(key)
        if hit is not None and hit[0] is vocab:
            return hit[1]
    cg = CompiledGrammar(grammar, start, vocab, import_paths=tuple(import_paths))
    with _compiled_lock:
        _compiled[key] = (vocab, cg)
    return cg

