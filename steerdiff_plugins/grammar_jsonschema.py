"""JSON Schemas with local ``$ref`` recursion as a lark grammar, for the exact grammar engine.

    grammar = schema_to_lark(tree_schema)          # text for sd.Grammar(grammar)

The grammar's language is the same canonical compact form the regular engine (``jsonschema_regex``)
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

from .jsonschema_regex import _CONSTRAINING, _lit_char, _type_of  # _type_of: JSON Schema's notion (1.0 is an integer)
from steerdiff.errors import ConstraintError, UnsupportedSchemaError

__all__ = ["schema_to_lark"]

_ANNOTATIONS = {
    "title", "description", "default", "examples", "$comment", "$schema", "deprecated", "readOnly",
    "writeOnly", "$defs", "definitions", "additionalProperties", "unevaluatedProperties", "$anchor",
    "contentMediaType", "contentEncoding",
}
_HANDLED = {"type", "properties", "required", "items", "minItems", "maxItems", "enum", "const", "anyOf", "$ref",
            "minLength", "maxLength"}
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
MAX_ITEMS_SPAN = 64

_TERMINALS = r"""
JSTRING: /"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"/
JINT: /-?(?:0|[1-9][0-9]*)/
JFRAC: /\.[0-9]+/
JEXP: /[eE][+\-]?[0-9]+/
"""


def _ptr(base: str, *parts) -> str:
    out = base
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


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
        """The rule name for the schema at ``pointer`` (memoized per pointer, so recursion terminates)."""
        if pointer in self.by_pointer:
            return self.by_pointer[pointer]
        name = self.fresh()
        self.by_pointer[pointer] = name
        self.rules[name] = []  # placeholder while building (recursive references)
        self.define(name, self.alternatives(schema, pointer))
        return name

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
        from .jsonschema_regex import STRCHAR, _rep

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
    for regex, name in b.terms.items():
        lines.append(f"{name}: /{lark_regex(regex)}/")
    grammar = "\n".join(lines) + "\n" + _TERMINALS
    _check_lalr(grammar, {name: ptr for ptr, name in b.by_pointer.items()})
    return grammar


def _check_lalr(grammar: str, pointer_of: dict[str, str]) -> None:
    """Refuse a grammar lark cannot build an LALR(1) table for (overlapping alternatives, as two anyOf
    branches writing the same texts make, collide), naming the schema location of the first rule involved."""
    import re

    from steerdiff.errors import GrammarError

    from .grammar import validator

    try:
        validator(grammar, "start")  # cached: the Grammar constraint reuses this parser
    except GrammarError as exc:
        msg = str(exc).strip()
        rule = re.search(r"<(n\d+) :", msg)
        pointer = pointer_of.get(rule.group(1), "#") if rule else "#"
        raise UnsupportedSchemaError("anyOf", pointer, "overlapping alternatives: lark cannot build an LALR(1) table ("
                                     + msg.splitlines()[0][:160] + ")") from None


# --------------------------------------------------------------------------------------------------
# A compiled schema tree (jsonschema_regex's nodes) as a grammar
# --------------------------------------------------------------------------------------------------

MAX_TREE_SPAN = 256  # widest maxItems - minItems the grammar writes (a chain of rules); beyond it maxItems is refused


def lark_regex(regex: str) -> str:
    """``regex`` (the jsonschema_regex dialect) as the body of a lark ``/.../`` literal that lark reads back
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
    from .jsonschema_regex import _sre_parse

    try:
        return str(_sre_parse.parse(a, 0)) == str(_sre_parse.parse(b, 0))
    except Exception:  # re.error: not the same regex then
        return False


