"""The string automata of ``char_languages`` (``oneOf`` exclusion, ``not``, pattern disjointness) built the faster
way (issue 23, item 3: every atom's moves in one pass, closures memoised, a sweep for the atoms) are exactly the
automata of the code they replaced: the same atoms, the same state numbering, tables and acceptance, the same
``_TooLarge`` refusals, on generated patterns and on every pattern of the public JSONSchemaBench set."""

import json
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff_plugins.compile_budget import check_deadline
from steerdiff_plugins.schema import char_languages as cl
from steerdiff_plugins.schema.char_languages import _MAX_STATES, _UNIV, _TooLarge
from steerdiff_plugins.schema.pattern import _PatternError

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "jsonschemabench" / "schemas"


# ---- the replaced code, verbatim (main at b6da5e1), as the reference

def _ref_atoms(trees):
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


def _ref_dfa(tree, classify, natoms):
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
            trans, acc = _ref_product([(*_ref_dfa(t[1], classify, natoms), False), (*_ref_dfa(t[2], classify, natoms), True)],
                                  natoms)
            live = cl._live(trans, acc)
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
            for y in eps[q] + (ends[q] if at_end else []):
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return frozenset(seen)

    order, trans = _ref_explore(close([start]), lambda cur, a: close([d for s in cur for cls, d in edges[s] if a in cls]),
                            natoms)
    return trans, [final in close(st, True) for st in order]


def _ref_product(dfas, natoms):
    """The intersection of complete automata ``(trans, accept, negated)`` (a negated one's complement)."""
    order, trans = _ref_explore(tuple(0 for _ in dfas), lambda cur, a: tuple(t[q][a] for (t, _, _), q in zip(dfas, cur)),
                            natoms)
    return trans, [all(acc[q] != neg for (_, acc, neg), q in zip(dfas, cur)) for cur in order]


def _ref_explore(first, successor, natoms):
    """A complete deterministic automaton built by a worklist from state ``first`` (any hashable):
    ``successor(state, atom)`` is the next state; states are numbered in the order they are found.
    Returns ``(order, trans)``: the states and ``trans[i][atom]``. Raises ``_TooLarge`` past ``_MAX_STATES``."""
    index, order, trans = {first: 0}, [first], []
    while len(trans) < len(order):
        if not len(trans) & 15:  # the whole compile's clock, at the subschema being compiled
            check_deadline("string automaton")
        cur = order[len(trans)]
        row = []
        for a in range(natoms):
            nxt = successor(cur, a)
            if nxt not in index:
                if len(order) >= _MAX_STATES:
                    raise _TooLarge()
                index[nxt] = len(order)
                order.append(nxt)
            row.append(index[nxt])
        trans.append(row)
    return order, trans



def _ref_eliminate(trans, accept, atoms) -> str:
    """State elimination of a complete automaton with a non-empty language: its regex, each character in
    canonical JSON encoding."""
    from steerdiff_plugins.schema.char_sets import _norm

    live = cl._live(trans, accept)
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

    states = set(live)
    while states:
        check_deadline("string automaton")
        k = min(states, key=lambda s: sum(1 for (p, q) in edge if q == s and p != s) * sum(1 for (p, q) in edge if p == s and q != s))
        states.discard(k)
        loop = edge.pop((k, k), None)
        ins = [(p, edge.pop((p, q))) for (p, q) in list(edge) if q == k]
        outs = [(q, edge.pop((p, q))) for (p, q) in list(edge) if p == k]
        mid = ("star", loop) if loop is not None else ("eps",)
        for p, rp in ins:
            for q, rq in outs:
                edge[(p, q)] = alt(edge.get((p, q)), cat(rp, mid, rq))
        if sum(len(str(v)) for v in edge.values()) > cl._MAX_RX * 4:
            raise _TooLarge()

    def render(t) -> str:
        if t[0] == "eps":
            return ""
        if t[0] == "set":
            return cl._encoded_class(_norm([r for a in t[1] for r in atoms[a]]))
        if t[0] == "cat":
            return "".join(render(x) for x in t[1])
        if t[0] == "star":
            return cl._group(render(t[1])) + "*"
        opt = any(x[0] == "eps" for x in t[1])
        body = "|".join(render(x) for x in t[1] if x[0] != "eps")
        return cl._group(body) + ("?" if opt else "")

    rx = render(edge[(S, F)]) if (S, F) in edge else ""
    if len(rx) > cl._MAX_RX:
        raise _TooLarge()
    return rx


