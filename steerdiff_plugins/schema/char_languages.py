r"""Strings over characters: patterns and value sets as automata, for ``not`` / ``oneOf`` exclusion and
disjointness (used by ``combinators``).

A JSON Schema string constraint is read here as a language of *decoded* strings: a tree of
('set', ranges) | ('cat', [t]) | ('alt', [t]) | ('rep', lo, hi, t) over code points (surrogates left out,
as no canonical JSON text holds one). A pattern is read either as a subset ("sub": what the positive
compile writes) or as a superset ("sup": what a negated or compared pattern may match) of both its
Python and its ECMA-262 reading: \d \w \s narrow or wide, and a final ``$`` as end-or-before-a-final-
newline (Python's ``re.search``) in the superset. Automata are deterministic over "atoms" (the classes
of code points no range tells apart), and a language goes back to the regex dialect by state
elimination, each character in its canonical JSON encoding (``pattern.charset_regex``): a narrowing
to canonical spellings (no ``\/``, no ``\u`` escapes of printable characters).
"""

from __future__ import annotations

import collections
import functools
import threading

from steerdiff_plugins.compile_budget import check_deadline
from steerdiff_plugins.schema.fragments import _alt

_UNIV = ((0, 0xD7FF), (0xE000, 0x10FFFF))
_ANYSTAR = ("rep", 0, None, ("set", _UNIV))
_MAX_STATES = 3000  # NFA or DFA states of one string language
_MAX_RX = 100_000  # characters of one eliminated regex


class _TooLarge(Exception):
    """A string language whose automaton or regex is over ``_MAX_STATES`` / ``_MAX_RX``."""


def _pattern_tree(pattern: str, mode: str):
    """The decoded strings in which ``pattern`` matches (``re.search``), as a tree; ``mode`` "sub" or "sup"
    (see above). Lookaheads: a superset drops them; a subset reads a negative lookahead ``(?!L)`` in a
    branch's top-level sequence as the rest of the branch less ``L`` (read as a superset) followed by
    anything (a "diff" node). An anchor inside the pattern: ``$`` is the end of the string (an "end"
    node; a superset also before a final newline), an inner ``^`` matches nothing in a subset. Raises
    ``_PatternError`` for what is not read here (flags, lookbehind, other lookarounds, word boundaries)."""
    from steerdiff_plugins.schema.pattern import _PatternError, _sre_c, _sre_parse

    try:
        parsed = _sre_parse.parse(pattern, 0)
    except Exception as e:  # re.error, and the parser's own limits
        raise _PatternError(f"does not parse: {e}") from None
    if getattr(getattr(parsed, "state", None), "flags", 0) & ~_sre_c.SRE_FLAG_UNICODE:
        raise _PatternError("inline flags")
    seq = list(parsed)
    branches = [seq]
    if len(seq) == 1 and str(seq[0][0]) == "BRANCH":
        branches = [list(b) for b in seq[0][1][1]]
    alts = []
    for b in branches:
        start = bool(b) and str(b[0][0]) == "AT" and str(b[0][1]) in ("AT_BEGINNING", "AT_BEGINNING_STRING")
        b = b[1:] if start else b
        end = str(b[-1][1]) if b and str(b[-1][0]) == "AT" else None
        if end not in (None, "AT_END", "AT_END_STRING"):
            raise _PatternError(f"anchor {end}")
        b = b[:-1] if end else b
        tail = _ANYSTAR if end is None else ("rep", 0, 1 if mode == "sup" and end == "AT_END" else 0,
                                                 ("set", ((10, 10),)))
        alts.append(("cat", ([] if start else [_ANYSTAR]) + [_lookahead_seq(b, tail, mode, _sre_c)]))
    return ("alt", alts)


