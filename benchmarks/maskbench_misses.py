"""Why MaskBench valid instances are rejected: every miss, with where and why.

    python -m benchmarks.maskbench_misses [--modes default,extra_keys,extra_keys_unbounded] [--max-depth N] [--any-depth N] [--ids FILE]
        [--limit-schemas N] [--out FILE]

Over ../shared/testdata/jsonschemabench/maskbench_tests/*.json, exactly as ``schema_coverage.maskbench_shares``
counts them (``compile_schema`` with its defaults, and again with ``extra_keys=True``: objects may hold
undeclared keys where ``additionalProperties`` allows them exactly; ``--any-depth 2``: any values nest up to 2 levels
deeper where the regex stays under the size limits; an instance is written by ``CompiledSchema.dumps`` and
accepted when the regex fullmatches that text), each rejected *valid* instance is explained twice:

  * ``stop``: the first character where the regex stops matching (the longest prefix of the text that is
    still a prefix of some text of the language, found with the ``regex`` module's partial matching);
  * ``where`` / ``group`` / ``detail``: the compiled node that rejects it, found by walking the compiled tree
    beside the instance (an object key the compiled object does not declare, an array longer than the
    compiled bound, a number written with an exponent, ...).

Modes ``unbounded`` / ``extra_keys_unbounded`` measure fill's ``any_depth=None``: a schema with any values goes
to the grammar engine (``json_schema.unbounded_any_grammar``: ``tree_to_lark(compile_tree(any_depth=None))``, any
values of every depth) and an instance is accepted when lark's LALR parser of that grammar (the engine's language)
parses the text the tree writes (``node.dump``); ``stop`` is then lark's error offset. Other schemas (no any values,
or a tree the grammar refuses) are counted through the regex as in the other modes, as fill would compile them.

Also counts, as ``schema_coverage`` does, the invalid instances accepted (each is a bug). Prints the groups and
writes every miss to benchmarks/results/issue23_maskbench.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import regex as _regex

from benchmarks.schema_coverage import DATA, _guarded
from steerdiff.errors import ConstraintError, UnsupportedSchemaError
from lark.exceptions import LarkError
from steerdiff_plugins.grammars.loader import load_lark
from steerdiff_plugins.json_schema import unbounded_any_grammar
from steerdiff_plugins.schema.compiled import compile_schema, compile_tree
from steerdiff_plugins.schema.nodes import AnyValue, Arr, Int, Lit, Num, Obj, Str, Union

OUT = Path(__file__).resolve().parent / "results" / "issue23_maskbench.json"


def stop_position(rx, text: str) -> int:
    """Length of the longest prefix of ``text`` that some text of ``rx``'s language extends."""
    lo, hi = 0, len(text)  # invariant: prefix of length lo is viable; the full text is not matched
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if rx.fullmatch(text[:mid], partial=True) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _num_form(v, text: str) -> str:
    if "e" in text or "E" in text:
        return "number: exponent form"
    if isinstance(v, float) and v.is_integer():
        return "number: integral float (1.0)"
    if isinstance(v, int) and abs(v) > 2 ** 53:
        return "number: big integer"
    return "number: out of compiled range / other form"


def diagnose(node, v, path: str = "$", unbounded: bool = False):
    """``(path, group, detail)`` of the first place the compiled ``node`` rejects the instance ``v`` (None when
    the node accepts its own dump of ``v``). ``unbounded``: any values take every value (the grammar engine's
    ``any_depth=None``), so a node's bounded regex is not read as a rejection."""
    if isinstance(node, AnyValue) and unbounded:
        return None
    if node.matches(node.dump(v)):  # the grammar's language holds the bounded regex's (tree_to_lark)
        return None
    d = _diagnose(node, v, path, unbounded)
    if unbounded and d is not None and d[1] in ("object: other", "array: other", "object: map (other)"):
        return None  # every part accepts once any values take every depth
    return d


