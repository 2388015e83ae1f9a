"""JSON Schemas with local ``$ref`` recursion as a lark grammar, for the exact grammar engine.

    grammar = schema_to_lark(tree_schema)          # text for sd.Grammar(grammar)

The grammar's language is the same canonical compact form the regular engine (``steerdiff_plugins.schema``)
writes: no whitespace, object keys in ``properties`` order, optional keys optional, only declared keys
(``additionalProperties: false`` semantics; the output is a subset of what the schema allows whatever it
says about additional properties). Recursion is a rule referring to itself, so no depth limit applies.

Supported: ``type`` (one or a list) object / array / string / integer / number / boolean / null,
``properties`` + ``required``, ``items`` (a schema) with ``minItems`` / ``maxItems`` (span <= 64),
strings with ``minLength`` / ``maxLength`` (bounds beyond the canvas ``capacity`` are not built),
``enum`` / ``const`` (written as canonical JSON literals), ``anyOf`` (``oneOf`` is refused), local ``$ref`` into
``$defs`` / ``definitions`` / any JSON pointer of the root, the empty schema (any JSON value), and
annotations (title, description, default, examples, ``x-...`` extensions: any keyword that is not a validation
keyword and does not start with ``$``; ``id``/``$id`` only at the root). Any other keyword raises
:class:`UnsupportedSchemaError` naming the keyword and its JSON pointer.

Strings are JSON strings (any escape but a ``\\u`` surrogate), integers have no fraction or exponent,
numbers are JSON numbers. Every text of the grammar is JSON; validity under the schema is checked by
the caller (``fill`` validates with python-jsonschema).
"""

from __future__ import annotations

import json

from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from steerdiff_plugins.compile_budget import check_deadline
from steerdiff_plugins.schema.compiler import _Compiler
from steerdiff_plugins.schema.fragments import (  # _type_of: JSON Schema's notion (1.0 is an integer)
    _ALWAYS_REFUSED,
    _CONSTRAINING,
    _ptr,
    _type_of,
)
from steerdiff_plugins.schema.nodes import Arr, Node, Obj, Union

__all__ = ["schema_to_lark", "compile_graph"]

_ANNOTATIONS = {
    "title", "description", "default", "examples", "$comment", "$schema", "deprecated", "readOnly",
    "writeOnly", "$defs", "definitions", "additionalProperties", "unevaluatedProperties", "$anchor",
    "contentMediaType", "contentEncoding",
}
_HANDLED = {"type", "properties", "required", "items", "minItems", "maxItems", "enum", "const", "anyOf", "$ref",
            "minLength", "maxLength"}
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
MAX_ITEMS_SPAN = 64
MAX_MIN_ITEMS = 256  # the grammar writes minItems copies of an item; beyond this minItems is refused

_TERMINALS = r"""
JSTRING: /"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"/
JINT: /-?(?:0|[1-9][0-9]*)/
JFRAC: /\.[0-9]+/
JEXP: /[eE][+\-]?[0-9]+/
"""


def _lit(text: str) -> str:
    """A lark string literal matching ``text`` exactly."""
    return json.dumps(text, ensure_ascii=True)


# any JSON value (the empty schema, ``true``), over the terminals in _TERMINALS
_ANY_RULES = {
    "anyvalue": ["anyobject", "anyarray", "JSTRING", "JINT", "JINT JFRAC", "JINT JEXP", "JINT JFRAC JEXP",
                 '"true"', '"false"', '"null"'],
    "anyobject": ['"{" "}"', '"{" JSTRING ":" anyvalue ("," JSTRING ":" anyvalue)* "}"'],
    "anyarray": ['"[" "]"', '"[" anyvalue ("," anyvalue)* "]"'],
}