def _lookahead_seq(items, tail, mode, c):
    """The tree of a branch's top-level sequence ``items`` then ``tail`` (what follows up to the string's
    end), a negative lookahead among ``items`` read as a "diff" node in a subset (see ``_pattern_tree``)."""
    from steerdiff_plugins.schema.pattern import _PatternError

    for k, (op, av) in enumerate(items):
        if mode == "sub" and str(op) == "ASSERT_NOT":
            if av[0] != 1:
                raise _PatternError("lookbehind")
            neg = ("cat", [_seq_tree(av[1], "sup", c), _ANYSTAR])  # every string the lookahead rules out
            return ("cat", [_seq_tree(items[:k], mode, c), ("diff", _lookahead_seq(items[k + 1:], tail, mode, c), neg)])
    return ("cat", [_seq_tree(items, mode, c), tail])


def _seq_tree(seq, mode, c):
    from steerdiff_plugins.schema.char_sets import _category, _complement, _norm
    from steerdiff_plugins.schema.pattern import _PatternError

    def cat_ranges(av, m):  # \d \w \s or their negations: a subset or a superset of both readings
        return _category(av, positive_context=(m == "sub"))

    out = []
    for op, av in seq:
        name = str(op)
        if name == "LITERAL":
            out.append(("set", tuple(_norm([(av, av)]))))
        elif name == "NOT_LITERAL":
            out.append(("set", tuple(_complement([(av, av)]))))
        elif name == "ANY":
            out.append(("set", tuple(_complement([(10, 10)]))))
        elif name == "CATEGORY":
            out.append(("set", tuple(_norm(cat_ranges(av, mode)))))
        elif name == "IN":
            neg = any(str(o) == "NEGATE" for o, _ in av)
            m = ("sup" if mode == "sub" else "sub") if neg else mode  # a negated class: its items the other way
            rs = []
            for o, v in av:
                on = str(o)
                if on == "LITERAL":
                    rs.append((v, v))
                elif on == "RANGE":
                    rs.append(tuple(v))
                elif on == "CATEGORY":
                    rs.extend(cat_ranges(v, m))
                elif on != "NEGATE":
                    raise _PatternError(f"set item {on}")
            out.append(("set", tuple(_complement(rs) if neg else _norm(rs))))
        elif name == "BRANCH":
            out.append(("alt", [_seq_tree(s, mode, c) for s in av[1]]))
        elif name == "SUBPATTERN":
            if av[1] or av[2]:
                raise _PatternError("inline flags")
            out.append(_seq_tree(av[3], mode, c))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            out.append(("rep", lo, None if hi == c.MAXREPEAT else hi, _seq_tree(sub, mode, c)))
        elif name in ("ASSERT", "ASSERT_NOT") and mode == "sup":
            out.append(("cat", []))  # a superset: the lookaround dropped
        elif name == "AT" and str(av) in ("AT_END", "AT_END_STRING"):
            end = ("end",)  # the string's end (both readings); a superset: also before a final newline
            out.append(end if mode == "sub" or str(av) == "AT_END_STRING" else
                       ("alt", [end, ("cat", [("set", ((10, 10),)), end])]))
        elif name == "AT" and str(av) in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
            out.append(("alt", []) if mode == "sub" else ("cat", []))  # an inner ^: nothing / anything
        else:
            raise _PatternError(f"{name} in a pattern read as an automaton")
    return ("cat", out)


def _atoms(trees):
    """``(atoms, classify)``: the code point classes no set of ``trees`` tells apart (lists of ranges),
    and a function from a set's ranges to the frozenset of atom indices it covers."""
    import bisect

    sets = set()

    def walk(t):
        if t[0] == "set":
            sets.add(t[1])
        elif t[0] == "rep":
            walk(t[3])
        elif t[0] == "diff":
            walk(t[1])
            walk(t[2])
        elif t[0] != "end":
            for x in t[1]:
                walk(x)

    for t in trees:
        walk(t)
    sets.add(_UNIV)
    sets = sorted(sets)
    cuts = sorted({x for rs in sets for a, b in rs for x in (a, b + 1)})
    flat = [(rs, [a for a, _ in rs], rs) for rs in sets]

    def inside(rs, starts, x):
        i = bisect.bisect_right(starts, x) - 1
        return i >= 0 and rs[i][0] <= x <= rs[i][1]

    groups: dict = {}
    for lo, nxt in zip(cuts, cuts[1:]):
        sig = tuple(k for k, (rs, starts, _) in enumerate(flat) if inside(rs, starts, lo))
        if sig:
            groups.setdefault(sig, []).append((lo, nxt - 1))
    atoms = list(groups.values())
    member = {rs: frozenset(i for i, sig in enumerate(groups) if k in sig) for k, rs in enumerate(sets)}
    return atoms, member.__getitem__