def _diagnose(node, v, path, unbounded):
    if isinstance(node, Union):
        same = [a for a in node.alts if _kind(a) == _json_kind(v)]
        if not same:
            return path, f"type: {_json_kind(v)} not among the compiled alternatives", [_kind(a) for a in node.alts]
        inner = [diagnose(a, v, path, unbounded) for a in same]
        if unbounded and None in inner:
            return None
        inner = [d for d in inner if d is not None]
        return inner[0] if len(inner) == 1 else (path, "union: no branch accepts", inner[:3])
    if isinstance(node, Obj):
        if not isinstance(v, dict):
            return path, f"type: {_json_kind(v)} where the compiled node is an object", None
        if node.map_value is not None:
            rk = _regex.compile(node.map_key)
            for k, x in v.items():
                if not rk.fullmatch(json.dumps(k, ensure_ascii=False)):
                    return f"{path}.{k}", "object: map key not in the compiled key language", k
                d = diagnose(node.map_value, x, f"{path}.{k}", unbounded)
                if d:
                    return d
            return path, "object: map (other)", None
        declared = {k: (n, r) for k, n, r in node.props}
        extra = [k for k in v if k not in declared]
        if extra and node.extra is None:
            return path, "object: key not declared (closed object: additionalProperties narrowing)", extra[:5]
        for k in extra:
            if not _regex.fullmatch(node.extra[0], k):
                return f"{path}.{k}", "object: undeclared key too close to a declared one (KEY_DEPTH) or escaped", k
            if unbounded or not node.extra[1].matches(node.extra[1].dump(v[k])):
                d = diagnose(node.extra[1], v[k], f"{path}.{k}", unbounded)
                return (d[0], "object: undeclared key's value: " + d[1], d[2]) if d else (path, "object: other", k)
        missing = [k for k, (n, r) in declared.items() if r and k not in v]
        if missing:
            return path, "object: optional key compiled as required", missing[:5]
        for k, x in v.items():
            if k not in declared:
                continue
            n, _ = declared[k]
            if n.empty:
                return f"{path}.{k}", "object: key's subschema compiled empty", None
            d = diagnose(n, x, f"{path}.{k}", unbounded)
            if d:
                return d
        return path, "object: other", None
    if isinstance(node, Arr):
        if not isinstance(v, list):
            return path, f"type: {_json_kind(v)} where the compiled node is an array", None
        if node.unique_enum:
            return path, "array: uniqueItems enum selection (order)", None
        if node.hi is not None and len(v) > node.hi:
            return path, "array: more items than the compiled bound", (len(v), node.hi)
        for i, x in enumerate(v):
            el = node._el(i)
            d = diagnose(el, x, f"{path}[{i}]", unbounded) if el is not None else None
            if d:
                return d
        return path, "array: other", None
    if isinstance(node, Str):
        if not isinstance(v, str):
            return path, f"type: {_json_kind(v)} where the compiled node is a string", None
        if node.content is not None:
            return path, "string: pattern/format content", v[:60]
        if node.hi is not None and len(v) > node.hi:
            return path, "string: longer than the compiled bound", (len(v), node.hi)
        return path, "string: escapes / characters", v[:60]
    if isinstance(node, (Int, Num)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return path, f"type: {_json_kind(v)} where the compiled node is a number", None
        if isinstance(node, Int) and isinstance(v, float) and v.is_integer() and not node.float_ok:
            return path, "number: integral float under draft-04 integer", v
        return path, _num_form(v, node.dump(v)), node.dump(v)
    if isinstance(node, Lit):
        return path, "enum/const: value not in compiled set", repr(v)[:60]
    if isinstance(node, AnyValue):
        return path, "any value: nested deeper than max_depth", None
    return path, f"other node {type(node).__name__}", None


def _kind(node) -> str:
    return {Obj: "object", Arr: "array", Str: "string", Int: "number", Num: "number", Lit: "enum",
            AnyValue: "any"}.get(type(node), type(node).__name__)


def _json_kind(v) -> str:
    if isinstance(v, bool) or v is None:
        return "enum"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(v), "other")


def _grammar_compile(schema, extra_keys: bool, max_depth: int):
    """``(node, parser)`` of fill's constraint for ``any_depth=None`` when it is the grammar engine's
    (``json_schema.unbounded_any_grammar``: the tree ``compile_tree(any_depth=None)`` written by ``tree_to_lark``),
    None when fill takes the regular engine (no any values, or the grammar refuses the tree)."""
    c = unbounded_any_grammar(schema, {"extra_keys": extra_keys, "max_depth": max_depth})
    if c is None:
        return None
    node = compile_tree(schema, any_depth=None, extra_keys=extra_keys, max_depth=max_depth)[0]
    return node, load_lark(c.grammar, "start")


MATCH_SECONDS = 2  # per regex match or engine dump (--match-seconds)
_TIMEOUTS: list = []  # (schema id, test description, valid label, what ran out) of the last run's match timeouts
LARK_SECONDS = 60  # per lark parse: the first parse of a grammar also builds lark's per-state lexers (a match
# timeout is counted apart, in neither share; session fourteen's first run, with 10 s on a loaded machine, had 28)


