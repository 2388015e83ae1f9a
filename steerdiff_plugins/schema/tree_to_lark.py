"""A compiled schema tree (``steerdiff_plugins.schema.nodes``) as a lark grammar: ``tree_to_lark(node)``,
for schemas whose regex or automaton would be too large for the regular engine (the same language, every
keyword the regular engine takes, shared subtrees written once).

Reference graphs: ``to_lark.compile_graph(schema)`` is the regular engine's compiler (``compiler._Compiler``: every
keyword, merge, ``oneOf`` proof and narrowing) except that a ``$ref`` it would not merge with siblings (nor
read under ``enum``/``const``/``if``) becomes a :class:`Ref`, the target's node compiled once per resolved URL
and shared by every use; recursion is a cycle through it, and ``tree_to_lark`` writes one rule per
:class:`Ref` (no unrolling: webs of mutually recursive definitions, as in the Washington Post ANS schemas,
grow exponentially when unrolled ``max_depth`` times). The language stays a subset of the valid instances:

* a target's node depends on where it is used only through the nesting-depth narrowings (``AnyValue``
  depth, types inferred past ``max_depth``), each a subset either way; ``extra_keys`` depends on the place
  (closure by nesting level and ``oneOf`` proofs), so graphs are compiled with closed objects only;
* a ``$ref`` with sibling keywords (draft 2019+) is merged and unrolled as the tree compiler does;
* ``Ref.regex()`` is the target's regex, and raises :class:`UnsupportedSchemaError` (``$ref``) on a cycle:
  a keyword that needs the regex of a recursive part is refused by name, never loosened;
* a reference without a finite instance (recursion on a required path) is refused (``$ref``, its pointer).

Budgets: the tree compiler's (``MAX_NODES`` subschemas, ``SCHEMA_SECONDS``), and for graphs the ``grammar``
stage's (``grammars.loader.MAX_GRAMMAR_PRODUCTIONS``) before lark's LALR analysis, each a named ``size`` refusal.
"""

from __future__ import annotations

import sys

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.compile_budget import check_deadline
from steerdiff_plugins.schema.fragments import _lit_char
from steerdiff_plugins.schema.nodes import Node
from steerdiff_plugins.schema.to_lark import (
    _ANY_RULES,
    _TERMINALS,
    _canon,
    _check_lalr,
    _lit,
    _object_chain,
)

__all__ = ["tree_to_lark", "lark_regex", "check_terminals", "Ref", "peel"]


MAX_TREE_SPAN = 256  # widest maxItems - minItems the grammar writes (a chain of rules); beyond it maxItems is refused