def _dfa(tree, classify, natoms):
    """Deterministic, complete automaton ``(trans, accept)`` (state 0 the start) of a tree. Besides the
    nodes of ``_pattern_tree``: ("end",) matches the empty string at the end of the input only, and
    ("diff", a, b) the strings of ``a`` not in ``b``; both only where their match runs to the input's end."""
    eps, edges, ends = [], [], []

    def new():
        if len(eps) > _MAX_STATES * 4:
            raise _TooLarge()
        if not len(eps) & 255:
            check_deadline("string automaton")
        eps.append([])
        edges.append([])
        ends.append([])
        return len(eps) - 1

    def build(t):
        s = new()
        if t[0] == "set":
            e = new()
            edges[s].append((classify(t[1]), e))
        elif t[0] == "end":
            e = new()
            ends[s].append(e)
        elif t[0] == "diff":  # a deterministic product, embedded: its live states, its atoms as edges
            trans, acc = _product([(*_dfa(t[1], classify, natoms), False), (*_dfa(t[2], classify, natoms), True)],
                                  natoms)
            live = _live(trans, acc)
            ids = {q: new() for q in sorted(live)}
            e = new()
            if 0 in live:
                eps[s].append(ids[0])
            for q in ids:
                by: dict = {}
                for a, d in enumerate(trans[q]):
                    if d in live:
                        by.setdefault(d, set()).add(a)
                for d, cls in by.items():
                    edges[ids[q]].append((frozenset(cls), ids[d]))
                if acc[q]:
                    eps[ids[q]].append(e)
        elif t[0] == "cat":
            e = s
            for x in t[1]:
                xs, xe = build(x)
                eps[e].append(xs)
                e = xe
        elif t[0] == "alt":
            e = new()
            for x in t[1]:
                xs, xe = build(x)
                eps[s].append(xs)
                eps[xe].append(e)
        else:
            # Every copy ends in a fresh state: a skip or loop edge into a copy's own end state would also
            # reach that state's outgoing edges (an inner star's loop), e.g. a(?::[0-9]*)? accepting "a5".
            _, lo, hi, x = t
            e = s
            for i in range(lo if hi is None else hi):
                xs, xe = build(x)
                f = new()
                eps[e].append(xs)
                eps[xe].append(f)
                if i >= lo:
                    eps[e].append(f)
                e = f
            if hi is None:
                loop = new()
                eps[e].append(loop)
                xs, xe = build(x)
                eps[loop].append(xs)
                eps[xe].append(loop)
                e = loop
        return s, e

    start, final = build(tree)

    def close(states, at_end=False):  # at_end: the "end" edges are taken too (the input is over)
        todo, seen = list(states), set(states)
        while todo:
            q = todo.pop()
            for y in (eps[q] + ends[q]) if at_end else eps[q]:
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return frozenset(seen)

    closed: dict = {}  # frozenset of NFA states moved to -> its closure (one subset state's row repeats them)

    def row(cur):  # the subset states after each atom, every atom's moves gathered in one pass over the edges
        moves: list = [[] for _ in range(natoms)]
        for q in cur:
            for cls, d in edges[q]:
                for a in cls:
                    moves[a].append(d)
        out = []
        for m in moves:
            key = frozenset(m)
            c = closed.get(key)
            if c is None:
                c = closed[key] = close(key)
            out.append(c)
        return out

    order, trans = _explore(close([start]), row)
    if not any(ends):  # every state found is closed already: close(st, True) would be st itself
        return trans, [final in st for st in order]
    return trans, [final in close(st, True) for st in order]


def _product(dfas, natoms):
    """The intersection of complete automata ``(trans, accept, negated)`` (a negated one's complement)."""
    order, trans = _explore(tuple(0 for _ in dfas), lambda cur: zip(*[t[q] for (t, _, _), q in zip(dfas, cur)]))
    return trans, [all(acc[q] != neg for (_, acc, neg), q in zip(dfas, cur)) for cur in order]