def _lark_accepts(parser, text: str):
    """-1 when lark's LALR parser (the grammar engine's language) takes ``text``, else the error's offset."""
    try:
        parser.parse(text)
        return -1
    except LarkError as exc:
        return getattr(exc, "pos_in_stream", None) or 0


def run(limit: int | None = None, extra_keys: bool = False, ids: set | None = None, max_depth: int = 3,
        any_depth: int | None = 0):
    s = collections.Counter()
    misses, bugs = [], []
    t0 = time.time()
    for f in sorted((DATA / "jsonschemabench" / "maskbench_tests").glob("*.json")):
        for it in json.loads(f.read_text())["items"][:limit]:
            if ids is not None and it["id"] not in ids:
                continue
            s["schemas"] += 1
            if any_depth is None:
                try:
                    g = _guarded(_grammar_compile, it["schema"], extra_keys, max_depth, seconds=60)
                except (UnsupportedSchemaError, ConstraintError):
                    g = None
                if g is not None:
                    s["compiled"] += 1
                    s["grammar"] += 1
                    _grammar_tests(it, f.name, *g, s, misses, bugs)
                    continue
            try:
                comp = _guarded(lambda x: compile_schema(x, extra_keys=extra_keys, max_depth=max_depth,
                                                           any_depth=any_depth or 0), it["schema"])
            except (UnsupportedSchemaError, ConstraintError):
                continue
            if comp is None or len(comp.regex) > 200_000:
                continue  # as maskbench_shares: compile timeout / regex too long for Python re
            s["compiled"] += 1
            if _guarded(comp.fullmatch, "", seconds=60) is None:  # Python re compiles the regex on first use: not
                s["re_compile_timeout"] += 1  # inside the 2 s a match gets (a 200k-character regex takes seconds)
                continue
            rx = None
            for t in it.get("tests", []):
                text = _guarded(comp.dumps, t["data"], seconds=MATCH_SECONDS)
                ok = None if text is None else _guarded(comp.fullmatch, text, seconds=MATCH_SECONDS)
                if not _tally(s, bugs, it, t, None if ok is None else bool(ok), text, "regex match",
                              lambda compact: _guarded(comp.fullmatch, compact, seconds=MATCH_SECONDS)):
                    continue
                rx = rx or _regex.compile(comp.regex)
                at = _guarded(stop_position, rx, text, seconds=10)
                d = _guarded(diagnose, comp.node, t["data"], seconds=10) or ("?", "diagnosis timeout", None)
                misses.append({"file": f.name, "id": it["id"], "description": t.get("description", ""),
                               "stop": at, "context": None if at is None else text[max(0, at - 30):at + 30],
                               "where": d[0], "group": d[1], "detail": repr(d[2])[:200]})
    s["seconds"] = round(time.time() - t0)
    return s, misses, bugs


def _tally(s, bugs, it, t, accepted, text, what: str, accepts_compact) -> bool:
    """Counts one labelled instance: ``accepted`` (True/False; None: a timeout, counted apart with what ran out:
    the dump when ``text`` is None, else ``what``); an invalid instance is a bug when its text or its plain
    compact JSON is accepted (``accepts_compact(compact)``: True, False, or None for a timeout, which counts
    as accepted). True only for a valid instance rejected: a miss the caller diagnoses."""
    if accepted is None:
        s["match_timeout"] += 1
        _TIMEOUTS.append((it["id"], t.get("description", ""), t["valid"], "dump" if text is None else what))
        return False
    if not t["valid"]:
        s["invalid"] += 1
        if accepted or accepts_compact(json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False)) is not False:
            bugs.append(f"{it['id']}: {t['description']}")
        return False
    s["valid"] += 1
    if accepted:
        s["valid_accepted"] += 1
        return False
    return True


def _grammar_tests(it, fname, node, parser, s, misses, bugs):
    """Counts one schema's labelled instances against the grammar engine's language: each written as the
    engine writes it (``node.dump``: compact, declared keys in order after undeclared ones) and parsed by lark;
    an invalid instance is a bug when either that text or its plain compact JSON parses."""
    for t in it.get("tests", []):
        try:  # a union's dump asks its branches' regexes, which a tree too large for the regex engine lacks
            text = _guarded(node.dump, t["data"], seconds=MATCH_SECONDS)
        except UnsupportedSchemaError:
            s["dump_as_compact_json"] += 1
            text = json.dumps(t["data"], separators=(",", ":"), ensure_ascii=False)
        at = None if text is None else _guarded(_lark_accepts, parser, text, seconds=LARK_SECONDS)
        if not _tally(s, bugs, it, t, None if at is None else at == -1, text, "lark parse",
                      lambda compact: {-1: True, None: None}.get(_guarded(_lark_accepts, parser, compact,
                                                                          seconds=LARK_SECONDS), False)):
            continue
        try:
            d = _guarded(diagnose, node, t["data"], "$", True, seconds=10) or ("$", "grammar: other (lark)", None)
        except UnsupportedSchemaError:
            d = ("$", "grammar: not diagnosed (its regexes are too large)", None)
        misses.append({"file": fname, "id": it["id"], "description": t.get("description", ""), "stop": at,
                       "context": text[max(0, at - 30):at + 30], "where": d[0], "group": d[1],
                       "detail": repr(d[2])[:200]})


