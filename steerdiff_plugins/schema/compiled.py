"""JSON Schema -> regular expression, for exact regular constraints.

``schema_to_regex(schema)`` returns a regex whose language is a set of *canonical* JSON texts that all
validate against the schema (the guarantee is one-sided and exact: every text the regex accepts is valid;
``canonical_dumps(instance, schema)`` writes any valid instance in the form the regex uses, so every
valid instance that fits the documented narrowings below is accepted).

Canonical form
    compact (separators ``,`` and ``:``, no whitespace anywhere), object keys in the order of the
    schema's ``properties``, strings written like ``json.dumps(..., ensure_ascii=False)`` (the regex
    also accepts the other JSON escapes ``\\/ \\uXXXX`` in unconstrained string parts, but never a
    ``\\u`` surrogate escape, so a string's length is the number of written characters), integers
    without fraction or exponent, bounded numbers without exponent.

Regex dialect
    A subset read identically by Python ``re``, ``interegular`` and Rust's ``regex`` crate: literal
    characters, ``\\``-escaped ASCII punctuation, ``\\xHH`` for control characters, classes ``[...]`` and
    ``[^...]`` (non-ASCII characters written raw), non-capturing groups ``(?:...)``, ``|``, ``? * +``
    and ``{m}``, ``{m,}``, ``{m,n}``. No anchors, lookaround, backrefs, lazy quantifiers, ``\\d \\w \\s``.

Supported (draft 2020-12; draft-04/06/07 spellings where ``$schema`` declares them or the keyword
form is unambiguous): ``type`` (incl. lists), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties`` (see below), ``patternProperties`` (see below), ``items``, ``prefixItems``,
``additionalItems``, ``minItems``/``maxItems``, ``uniqueItems`` (see below), ``minLength``/``maxLength``,
``pattern``, ``format`` (date, time, date-time, email, uuid, ipv4, uri; formats python-jsonschema does
not know are annotations), integer bounds (exact, any magnitude), number bounds when the bounds are
integral, ``multipleOf`` 1 (integers), ``anyOf``, ``oneOf`` (only when the branches are provably
disjoint: types, also through nested ``anyOf``/``oneOf``; numeric ranges of number-only branches; ``const``/
``enum`` values; required keys a branch's objects never write; or a discriminator, see below), ``allOf`` (merged), local ``$ref`` (JSON pointers, anchors, embedded ``$id``),
``minProperties``/``maxProperties``, ``dependentRequired``/``dependencies`` (see below),
``propertyNames`` (declared keys only).

Narrowings (the language is a subset of the valid instances; each is deliberate and exact):
  * objects that declare ``properties`` get only those keys (extra keys are never generated, whatever
    ``additionalProperties`` says, except ``false`` which makes it exact; but see ``extra_keys`` below);
    required keys that are not
    declared are added after the declared ones, with the ``additionalProperties`` schema (or any value);
    an object with no declared properties is a map (any string key, or keys from the first
    ``patternProperties`` pattern, whose values follow its schema and that of every pattern whose keys
    meet it) whose values otherwise follow ``additionalProperties``;
  * a schema without ``type`` gets the types its keywords imply (``properties`` -> object, ...), or any
    JSON value when it has no type-specific keyword;
  * arrays with no ``maxItems`` hold at most ``max(minItems, max_items)`` items (``max_items=None``, the
    default: unbounded, a loop in the automaton, so only the canvas bounds them; a cap copies the item's
    automaton once per item); strings with no ``maxLength`` hold at most ``max_string`` characters (None: unbounded);
  * the empty schema is any JSON value nested at most ``max_depth`` deep; recursive ``$ref`` is unrolled
    ``max_depth`` times, deeper optional branches are dropped;
  * ``uniqueItems: true`` is expressed exactly only for arrays of at most one item or of enum values
    (written as an ordered selection of distinct values); otherwise it is refused;
  * ``dependentRequired`` makes the dependent keys required (or drops the optional trigger key);
    ``minProperties`` promotes optional properties to required, ``maxProperties`` drops optional ones;
  * anyOf branches that use an unsupported keyword are refused (never dropped silently);
  * a ``oneOf`` object branch that overlaps another only through objects lacking an optional key both
    declare with disjoint subschemas (a ``const``/``enum`` discriminator), or a key the other rejects, writes
    that key always;
  * strings with a ``not`` of a string schema (``pattern``, ``enum``, lengths; also a ``oneOf`` string branch
    less the others) are written in canonical encoding only (``combinators.string_language``); ``not`` of an
    enum of objects keeps the first required key off their values;
  * ``uniqueItems`` over objects with a required enum key: one item per key value, in enum order;
  * ``if``/``then`` whose ``if`` fixes keys to constants: one branch per ``if`` (objects with those keys), each
    with the ``then`` of every ``if`` not provably false there (``merge._if_branches``).

With ``capacity`` (the most bytes the canvas holds, ``canvas_bounds``), length, item, property and pattern
repetition bounds no text of that size reaches are compiled as absent, and minimums beyond it as empty: the
language is unchanged on texts of at most ``capacity`` bytes (a map's ``maxProperties`` then compiles too).

With ``extra_keys=True`` an object that declares properties may also hold undeclared keys, written before the
declared ones, without escapes, none of the keys the schema names (properties, required, dependency triggers),
with values under ``additionalProperties`` (where it is absent or true, any value nested at most ``EXTRA_DEPTH``
levels and no deeper than ``max_depth`` allows; the key trie's complement is exact, ``compiler.keys_except``).
With ``patternProperties`` their values follow every pattern's schema and ``additionalProperties`` at once.
Objects stay closed where other keywords would govern such keys or count them: ``additionalProperties:
false``, ``propertyNames``, ``maxProperties``, and the objects of a ``oneOf`` branch itself where its
disjointness proof reads the declared keys (another branch requires a key it never writes). Where undeclared
keys would take the regex past ``EXTRA_MAX_CHARS`` (or the size limit), they are kept on the objects nested at
most one container deep only, and then dropped (closed objects). ``tree_to_lark`` writes undeclared keys as the
regex does, except on object branches of a union it merges (closed there, a narrowing); fill's ``size`` fallback
compiles its tree without them (declared keys only), its ``any_depth=None`` path with them.

With ``any_depth=n`` (opt-in; ``ANY_DEPTH`` is what MaskBench wants) any values (the empty schema, undeclared
keys' values) nest up to ``n`` levels deeper than above, the deepest that keeps the regex under the size limits;
where none does, the compile is exactly that of ``any_depth=0`` (the default). ``any_depth=None`` asks for any
values of every depth: a context-free language, refused here by name (``any_depth``) where the schema has any
values, and written by the grammar engine (``tree_to_lark``; ``sd.fill`` routes it there).

Everything else that constrains instances raises ``UnsupportedSchemaError(keyword, pointer, why)``.
"""