def _explore(first, rows):
    """A complete deterministic automaton built by a worklist from state ``first`` (any hashable):
    ``rows(state)`` is the next state after each atom, in atom order; states are numbered in the order they are
    found. Returns ``(order, trans)``: the states and ``trans[i][atom]``. Raises ``_TooLarge`` past
    ``_MAX_STATES``."""
    index, order, trans = {first: 0}, [first], []
    while len(trans) < len(order):
        if not len(trans) & 15:  # the whole compile's clock, at the subschema being compiled
            check_deadline("string automaton")
        row = []
        for nxt in rows(order[len(trans)]):
            i = index.get(nxt)
            if i is None:
                if len(order) >= _MAX_STATES:
                    raise _TooLarge()
                i = index[nxt] = len(order)
                order.append(nxt)
            row.append(i)
        trans.append(row)
    return order, trans


def _live(trans, accept):
    """The states from which an accepting state is reachable."""
    back: dict = {}
    for q, row in enumerate(trans):
        for d in row:
            back.setdefault(d, set()).add(q)
    live = {q for q, a in enumerate(accept) if a}
    todo = list(live)
    while todo:
        for p in back.get(todo.pop(), ()):
            if p not in live:
                live.add(p)
                todo.append(p)
    return live


def _eliminate(trans, accept, atoms) -> str:
    """State elimination of a complete automaton with a non-empty language: its regex, each character in
    canonical JSON encoding."""
    from steerdiff_plugins.schema.char_sets import _norm

    live = _live(trans, accept)
    edge: dict = {}  # (p, q) -> regex tree: ("set", atoms) | ("eps",) | ("cat"/"alt", list) | ("star", t)
    S, F = -1, -2
    edge[(S, 0)] = ("eps",)
    for q in live:
        if accept[q]:
            edge[(q, F)] = ("eps",)
        by: dict = {}
        for a, d in enumerate(trans[q]):
            if d in live:
                by.setdefault(d, set()).add(a)
        for d, cls in by.items():
            edge[(q, d)] = ("set", frozenset(cls))

    def alt(x, y):
        if x is None:
            return y
        if x[0] == "set" and y[0] == "set":
            return ("set", x[1] | y[1])
        xs = list(x[1]) if x[0] == "alt" else [x]
        return ("alt", xs + [z for z in (list(y[1]) if y[0] == "alt" else [y]) if z not in xs])

    def cat(*xs):
        parts = []
        for x in xs:
            parts += list(x[1]) if x[0] == "cat" else [] if x[0] == "eps" else [x]
        return ("cat", parts) if len(parts) != 1 else parts[0] if parts else ("eps",)

    # kept as the edges change, instead of recounted every step (quadratic): each state's edges in and out
    # (self loops apart), and the total length of the edges' trees as text (the size limit's measure)
    indeg, outdeg = collections.Counter(), collections.Counter()
    size = 0
    for (p, q), v in edge.items():
        if p != q:
            outdeg[p] += 1
            indeg[q] += 1
        size += len(str(v))

    def take(p, q):
        nonlocal size
        v = edge.pop((p, q))
        if p != q:
            outdeg[p] -= 1
            indeg[q] -= 1
        size -= len(str(v))
        return v

    def put(p, q, v):
        nonlocal size
        old = edge.get((p, q))
        if old is None:
            if p != q:
                outdeg[p] += 1
                indeg[q] += 1
        else:
            size -= len(str(old))
        edge[(p, q)] = v
        size += len(str(v))

    states = set(live)
    while states:
        check_deadline("string automaton")
        k = min(states, key=lambda s: indeg[s] * outdeg[s])
        states.discard(k)
        loop = take(k, k) if (k, k) in edge else None
        ins = [(p, take(p, q)) for (p, q) in list(edge) if q == k]
        outs = [(q, take(p, q)) for (p, q) in list(edge) if p == k]
        mid = ("star", loop) if loop is not None else ("eps",)
        for p, rp in ins:
            for q, rq in outs:
                put(p, q, alt(edge.get((p, q)), cat(rp, mid, rq)))
        if size > _MAX_RX * 4:
            raise _TooLarge()

    def render(t) -> str:
        if t[0] == "eps":
            return ""
        if t[0] == "set":
            return _encoded_class(_norm([r for a in t[1] for r in atoms[a]]))
        if t[0] == "cat":
            return "".join(render(x) for x in t[1])
        if t[0] == "star":
            return _group(render(t[1])) + "*"
        opt = any(x[0] == "eps" for x in t[1])
        body = "|".join(render(x) for x in t[1] if x[0] != "eps")
        return _group(body) + ("?" if opt else "")

    rx = render(edge[(S, F)]) if (S, F) in edge else ""
    if len(rx) > _MAX_RX:
        raise _TooLarge()
    return rx