def lark_regex(regex: str) -> str:
    """``regex`` (the schema compiler's dialect, ``steerdiff_plugins.schema.fragments``) as the body of a lark ``/.../`` literal that lark reads back
    as the same regex. lark unescapes ``\\"`` to ``"`` before evaluating the literal as a Python string
    (so a JSON-escaped quote ``\\\\"`` would lose its backslash) and ends the literal at a bare ``/``: quotes
    are written ``\\x22`` / ``\\x27`` (lark evaluates them to the raw character, the same regex) and ``/`` as
    ``\\/``. The result is checked in :func:`tree_to_lark` against lark's own reading."""
    out, i = [], 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            out.append({'"': r"\x22", "'": r"\x27"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append({'"': r"\x22", "'": r"\x27", "/": r"\/"}.get(c, c))
        i += 1
    return "".join(out)


def _same_regex(a: str, b: str) -> bool:
    """Whether two regexes parse to the same structure (so ``\\x22`` and ``"`` are the same)."""
    from steerdiff_plugins.schema.pattern import _sre_parse

    try:
        return str(_sre_parse.parse(a, 0)) == str(_sre_parse.parse(b, 0))
    except Exception:  # re.error: not the same regex then
        return False


class _TreeGrammar:
    """Rules for a node tree: scalar leaves (and unions of them) become one terminal each, composite
    nodes one rule each. Identical subtrees (the same ``$ref`` unrolled in many places, which is what makes
    the regex too large) share one symbol: symbols are hash-consed on (kind, child symbols)."""

    def __init__(self, prefix: str = ""):
        self.p = prefix  # rule names start with it (lowercase), terminal names with its upper case
        self.rules: dict[str, list[str]] = {}
        self.terms: dict[str, str] = {}  # regex -> terminal name
        self.keyed: dict = {}  # structural key -> rule name
        self.memo: dict[int, tuple[str, object]] = {}  # id(node) -> (symbol, node kept alive)
        self.busy: dict[int, str | None] = {}  # id(node) -> its forward rule (None: none yet) while written
        self.any_value = None

    def term(self, regex: str) -> str:
        if regex not in self.terms:
            self.terms[regex] = f"{self.p.upper()}T{len(self.terms)}"
        return self.terms[regex]

    def rule(self, key, make) -> str:
        if key not in self.keyed:
            name = f"{self.p}r{len(self.keyed)}"
            self.keyed[key] = name
            self.rules[name] = list(dict.fromkeys(make()))
        return self.keyed[key]

    def sym(self, node) -> str:
        hit = self.memo.get(id(node))
        if hit is None:
            busy = self.busy.get(id(node), False)
            if busy is not False:  # a cycle that unions close by seeing through a Ref: a forward rule
                if busy is None:
                    busy = self.busy[id(node)] = f"{self.p}w{len(self.busy)}_{len(self.memo)}"
                    self.rules[busy] = []  # placeholder, written when the node is
                return busy
            self.busy[id(node)] = None
            check_deadline("grammar", getattr(node, "pointer", None))  # the whole compile's clock
            try:
                s = self._sym(node)
            finally:
                fwd = self.busy.pop(id(node))
            if fwd is not None:
                self.rules[fwd] = [s]
            hit = (s, node)
            self.memo[id(node)] = hit
        return hit[0]

    def _leafy(self, node) -> bool:
        from steerdiff_plugins.schema import nodes as jr

        if isinstance(node, (jr.Lit, jr.Str, jr.Int, jr.Num)):
            return True
        if isinstance(node, jr.Arr) and node.unique_enum:
            return True
        return isinstance(node, jr.Union) and all(self._leafy(a) for a in node.alts)

    def _flat_leaves(self, nodes):
        """(non-numeric leaf regexes, numeric leaf regexes) of leafy nodes, unions flattened and enums split."""
        from steerdiff_plugins.schema import nodes as jr

        text, num = [], []
        for n in nodes:
            if isinstance(n, jr.Union):
                t, m = self._flat_leaves(n.alts)
                text, num = text + t, num + m
            elif isinstance(n, (jr.Int, jr.Num)):
                num.append(n.regex())
            elif isinstance(n, jr.Lit):
                is_num = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in n.values]
                if any(is_num):
                    num.append(jr.Lit([v for v, k in zip(n.values, is_num) if k]).regex())
                if not all(is_num):
                    text.append(jr.Lit([v for v, k in zip(n.values, is_num) if not k]).regex())
            else:
                text.append(n.regex())
        return text, num

    def leaf_syms(self, nodes) -> list[str]:
        """Symbols for leafy nodes: one terminal for the self-delimiting texts (strings, literals, enum
        arrays/objects), one :meth:`number_rule` for the numbers."""
        from steerdiff_plugins.schema import nodes as jr

        text, num = self._flat_leaves(nodes)
        out = [self.term(jr._alt(text))] if text else []
        return out + ([self.number_rule(jr._alt(num))] if num else [])

    def number_rule(self, regex: str) -> str:
        """Numbers as rules over single-character terminals, one rule per state of the regex's DFA.

        Not one terminal: lark lexes a terminal with Python's ``re.match``, whose alternation is
        leftmost-first, so ``(?:[1-9]|[1-9][0-9]+)`` would lex ``-8534`` as ``-8`` and then fail (a string,
        literal or enum object ends at its closing quote or bracket, so it has no such shorter match). A
        deterministic rule per state leaves the length to the parser; the character classes of one DFA
        are disjoint."""
        import interegular

        key = ("num", regex)
        if key in self.keyed:
            return self.keyed[key]
        fsm = interegular.parse_pattern(regex).to_fsm()
        chars = {i: cs for i, cs in fsm.alphabet.by_transition.items()}
        live = set(fsm.finals)
        changed = True
        while changed:
            changed = False
            for q, out in fsm.map.items():
                if q not in live and any(t in live for t in out.values()):
                    live.add(q)
                    changed = True
        base = f"{self.p}d{len(self.keyed)}"
        self.keyed[key] = f"{base}_{fsm.initial}"
        todo, seen = [fsm.initial], {fsm.initial}
        while todo:
            q = todo.pop()
            alts = []
            for cls, q2 in sorted(fsm.map.get(q, {}).items()):
                if q2 not in live:
                    continue
                if any(not isinstance(c, str) for c in chars[cls]):
                    raise ConstraintError(f"number_rule: {regex!r} has an any-other-character step (engine bug)")
                cs = sorted(chars[cls])
                t = self.term(_lit_char(cs[0]) if len(cs) == 1 else "[" + "".join(_lit_char(c) for c in cs) + "]")
                if q2 in fsm.finals:
                    alts.append(t)
                if any(t2 in live for t2 in fsm.map.get(q2, {}).values()):
                    alts.append(f"{t} {base}_{q2}")
                    if q2 not in seen:
                        seen.add(q2)
                        todo.append(q2)
            self.rules[f"{base}_{q}"] = alts
        return self.keyed[key]

    def _sym(self, node) -> str:
        from steerdiff_plugins.schema import nodes as jr

        if isinstance(node, Ref):  # one rule per $ref target (compile_graph), named before its body: recursion
            name = f"{self.p}f{len(self.memo)}"
            self.memo[id(node)] = (name, node)
            self.rules[name] = []  # placeholder while the target is written
            self.rules[name] = [self.sym(node.target)]
            return name
        if isinstance(node, jr.Union):
            node = _flat_union(node)
        if self._leafy(node):
            syms = self.leaf_syms([node])
            return syms[0] if len(syms) == 1 else self.rule(("union", tuple(syms)), lambda: syms)
        if isinstance(node, jr.AnyValue):  # any JSON value; the regex bounds its depth only to stay finite
            return self.any_rule()
        if isinstance(node, jr.Union):
            leaves = [a for a in node.alts if self._leafy(a)]
            objs = [a for a in node.alts if isinstance(a, jr.Obj) and a.map_value is None]
            maps = [a for a in node.alts if isinstance(a, jr.Obj) and a.map_value is not None]
            alts, has_empty = [], set()  # has_empty: "{" / "[" when a branch already takes "{}" / "[]"
            merge = len(objs) > 1 or (objs and maps)
            if merge:  # overlapping object branches (all-optional keys) would collide in LALR: one DFA
                merged = self.objects_rule(objs, node)
                alts.append(merged)
                if self.rules[merged][-1] == '"{" "}"':
                    has_empty.add("{")
            for a in node.alts:
                if self._leafy(a) or (merge and a in objs):
                    continue
                if isinstance(a, jr.Obj) and a.map_value is not None and "{" in has_empty:  # "{}" is taken already
                    k, v = self.term(a.map_key + ":"), self.sym(a.map_value)
                    more = _map_more(a, k, v)
                    alts.append(self.rule(("map+", k, v, more), lambda: [f'"{{" {k} {v} {more} "}}"']))
                elif isinstance(a, jr.Arr) and not a.unique_enum and a.lo == 0 and "[" in has_empty:
                    if a.hi != 0:  # an array that can only be "[]" adds nothing
                        alts.append(self.array_rule(a, nonempty=True))
                else:
                    alts.append(self.sym(a))
                    if isinstance(a, jr.Arr) and a.lo == 0:
                        has_empty.add("[")
                    if isinstance(a, jr.Obj):
                        has_empty.add("{")
            if leaves:
                alts += self.leaf_syms(leaves)
            return self.rule(("union", tuple(alts)), lambda: alts)
        if isinstance(node, jr.Obj):
            return self.object_rule(node)
        if isinstance(node, jr.Arr):
            return self.array_rule(node)
        raise ConstraintError(f"tree_to_lark: no grammar for a {type(node).__name__} node (engine bug)")

    def object_rule(self, node) -> str:
        if node.map_value is not None:
            k, v = self.term(node.map_key + ":"), self.sym(node.map_value)
            more = _map_more(node, k, v)
            empty = [] if node.map_lo else ['"{" "}"']
            return self.rule(("map", k, v, more, bool(node.map_lo)), lambda: empty + [f'"{{" {k} {v} {more} "}}"'])
        entries = tuple((_lit(_canon(key) + ":"), self.sym(n), bool(req)) for key, n, req in node.props if not n.empty)
        if node.extra is not None:
            return self.open_object_rule(node, entries)
        if not entries:
            return self.rule(("obj",), lambda: ['"{" "}"'])

        def make():
            rules, out = _object_chain(entries, f"{self.p}o{len(self.keyed)}")
            self.rules.update(rules)
            return out

        return self.rule(("obj", entries), make)

    def open_object_rule(self, node, entries) -> str:
        """An object with undeclared keys (``Obj.extra``, ``compile_schema(extra_keys=...)``), as its regex
        (``nodes.Obj._build``) writes it: any number of undeclared entries ``"KEY":value`` (the key regex
        excludes every declared key) before the declared sequence, or alone when no declared key is required."""
        e = f'{self.term(chr(34) + node.extra[0] + chr(34) + ":")} {self.sym(node.extra[1])}'
        if not entries:
            return self.rule(("open", e), lambda: ['"{" "}"', f'"{{" {e} ("," {e})* "}}"'])

        def make():
            rules, out = _object_chain(entries, f"{self.p}o{len(self.keyed)}")
            self.rules.update(rules)
            body = out[0][len('"{" '):-len(' "}"')]  # the non-empty declared sequence
            alts = [f'"{{" ({e} ",")* {body} "}}"']
            if len(out) > 1:  # no declared key required: the empty object, or undeclared entries alone
                alts += ['"{" "}"', f'"{{" ({e} ",")* {e} "}}"']
            return alts

        return self.rule(("open", e, entries), make)

    def objects_rule(self, objs, where) -> str:
        """One rule for the union of several objects' languages. Each object is a language over entries
        (key literal, value symbol): the subsequences of its entries, in order, that keep every required
        one. The union's automaton over entries is made deterministic (subset construction), so a text
        common to several branches (``{}``, shared optional keys) has one derivation and LALR(1) does not
        collide; each deterministic state becomes a rule."""
        lists = [[(_lit(_canon(k) + ":"), self.sym(n), bool(r)) for k, n, r in o.props if not n.empty] for o in objs]

        def accepting(state):
            return any(not any(r for _, _, r in lists[a][i:]) for a, i in state)

        def moves(state):
            out: dict = {}
            for a, i in state:
                for j in range(i, len(lists[a])):
                    key, val, req = lists[a][j]
                    out.setdefault((key, val), set()).add((a, j + 1))
                    if req:
                        break
            return {letter: frozenset(t) for letter, t in out.items()}

        start = frozenset((a, 0) for a in range(len(lists)))
        ids, todo, edges = {start: 0}, [start], {}
        while todo:
            check_deadline("grammar", getattr(where, "pointer", None))
            st = todo.pop()
            edges[st] = moves(st)
            for t in edges[st].values():
                if t not in ids:
                    ids[t] = len(ids)
                    todo.append(t)
                    if len(ids) > 5000:
                        raise UnsupportedSchemaError("anyOf", getattr(where, "pointer", "#"),
                                                     "object branches too many to merge (over 5000 states)")
        base = f"{self.p}m{len(self.keyed)}"

        def make():
            # rule {base}_{state}_1: the entries from that state on, each after a comma, and the empty text when
            # the state accepts (a nullable rule, not "[rule]" at every use: lark would double each use);
            # {base}_0_0 (the start state, entered after "{" only) writes its first entry without the comma
            for st, out in edges.items():
                if not out:
                    continue
                for w in ((False, True) if st is start else (True,)):
                    alts = []
                    for (key, val), t in out.items():
                        head = ('"," ' if w else "") + f"{key} {val}"
                        if edges[t]:
                            head += f" {base}_{ids[t]}_1"
                        alts.append(head)
                    if w and accepting(st):
                        alts.append("")
                    self.rules[f"{base}_{ids[st]}_{int(w)}"] = alts
            out = [f'"{{" {base}_0_0 "}}"'] if edges[start] else []
            return out + (['"{" "}"'] if accepting(start) else [])

        return self.rule(("objs", tuple(tuple(x) for x in lists)), make)

    def array_rule(self, node, nonempty: bool = False) -> str:
        """The rule of an array node; ``nonempty``: without ``[]`` (another union branch has it)."""
        els = [self.sym(p) for p in node.prefix]
        item = self.sym(node.items) if node.items is not None else None
        lo, hi = max(node.lo, int(nonempty)), node.hi
        if hi is not None and hi - lo > MAX_TREE_SPAN:
            raise UnsupportedSchemaError("maxItems", getattr(node, "pointer", "#"),
                                         f"maxItems - minItems > {MAX_TREE_SPAN} in the grammar engine")
        if lo > MAX_TREE_SPAN:  # rep() writes minItems copies of the item: refused before building them
            raise UnsupportedSchemaError("minItems", getattr(node, "pointer", "#"), f"minItems > {MAX_TREE_SPAN} in the grammar engine")

        def rep(x: str, n_lo: int, n_hi):
            """x repeated n_lo..n_hi times (None: unbounded) as a lark expression."""
            seq = [x] * n_lo
            if n_hi is None:
                seq.append(f"({x})*")
            elif n_hi - n_lo <= 8:
                tail = ""
                for _ in range(n_hi - n_lo):
                    tail = f"[{x}{(' ' + tail) if tail else ''}]"
                seq.append(tail)
            elif n_hi > n_lo:  # a chain of rules: lark's grammar loader recurses once per nested [...]
                base = f"{self.p}c{len(self.keyed)}_{len(self.rules)}"
                for j in range(1, n_hi - n_lo + 1):
                    self.rules[f"{base}_{j}"] = [x + (f" [{base}_{j - 1}]" if j > 1 else "")]
                seq.append(f"[{base}_{n_hi - n_lo}]")
            return " ".join(seq)

        def tail(i: int) -> str:  # the array body from element i on (nodes.Arr._tail, as grammar)
            if hi is not None and i >= hi:
                return ""
            if i >= len(els):
                rmin = max(0, lo - i)
                rmax = None if hi is None else hi - i
                if i == 0:
                    body = item + (" " + rep(f'"," {item}', max(rmin, 1) - 1, None if rmax is None else rmax - 1)).rstrip()
                    return f"[{body}]" if rmin == 0 else body
                return rep(f'"," {item}', rmin, rmax)
            s = ('"," ' if i else "") + els[i] + (" " + tail(i + 1)).rstrip()
            return s if i < lo else f"[{s}]"

        return self.rule(("arr", tuple(els), item, lo, hi), lambda: [f'"[" {tail(0)} "]"'])

    def any_rule(self) -> str:
        if self.any_value is None:
            self.any_value = "anyvalue"
            self.rules.update({name: list(alts) for name, alts in _ANY_RULES.items()})
        return self.any_value


def tree_to_lark(node, budget: bool = False) -> str:
    """A lark grammar (LALR(1), start rule ``start``) whose language is the language of ``node``, a tree
    from ``steerdiff_plugins.schema.compiled.compile_tree``: the same canonical JSON texts its regex would accept (any-value
    parts are not depth-bounded here, which only adds valid texts: ``compile_tree(any_depth=None)`` asks for
    this). For schemas whose regex or automaton is too large: a subtree used in many places is one rule here,
    where a regex must repeat it. Undeclared keys (``Obj.extra``) are written as the regex writes them, except on
    the object branches of a union, which are merged closed (a narrowing).

    ``node`` may be a graph from ``compile_graph``: each :class:`Ref` is one rule, named
    before its target is written, so recursion is a rule that refers to itself (no unrolling); unions see
    through references (``_flat_union``).

    Raises :class:`UnsupportedSchemaError` for a grammar lark cannot build an LALR(1) table for (anyOf
    branches that overlap), for array bounds wider than ``MAX_TREE_SPAN``, and (``size``) for a grammar nested
    deeper than Python's recursion allows or, with ``budget``, over the ``grammar`` stage's budget
    (``grammars.loader.MAX_GRAMMAR_PRODUCTIONS``, checked before lark's uninterruptible LALR analysis; fill
    sets it for reference graphs only: tree grammars of up to 12,301 productions, sp_170, compiled before
    the budget existed, in 7 s, and stay as they were).
    """
    b = _TreeGrammar()
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))  # a reference graph (compile_graph) nests as deep as its schema
    try:
        top = b.sym(node)
    except RecursionError:
        raise UnsupportedSchemaError("size", getattr(node, "pointer", "#"), "the schema nests too deeply for the "
                                     "grammar writer (Python's recursion limit)") from None
    finally:
        sys.setrecursionlimit(old)
    lines = [f"start: {top}"]
    for name, alts in b.rules.items():
        lines.append(f"{name}: " + "\n    | ".join(alts))
    for regex, name in b.terms.items():
        lines.append(f"{name}: /{lark_regex(regex)}/")
    grammar = "\n".join(lines) + "\n" + (_TERMINALS if b.any_value else "")
    if budget:
        from steerdiff_plugins.compile_budget import CompileBudgetExceeded
        from steerdiff_plugins.grammars.loader import check_grammar_size

        try:  # lark's LALR analysis cannot be interrupted: its size is bounded first
            check_grammar_size(grammar)
        except CompileBudgetExceeded as exc:  # fill's fallback names both engines' reasons for "size"
            raise UnsupportedSchemaError("size", getattr(node, "pointer", "#"), str(exc)) from None
    _check_lalr(grammar, {})
    check_terminals(grammar, b.terms)
    return grammar