from __future__ import annotations

import json
import re
import sys

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.schema.compiler import _Compiler
from steerdiff_plugins.schema.nodes import Arr, Node, Obj, Str, Union
from steerdiff_plugins.schema.pattern import (
    _complement,
    _set_ranges,
    _sre_c,
    _sre_parse,
)

__all__ = ["schema_to_regex", "canonical_dumps", "schema_from_pydantic", "compile_schema", "compile_tree", "CompiledSchema", "largest_count", "has_unbounded_any",
           "sample_text"]


# ------------------------------------------------------------------------------------------------ API

class CompiledSchema:
    """A compiled schema: `regex`, the `node` tree used by canonical_dumps, and `notes` (narrowings)."""

    def __init__(self, node: Node, notes: list[str]):
        self.node, self.notes = node, notes
        self.regex = node.regex()
        self._cre = None

    def fullmatch(self, text: str) -> bool:
        if self._cre is None:
            self._cre = re.compile(self.regex)
        return self._cre.fullmatch(text) is not None

    def dumps(self, instance) -> str:
        return self.node.dump(instance)


# undeclared keys (extra_keys) are dropped where they take a regex past this size (the closed language, a subset,
# is used instead): on MaskBench they grew regexes 2.3x at the median, and 19 of its schemas past 200k characters,
# where Python re's matching (the benchmark's) and the automaton builds slow down
EXTRA_MAX_CHARS = 200_000
# levels any values nest deeper (compile_schema's any_depth, opt-in), where the regex stays under the limits:
# MaskBench's valid instances nest free-form values (settings, payloads) deeper than max_depth=3 gives them
ANY_DEPTH = 2
# the last note of compile_tree(any_depth=None) when its tree holds an any value without a depth bound
UNBOUNDED_ANY_NOTE = "any values of unbounded depth (any_depth=None): grammar engine only"