class _TreeGrammar:
    """Rules for a node tree: scalar leaves (and unions of them) become one terminal each, composite
    nodes one rule each. Identical subtrees (the same ``$ref`` unrolled in many places, which is what makes
    the regex too large) share one symbol: symbols are hash-consed on (kind, child symbols)."""

    def __init__(self):
        self.rules: dict[str, list[str]] = {}
        self.terms: dict[str, str] = {}  # regex -> terminal name
        self.keyed: dict = {}  # structural key -> rule name
        self.memo: dict[int, tuple[str, object]] = {}  # id(node) -> (symbol, node kept alive)
        self.any_value = None

    def term(self, regex: str) -> str:
        if regex not in self.terms:
            self.terms[regex] = f"T{len(self.terms)}"
        return self.terms[regex]

    def rule(self, key, make) -> str:
        if key not in self.keyed:
            name = f"r{len(self.keyed)}"
            self.keyed[key] = name
            self.rules[name] = list(dict.fromkeys(make()))
        return self.keyed[key]

    def sym(self, node) -> str:
        hit = self.memo.get(id(node))
        if hit is None:
            hit = (self._sym(node), node)
            self.memo[id(node)] = hit
        return hit[0]

    def _leafy(self, node) -> bool:
        from . import jsonschema_regex as jr

        if isinstance(node, (jr.Lit, jr.Str, jr.Int, jr.Num)):
            return True
        if isinstance(node, jr.Arr) and node.unique_enum:
            return True
        return isinstance(node, jr.Union) and all(self._leafy(a) for a in node.alts)

    def _flat_leaves(self, nodes):
        """(non-numeric leaf regexes, numeric leaf regexes) of leafy nodes, unions flattened and enums split."""
        from . import jsonschema_regex as jr

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
        from . import jsonschema_regex as jr

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
        base = f"d{len(self.keyed)}"
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
        from . import jsonschema_regex as jr

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
                    alts.append(self.rule(("map+", k, v), lambda: [f'"{{" {k} {v} ("," {k} {v})* "}}"']))
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
            return self.rule(("map", k, v), lambda: ['"{" "}"', f'"{{" {k} {v} ("," {k} {v})* "}}"'])
        entries = tuple((_lit(_canon(key) + ":"), self.sym(n), bool(req)) for key, n, req in node.props if not n.empty)
        if not entries:
            return self.rule(("obj",), lambda: ['"{" "}"'])

        def make():
            rules, out = _object_chain(entries, f"o{len(self.keyed)}")
            self.rules.update(rules)
            return out

        return self.rule(("obj", entries), make)

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
            st = todo.pop()
            edges[st] = moves(st)
            for t in edges[st].values():
                if t not in ids:
                    ids[t] = len(ids)
                    todo.append(t)
                    if len(ids) > 5000:
                        raise UnsupportedSchemaError("anyOf", getattr(where, "pointer", "#"),
                                                     "object branches too many to merge (over 5000 states)")
        base = f"m{len(self.keyed)}"

        def make():
            for st, out in edges.items():
                if not out:
                    continue
                for w in (False, True):
                    alts = []
                    for (key, val), t in out.items():
                        head = ('"," ' if w else "") + f"{key} {val}"
                        if edges[t]:
                            nxt = f"{base}_{ids[t]}_1"
                            head += f" [{nxt}]" if accepting(t) else f" {nxt}"
                        alts.append(head)
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
                base = f"c{len(self.keyed)}_{len(self.rules)}"
                for j in range(1, n_hi - n_lo + 1):
                    self.rules[f"{base}_{j}"] = [x + (f" [{base}_{j - 1}]" if j > 1 else "")]
                seq.append(f"[{base}_{n_hi - n_lo}]")
            return " ".join(seq)

        def tail(i: int) -> str:  # the array body from element i on (jsonschema_regex.Arr._tail, as grammar)
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


def tree_to_lark(node) -> str:
    """A lark grammar (LALR(1), start rule ``start``) whose language is the language of ``node``, a tree
    from ``jsonschema_regex.compile_tree``: the same canonical JSON texts its regex would accept (any-value
    parts are not depth-bounded here, which only adds valid texts). For schemas whose regex or automaton
    is too large: a subtree used in many places is one rule here, where a regex must repeat it.

    Raises :class:`UnsupportedSchemaError` for a grammar lark cannot build an LALR(1) table for (anyOf
    branches that overlap) and for array bounds wider than ``MAX_TREE_SPAN``.
    """
    b = _TreeGrammar()
    top = b.sym(node)
    lines = [f"start: {top}"]
    for name, alts in b.rules.items():
        lines.append(f"{name}: " + "\n    | ".join(alts))
    for regex, name in b.terms.items():
        lines.append(f"{name}: /{lark_regex(regex)}/")
    grammar = "\n".join(lines) + "\n" + (_TERMINALS if b.any_value else "")
    _check_lalr(grammar, {})
    from .grammar import validator

    terminals = validator(grammar, "start").terminals
    read = {t.name: t.pattern.value for t in terminals}
    for regex, name in b.terms.items():
        if name in read and not _same_regex(read[name], regex):  # (lark drops a terminal no rule uses)
            raise ConstraintError(f"tree_to_lark: lark reads terminal {name} as {read.get(name)!r}, not {regex!r} (engine bug)")
    return grammar