def main():
    global MATCH_SECONDS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-schemas", type=int, default=None, help="first N items per file (a quick look)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--ids", type=Path, default=None, help="a file of MaskBench schema ids, one a line (a subset)")
    ap.add_argument("--modes", default="default,extra_keys,extra_keys_unbounded",
                    help="comma-separated: default, extra_keys, unbounded, extra_keys_unbounded (unbounded: fill's "
                         "any_depth=None, any values of every depth through the grammar engine, accepted when lark "
                         "parses the text)")
    ap.add_argument("--max-depth", type=int, default=3,
                    help="compile_schema's max_depth (any-value and recursion nesting; default 3, as fill); a value "
                         "other than 3 writes its sections as MODE_max_depthN beside the others")
    ap.add_argument("--any-depth", type=int, default=0,
                    help="compile_schema's any_depth (levels any values nest deeper, adaptively, where the regex stays "
                         "under the size limits; default 0); a value other than 0 writes its sections as MODE_any_depthN")
    ap.add_argument("--match-seconds", type=int, default=MATCH_SECONDS,
                    help="seconds per regex match and per engine dump of an instance (a timeout is counted in neither share)")
    a = ap.parse_args()
    MATCH_SECONDS = a.match_seconds
    if a.max_depth < 1:
        ap.error(f"--max-depth must be at least 1, got {a.max_depth}")
    if a.any_depth < 0:
        ap.error(f"--any-depth must be at least 0, got {a.any_depth}")
    out = json.loads(a.out.read_text()) if a.out.exists() else {}
    for mode in a.modes.split(","):
        if mode not in ("default", "extra_keys", "unbounded", "extra_keys_unbounded"):
            ap.error(f"--modes: unknown mode {mode!r} (default, extra_keys, unbounded, extra_keys_unbounded)")
        unbounded = mode.endswith("unbounded")
        any_depth = None if unbounded else a.any_depth
        print(f"== compile_schema({'extra_keys=True, ' if mode.startswith('extra_keys') else ''}max_depth={a.max_depth}, "
              f"any_depth={any_depth})")
        ids = set(a.ids.read_text().split()) if a.ids else None
        key = mode + ("" if a.max_depth == 3 else f"_max_depth{a.max_depth}") + \
            ("" if a.any_depth == 0 or unbounded else f"_any_depth{a.any_depth}")
        out[key] = report(*run(a.limit_schemas, extra_keys=mode.startswith("extra_keys"), ids=ids,
                               max_depth=a.max_depth, any_depth=any_depth))
        out[key]["max_depth"], out[key]["any_depth"] = a.max_depth, any_depth
    a.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}")


def report(s, misses, bugs) -> dict:
    """Prints the counts and the groups of misses; the JSON section of one mode."""
    groups = collections.Counter(m["group"] for m in misses)
    print(f"valid accepted {s['valid_accepted']}/{s['valid']} ({100 * s['valid_accepted'] / max(1, s['valid']):.1f}%), "
          f"invalid accepted {len(bugs)}/{s['invalid']}, match timeouts {s['match_timeout']}, "
          f"{s['compiled']}/{s['schemas']} schemas compiled, {s['seconds']} s")
    for g, n in groups.most_common():
        ids = sorted({m["id"] for m in misses if m["group"] == g})
        print(f"{n:5d}  {g}  ({len(ids)} schemas: {', '.join(ids[:6])}{' ...' if len(ids) > 6 else ''})")
    for b in bugs:
        print("INVALID ACCEPTED:", b)
    timeouts = [dict(zip(("id", "description", "valid", "what"), t)) for t in _TIMEOUTS]
    _TIMEOUTS.clear()
    return {"counts": dict(s), "invalid_accepted": bugs, "groups": dict(groups.most_common()), "misses": misses,
            "match_timeouts": timeouts, "match_seconds": MATCH_SECONDS, "lark_seconds": LARK_SECONDS}


if __name__ == "__main__":
    main()