_CACHE: dict = {}
_TREES: dict = {}


def check_schema_args(schema, max_depth) -> None:
    """The checks every whole-schema compiler makes first (``compile_tree``, ``to_lark.compile_graph``): a dict
    or bool schema, not ``false``, and a non-negative int ``max_depth``; else a named ``ConstraintError``."""
    if not isinstance(schema, (dict, bool)):
        raise ConstraintError(f"a JSON Schema is a dict or a bool, got {type(schema).__name__}")
    if not isinstance(max_depth, int) or max_depth < 0:
        raise ConstraintError(f"max_depth must be a non-negative int, got {max_depth!r}")
    if schema is False:
        raise ConstraintError("schema is false: empty language")


def _schema_text(schema) -> str:
    return json.dumps(schema, sort_keys=True, default=repr)


def _cache_key(schema, *options) -> tuple:
    return (_schema_text(schema), *options)


def compile_tree(schema, *, max_depth: int = 3, max_items: int | None = None,
                 max_string: int | None = None, capacity: int | None = None,
                 extra_keys: bool | int = False, any_depth: int | None = 0,
                 _text: str | None = None) -> tuple[Node, list[str]]:
    """The compiled tree of `schema` and the narrowings applied, without building its regex (the grammar
    engine takes a tree whose regex would be too large: see ``steerdiff_plugins.schema.tree_to_lark``). Raises
    like :func:`compile_schema`, except for the ``size`` of the regex. ``any_depth``: levels any-value nodes
    (the empty schema, undeclared keys' values) nest beyond what ``max_depth`` gives them (0: exactly that).

    ``any_depth=None``: any values without a depth bound, for the grammar engine (``tree_to_lark`` writes every
    ``AnyValue`` as JSON of any depth; their ``regex()`` keeps the ``any_depth=0`` bound, a subset); untyped
    schemas keep every type at any nesting. When the tree holds such a value, its notes end with
    ``UNBOUNDED_ANY_NOTE``; otherwise the tree is that of ``any_depth=0``. ``_text``: ``_schema_text(schema)``
    when the caller has it already (compile_schema: the cache key's JSON, written once per call)."""
    check_schema_args(schema, max_depth)
    if not isinstance(extra_keys, int) or extra_keys < 0:
        raise ConstraintError(f"extra_keys must be a bool or a non-negative int, got {extra_keys!r}")
    _check_any_depth(any_depth)
    key = (_schema_text(schema) if _text is None else _text, max_depth, max_items, max_string, capacity,
           repr(extra_keys), any_depth)  # True == 1
    hit = _TREES.get(key)  # fill builds the tree again when the regex turns out too large
    if hit is not None:
        return hit
    comp = _Compiler(schema, max_depth, max_items, max_string, capacity, extra_keys)
    comp.any_depth, comp.unbounded_any = any_depth or 0, any_depth is None
    node = comp.compile_root(schema, f"recursion deeper than max_depth={max_depth} on a required path",
                     "schema nesting too deep to unroll")
    if node.empty and comp.too_long:
        raise ConstraintError(f"schema admits no instance that fits a canvas of {capacity} bytes: "
                              f"{comp.too_long[0]} needs more; raise length")
    if node.empty:
        raise ConstraintError("schema admits no instance: empty language")
    notes = comp.notes + ([UNBOUNDED_ANY_NOTE] if comp.unbounded_any and comp.any_used else [])
    if len(_TREES) > 64:
        _TREES.clear()
    _TREES[key] = (node, notes)
    return node, notes


def _check_any_depth(any_depth) -> None:
    if any_depth is not None and (not isinstance(any_depth, int) or isinstance(any_depth, bool) or any_depth < 0):
        raise ConstraintError(f"any_depth must be a non-negative int or None (unbounded, grammar engine), "
                              f"got {any_depth!r}")


def has_unbounded_any(schema, **options) -> bool:
    """Whether ``compile_tree(schema, any_depth=None, **options)`` holds an any value (or an untyped schema)
    that the grammar engine writes without a depth bound; False means that tree is the ``any_depth=0`` tree."""
    return UNBOUNDED_ANY_NOTE in compile_tree(schema, any_depth=None, **options)[1]