# ---- comparison

def _run(fn, *args):
    try:
        return fn(*args)
    except _TooLarge:
        return "too large"
    except RecursionError:  # a deep tree's text (the compiler raises the limit; both sides alike here)
        return "recursion"


def _same_automata(parts):
    """Atoms, each part's automaton and the product, old and new: equal (or both too large)."""
    atoms, classify = cl._atoms(parts)
    ref_atoms, ref_classify = _ref_atoms(parts)
    assert atoms == ref_atoms
    n = len(atoms)
    dfas = []
    for t in parts:
        new, old = _run(cl._dfa, t, classify, n), _run(_ref_dfa, t, ref_classify, n)
        assert new == old
        dfas.append(new)
    if "too large" not in dfas:
        dfas = [(*d, False) for d in dfas]
        assert _run(cl._product, dfas, n) == _run(_ref_product, dfas, n)
        negated = dfas[:1] + [(t, a, True) for t, a, _ in dfas[1:]]
        assert _run(cl._product, negated, n) == _run(_ref_product, negated, n)
    assert _run(cl._strings_meet, parts) == _run(lambda p: any(_ref_product(
        [(*_ref_dfa(t, ref_classify, n), False) for t in p], n)[1]), parts)


def _trees(pattern):
    out = []
    for mode in ("sub", "sup"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "possible set difference" in some patterns
                out.append(cl._pattern_tree(pattern, mode))
        except _PatternError:
            pass
    return out


_ATOM = st.sampled_from(["a", "b", "ab", "[a-c]", "[^b]", r"\d", r"\w", ".", "x", "-", "[0-9a-f]", "é"])
def _extend(kids):
    """Patterns from smaller ones: concatenation, alternation, a quantifier, a negative lookahead."""
    return st.one_of(
        st.tuples(kids, kids).map("".join),
        st.tuples(kids, kids).map(lambda p: "(?:" + p[0] + "|" + p[1] + ")"),
        st.tuples(kids, st.sampled_from(["?", "*", "+", "{2}", "{1,3}", "{0,2}", "{2,}"])).map(
            lambda p: "(?:" + p[0] + ")" + p[1]),
        st.tuples(kids, kids).map(lambda p: "(?!" + p[0] + ")" + p[1]),
    )


_RX = st.recursive(_ATOM, _extend, max_leaves=6)
_PATTERN = st.tuples(st.booleans(), _RX, st.booleans()).map(lambda p: ("^" if p[0] else "") + p[1] + ("$" if p[2] else ""))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERN, min_size=1, max_size=3), st.lists(st.text("abx-é", max_size=4), max_size=4))
def test_generated_patterns_same_automata(patterns, values):
    parts = [t for p in patterns for t in _trees(p)]
    if values:
        parts.append(cl._value_tree(values))
    _same_automata(parts)
    if len(parts) > 1:
        _same_automata([("diff", parts[0], parts[1])] + parts[2:])  # a negative lookahead's node


def _bench_patterns() -> list[str]:
    found: list[str] = []

    def walk(s):
        if isinstance(s, dict):
            p = s.get("pattern")
            if isinstance(p, str):
                found.append(p)
            for v in s.values():
                walk(v)
        elif isinstance(s, list):
            for v in s:
                walk(v)

    for f in sorted(DATA.glob("*.json")):
        for it in json.loads(f.read_text())["items"]:
            walk(it["schema"])
    return sorted(set(found))


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata is not checked out")
def test_bench_patterns_same_automata():
    """Every distinct pattern of the public set alone; every fifth beside its neighbour in sorted order (pairs
    as ``oneOf`` exclusion asks them) and with an enum of short strings (all of them: 100 s here)."""
    pats = [t for p in _bench_patterns() for t in _trees(p)]
    assert len(pats) > 500
    vals = cl._value_tree(["", "a", "1", "abc", "2024-01-01", "x-y"])
    for k, t in enumerate(pats):
        _same_automata([t])
        if k % 5 == 0:
            _same_automata([t, pats[k - 1]])
            _same_automata([t, vals])