def _group(x: str) -> str:
    return "(?:" + x + ")"


def _encoded_class(ranges) -> str:
    """Regex of the canonical JSON encodings (``json.dumps(..., ensure_ascii=False)``) of the characters
    in ``ranges``: printable ones raw (``pattern.charset_regex``), ``"`` and backslash escaped, controls as
    ``\\b \\t \\n \\f \\r`` or ``\\u00xx``, with all 32 controls written as one group."""
    from steerdiff_plugins.schema.char_sets import _norm, charset_regex

    ctl = {o for a, b in ranges if a < 0x20 for o in range(a, min(b, 0x1F) + 1)}
    if len(ctl) < 32:
        return charset_regex(ranges)
    rest = _norm([(max(a, 0x20), b) for a, b in ranges if b >= 0x20])
    ctl_rx = r"\\(?:[btnfr]|u00(?:0[0-7bef]|1[0-9a-f]))"
    return _alt(([charset_regex(rest)] if rest else []) + [ctl_rx])


@functools.lru_cache(maxsize=None)
def format_tree(fmt: str):
    """The decoded strings of ``fragments.FORMATS[fmt]`` (a narrowing of the format's checker) as a tree, or
    None for a format without a regex. Every format regex but "regex" writes only characters JSON needs no
    escape for (its encoded and decoded strings are the same); "regex" writes a backslash doubled (JSON's
    escape), read here as one."""
    from steerdiff_plugins.schema.fragments import FORMATS

    if fmt not in FORMATS:
        return None
    rx = FORMATS[fmt] if fmt != "regex" else FORMATS[fmt].replace("\\" * 4, "\\" * 2)
    return _pattern_tree("^(?:" + rx + ")$", "sub")


def _value_tree(values):
    """The finite set of decoded strings ``values`` as a tree."""
    return ("alt", [("cat", [("set", ((ord(ch), ord(ch)),)) for ch in v]) for v in values])


def string_language(parts, negated):
    """Content regex (between the quotes, canonical encoding) of the decoded strings in every tree of
    ``parts`` and in none of the languages of ``negated`` (each a list of trees, intersected); False
    when there is none. Raises ``_TooLarge``. Memoised like :func:`strings_meet`."""
    return _memo(("language", repr((parts, negated))), lambda: _string_language(parts, negated))


def _string_language(parts, negated):
    atoms, classify = _atoms(list(parts) + [t for ts in negated for t in ts])
    n = len(atoms)
    dfas = [(*_dfa(t, classify, n), False) for t in parts]
    dfas += [(*_product([(*_dfa(t, classify, n), False) for t in ts], n), True) for ts in negated]
    trans, accept = _product(dfas, n) if dfas else ([[0] * n], [True])
    if not any(accept):
        return False
    return _eliminate(*_minimal(trans, accept), atoms)


def _minimal(trans, accept):
    """The minimal automaton of a complete one (Moore's partition refinement), state 0 the start."""
    block = [int(a) for a in accept]
    while True:
        check_deadline("string automaton")
        sig = {}
        new = [sig.setdefault((block[q], tuple(block[d] for d in row)), len(sig)) for q, row in enumerate(trans)]
        if len(sig) == len(set(block)):
            break
        block = new
    renum = {}
    for q in range(len(trans)):  # the start's block first
        renum.setdefault(block[q], len(renum))
    out = [None] * len(renum)
    acc = [False] * len(renum)
    for q, row in enumerate(trans):
        out[renum[block[q]]] = [renum[block[d]] for d in row]
        acc[renum[block[q]]] = accept[q]
    return out, acc