def compile_schema(schema, *, max_depth: int = 3, max_items: int | None = None,
                   max_string: int | None = None, capacity: int | None = None,
                   extra_keys: bool | int = False, any_depth: int | None = 0) -> CompiledSchema:
    """Compile `schema` (dict or bool) into a CompiledSchema. Raises UnsupportedSchemaError naming the
    keyword and JSON pointer for anything not expressible exactly, ConstraintError for an empty language
    or a malformed schema. ``capacity``: the most bytes the canvas holds (``canvas_bounds``); bounds no
    text of that size reaches are compiled as absent, so the language is the schema's only on texts of at
    most ``capacity`` bytes (None: no such assumption). ``extra_keys``: objects may also hold keys they do not
    declare, where ``additionalProperties`` allows them exactly (see the module docstring); an int ``n``: only
    objects nested at most ``n`` containers deep (0: the top level).

    ``any_depth``: any-value nodes (the empty schema, undeclared keys' values) may nest up to this many levels
    deeper than ``max_depth`` (and ``EXTRA_DEPTH``) give them, adaptively: each depth from ``any_depth`` down
    to 1 is tried and kept when its regex stays under the size limits (``MAX_REGEX_CHARS``,
    ``EXTRA_MAX_CHARS``); otherwise the compile is exactly that of ``any_depth=0`` (the default). Every try's
    language contains the next one's, all are subsets of the schema's. Opt-in: a deeper any value multiplies
    its regex by about 4 per level (``ANY_DEPTH``, 2, is what MaskBench's instances want).

    ``any_depth=None`` (unbounded any values): a schema whose tree holds an any value has no regular language
    at that option and raises ``UnsupportedSchemaError`` with keyword ``any_depth`` (``fill`` then takes the
    grammar engine, ``tree_to_lark(compile_tree(schema, any_depth=None))``); any other schema compiles exactly
    as with ``any_depth=0``."""
    _check_any_depth(any_depth)
    if any_depth is None:
        opts = dict(max_depth=max_depth, max_items=max_items, max_string=max_string, capacity=capacity,
                    extra_keys=extra_keys)
        if has_unbounded_any(schema, **opts):
            raise UnsupportedSchemaError("any_depth", "#", "any values of unbounded depth (any_depth=None) are not "
                                         "a regular language: the grammar engine writes them (sd.fill takes it)")
        return compile_schema(schema, any_depth=0, **opts)
    text = _schema_text(schema)
    key = (text, max_depth, max_items, max_string, capacity, repr(extra_keys), any_depth)  # True == 1
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    # deeper any values first (kept under the size limits), then undeclared keys that take the regex past its
    # size limit or EXTRA_MAX_CHARS are kept on the outer objects only (nesting <= 1), then dropped: each step's
    # language is a subset of the one before; the tries at any_depth 0 are exactly those without it
    tries = [extra_keys, 1, False] if extra_keys is True else [extra_keys, False] if extra_keys is not False else [False]
    tries = [(extra_keys, d) for d in range(any_depth, 0, -1)] + [(ek, 0) for ek in tries]
    dropped: list[str] = []
    for ek, deep in tries:
        try:
            node, notes = compile_tree(schema, max_depth=max_depth, max_items=max_items, max_string=max_string,
                                       capacity=capacity, extra_keys=ek, any_depth=deep, _text=text)
        except UnsupportedSchemaError as e:
            if deep == 0 or e.keyword != "size":
                raise
            dropped.append(f"any_depth={deep} dropped: {e.why}")
            continue
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 20000))
        try:
            out = CompiledSchema(node, notes + dropped)
        except UnsupportedSchemaError as e:
            if (ek is False and deep == 0) or e.keyword != "size":
                raise
            dropped.append(f"extra_keys={ek!r}, any_depth={deep} dropped: {e.why}")
            continue
        finally:
            sys.setrecursionlimit(old)
        if (ek is not False or deep) and len(out.regex) > EXTRA_MAX_CHARS:
            dropped.append(f"extra_keys={ek!r}, any_depth={deep} dropped: regex of {len(out.regex)} characters, "
                           f"over {EXTRA_MAX_CHARS}")
            continue
        break
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def schema_to_regex(schema, *, max_depth: int = 3, max_items: int | None = None,
                    max_string: int | None = None, capacity: int | None = None, extra_keys: bool = False) -> str:
    """Regex (Python re / interegular / Rust regex common dialect) of canonical JSON texts valid under
    `schema`. See the module docstring for the canonical form and the narrowings."""
    return compile_schema(schema, max_depth=max_depth, max_items=max_items, max_string=max_string,
                          capacity=capacity, extra_keys=extra_keys).regex