def _object_chain(entries, base: str) -> tuple[dict[str, list[str]], list[str]]:
    """Rules for an object whose ``entries`` (key literal with its colon, value symbol, required) are
    written in order, optional ones optional, comma-separated. Rule ``{base}_{i}_{w}`` is the text from
    entry i on (w: preceded by a comma). Returns (rules in definition order, the object's alternatives)."""
    n = len(entries)
    if n == 0:
        return {}, ['"{" "}"']
    nullable_from = [not any(r for _, _, r in entries[i:]) for i in range(n + 1)]
    names = {(i, w): f"{base}_{i}_{int(w)}" for i in range(n) for w in (False, True)}
    rules: dict[str, list[str]] = {}
    todo, done = [(0, False)], set()
    while todo:
        i, w = todo.pop()
        if (i, w) in done:
            continue
        done.add((i, w))
        key, val, req = entries[i]
        head = ('"," ' if w else "") + f"{key} {val}"
        if i + 1 < n:
            todo.append((i + 1, True))
            head += f" [{names[(i + 1, True)]}]" if nullable_from[i + 1] else f" {names[(i + 1, True)]}"
        alts = [head]
        if not req and i + 1 < n:
            alts.append(names[(i + 1, w)])
            todo.append((i + 1, w))
        rules[names[(i, w)]] = alts
    out = [f'"{{" {names[(0, False)]} "}}"']
    if nullable_from[0]:
        out.append('"{" "}"')
    return rules, out


