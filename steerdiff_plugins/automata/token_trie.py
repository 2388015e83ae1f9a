"""The vocabulary walked through a byte DFA over its prefix tree, in compiled code (numba): stage 3's fast path.

``walk_classes(trans, dead, fv, fill_id, tok2cls, weights)`` gives what ``token_walk._walk_pairs`` +
``_token_table`` give (the token classes and their table), computed differently:

- The tokens that write something are sorted by their bytes and laid out as a prefix tree (per tokenizer,
  cached). In sorted order the tokens below a tree node are one range ``[lo, hi)``; those spelling the
  node's own prefix come first, ``[lo, endhi)``.
- Every byte state walks the tree depth first, dropping a branch the moment it reaches the dead state, so
  the cost is the surviving (state, prefix) pairs. A walk that reaches a state which loops on a byte set
  ``L`` at a node whose whole subtree spells only bytes of ``L`` (``inside``) ends every token below there in
  that state at once: string content (``[^"\\]*``) is one range per state, not a walk over 49k tokens.
  Likewise a counted run (``[^"]{0,64}``: each byte of a set one state down a chain) takes a subtree of that
  set at once, each token going down the chain by its length (or dying past a chain that stops).
- A loop state that takes every UTF-8 character above ASCII back to itself (JSON string content) ends, at a
  character boundary, every token of loop-set ASCII and valid UTF-8 below a node in the state its last,
  maybe unfinished, character leaves it in: the tokens of other scripts are not walked one by one either.
- Each finding is a record ``(state, lo, hi, end)``: every token of the range ends in ``end`` from ``state``.
  Tokens are grouped by a hash of their columns (a wrapping sum of ``w[state] * (end + 1)``, added per
  record over the range with a difference array), and the grouping is then verified exactly: writing
  every record into its tokens' class columns finds no disagreement, and every token has as many live
  pairs as its class column has live entries. Those two facts make every token's column equal to its
  class's column. On a disagreement (a hash collision) the caller falls back to the numpy walk.

- Walks are shared and kept. JSON's string copies walk the tree alike up to their closing quote
  (``token_share_kernels``): one copy walks for all. That walk, a function of the string machine's states
  and the tokenizer alone, is kept per tokenizer (:func:`_cached_walks`, ``STEERDIFF_WALK_CACHE=0`` turns it
  off): a later schema with the same string machine copies its records instead of walking 152k tokens.

numba is a dependency but optional at run time: without it ``available()`` is False and the numpy walk runs.
The kernels are compiled on first use and cached on disk; that, numba's import and each tokenizer's tree are
set-up, kept out of compile budgets (``compile_budget.outside_budget``). Long walks are cut into chunks of
states with the compile deadline (``compile_budget.check_deadline``) checked between them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from steerdiff_plugins.compile_budget import check_deadline, numba_importable, outside_budget, run_kernel

_nb = None  # the numba kernels, once compiled (see _kernels)
CUT = 0x22  # walks are shared up to this byte: '"', where JSON's string copies part (see token_share_kernels)
_tries: dict[int, tuple] = {}  # id(_FlatVocab) -> (that _FlatVocab, _Trie)
CHUNK_NODES = 64_000_000  # states per walk call: this many tree nodes over the tree size (deadline checks between)
HASH_SLOTS = 1 << 13  # the class hash table's first size (it holds half as many classes; grown when full)
MAX_RUN = 32  # counted runs are followed in bulk up to this many bytes (longer tokens are walked)
WALKS_KEPT = 64  # bodies' walks up to CUT kept per tokenizer (see _cached_walks)


def available() -> bool:
    """Whether the compiled walk can run: numba importable and not turned off (``STEERDIFF_TOKEN_WALK=numpy``)."""
    return os.environ.get("STEERDIFF_TOKEN_WALK", "").lower() != "numpy" and numba_importable()


@dataclass
class _Trie:
    """The prefix tree of the tokens in ``order`` (positions in sorted order -> ``_FlatVocab`` index).

    Nodes are numbered in preorder (root 0); ``first_child``/``next_sib`` link children in byte order;
    ``byte[n]`` the byte into ``n``; ``parent[n]``; ``lo/endhi/hi[n]``: the sorted positions below ``n``
    (``[lo, endhi)`` spell exactly ``n``'s prefix); ``depth[n]`` its prefix's length; ``height[n]`` the
    most bytes a token below ``n`` has after that prefix; ``below (nodes, 4)`` uint64 the bytes below ``n``
    (after its prefix) as a 256-bit set; ``uat``/``uclean``/``uend``: the UTF-8 automaton ``U`` (start ``u0``)
    after each node's prefix and each token, see ``token_trie_kernels.utf8_nodes``; ``ids``/``plen`` the
    token id and length at each sorted position, ``pos_of`` the position of each id (``inv`` too, as an array
    over ids, -1 where an id has no position; ``absent`` those ids); ``kid_ptr``/``kid_node``/``kid_byte`` the children of each node as
    arrays (``token_trie_kernels.child_index``); ``uend_run`` the end of each position's run of equal ``uend``."""

    order: np.ndarray
    first_child: np.ndarray
    next_sib: np.ndarray
    byte: np.ndarray
    parent: np.ndarray
    lo: np.ndarray
    endhi: np.ndarray
    hi: np.ndarray
    depth: np.ndarray
    height: np.ndarray
    below: np.ndarray
    uat: np.ndarray
    uclean: np.ndarray
    uend: np.ndarray
    U: np.ndarray
    u0: int
    ids: np.ndarray
    pos_of: dict
    plen: np.ndarray
    inv: np.ndarray
    kid_ptr: np.ndarray
    kid_node: np.ndarray
    kid_byte: np.ndarray
    uend_run: np.ndarray
    absent: np.ndarray
    pool: list = field(default_factory=list)  # idle _Scratch sets (see _scratch)
    walks: dict = field(default_factory=dict)  # kept walks up to CUT (see _cached_walks)


@dataclass
class _Scratch:
    """One compile's work arrays over a tree, kept for the next compile (a fresh megabyte-sized array costs
    its page faults: about 1 ms a compile at 152k tokens): ``hdiff``/``cdiff (T+1,)`` int64 the walk's
    difference arrays and ``bm`` the bitmap of the positions they hold something at (all three zero between
    compiles: ``classes_and_table`` clears what it reads, :meth:`clear` the rest after an error); for
    ``classes_and_table`` a hash table ``keys``/``vals`` (``vals`` all -1 between uses) with its work list
    ``used``, the runs ``rstart (T+1,)`` (the last run's end after them) and ``rcls``/``ruend (T,)``, the run at
    each marked position ``rid``; six ``(nodes,)`` int32 arrays for the walk's stack, seeds and exits."""

    hdiff: np.ndarray
    cdiff: np.ndarray
    bm: np.ndarray
    rstart: np.ndarray
    rcls: np.ndarray
    ruend: np.ndarray
    rid: np.ndarray
    nodes: tuple
    keys: np.ndarray = None
    vals: np.ndarray = None
    used: np.ndarray = None

    def clear(self) -> None:
        """The difference arrays and their bitmap back to zero (a compile stopped between walk and classes)."""
        self.hdiff.fill(0)
        self.cdiff.fill(0)
        self.bm.fill(0)

    def hash_table(self, size: int) -> None:
        """A hash table of ``size`` slots (a power of two), empty."""
        self.keys = np.zeros(size, dtype=np.int64)
        self.vals = np.full(size, -1, dtype=np.int64)
        self.used = np.zeros(size // 2 + 1, dtype=np.int64)


@contextmanager
def _scratch(tr: _Trie):
    """A :class:`_Scratch` for ``tr`` held for the block (one per concurrent compile; idle ones are reused)."""
    try:
        sc = tr.pool.pop()
    except IndexError:
        sc = _fresh_scratch(tr)
    try:
        yield sc
    finally:
        tr.pool.append(sc)


def _fresh_scratch(tr: _Trie) -> _Scratch:
    T, N = len(tr.order), len(tr.byte)
    sc = _Scratch(np.zeros(T + 1, dtype=np.int64), np.zeros(T + 1, dtype=np.int64), np.zeros(T // 64 + 1, np.uint64),
                  np.empty(T + 1, dtype=np.int64), np.empty(T, dtype=np.int64), np.empty(T, dtype=np.int32),
                  np.empty(T, dtype=np.int32), tuple(np.empty(N, dtype=np.int32) for _ in range(6)))
    sc.hash_table(HASH_SLOTS)
    return sc


def _kernels():
    global _nb
    if _nb is None:
        with outside_budget():  # importing numba: once per process
            from steerdiff_plugins.automata import token_trie_kernels as k

        _nb = k
    return _nb


def _run(name: str, *args):
    """Call kernel ``name`` (its JIT, when a call compiles one, kept off the budget: ``run_kernel``)."""
    return run_kernel(getattr(_kernels(), name), *args)


def trie_for(fv) -> _Trie:
    """The prefix tree of a ``token_walk._FlatVocab`` (cached per vocabulary)."""
    got = _tries.get(id(fv))
    if got is None or got[0] is not fv:
        with outside_budget():  # once per tokenizer, not part of any one compile
            got = _tries[id(fv)] = (fv, _build_trie(fv))
    return got[1]


def _build_trie(fv) -> _Trie:
    """The tree of ``fv`` (see :class:`_Trie`), with the UTF-8 states of its nodes and tokens."""
    starts, lens = fv.start.astype(np.int64), fv.lens.astype(np.int64)
    slots = fv.slots
    order = np.array(sorted(range(len(lens)), key=lambda i: slots[starts[i]: starts[i] + lens[i]].tobytes()),
                     dtype=np.int64)  # (T,) sorted position -> token
    arrays = _run("build_trie", slots, starts, lens, order)
    first_child, next_sib, byte, parent, lo, endhi = arrays[:6]
    from steerdiff_plugins.automata.byte_level import byte_dfa

    ud = byte_dfa(r"[\x00-\U0010ffff]*")  # every valid UTF-8 text; characters end in its start state
    U = np.ascontiguousarray(ud.trans, dtype=np.int32)
    uat, uclean, uend = _run("utf8_nodes", U, ud.start, ud.dead, byte, parent, lo, endhi)
    ids = np.ascontiguousarray(fv.ids[order])
    pos_of = {int(t): p for p, t in enumerate(ids.tolist())}
    inv = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int32)  # (max id + 1,) id -> position
    inv[ids] = np.arange(len(ids))
    kids = _run("child_index", first_child, next_sib, byte)
    uend_run = _run("run_ends", uend, uend)  # (T,) end of each position's run of equal UTF-8 end states
    absent = np.flatnonzero(inv < 0)  # ids below the largest with no position (tokens that write nothing)
    return _Trie(order, *arrays, uat, uclean, uend, U, ud.start, ids, pos_of, np.ascontiguousarray(fv.lens[order]), inv,
                 *kids, uend_run, absent)


def walk_records(trans: np.ndarray, dead: int, fv, weights: np.ndarray, sc: _Scratch | None = None,
                 classes: tuple | None = None) -> dict:
    """The tree walked from every state of ``trans (S+1, 256)`` (``dead = S``): ``rec (R, 5)`` int32 records
    ``(state, lo, hi, end, kind)`` (see ``token_trie_kernels.walk_states``), the difference arrays
    ``hdiff``/``cdiff`` and the per-state tables the records refer to (``P``, ``reach``, ``M``). ``sc``: the work
    arrays to use, else fresh ones; its difference arrays and bitmap must be zero on entry, and hold the walk's
    plain records' terms, marked, on return (``classes_and_table`` reads and clears them). ``classes``: ``(ctrans
    (S+1, K), bcls (256,))`` with ``trans == ctrans[:, bcls]`` (the byte DFA's own form: per-state work then runs
    over its K classes, not 256 bytes), else each byte its own class."""
    tr = trie_for(fv)
    sc = sc if sc is not None else _fresh_scratch(tr)
    S = dead
    trans = np.ascontiguousarray(trans, dtype=np.int32)
    ctrans, bcls = classes if classes is not None else (trans, np.arange(256))
    grp, rgrp, reach, stops, P, sets = _run("state_groups", np.ascontiguousarray(ctrans, dtype=np.int32),
                                            np.ascontiguousarray(bcls, dtype=np.int32), dead, MAX_RUN)
    M, invq, invu = _run("utf8_maps", trans, dead, grp, tr.U, tr.u0, tr.U.shape[0] - 1)  # (S+1, nU) UTF-8 loops
    lb_ptr, lb_byte = _run("live_bytes", trans, dead)
    lead, loc, row, phi, owner = _share(trans, dead, grp, rgrp, reach, stops, sets, invq, invu, M, P)
    gid, msize, W = _run("group_weights", lead, loc, row, phi, weights)
    hdiff, cdiff = sc.hdiff, sc.cdiff  # all zero (see _Scratch)
    plan = _cached_walks(tr, trans, dead, loc, owner, (grp, rgrp, reach, stops, P, sets, invq, invu, M))
    recs = []
    s0 = 0
    step = max(1, CHUNK_NODES // max(len(tr.byte), 1))
    while s0 < S:
        check_deadline("token automaton", "regex")
        s1 = min(S, s0 + step)
        rec, exits, walked = _run("walk_states", trans, dead, s0, s1, tr.kid_ptr, tr.kid_node, tr.kid_byte, lb_ptr,
                                  lb_byte, tr.lo, tr.endhi, tr.hi, tr.depth, tr.height, tr.below, grp, rgrp, reach,
                                  stops, sets, invq, invu, tr.uat, tr.uclean, weights, hdiff, cdiff, sc.bm, lead, loc, row, phi,
                                  CUT, gid, msize, W, *sc.nodes, *plan["given"])
        _keep_walks(tr, plan, rec, exits, walked)
        recs.append(rec)
        s0 = s1
    rec = np.concatenate(recs) if recs else np.zeros((0, 5), dtype=np.int32)
    return {"rec": rec, "hdiff": hdiff, "cdiff": cdiff, "P": P, "reach": reach, "M": M,
            "share": (lead, loc, row, phi, gid, msize, W)}


def _cached_walks(tr: _Trie, trans: np.ndarray, dead: int, loc: np.ndarray, owner: np.ndarray, props: tuple) -> dict:
    """The walks up to ``CUT`` this automaton can take from ``tr.walks`` (kept per tokenizer across compiles).

    A body (``token_share_kernels.share_groups``: the states reached from a loop leader without ``CUT``, in
    ``loc`` order) is keyed by its transition rows with states renamed to body indices and every other
    property the walk reads of its states (``token_share_kernels.body_keys``; ``props`` are ``grp, rgrp,
    reach, stops, P, sets, invq, invu, M``), and ``MAX_RUN``: two bodies with one key walk the tree alike,
    their records and exits equal up to that renaming (the tree is the tokenizer's: the cache is per tree; a
    tie between two run successors is broken by state number, so the run is in the key, not derived from the
    rows). Returns ``given`` (the last three arguments of ``walk_states``) and the bodies to keep after this
    walk (``STEERDIFF_WALK_CACHE=0``: none taken, none kept)."""
    S1 = trans.shape[0]
    given = np.full((S1, 4), -1, dtype=np.int64)
    grec, gex, todo = [], [], []
    if not (owner >= 0).any() or os.environ.get("STEERDIFF_WALK_CACHE", "") == "0":
        return {"given": (given, np.zeros((0, 4), np.int32), np.zeros((0, 2), np.int32)), "todo": todo}
    grp, rgrp, reach, stops, P, sets, invq, invu, M = props
    states, sptr, keys, kptr = _run("body_keys", trans, dead, CUT, owner, loc, grp, rgrp, reach, stops, P, sets, invq,
                                    invu, M)
    nrec = nex = 0
    for b in range(len(sptr) - 1):
        if kptr[b] == kptr[b + 1]:
            continue  # a byte other than CUT leaves the body: not a body of share_groups' kind
        body = states[sptr[b]:sptr[b + 1]]
        key = (MAX_RUN, keys[kptr[b]:kptr[b + 1]].tobytes())
        got = tr.walks.get(key)
        if got is None:
            todo.append((key, body))
            continue
        r, rp, x, xp = got  # r (R, 4) lo, hi, end, d with end a body index; x (X, 2) node, body index
        r = r.copy()
        r[:, 2] = body[r[:, 2]]
        x = x.copy()
        x[:, 1] = body[x[:, 1]]
        given[body, 0], given[body, 1] = nrec + rp[:-1], nrec + rp[1:]
        given[body, 2], given[body, 3] = nex + xp[:-1], nex + xp[1:]
        grec.append(r)
        gex.append(x)
        nrec += len(r)
        nex += len(x)
    grec = np.concatenate(grec) if len(grec) > 1 else grec[0] if grec else np.zeros((0, 4), np.int32)
    gex = np.concatenate(gex) if len(gex) > 1 else gex[0] if gex else np.zeros((0, 2), np.int32)
    return {"given": (given, grec, gex), "todo": todo}


def _keep_walks(tr: _Trie, plan: dict, rec: np.ndarray, exits: np.ndarray, walked: np.ndarray) -> None:
    """Keep in ``tr.walks`` the walks of the bodies ``plan`` found no entry for, when one walk call walked a
    whole body (with every record's end and every exit's state inside it)."""
    for key, body in plan["todo"]:
        w = walked[body]
        if (w[:, 0] < 0).any() or key in tr.walks:
            continue
        local = np.full(len(walked), -1, dtype=np.int32)  # state -> body index
        local[body] = np.arange(len(body), dtype=np.int32)
        r = np.concatenate([rec[a:b, 1:5] for a, b in w[:, :2]])
        x = np.concatenate([exits[a:b] for a, b in w[:, 2:]])
        r, x = r.copy(), x.copy()
        r[:, 2] = local[r[:, 2]]
        x[:, 1] = local[x[:, 1]]
        if (r[:, 2] < 0).any() or (x[:, 1] < 0).any():
            continue
        rp = np.r_[0, np.cumsum(w[:, 1] - w[:, 0])]
        xp = np.r_[0, np.cumsum(w[:, 3] - w[:, 2])]
        while len(tr.walks) >= WALKS_KEPT:
            tr.walks.pop(next(iter(tr.walks)))
        tr.walks[key] = (r, rp, x, xp)


def _share(trans, dead, grp, rgrp, reach, stops, sets, invq, invu, M, P):
    """The groups of states that walk alike until the byte ``CUT`` (``token_share_kernels.share_groups``), or
    none (``STEERDIFF_TOKEN_SHARE=0``: every state walks on its own; the results are the same)."""
    if os.environ.get("STEERDIFF_TOKEN_SHARE", "") == "0":
        none = np.full(dead + 1, -1, dtype=np.int32)
        return none, none, none, np.zeros((0, 1), dtype=np.int32), none
    return _run("share_groups", trans, dead, CUT, grp, rgrp, reach, stops, sets, invq, invu, M, P)


def walk_classes(trans: np.ndarray, dead: int, fv, fill_id: int | None, tok2cls: np.ndarray, weights: np.ndarray,
                 classes: tuple | None = None):
    """Token classes and their table for the byte DFA ``trans (S+1, 256)`` (``dead = S``, the sink) over the
    tokens of ``fv`` (a ``token_walk._FlatVocab``), ``fill_id`` left out (its class is the caller's).

    Returns ``(table (S+2, 2+A) int32, size_of (2+A,))``: the table with the meaning of
    ``token_walk._token_table`` (rows ``S``, ``S+1`` and columns 0, 1 DEAD), and how many ids of ``tok2cls``
    it wrote with each class; it writes each token's class into ``tok2cls`` (0 when dead from every state,
    else ``2..A+1``; other entries untouched). Returns ``None`` (``tok2cls`` untouched) when the hash
    grouping could not be verified. ``classes``: the DFA over its byte classes, as in :func:`walk_records`."""
    tr = trie_for(fv)
    fill_pos = tr.pos_of.get(fill_id, -1) if fill_id is not None else -1
    if len(tok2cls) < len(tr.inv):
        raise ValueError(f"tok2cls has {len(tok2cls)} entries, fewer than the vocabulary's {len(tr.inv)} ids")
    with _scratch(tr) as sc:
        try:
            while True:
                w = walk_records(trans, dead, fv, weights, sc, classes)
                check_deadline("token automaton", "regex")
                status, table, size_of = _run("classes_and_table", w["hdiff"], w["cdiff"], sc.bm, fill_pos, tr.plen,
                                              w["rec"], w["P"], w["reach"], w["M"], tr.uend, tr.uend_run, weights, dead,
                                              len(tr.inv), tr.ids, tr.absent, tok2cls, sc.keys, sc.vals, sc.used, sc.rstart,
                                              sc.rcls, sc.ruend, sc.rid, *w["share"])
                if status >= 0:
                    return (table, size_of) if status == 1 else None
                sc.hash_table(4 * len(sc.keys))  # more classes than the hash table takes: walk again with a larger one
        except BaseException:  # stopped between the walk and the classes (a deadline): the arrays back to zero
            sc.clear()
            raise