def canonical_dumps(instance, schema, *, max_depth: int = 3, max_items: int | None = None,
                    max_string: int | None = None) -> str:
    """Write `instance` the way the constraint for `schema` writes JSON (compact, keys in `properties`
    order, integers plain, bounded numbers without exponent). For an invalid instance the text is still
    produced (so tests can check that it is rejected)."""
    return compile_schema(schema, max_depth=max_depth, max_items=max_items, max_string=max_string).dumps(instance)


def schema_from_pydantic(model) -> dict:
    """`model.model_json_schema()` with every `$ref` kept local (pydantic writes `#/$defs/...`)."""
    try:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
    except AttributeError:
        raise ConstraintError(f"{model!r} is not a pydantic v2 model class") from None
    return schema


# --------------------------------------------------------------------------------------- test helper

def sample_text(regex: str, rng, max_repeat: int = 3) -> str:
    """A random string of `regex`'s language (for soundness tests: every sample must be valid JSON that
    validates). Unbounded repeats are cut at `max_repeat` extra copies; classes draw from their ranges."""
    parsed = _sre_parse.parse(regex, 0)

    def pick_set(items):
        ranges, neg = _set_ranges(items)  # the compiler's dialect: literals and ranges only
        if neg:
            ranges = _complement(ranges)
            # prefer readable characters most of the time
            if rng.random() < 0.8:
                ranges = [(max(a, 0x20), min(b, 0x7E)) for a, b in ranges if a <= 0x7E and b >= 0x20] or ranges
        weights = [b - a + 1 for a, b in ranges]
        a, b = rng.choices(ranges, weights=[min(w, 64) for w in weights])[0]
        return chr(rng.randint(a, b))

    def gen(seq, out):
        for op, av in seq:
            n = str(op)
            if n == "LITERAL":
                out.append(chr(av))
            elif n == "NOT_LITERAL":
                out.append(pick_set([(_sre_c.NEGATE, None), (_sre_c.LITERAL, av)]))
            elif n == "IN":
                out.append(pick_set(av))
            elif n == "BRANCH":
                gen(rng.choice(av[1]), out)
            elif n == "SUBPATTERN":
                gen(av[3], out)
            elif n in ("MAX_REPEAT", "MIN_REPEAT"):
                lo, hi, sub = av
                hi = lo + max_repeat if hi == _sre_c.MAXREPEAT else min(hi, lo + max_repeat)
                for _ in range(rng.randint(lo, hi)):
                    gen(sub, out)
            else:
                raise ValueError(f"sampler: {n} is outside the dialect")
        return out

    return "".join(gen(parsed, []))


def largest_count(node: Node) -> tuple[str, str]:
    """``(pointer, description)`` of the largest repetition count in a compiled tree (a string's length
    bounds, an array's item bounds): what a byte-automaton budget error names. A node without its own pointer
    (a ``type`` list's alternative) is named by its parent's."""
    best, seen, todo = (-1, "#", ""), set(), [(node, "#")]
    while todo:
        n, up = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        ptr = n.__dict__.get("pointer", up)
        if isinstance(n, Str) and n.content is None:
            c = n.hi if n.hi is not None else n.lo
            best = max(best, (c, ptr, f"string length bounds {n.lo}..{n.hi}"), key=lambda x: x[0])
        elif isinstance(n, Arr):
            c = n.hi if n.hi is not None else n.lo
            best = max(best, (c, ptr, f"array item bounds {n.lo}..{n.hi}"), key=lambda x: x[0])
            kids = list(n.prefix) + ([n.items] if n.items is not None else [])
        elif isinstance(n, Obj):
            kids = [x for _, x, _ in n.props] + ([n.map_value] if n.map_value is not None else [])
            kids += [n.extra[1]] if n.extra is not None else []
        elif isinstance(n, Union):
            kids = list(n.alts)
        if isinstance(n, (Arr, Obj, Union)):
            todo += [(x, ptr) for x in kids]
    return best[1], best[2]