def check_terminals(grammar: str, terms: dict[str, str]) -> None:
    """Check that lark reads each terminal of ``terms`` (regex -> name) in ``grammar`` back as the same
    regex (:func:`lark_regex` wrote it); a difference is an engine bug (ConstraintError)."""
    from steerdiff_plugins.grammars.loader import load_lark as validator

    terminals = validator(grammar, "start").terminals
    read = {t.name: t.pattern.value for t in terminals}
    for regex, name in terms.items():
        if name in read and not _same_regex(read[name], regex):  # (lark drops a terminal no rule uses)
            raise ConstraintError(f"tree_to_lark: lark reads terminal {name} as {read.get(name)!r}, not {regex!r} (engine bug)")


def _flat_union(node):
    """A union whose alternatives are seen through :class:`Ref` wrappers and nested unions (the same
    language), so object branches behind references are merged and leaves share one terminal as inline
    ones do; a union reached again through a reference cycle adds nothing (its texts are already there)."""
    from steerdiff_plugins.schema import nodes as jr

    if not any(isinstance(a, (Ref, jr.Union)) for a in node.alts):
        return node
    out, seen = [], {id(node)}

    def walk(alts):
        for a in alts:
            a = peel(a)
            if isinstance(a, jr.Union):
                if id(a) not in seen:
                    seen.add(id(a))
                    walk(a.alts)
            elif not a.empty:
                out.append(a)

    walk(node.alts)
    flat = jr.Union.__new__(jr.Union)
    flat.alts = out
    flat.pointer = getattr(node, "pointer", "#")
    return flat


