"""The compiled side of :class:`steerdiff_plugins.grammar.Grammar`: a lark grammar as a byte-level
lexer/parser model, the vocabulary walk that yields the exact token mask at the frontier, and
verified completion witnesses that keep every allowed token completable within the canvas.

The model is lark's own LALR + contextual-lexer semantics, replicated so that every text it accepts
is accepted by ``lark.Lark(grammar, parser="lalr")``:

- Parse table and LR items come from lark's ``LALR_Analyzer`` (same grammar compiler, same conflict
  resolution; a reduce/reduce collision is a :class:`GrammarError`).
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
from dataclasses import dataclass, field

import numpy as np

from steerdiff.errors import GrammarError

INF = 1 << 30
_ROOT = "$root_"


# --------------------------------------------------------------------------------------------------
# Terminal regex -> byte DFA
# --------------------------------------------------------------------------------------------------

def _utf8_need(lead: int) -> int:
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _utf8_range(lead: int, index: int) -> tuple[int, int]:
    """Allowed range of the continuation byte at ``index`` (1-based) after ``lead``."""
    if index == 1:
        if lead == 0xE0:
            return 0xA0, 0xBF
        if lead == 0xED:
            return 0x80, 0x9F
        if lead == 0xF0:
            return 0x90, 0xBF
        if lead == 0xF4:
            return 0x80, 0x8F
    return 0x80, 0xBF


# Lookbehind idioms of lark's common.lark, rewritten to equivalent regular expressions. lark's
# ESCAPED_STRING is /".*?(?<!\\)(\\\\)*?"/: the shortest run from a quote to the first quote preceded
# by an even number of backslashes, i.e. /"(?:[^"\\\n]|\\.)*"/ (no newline, as ``.`` excludes it).
_REWRITES = [
    (r'.*?(?<!\\)(\\\\)*?"', r'(?:[^"\\\n]|\\.)*"'),
    (r"\".*?(?<!\\)(\\\\)*?\"", r'"(?:[^"\\\n]|\\.)*"'),
]


@dataclass
class ByteDFA:
    trans: np.ndarray  # (S, 256) int32, -1 = dead
    accept: np.ndarray  # (S,) bool
    initial: int = 0


def regex_to_byte_dfa(regex: str, name: str) -> ByteDFA:
    import interegular
    from interegular.fsm import anything_else

    from steerdiff_plugins.compile_budget import INTEREGULAR_EXPANSION, expansion

    for old, new in _REWRITES:
        regex = regex.replace(old, new)
    if expansion(regex, INTEREGULAR_EXPANSION) > INTEREGULAR_EXPANSION:
        return _counted_terminal(regex, name)  # interegular is quadratic in counted copies
    try:
        fsm = interegular.parse_pattern(regex).to_fsm()
    except Exception as exc:  # interegular cannot express it (lookaround, backreference)
        raise GrammarError(f"terminal {name}: pattern /{regex}/ is not a regular language the engine can compile: {exc}") from None
    alpha = fsm.alphabet
    other = alpha[anything_else]
    explicit = [c for c in alpha._symbol_mapping if isinstance(c, str) and ord(c) >= 128]
    prefixes = set()
    for c in explicit:
        e = c.encode("utf-8")
        for i in range(1, len(e)):
            prefixes.add(e[:i])

    def cls(ch: str) -> int:
        return alpha[ch] if ch in alpha._symbol_mapping else other

    ids: dict = {}
    keys: list = []
    work: deque = deque()

    def node(key):
        if key is None:
            return -1
        if key not in ids:
            ids[key] = len(keys)
            keys.append(key)
            work.append(key)
        return ids[key]

    def target(s, sym):
        nxt = fsm.map.get(s, {}).get(sym)
        return None if nxt is None else ("s", nxt)

    def partial(s, prefix: bytes):
        if prefix in prefixes:
            return ("u", s, prefix)
        t = fsm.map.get(s, {}).get(other)
        return None if t is None else ("k", t, prefix[0], len(prefix))

    def step(key, b: int):
        kind = key[0]
        if kind == "s":
            s = key[1]
            if b < 0x80:
                return target(s, cls(chr(b)))
            if 0xC2 <= b <= 0xF4:
                return partial(s, bytes([b]))
            return None
        if kind == "u":
            _, s, prefix = key
            lo, hi = _utf8_range(prefix[0], len(prefix))
            if not lo <= b <= hi:
                return None
            p = prefix + bytes([b])
            if len(p) == _utf8_need(p[0]):
                return target(s, cls(p.decode("utf-8")))
            return partial(s, p)
        _, t, lead, consumed = key
        lo, hi = _utf8_range(lead, consumed)
        if not lo <= b <= hi:
            return None
        if consumed + 1 == _utf8_need(lead):
            return ("s", t)
        return ("k", t, lead, consumed + 1)

    node(("s", fsm.initial))
    rows = {}
    while work:
        key = work.popleft()
        rows[key] = [node(step(key, b)) for b in range(256)]
    trans = np.array([rows[k] for k in keys], dtype=np.int32).reshape(len(keys), 256)
    accept = np.array([k[0] == "s" and k[1] in fsm.finals for k in keys], dtype=bool)
    return ByteDFA(trans, accept)


def _counted_terminal(regex: str, name: str) -> ByteDFA:
    """A terminal with large counted repetitions through the regular engine's byte automaton
    (``tokendfa.byte_dfa``: outlines_core, the exact ``re.fullmatch`` language lark lexes with), under the
    byte-automaton budget (``compile_budget``)."""
    from steerdiff.errors import ConstraintError

    from steerdiff_plugins.compile_budget import CompileBudgetExceeded
    from .tokendfa import byte_dfa

    try:
        bd = byte_dfa(regex)
    except CompileBudgetExceeded as exc:
        raise CompileBudgetExceeded("terminal automaton", f"terminal {name}", exc.what) from None
    except ConstraintError as exc:
        raise GrammarError(f"terminal {name}: pattern /{regex}/ could not be compiled: {exc}") from None
    trans = bd.ctrans[:, bd.bcls].astype(np.int32)  # (S+1, 256), the dead sink last
    trans[trans == bd.dead] = -1
    return ByteDFA(np.ascontiguousarray(trans[:-1]), bd.accept[:-1].copy(), initial=int(bd.start))


# --------------------------------------------------------------------------------------------------
# Lexer contexts: product DFAs of lark's contextual lexers
# --------------------------------------------------------------------------------------------------

@dataclass
class Context:
    """One lark contextual lexer as a product DFA over bytes.

    ``trans (P, 256)``: next product state, -1 when the byte extends no slot (the lexeme ends before
    it). ``emit[P]``: the terminal name a lexeme ending in P is lexed as, or None when lark would not
    lex it so. ``ignored[P]``: that terminal is %ignore'd.
    """

    names: list[str]
    trans: np.ndarray
    emit: list
    ignored: np.ndarray
    can_emit: np.ndarray  # (P,) bool: emit[P] is not None
    rev: list = field(default_factory=list)  # rev[P] = list of (pred, byte) over writable bytes


def build_context(main: list[str], unless: dict[str, list[str]], dfas: dict[str, ByteDFA], ignore: frozenset[str],
                  writable: np.ndarray, limit: int = 200_000) -> Context:
    shadows = sorted({s for lst in unless.values() for s in lst} - set(main))
    slots = main + shadows
    slot_of = {n: i for i, n in enumerate(slots)}
    nmain = len(main)
    tables = [dfas[n].trans for n in slots]
    accepts = [dfas[n].accept for n in slots]
    # byte classes: bytes whose column is identical in every slot's DFA
    if slots:
        cols = np.concatenate([t.T for t in tables], axis=1)  # (256, sum S)
        _, first_idx, byte_cls = np.unique(cols, axis=0, return_index=True, return_inverse=True)
        byte_cls = byte_cls.reshape(-1)
        reps = [int(b) for b in first_idx]
    else:  # a parser state that expects no terminal, only the end of the text: no byte starts a lexeme
        byte_cls = np.zeros(256, dtype=np.int64)
        reps = [0]
    unless_slots = {slot_of[r]: [(s, slot_of[s]) for s in lst] for r, lst in unless.items() if r in slot_of}
    BIG = nmain

    def fm_of(states, fm):
        for i in range(min(fm, nmain)):
            if states[i] >= 0 and accepts[i][states[i]]:
                return i
        return fm

    # the start state is a sentinel no transition returns to: q == 0 means "no pending lexeme"
    start = ("start", (tuple(dfas[n].initial for n in slots), BIG))
    ids = {start: 0}
    keys = [start]
    rows = []
    i = 0
    while i < len(keys):
        states, fm = keys[i][1] if i == 0 else keys[i]
        i += 1
        alive = [k for k in range(len(slots)) if states[k] >= 0]
        row_cls = []
        for b in reps:
            nxt = [-1] * len(slots)
            any_main = False
            for k in alive:
                t = int(tables[k][states[k], b])
                nxt[k] = t
                if t >= 0 and k < nmain:
                    any_main = True
            if not any_main:
                row_cls.append(-1)
                continue
            nt = tuple(nxt)
            key = (nt, fm_of(nt, fm))
            if key not in ids:
                if len(keys) >= limit:
                    raise GrammarError(f"lexer context {main[:6]}... has more than {limit} states; the terminals are too complex")
                ids[key] = len(keys)
                keys.append(key)
            row_cls.append(ids[key])
        rows.append(row_cls)
    trans = np.array(rows, dtype=np.int32)[:, byte_cls]  # (P, 256)
    emit = []
    for key in keys:
        states, fm = key[1] if key[0] == "start" else key
        winner = None
        for k in range(nmain):
            if states[k] >= 0 and accepts[k][states[k]]:
                winner = k
                break
        if winner is None or fm < winner:
            emit.append(None)
            continue
        name = slots[winner]
        for sname, sslot in unless_slots.get(winner, []):
            if states[sslot] >= 0 and accepts[sslot][states[sslot]]:
                name = sname
                break
        emit.append(name)
    ignored = np.array([e is not None and e in ignore for e in emit], dtype=bool)
    can_emit = np.array([e is not None for e in emit], dtype=bool)
    rev = [[] for _ in keys]
    src, byt = np.nonzero(trans[:, writable] >= 0)
    wb = np.nonzero(writable)[0]
    for p, bi in zip(src.tolist(), byt.tolist()):
        b = int(wb[bi])
        rev[int(trans[p, b])].append((p, b))
    return Context(slots, trans, emit, ignored, can_emit, rev)


# --------------------------------------------------------------------------------------------------
# The compiled grammar
# --------------------------------------------------------------------------------------------------

def _line_of(grammar: str, needle: str) -> str:
    for i, line in enumerate(grammar.splitlines(), 1):
        if needle and needle in line:
            return f" (line {i}: {line.strip()!r})"
    return ""


_loaded: dict = {}
_loaded_lock = threading.Lock()


def load_lark(grammar: str, start: str):
    """``lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")``, turning every failure into a
    GrammarError naming the rule or line. Cached per (grammar, start): the constraint's fail-fast check,
    the compiled engine and the validator of finished outputs share one instance (building the LALR table
    of a large schema grammar takes most of a second)."""
    key = (grammar, start)
    with _loaded_lock:
        hit = _loaded.get(key)
    if hit is None:
        hit = _load_lark(grammar, start)
        with _loaded_lock:
            if len(_loaded) >= 64:
                _loaded.clear()
            _loaded[key] = hit
    return hit


def _load_lark(grammar: str, start: str):
    import lark
    from lark.exceptions import GrammarError as LarkGrammarError, UnexpectedInput

    if not isinstance(grammar, str) or not grammar.strip():
        raise GrammarError("the grammar is empty: give the text of a lark grammar")
    try:
        return lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")
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
    except Exception as exc:
        text = str(exc).strip()
        if start in text and ("undefined" in text.lower() or "not defined" in text.lower()):
            raise GrammarError(f"start rule {start!r} is not defined in the grammar: {text}") from None
        raise GrammarError(f"lark could not load the grammar: {type(exc).__name__}: {text}") from None


class CompiledGrammar:
    """Immutable after construction except for memo tables (guarded by a lock; results never change)."""

    def __init__(self, grammar: str, start: str, vocab, fill_bytes_ok: bool = True):
        from lark.lexer import ContextualLexer, PatternStr, PatternRE, _create_unless
        from lark.parsers.lalr_analysis import LALR_Analyzer, Shift
        from lark.exceptions import GrammarError as LarkGrammarError

        self.grammar, self.start, self.vocab = grammar, start, vocab
        self._lock = threading.RLock()
        lk = load_lark(grammar, start)
        self.lark = lk
        pf = lk.parser
        if pf.lexer_conf.postlex is not None:
            raise GrammarError("grammars with a post-lexer (indentation _INDENT/_DEDENT) are not supported")
        # --- parse table with items (same analysis lark ran, kept with its LR items)
        try:
            an = LALR_Analyzer(pf.parser_conf, debug=True)
            an.compute_lalr()
        except LarkGrammarError as exc:
            raise GrammarError(f"grammar is not LALR(1): {exc}") from None
        pt = an.parse_table
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
        self.dfas: dict[str, ByteDFA] = {}
        for t in conf.terminals:
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

    def _shortest(self, d: ByteDFA) -> bytes | None:
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
        rules = self.lark.rules
        cost = {n: (len(s) if s is not None else INF) for n, s in self.tstr.items()}
        for n in undef:
            cost[n] = INF
        best_rule: dict = {}
        changed = True
        nts = {r.origin.name for r in rules}
        for n in nts:
            cost.setdefault(n, INF)
        while changed:
            changed = False
            for r in rules:
                c = 0
                for x in r.expansion:
                    c += cost.get(x.name, INF)
                    if c >= INF:
                        break
                if c < cost[r.origin.name]:
                    cost[r.origin.name] = c
                    best_rule[r.origin.name] = r
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
                name = ctx.emit[q]
                if name is None:
                    return None
                if name not in self.ignore:
                    stack = self.feed(stack, name)
                    if stack is None:
                        return None
                    ctx = self.ctx_for(stack)
                q = 0
                nq = int(ctx.trans[0, b])
                if nq < 0:
                    return None
            q = nq
        return stack, q

    def accepts_eof(self, stack: tuple, q: int) -> bool:
        if q != 0:
            ctx = self.ctx_for(stack)
            name = ctx.emit[q]
            if name is None:
                return False
            if name not in self.ignore:
                stack = self.feed(stack, name)
                if stack is None:
                    return False
        return self.accepts_end(stack)

    # ---------------------------------------------------------------- completions (witnesses)
    def completion_terms(self, stack: tuple) -> list[str] | None:
        """Terminals of a shortest (by canonical byte length) derivation that completes ``stack``."""
        memo: dict = {}
        busy = set()
        n = len(stack)

        def best(i: int, s: int):
            key = (i, s)
            if key in memo:
                return memo[key]
            if key in busy:
                return (INF, None)
            busy.add(key)
            res = (INF, None)
            for rule, k in self.items[s]:
                beta = rule.expansion[k:]
                c = sum(self.symcost.get(x.name, INF) for x in beta)
                if c >= res[0]:
                    continue
                if rule.origin.name.startswith(_ROOT):
                    res = (c, (beta, None))
                    continue
                if k > i:
                    continue
                below = stack[i - k]
                g = self.actions[below].get(rule.origin.name)
                if g is None:
                    continue
                sub = best(i - k + 1, g[1])
                if c + sub[0] < res[0]:
                    res = (c + sub[0], (beta, (i - k + 1, g[1])))
            busy.discard(key)
            memo[key] = res
            return res

        top = best(n - 1, stack[-1])
        if top[0] >= INF:
            return None
        out: list[str] = []
        node = (n - 1, stack[-1])
        guard = 0
        while node is not None and guard < 10_000:
            guard += 1
            c, link = memo[node]
            beta, nxt = link
            for x in beta:
                self.expand(x.name, out)
            node = nxt
        return out

    def _write_terms(self, stack: tuple, terms: list[str], always_sep: bool):
        """Write terminals' canonical strings from a lexeme start, inserting separators when needed."""
        cfg = (stack, 0)
        out = bytearray()
        for t in terms:
            s = self.tstr.get(t)
            if s is None:
                return None
            nxt = None
            if not always_sep or not out:
                nxt = self.feed_bytes(cfg[0], cfg[1], s)
                if nxt is not None:
                    out += s
            if nxt is None and self.sep is not None and out:
                nxt = self.feed_bytes(cfg[0], cfg[1], self.sep + s)
                if nxt is not None:
                    out += self.sep + s
            if nxt is None:
                return None
            cfg = nxt
        if not self.accepts_eof(*cfg):
            if self.sep is not None:
                nxt = self.feed_bytes(cfg[0], cfg[1], self.sep)
                if nxt is not None and self.accepts_eof(*nxt):
                    return bytes(out + self.sep)
            return None
        return bytes(out)

    def witness_at_start(self, stack: tuple) -> bytes | None:
        """A verified completion of ``stack`` with no pending lexeme (cached per stack)."""
        hit = self._memo_wit.get(stack, 0)
        if hit != 0:
            return hit
        res = None
        terms = self.completion_terms(stack)
        if terms is not None:
            res = self._write_terms(stack, terms, False)
            if res is None:
                res = self._write_terms(stack, terms, True)
        if res is None:
            res = self._search(stack, 0)
        if len(self._memo_wit) > 200_000:
            self._memo_wit.clear()
        self._memo_wit[stack] = res
        return res

    def _search(self, stack: tuple, q: int, budget: int = 3000) -> bytes | None:
        """Fallback: best-first search over bytes for a completion (bounded)."""
        import heapq

        def h(st):
            terms = self.completion_terms(st[0])
            return 0 if terms is None else sum(len(self.tstr.get(t) or b"") for t in terms)

        start = (stack, q)
        heap = [(h(start), 0, b"", start)]
        seen = set()
        n = 0
        while heap and n < budget:
            _, g, path, cfg = heapq.heappop(heap)
            if cfg in seen:
                continue
            seen.add(cfg)
            n += 1
            if self.accepts_eof(*cfg):
                return path
            for b in self._pref:
                nxt = self.feed_bytes(cfg[0], cfg[1], bytes([b]))
                if nxt is not None and nxt not in seen:
                    heapq.heappush(heap, (g + 1 + h(nxt), g + 1, path + bytes([b]), nxt))
        return None

    def _dist(self, cid: int, target: str, kill: int):
        """Distances (and next bytes) from each product state of context ``cid`` to a lexeme of type
        ``target`` that the byte ``kill`` ends (``kill = -1``: the text ends there)."""
        key = (cid, target, kill)
        hit = self._memo_dist.get(key)
        if hit is not None:
            return hit
        ctx = self.context(cid)
        P = len(ctx.emit)
        dist = np.full(P, INF, dtype=np.int64)
        nxt = np.full(P, -1, dtype=np.int32)
        dq = deque()
        for p in range(1, P):
            if ctx.emit[p] == target and (kill < 0 or ctx.trans[p, kill] < 0):
                dist[p] = 0
                dq.append(p)
        while dq:
            p = dq.popleft()
            for pred, b in ctx.rev[p]:
                if dist[pred] >= INF:
                    dist[pred] = dist[p] + 1
                    nxt[pred] = b
                    dq.append(pred)
        self._memo_dist[key] = (dist, nxt)
        return dist, nxt

    def _options(self, stack: tuple):
        """For a stack: [(terminal, continuation after it, dist array, next array)] to complete a pending lexeme."""
        hit = self._memo_costvec.get(stack)
        if hit is not None:
            return hit
        cid = self.ctx_of_state[stack[-1]]
        main, unless = self._ctx_specs[cid]
        names = set(main) | {s for lst in unless.values() for s in lst}
        opts = []
        for t in names:
            st2 = stack if t in self.ignore else self.feed(stack, t)
            if st2 is None:
                continue
            rest = self.witness_at_start(st2)
            if rest is None:
                continue
            rests = [rest]
            if self.sep is not None:  # the same continuation after a separator, for lexemes it would extend
                alt = self.sep + rest
                cfg = self.feed_bytes(st2, 0, alt)
                if cfg is not None and self.accepts_eof(*cfg):
                    rests.append(alt)
            for r in rests:
                d, nx = self._dist(cid, t, r[0] if r else -1)
                opts.append((t, r, d, nx))
        cost = np.full(len(self.context(cid).emit), INF, dtype=np.int64)
        for t, rest, d, nx in opts:
            cost = np.minimum(cost, d + len(rest))
        w0 = self.witness_at_start(stack)
        if w0 is not None:
            cost[0] = min(cost[0], len(w0))
        res = (opts, cost)
        if len(self._memo_costvec) > 100_000:
            self._memo_costvec.clear()
        self._memo_costvec[stack] = res
        return res

    def witness(self, stack: tuple, q: int) -> bytes | None:
        """A verified completion of configuration ``(stack, q)`` of minimal length among the candidates."""
        if q == 0:
            return self.witness_at_start(stack)
        opts, cost = self._options(stack)
        best = None
        for t, rest, d, nx in opts:
            if d[q] >= INF:
                continue
            if best is None or d[q] + len(rest) < best[0]:
                best = (int(d[q]) + len(rest), t, rest, nx)
        if best is None:
            return None
        _, t, rest, nx = best
        d = self._dist(self.ctx_of_state[stack[-1]], t, rest[0] if rest else -1)[0]
        path = bytearray()
        p = q
        ctx = self.ctx_for(stack)
        while d[p] > 0:
            b = int(nx[p])
            path.append(b)
            p = int(ctx.trans[p, b])
        return bytes(path) + rest

    def cost(self, stack: tuple, q: int) -> int:
        return int(self._options(stack)[1][q])

    # ---------------------------------------------------------------- vocabulary walk
    def _build_vocab_matrix(self) -> None:
        tb = self.vocab.token_bytes
        V = len(tb)
        ok = np.array([len(b) > 0 and i not in self.vocab.special for i, b in enumerate(tb)], dtype=bool)
        lens = np.array([len(b) for b in tb], dtype=np.int64)
        Lmax = int(lens[ok].max()) if ok.any() else 1
        M = np.zeros((V, Lmax), dtype=np.int64)
        for i, b in enumerate(tb):
            if ok[i]:
                M[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        self.V, self.tok_ok, self.tok_len, self.tok_mat = V, ok, lens, M
        # first token of a text whose decode drops one leading space
        if self.vocab.leading_space:
            lens1 = lens.copy()
            M1 = M.copy()
            sp = ok & (M[:, 0] == 32)
            M1[sp, :-1] = M[sp, 1:]
            M1[sp, -1] = 0
            lens1[sp] -= 1
            ok1 = ok & (lens1 > 0)
            self.first = (ok1, lens1, M1)
            self.first_empty = np.nonzero(ok & (lens1 == 0))[0]  # a lone space: writes nothing as first token
        else:
            self.first = (ok, lens, M)
            self.first_empty = np.zeros(0, dtype=np.int64)

    def walk(self, stack: tuple, q: int, first: bool = False):
        """Walk every token from configuration ``(stack, q)``.

        Returns ``(ids, stacks, states)``: the token ids that survive, and for each the configuration it
        leads to (``stacks`` as a list of distinct stack tuples and an index per token). Cached per
        configuration (the result does not depend on the canvas budget).
        """
        key = (stack, q, first)
        hit = self._memo_walk.get(key)
        if hit is not None:
            return hit
        ok, lens, M = self.first if first else (self.tok_ok, self.tok_len, self.tok_mat)
        ids = np.nonzero(ok)[0]
        out_ids, out_stack, out_q = [], [], []
        stacks: list = []
        stack_idx: dict = {}
        work = [(stack, ids, np.full(len(ids), q, dtype=np.int64), 0)]
        if first and len(self.first_empty):  # tokens that write nothing keep the configuration
            stack_idx[stack] = 0
            stacks.append(stack)
            out_ids.append(self.first_empty)
            out_stack.append(np.zeros(len(self.first_empty), dtype=np.int64))
            out_q.append(np.full(len(self.first_empty), q, dtype=np.int64))
        while work:
            st, tid, s, off = work.pop()
            ctx = self.ctx_for(st)
            T = ctx.trans
            emit = ctx.emit
            L = lens[tid]
            died_at = np.full(len(tid), -1, dtype=np.int64)
            pre = s.copy()
            alive = np.ones(len(tid), dtype=bool)
            maxl = int(L.max()) if len(tid) else 0
            for k in range(off, maxl):
                act = alive & (k < L)
                if not act.any():
                    break
                cur = s[act]
                nx = T[cur, M[tid[act], k]]
                dead = nx < 0
                if dead.any():
                    ai = np.nonzero(act)[0]
                    di = ai[dead]
                    died_at[di] = k
                    pre[di] = cur[dead]
                    alive[di] = False
                s[act] = np.where(dead, s[act], nx)
            fin = alive
            if fin.any():
                if st not in stack_idx:
                    stack_idx[st] = len(stacks)
                    stacks.append(st)
                out_ids.append(tid[fin])
                out_stack.append(np.full(int(fin.sum()), stack_idx[st], dtype=np.int64))
                out_q.append(s[fin])
            di = np.nonzero(~alive)[0]
            if len(di):
                groups: dict = {}
                for j, p, k in zip(di.tolist(), pre[di].tolist(), died_at[di].tolist()):
                    name = emit[p]
                    if name is None:
                        continue
                    groups.setdefault((name, k), []).append(j)
                for (name, k), js in groups.items():
                    st2 = st if name in self.ignore else self.feed(st, name)
                    if st2 is None:
                        continue
                    js = np.array(js, dtype=np.int64)
                    work.append((st2, tid[js], np.zeros(len(js), dtype=np.int64), k))
        if out_ids:
            a, b, c = np.concatenate(out_ids), np.concatenate(out_stack), np.concatenate(out_q)
            o = np.argsort(a, kind="stable")
            res = (a[o], stacks, b[o], c[o])
        else:
            res = (np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        if len(self._memo_walk) > 20_000:
            self._memo_walk.clear()
        self._memo_walk[key] = res
        return res

    def allowed(self, stack: tuple, q: int, budget: int, first: bool = False, witness: bytes | None = None):
        """Token ids that can follow configuration ``(stack, q)`` and still complete in ``budget`` tokens.

        ``budget``: positions left after this token. ``witness``: a verified completion of the
        configuration; the tokens that write its prefix keep the rest of it as their completion, so the
        token writing its first byte is always allowed when the witness fits. Returns (ids, costs).
        """
        ids, stacks, sidx, qs = self.walk(stack, q, first)
        if not len(ids):
            return ids, ids
        cost = np.empty(len(ids), dtype=np.int64)
        for i, st in enumerate(stacks):
            sel = sidx == i
            cost[sel] = self._options(st)[1][qs[sel]]
        if witness:
            tid = self.byte_token.get(witness[0])
            if tid is not None:
                j = np.searchsorted(ids, tid)
                if j < len(ids) and ids[j] == tid:
                    cost[j] = min(cost[j], len(witness) - 1)
        ok = cost <= budget
        return ids[ok], cost[ok]

    def token_step(self, stack: tuple, q: int, tid: int, first: bool):
        """Configuration after token ``tid`` (scalar path), or None."""
        ok, lens, M = self.first if first else (self.tok_ok, self.tok_len, self.tok_mat)
        if not ok[tid]:
            if first and self.tok_ok[tid] and lens[tid] == 0:
                return stack, q
            return None
        return self.feed_bytes(stack, q, M[tid, : lens[tid]].astype(np.uint8).tobytes())


_compiled: dict = {}
_compiled_lock = threading.Lock()


def compile_grammar(grammar: str, start: str, vocab) -> CompiledGrammar:
    """The compiled grammar for (grammar text, start rule, tokenizer vocabulary), built once and cached."""
    key = (grammar, start, id(vocab))
    with _compiled_lock:
        hit = _compiled.get(key)
        if hit is not None and hit[0] is vocab:
            return hit[1]
    cg = CompiledGrammar(grammar, start, vocab)
    with _compiled_lock:
        _compiled[key] = (vocab, cg)
    return cg