def _canon(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Builder:
    def __init__(self, root: dict, capacity: int | None = None):
        self.root = root
        self.cap = capacity  # bytes the canvas holds: bounds beyond it are not built (canvas_bounds)
        self.terms: dict[str, str] = {}  # extra terminals: regex -> name
        self.rules: dict[str, list[str]] = {}  # name -> alternatives (deduplicated, in order)
        self.by_pointer: dict[str, str] = {}   # resolved schema pointer -> rule name
        self.count = 0
        self.any_value = None
        self.tree = None  # the tree grammar builder of $ref-free subschemas this builder refuses (rule_for)

    def fresh(self, hint: str = "n") -> str:
        self.count += 1
        return f"{hint}{self.count}"

    def define(self, name: str, alts: list[str]) -> str:
        seen: list[str] = []
        for a in alts:
            if a not in seen:
                seen.append(a)
        self.rules[name] = seen
        return name

    def _types_within(self, schema, types: list[str], pointer: str, depth: int = 0) -> bool:
        """Whether every instance of ``schema`` has one of ``types`` as far as its own ``type`` (through
        ``$ref`` chains) shows; False when it cannot tell."""
        while isinstance(schema, dict) and "$ref" in schema and depth < 32:
            schema, pointer = self.resolve(schema["$ref"], _ptr(pointer, "$ref"))
            depth += 1
        if not isinstance(schema, dict) or "type" not in schema:
            return False
        own = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        return all(t in types or (t == "integer" and "number" in types) for t in own)

    # ------------------------------------------------------------------------------------- $ref
    def resolve(self, ref, pointer: str):
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise UnsupportedSchemaError("$ref", pointer, f"only local references (#...) are supported, got {ref!r}")
        frag = ref[1:]
        if frag and not frag.startswith("/"):
            raise UnsupportedSchemaError("$ref", pointer, f"anchor references are not supported ({ref!r})")
        node = self.root
        target = "#"
        for part in frag.split("/")[1:] if frag else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise UnsupportedSchemaError("$ref", pointer, f"reference {ref!r} does not resolve")
            target = _ptr(target, part)
        return node, target

    # ------------------------------------------------------------------------------------ nodes
    def rule_for(self, schema, pointer: str) -> str:
        """The rule name for the schema at ``pointer`` (memoized per pointer, so recursion terminates).

        A subschema this builder refuses (``pattern``, ``format``, numeric bounds, ``oneOf``, ...) that holds
        no ``$ref`` is compiled by the regular engine's schema compiler (``compile_tree``: every keyword it
        takes, the same exact language as its regex) and written by ``tree_to_lark``'s builder instead;
        whatever the refused attempt had defined is dropped first."""
        if pointer in self.by_pointer:
            return self.by_pointer[pointer]
        check_deadline("grammar", pointer)  # the whole compile's clock (compile_budget)
        name = self.fresh()
        self.by_pointer[pointer] = name
        self.rules[name] = []  # placeholder while building (recursive references)
        mark = (len(self.rules), len(self.by_pointer), len(self.terms), self.any_value)
        try:
            alts = self.alternatives(schema, pointer)
        except UnsupportedSchemaError as exc:
            if not isinstance(schema, dict) or _has_ref(schema):
                raise
            self._undo(mark)
            alts = self.tree_alts(schema, pointer, exc)
        self.define(name, alts)
        return name

    def _undo(self, mark) -> None:
        """Drop the rules, pointers and terminals defined since ``mark`` (all appended after it)."""
        n_rules, n_ptrs, n_terms, any_value = mark
        for d, n in ((self.rules, n_rules), (self.by_pointer, n_ptrs), (self.terms, n_terms)):
            for k in list(d)[n:]:
                del d[k]
        self.any_value = any_value

    def tree_alts(self, schema: dict, pointer: str, refused: UnsupportedSchemaError) -> list[str]:
        """The alternatives of a ``$ref``-free subschema through ``compile_tree`` + the tree grammar builder
        (see :meth:`rule_for`); its refusal is re-raised with the pointer made absolute."""
        from steerdiff_plugins.schema.compiled import compile_tree
        from steerdiff_plugins.schema.tree_to_lark import _TreeGrammar

        try:
            node, _ = compile_tree(schema, capacity=self.cap)
        except UnsupportedSchemaError as exc:
            raise UnsupportedSchemaError(exc.keyword, pointer + (exc.pointer or "#")[1:], exc.why) from None
        except ConstraintError:  # no instance of this subschema fits: the rule stays empty (see schema_to_lark)
            return []
        if self.tree is None:
            self.tree = _TreeGrammar(prefix="x")
        return [self.tree.sym(node)]

    def alternatives(self, schema, pointer: str) -> list[str]:
        if schema is True or schema == {}:
            return [self.any_rule()]
        if schema is False:
            raise UnsupportedSchemaError("false", pointer, "the false schema admits nothing")
        if not isinstance(schema, dict):
            raise ConstraintError(f"schema at {pointer} must be an object or a boolean, got {type(schema).__name__}")
        for key in schema:
            if key in _HANDLED or key in _ANNOTATIONS:
                continue
            if key in ("id", "$id"):
                ok = pointer == "#"  # an embedded id would move where "#..." references point
            else:
                ok = key not in _CONSTRAINING and not key.startswith("$")  # an annotation or an extension
            if not ok:
                raise UnsupportedSchemaError(key, _ptr(pointer, key), "not supported by the grammar engine")
        if schema.get("additionalProperties") not in (None, False, True) and not isinstance(schema.get("additionalProperties"), dict):
            raise UnsupportedSchemaError("additionalProperties", _ptr(pointer, "additionalProperties"))
        if "$ref" in schema:
            others = [k for k in schema if k in _HANDLED and k != "$ref"]
            if others:
                raise UnsupportedSchemaError(others[0], _ptr(pointer, others[0]), "siblings of $ref are not supported")
            target, tptr = self.resolve(schema["$ref"], _ptr(pointer, "$ref"))
            return [self.rule_for(target, tptr)]
        types = schema.get("type")
        if types is None:
            types_list = None
        else:
            types_list = [types] if isinstance(types, str) else list(types)
            for t in types_list:
                if t not in _TYPES:
                    raise UnsupportedSchemaError("type", _ptr(pointer, "type"), f"unknown type {t!r}")
        if "anyOf" in schema:
            subs = schema["anyOf"]
            if not isinstance(subs, list) or not subs:
                raise ConstraintError(f"anyOf at {pointer} must be a non-empty array")
            rest = [k for k in schema if k in _HANDLED and k != "anyOf"]
            if rest == ["type"] and all(self._types_within(sub, types_list, _ptr(pointer, "anyOf", i))
                                        for i, sub in enumerate(subs)):
                rest = []  # a sibling type that every branch already implies changes nothing
            if rest:
                raise UnsupportedSchemaError(rest[0], _ptr(pointer, rest[0]), "siblings of anyOf are not supported")
            alts: list[str] = []
            for i, sub in enumerate(subs):
                alts += self.alternatives(sub, _ptr(pointer, "anyOf", i))
            return alts
        if "const" in schema or "enum" in schema:
            values = [schema["const"]] if "const" in schema else schema["enum"]
            if "const" in schema and "enum" in schema:
                values = [v for v in values if v in schema["enum"]]
            if not isinstance(values, list):
                raise ConstraintError(f"enum at {pointer} must be an array")
            if types_list is not None:
                values = [v for v in values if _type_of(v) in types_list or (_type_of(v) == "integer" and "number" in types_list)]
            if not values:
                raise ConstraintError(f"schema at {pointer} admits no instance: empty language")
            return [_lit(_canon(v)) for v in values]
        if types_list is None:
            if "properties" in schema or "required" in schema:
                types_list = ["object"]
            elif "items" in schema or "minItems" in schema or "maxItems" in schema:
                types_list = ["array"]
            elif "minLength" in schema or "maxLength" in schema:
                kw = "minLength" if "minLength" in schema else "maxLength"
                raise UnsupportedSchemaError(kw, _ptr(pointer, kw), "length bounds on a schema without type "
                                             "(any value) are not supported by the grammar engine")
            else:
                return [self.any_rule()]
        alts = []
        for t in types_list:
            if t == "object":
                alts += self.object_alts(schema, pointer)
            elif t == "array":
                alts += self.array_alts(schema, pointer)
            elif t == "string":
                alts += self.string_alts(schema, pointer)
            elif t == "integer":
                alts.append("JINT")
            elif t == "number":
                alts += ["JINT", "JINT JFRAC", "JINT JEXP", "JINT JFRAC JEXP"]
            elif t == "boolean":
                alts += ['"true"', '"false"']
            else:
                alts.append('"null"')
        return alts

    def object_alts(self, schema, pointer: str) -> list[str]:
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise ConstraintError(f"properties at {pointer} must be an object")
        required = schema.get("required") or []
        for r in required:
            if r not in props:
                raise UnsupportedSchemaError("required", _ptr(pointer, "required"),
                                             f"required key {r!r} is not declared in properties")
        if not props:
            return ['"{" "}"']
        entries = [(_lit(_canon(k) + ":"), self.rule_for(props[k], _ptr(pointer, "properties", k)), k in required)
                   for k in props]
        rules, out = _object_chain(entries, self.fresh("o"))
        for name, alts in rules.items():
            self.define(name, alts)
        return out

    def string_alts(self, schema, pointer: str) -> list[str]:
        """A JSON string with ``minLength`` / ``maxLength`` (characters; bounds the canvas cannot reach are
        dropped), as one terminal; [] when no such string fits the canvas."""
        from steerdiff_plugins.canvas_bounds import fit_count
        from steerdiff_plugins.schema.fragments import STRCHAR, _rep

        bounds = []
        for kw, default in (("minLength", 0), ("maxLength", None)):
            v = schema.get(kw, default)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ConstraintError(f"{kw} at {_ptr(pointer, kw)} must be a non-negative integer, got {v!r}")
            bounds.append(v)
        lo, hi = fit_count(bounds[0], bounds[1], 1, self.cap)
        if hi is not None and hi < lo:
            return []
        if (lo, hi) == (0, None):
            return ["JSTRING"]
        regex = '"' + _rep(STRCHAR, lo, hi) + '"'
        if regex not in self.terms:
            self.terms[regex] = f"JSTR{len(self.terms)}"
        return [self.terms[regex]]

    def array_alts(self, schema, pointer: str) -> list[str]:
        items = schema.get("items", True)
        if isinstance(items, list):
            raise UnsupportedSchemaError("items", _ptr(pointer, "items"), "tuple items are not supported")
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems")
        if not isinstance(lo, int) or lo < 0:
            raise ConstraintError(f"minItems at {pointer} must be a non-negative integer")
        if hi is not None and (not isinstance(hi, int) or hi < lo):
            raise ConstraintError(f"maxItems at {pointer} must be an integer >= minItems")
        from steerdiff_plugins.canvas_bounds import fit_count

        lo, hi = fit_count(lo, hi, 2, self.cap)  # an item past the first writes a comma and a byte
        if hi is not None and hi < lo:
            return []
        if hi is not None and hi - lo > MAX_ITEMS_SPAN:
            raise UnsupportedSchemaError("maxItems", _ptr(pointer, "maxItems"), f"maxItems - minItems > {MAX_ITEMS_SPAN}")
        if lo > MAX_MIN_ITEMS:  # the grammar writes minItems copies of the item: refused before building them
            raise UnsupportedSchemaError("minItems", _ptr(pointer, "minItems"), f"minItems > {MAX_MIN_ITEMS} in the grammar engine")
        v = self.rule_for(items, _ptr(pointer, "items"))
        if hi == 0:
            return ['"[" "]"']
        seq = [v] + [f'"," {v}'] * (max(lo, 1) - 1)
        if hi is None:
            tail = f'("," {v})*'
        else:
            tail = ""
            for _ in range(hi - max(lo, 1)):
                tail = f'["," {v}{(" " + tail) if tail else ""}]'
        body = " ".join(seq + ([tail] if tail else []))
        out = [f'"[" {body} "]"']
        if lo == 0:
            out.append('"[" "]"')
        return out

    def any_rule(self) -> str:
        if self.any_value is None:
            self.any_value = "anyvalue"
            for name, alts in _ANY_RULES.items():
                self.define(name, alts)
        return self.any_value


def schema_to_lark(schema, capacity: int | None = None) -> str:
    """A lark grammar (LALR(1), start rule ``start``) of the canonical compact JSON texts of ``schema``.
    ``capacity``: the most bytes the canvas holds; bounds beyond it are not built (``canvas_bounds``), the
    same language on such a canvas.

    Raises :class:`UnsupportedSchemaError` (keyword, pointer) for keywords outside the supported set, and
    for a grammar whose alternatives overlap so that lark cannot build its LALR(1) table.
    """
    if isinstance(schema, str):
        schema = json.loads(schema)
    if not isinstance(schema, (dict, bool)):
        raise ConstraintError(f"schema_to_lark needs a dict or a bool, got {type(schema).__name__}")
    b = _Builder(schema if isinstance(schema, dict) else {}, capacity)
    top = b.rule_for(schema, "#")
    empty = [name for name, alts in b.rules.items() if not alts]
    if empty:  # a rule without alternatives: a minimum length or count the canvas cannot hold
        where = next((p for p, n in b.by_pointer.items() if n in empty), "#")
        raise ConstraintError(f"schema at {where} admits no instance that fits a canvas of {capacity} bytes "
                              "(a minLength or minItems needs more); raise length")
    lines = [f"start: {top}"]
    for name, alts in b.rules.items():
        lines.append(f"{name}: " + "\n    | ".join(alts))
    from steerdiff_plugins.schema.tree_to_lark import lark_regex  # (tree_to_lark imports this module)

    for regex, name in b.terms.items():
        lines.append(f"{name}: /{lark_regex(regex)}/")
    if b.tree is not None:  # subschemas through compile_tree (rule_for); the any-value rules are the same
        for name, alts in b.tree.rules.items():
            if name not in b.rules:
                lines.append(f"{name}: " + "\n    | ".join(alts))
        for regex, name in b.tree.terms.items():
            lines.append(f"{name}: /{lark_regex(regex)}/")
    grammar = "\n".join(lines) + "\n" + _TERMINALS
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded
    from steerdiff_plugins.grammars.loader import check_grammar_size

    try:  # lark's LALR analysis cannot be interrupted: its size is bounded first
        check_grammar_size(grammar)
    except CompileBudgetExceeded as exc:  # fill's fallback names both engines' reasons for "size"
        raise UnsupportedSchemaError("size", "#", str(exc)) from None
    _check_lalr(grammar, {name: ptr for ptr, name in b.by_pointer.items()})
    if b.tree is not None:
        from steerdiff_plugins.schema.tree_to_lark import check_terminals

        check_terminals(grammar, b.tree.terms)
    return grammar


def _has_ref(schema) -> bool:
    """Whether ``schema`` (any JSON value) holds a ``$ref`` key anywhere (also inside values: conservative)."""
    if isinstance(schema, dict):
        return "$ref" in schema or any(_has_ref(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_ref(v) for v in schema)
    return False


def _check_lalr(grammar: str, pointer_of: dict[str, str]) -> None:
    """Refuse a grammar lark cannot build an LALR(1) table for (overlapping alternatives, as two anyOf
    branches writing the same texts make, collide), naming the schema location of the first rule involved."""
    import re

    from steerdiff.errors import GrammarError
    from steerdiff_plugins.grammars.loader import load_lark as validator

    try:
        validator(grammar, "start")  # cached: the Grammar constraint reuses this parser
    except GrammarError as exc:
        msg = str(exc).strip()
        rule = re.search(r"<(n\d+) :", msg)
        pointer = pointer_of.get(rule.group(1), "#") if rule else "#"
        raise UnsupportedSchemaError("anyOf", pointer, "overlapping alternatives: lark cannot build an LALR(1) table ("
                                     + msg.splitlines()[0][:160] + ")") from None


# ------------------------------------------------------------------------------ reference graphs
# compile_graph: a schema as a node graph with one shared ``tree_to_lark.Ref`` per $ref target (recursion is a
# cycle), for ``tree_to_lark``; the contract is in tree_to_lark's module docstring.

class _GraphCompiler(_Compiler):
    """``_Compiler`` with plain ``$ref`` compiled once per URL, as a ``tree_to_lark.Ref``."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.refs: dict = {}  # resolved URL -> its tree_to_lark.Ref  # resolved URL -> its Ref, in creation order

    def _shares(self, s) -> bool:
        """Whether the tree compiler would compile ``s`` as its ``$ref`` target alone (no merge, no
        ``enum``/``const``/``if``/refused keyword before the ``$ref`` branch of ``_node``)."""
        if not isinstance(s, dict) or "$ref" not in s or "enum" in s or "const" in s:
            return False
        if "if" in s and ("then" in s or "else" in s):
            return False
        if any(kw in s for kw in _ALWAYS_REFUSED):
            return False
        siblings = [k for k in s if k in _CONSTRAINING and k != "$ref"]
        return not (siblings and self.draft >= 2019)

    def _node(self, s, ptr, base) -> Node:
        if not self._shares(s):
            return super()._node(s, ptr, base)
        base = self._base_of(s, base)
        target, tbase, url = self.resolve(s["$ref"], base, _ptr(ptr, "$ref"))
        ref = self.refs.get(url)
        if ref is not None:
            return ref
        from steerdiff_plugins.schema.tree_to_lark import Ref  # (tree_to_lark imports this module)

        ref = self.refs[url] = Ref(url, ptr)
        mark = len(self.refs) - 1
        try:
            ref.target = self.node(target, _ptr(ptr, "$ref"), tbase)
        except BaseException:
            # the references compiled since this one may hold it (a cycle) while it is unset: drop them all
            for key in list(self.refs)[mark:]:
                del self.refs[key]
            raise
        return ref


def _productive(refs: list) -> set[int]:
    """ids of the ``Ref`` nodes whose target has a finite instance (least fixpoint over the graph)."""
    from steerdiff_plugins.schema.tree_to_lark import Ref

    good: set[int] = set()

    def ok(n, seen) -> bool:
        if isinstance(n, Ref):
            return id(n) in good
        if id(n) in seen:
            return False
        seen = seen | {id(n)}
        if isinstance(n, Union):
            return any(ok(a, seen) for a in n.alts)
        if isinstance(n, Obj):
            if n.map_value is not None and n.map_lo and not ok(n.map_value, seen):
                return False
            return all(ok(v, seen) for _, v, req in n.props if req)
        if isinstance(n, Arr):
            if n.empty:
                return False
            need = n.prefix[:n.lo]
            if n.lo > len(n.prefix) and (n.items is None or not ok(n.items, seen)):
                return False
            return all(ok(p, seen) for p in need)
        return not n.empty

    changed = True
    while changed:
        changed = False
        for r in refs:
            if id(r) not in good and r.target is not None and ok(r.target, frozenset()):
                good.add(id(r))
                changed = True
    return good


_GRAPHS: dict = {}


def compile_graph(schema, *, max_depth: int = 3, max_items: int | None = None, max_string: int | None = None,
                  capacity: int | None = None) -> tuple[Node, list[str]]:
    """The node graph of ``schema`` and the narrowings applied (see the module docstring); options as
    ``compiled.compile_tree`` (``max_depth`` only bounds any-value nesting and ``$ref`` with merged
    siblings here). Raises :class:`UnsupportedSchemaError` like the tree compiler, and ``$ref`` for a
    reference without a finite instance; :class:`ConstraintError` for an empty language."""
    from steerdiff_plugins.schema.compiled import _cache_key, check_schema_args

    check_schema_args(schema, max_depth)
    key = _cache_key(schema, max_depth, max_items, max_string, capacity)
    hit = _GRAPHS.get(key)
    if hit is not None:
        return hit
    comp = _GraphCompiler(schema, max_depth, max_items, max_string, capacity, False)
    node = comp.compile_root(schema, f"recursion deeper than max_depth={max_depth} through a $ref with sibling keywords, "
                             "on a required path", "schema nesting too deep to compile")
    refs = list(comp.refs.values())
    good = _productive(refs)
    for r in refs:
        if id(r) not in good:
            raise UnsupportedSchemaError("$ref", r.pointer, f"reference {r.url!r} admits no finite instance "
                                         "(it recurses on a required path)")
    from steerdiff_plugins.schema.tree_to_lark import peel

    top = peel(node)
    if top.empty and comp.too_long:
        raise ConstraintError(f"schema admits no instance that fits a canvas of {capacity} bytes: "
                              f"{comp.too_long[0]} needs more; raise length")
    if top.empty:
        raise ConstraintError("schema admits no instance: empty language")
    if len(_GRAPHS) > 64:
        _GRAPHS.clear()
    _GRAPHS[key] = (node, comp.notes)
    return node, comp.notes