_MAP_MOST = 16  # maxProperties on a map written as a lark range ("," k v) ~ 0..n-1 up to this many entries


def _map_more(node, k: str, v: str) -> str:
    """The entries after a map's first: ``("," k v)*``, or at most ``map_hi - 1`` of them (``nodes.Obj``:
    minProperties 1 / maxProperties on a map); a larger bound is refused by name."""
    if node.map_hi is None:
        return f'("," {k} {v})*'
    if node.map_hi > _MAP_MOST:
        raise UnsupportedSchemaError("maxProperties", getattr(node, "pointer", "#"),
                                     f"a map of at most {node.map_hi} entries in the tree grammar "
                                     f"(supported: up to {_MAP_MOST})")
    return f'("," {k} {v}) ~ 0..{node.map_hi - 1}' if node.map_hi > 1 else ""


# ------------------------------------------------------------------------------ reference graphs
class Ref(Node):
    """The shared node of one ``$ref`` target (``url``: its resolved URL); ``target`` is set once the target
    is compiled (a use inside the target itself sees it unset: a cycle)."""

    def __init__(self, url: str, pointer: str):
        self.url, self.pointer = url, pointer
        self.target: Node | None = None
        self._busy = False  # inside target.empty / target.regex(): a cycle

    @property
    def empty(self) -> bool:
        """Whether the target is known to admit nothing (False while it is being compiled, or on a cycle:
        :func:`compile_graph` refuses references without a finite instance afterwards)."""
        if self.target is None or self._busy:
            return False
        self._busy = True
        try:
            return self.target.empty
        finally:
            self._busy = False

    def _build(self) -> str:
        if self.target is None or self._busy:
            raise UnsupportedSchemaError("$ref", self.pointer, f"recursive reference {self.url!r} has no regular "
                                         "expression (the grammar engine writes it as a rule)")
        self._busy = True
        try:
            return self.target.regex()
        finally:
            self._busy = False

    def dump(self, v) -> str:
        return self.target.dump(v) if self.target is not None else super().dump(v)


def peel(node) -> Node:
    """``node`` without its :class:`Ref` wrappers (a chain of references that only point at each other
    ends at its last :class:`Ref`)."""
    seen = set()
    while isinstance(node, Ref) and node.target is not None and id(node) not in seen:
        seen.add(id(node))
        node = node.target
    return node