def test_too_large_alike():
    """A language past ``_MAX_STATES`` is refused alike (a counted repetition of a class makes many states)."""
    t = cl._pattern_tree("^[ab]{%d}$" % (_MAX_STATES + 5), "sub")
    _same_automata([t])
    assert _run(cl._strings_meet, [t]) == "too large"
    big = cl._value_tree([f"{i:05d}" for i in range(_MAX_STATES)])
    _same_automata([big, cl._value_tree(["00001", "zz"])])


# ---- finite string sets (enum / const discriminators): answered without automata, the same answers and refusals

def _ref_meet(parts):
    atoms, classify = _ref_atoms(parts)
    n = len(atoms)
    return _run(lambda p: any(_ref_product([(*_ref_dfa(t, classify, n), False) for t in p], n)[1]), parts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text("abé\"\\\n", max_size=4), max_size=5), min_size=1, max_size=3))
def test_finite_sets_meet_as_before(sets):
    parts = [cl._value_tree(words) for words in sets]
    assert cl._finite_strings(parts[0]) is not None
    assert _run(cl._strings_meet, parts) == _ref_meet(parts)


@pytest.mark.parametrize("sets", [
    [["a" * 2998]], [["a" * 2999]],  # one set's DFA: 3000 states (kept), 3001 (too large)
    [["ab"] * 2399], [["ab"] * 2400],  # one set's NFA: 11997 states (kept), 12002 (too large)
    [["a" * 1500], ["b" * 1497]], [["a" * 1500], ["b" * 1498]], [["a" * 1500], ["b" * 1499]],  # the product
    [["a" * 1500, "b"], ["b", "c" * 1499]],
    [[]], [[""], [""]], [[], ["a"]],
])
def test_finite_sets_at_the_limits(sets):
    parts = [cl._value_tree(words) for words in sets]
    assert _run(cl._strings_meet, parts) == _ref_meet(parts)


def test_finite_shape_only():
    """A set of two code points, a repetition, a pattern: not a finite set of strings, read by automata."""
    assert cl._finite_strings(("alt", [("cat", [("set", ((97, 98),))])])) is None
    assert cl._finite_strings(("alt", [("rep", 0, 1, ("set", ((97, 97),)))])) is None
    assert cl._finite_strings(cl._pattern_tree("^ab$", "sub")) is None
    assert cl._finite_strings(cl._value_tree(["ab", ""])) == [(97, 98), ()]


# ---- state elimination (string_language's regex): the same text as the replaced code

def _same_language_regex(parts, negated):
    atoms, classify = cl._atoms(list(parts) + [t for ts in negated for t in ts])
    n = len(atoms)
    try:
        dfas = [(*cl._dfa(t, classify, n), False) for t in parts]
        dfas += [(*cl._product([(*cl._dfa(t, classify, n), False) for t in ts], n), True) for ts in negated]
        trans, accept = cl._product(dfas, n) if dfas else ([[0] * n], [True])
    except _TooLarge:
        return
    if not any(accept):
        return
    small = cl._minimal(trans, accept)
    assert _run(cl._eliminate, *small, atoms) == _run(_ref_eliminate, *small, atoms)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PATTERN, min_size=1, max_size=2), st.lists(_PATTERN, max_size=2))
def test_generated_languages_same_regex(pos, neg):
    parts = [t for p in pos for t in _trees(p)[:1]]
    negated = [[t] for p in neg for t in _trees(p)[1:]]
    _same_language_regex(parts, negated)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/testdata is not checked out")
def test_bench_languages_same_regex():
    """Every third distinct pattern of the public set, read as a subset, alone and less its neighbour."""
    pats = _bench_patterns()
    for k in range(0, len(pats), 3):
        pos, neg = _trees(pats[k])[:1], _trees(pats[k - 1])[1:]
        _same_language_regex(pos, [])
        _same_language_regex(pos, [neg] if neg else [])