def strings_meet(parts) -> bool:
    """Whether some decoded string is in every tree of ``parts``. Memoised by the trees' text (``_MEMO``):
    ``oneOf`` exclusion asks about the same pattern pairs again in every compile fill's tries make (o9882:
    6778 calls, 47 s). Raises ``_TooLarge`` (remembered too)."""
    return _memo(("meet", repr(parts)), lambda: _strings_meet(parts))


def _strings_meet(parts) -> bool:
    finite = [_finite_strings(t) for t in parts]
    if parts and None not in finite:
        return _finite_meet(finite)
    atoms, classify = _atoms(parts)
    n = len(atoms)
    return any(_product([(*_dfa(t, classify, n), False) for t in parts], n)[1])


def _finite_strings(tree):
    """The strings (tuples of code points) of a tree of the shape ``_value_tree`` writes, an "alt" of "cat"s of
    single code points (an enum's or a const's strings, as ``oneOf`` discriminators are), or None."""
    if tree[0] != "alt" or len(tree) != 2:
        return None
    out = []
    for c in tree[1]:
        if c[0] != "cat" or len(c) != 2:
            return None
        word = []
        for x in c[1]:
            if x[0] != "set" or len(x[1]) != 1 or x[1][0][0] != x[1][0][1]:
                return None
            word.append(x[1][0][0])
        out.append(tuple(word))
    return out


def _finite_meet(sets) -> bool:
    """``_strings_meet`` of finite string sets without automata: the same answer and the same ``_TooLarge``, as
    the automata it would build have sizes in closed form. A set's NFA (``_dfa``'s build): 2 states for the
    "alt", 1 per "cat", 2 per character (refused past ``4 * _MAX_STATES + 1``). Its DFA: a state per distinct
    prefix of its strings, the empty one included (a prefix's subset holds the NFA positions after it: distinct
    prefixes, distinct states), and the dead state; the product: a state per prefix of any set's strings (its
    tuple holds that prefix's own state where it is one) and the all-dead one; each refused past
    ``_MAX_STATES``. The answer: whether the sets share a string."""
    for words in sets:
        if 2 + sum(1 + 2 * len(w) for w in words) > 4 * _MAX_STATES + 1 or \
                _prefixes([words], _MAX_STATES) + 1 > _MAX_STATES:
            raise _TooLarge()
    if _prefixes(sets, _MAX_STATES) + 1 > _MAX_STATES:
        raise _TooLarge()
    common = set(sets[0])
    for words in sets[1:]:
        common.intersection_update(words)
    return bool(common)


def _prefixes(sets, limit: int) -> int:
    """The number of distinct prefixes (the empty one included) of the strings of ``sets``, a trie's nodes;
    counting stops past ``limit``."""
    root, n = {}, 1
    for words in sets:
        for w in words:
            node = root
            for ch in w:
                nxt = node.get(ch)
                if nxt is None:
                    nxt = node[ch] = {}
                    n += 1
                    if n > limit:
                        return n
                node = nxt
    return n


_MEMO: collections.OrderedDict = collections.OrderedDict()  # key -> (result, too_large), least recent first
MEMO_SIZE = 4096  # answers kept (strings_meet, string_language): a few MB at most
_TOO_LARGE = object()
_MEMO_LOCK = threading.Lock()


def _memo(key, compute):
    """``compute()`` remembered under ``key`` (bounded, least recently used dropped; a ``_TooLarge`` raised
    is remembered and raised again). Only complete answers are kept: a deadline or other error propagates."""
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None:
            _MEMO.move_to_end(key)
    if hit is None:
        try:
            hit = (compute(),)
        except _TooLarge:
            hit = (_TOO_LARGE,)
        with _MEMO_LOCK:
            _MEMO[key] = hit
            while len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    if hit[0] is _TOO_LARGE:
        raise _TooLarge()
    return hit[0]
