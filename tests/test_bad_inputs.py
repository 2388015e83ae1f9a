"""Every bad input gets a named steerdiff error: the error class, and a message naming the argument,
schema keyword and pointer, grammar line or plugin. Random argument values give a result or a steerdiff
error, never a raw Python or torch exception. No user-given size allocates before it is checked."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steerdiff as sd
from steerdiff.errors import (ConfigError, ConstraintError, GrammarError, ModelError, PluginError, SteerdiffError,
                              UnsupportedSchemaError)
from steerdiff.testing import tiny_model

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return tiny_model("masked")


# ---- arguments of generate / fill / rewrite / load_model: class and the argument's name

GENERATE_BAD = [
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=float("inf")), "temperature"),
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature="hot"), "temperature"),
    (dict(top_p=float("nan")), "top_p"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=2.5), "top_k"),
    (dict(batch_size=-1), "batch_size"),
    (dict(batch_size=0), "batch_size"),
    (dict(seed=2**64), "seed"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(length=0), "length"),
    (dict(length=True), "length"),
    (dict(length=10**12), "length"),
    (dict(length=8, steps=9), "steps"),
    (dict(steps=0), "steps"),
    (dict(threshold=float("nan"), schedule="threshold"), "threshold"),
    (dict(block_length=0, schedule="blocks"), "block_length"),
    (dict(schedule=["low_confidence"]), "schedule"),
    (dict(schedule="zigzag"), "zigzag"),
    (dict(trace="yes"), "trace"),
    (dict(watch=1), "watch"),
    (dict(constraints="regex"), "constraints"),
    (dict(constraints=[{"no": "type"}]), "type"),
    (dict(guidance=42), "guidance"),
]


@pytest.mark.parametrize("kwargs,names", GENERATE_BAD, ids=[f"{k}" for k, _ in GENERATE_BAD])
def test_generate_bad_argument(model, kwargs, names):
    kw = dict(length=8) | kwargs
    with pytest.raises(SteerdiffError, match=names) as info:
        sd.generate(model, "x", **kw)
    assert isinstance(info.value, (ConfigError, ConstraintError))


@pytest.mark.parametrize("prompt", [123, None, b"bytes", ["ok", 7], [], {"a": 1}])
def test_generate_bad_prompt(model, prompt):
    with pytest.raises(ConfigError, match="prompt"):
        sd.generate(model, prompt, length=4)


def test_generate_refuses_a_non_model():
    with pytest.raises(ConfigError, match="model must be a steerdiff model"):
        sd.generate("tiny", "x", length=4)


FILL_BAD = [
    (dict(length=0), "length"), (dict(length=10**9), "length"), (dict(steps=0), "steps"),
    (dict(seed=2**64), "seed"), (dict(max_depth=-1), "max_depth"), (dict(max_depth=10**6), "max_depth"),
    (dict(max_items=10**12), "max_items"), (dict(copy=float("nan")), "copy"), (dict(extract="yes"), "extract"),
    (dict(temperature=float("nan")), "temperature"),
]


@pytest.mark.parametrize("kwargs,name", FILL_BAD, ids=[f"{k}" for k, _ in FILL_BAD])
def test_fill_bad_argument(model, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        sd.fill(model, {"type": "integer"}, "x", **kwargs)


@pytest.mark.parametrize("text", [None, 5, b"x", [], ["a", None]])
def test_fill_bad_text(model, text):
    with pytest.raises(ConfigError, match="text_or_list"):
        sd.fill(model, {"type": "integer"}, text)


REWRITE_BAD = [(dict(grow=10**9), "grow"), (dict(seed=-3), "seed"), (dict(temperature=float("inf")), "temperature"),
               (dict(refine_fraction=float("nan")), "refine_fraction"), (dict(steps=0), "steps")]


@pytest.mark.parametrize("kwargs,name", REWRITE_BAD, ids=[f"{k}" for k, _ in REWRITE_BAD])
def test_rewrite_bad_argument(model, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        sd.rewrite(model, "The food was [[cold]].", **kwargs)


@pytest.mark.parametrize("kwargs,name", [
    (dict(device="nonsense"), "device 'nonsense'"), (dict(device="gpu"), "device 'gpu'"), (dict(device=3), "device"),
    (dict(device="cuda:7" if torch.cuda.is_available() else "cuda"), "device"), (dict(family="rnn"), "family"),
    (dict(path=42), "path"), (dict(trust_remote_code="yes"), "trust_remote_code"), (dict(dtype="bf16"), "dtype"),
])
def test_load_model_bad_argument(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        sd.load_model(**kwargs)


# ---- sizes: checked before anything proportional to them is built


def test_template_hole_size_is_checked_before_allocating(model):
    with pytest.raises(ConstraintError, match="hole 'x' has size 999999999; a hole holds at most"):
        sd.Template("A {{x:999999999}}")
    with pytest.raises(ConstraintError, match="hole 'x' has size"):
        sd.Template("A {{x:" + "9" * 5000 + "}}")  # int() of 5000 digits would raise a raw ValueError
    big = sd.Template("A {{x:999999}} B")  # legal size, far beyond any canvas: refused at layout, before the list
    with pytest.raises(ConstraintError, match=r"template needs 1000003 canvas positions .* the canvas has 8"):
        sd.generate(model, "x", length=8, constraints=[big])


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, json
    import torch
    torch.set_num_threads(1)
    import steerdiff as sd
    from steerdiff.testing import tiny_model
    m = tiny_model("masked")
    sd.generate(m, "x", length=8)  # warm: plugin manager, vocabulary table
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cases = {{
        "template hole": lambda: sd.Template("A {{{{x:999999999}}}}"),
        "template layout": lambda: sd.generate(m, "x", length=8, constraints=[sd.Template("A {{{{x:999999}}}}")]),
        "generate length": lambda: sd.generate(m, "x", length=10**9),
        "generate length at model limit": lambda: sd.generate(m, "x", length=999_999),
        "fill length": lambda: sd.fill(m, {{"type": "integer"}}, "x", length=10**9),
        "fill max_items": lambda: sd.fill(m, {{"type": "array", "items": {{"type": "integer"}}}}, "x", max_items=10**9),
        "schema minItems": lambda: sd.fill(m, {{"type": "array", "items": {{"type": "integer"}}, "minItems": 10**9}}, "x"),
        "schema maxLength": lambda: sd.fill(m, {{"type": "string", "minLength": 10**9}}, "x"),
        "rewrite grow": lambda: sd.rewrite(m, "a [[b]]", grow=10**9),
    }}
    harmless = {{  # accepted: these sizes bound nothing that is allocated
        # bounds the canvas cannot reach compile as unbounded (issue 23): a valid fill, nothing allocated
        "schema maxLength (grammar engine)": lambda: sd.fill(m, {{"type": "string", "maxLength": 100000}}, "x"),
        "schema maxItems": lambda: sd.fill(m, {{"type": "array", "items": {{"type": "integer"}}, "maxItems": 10**9}}, "x"),
        "generate top_k": lambda: sd.generate(m, "x", length=4, top_k=10**15, temperature=1.0),
        "generate batch_size": lambda: sd.generate(m, ["x"] * 2, length=4, batch_size=10**15),
    }}
    for f in harmless.values():
        f()
    out = {{}}
    for name, f in cases.items():
        try:
            f()
            out[name] = "no error"
        except sd.SteerdiffError as e:
            out[name] = type(e).__name__
        except Exception as e:
            out[name] = "RAW " + type(e).__name__ + ": " + str(e)[:100]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"grew_kb": after - before, "cases": out}}))
""")


def test_no_user_given_size_allocates_before_it_is_refused():
    """Peak resident memory (ru_maxrss, KiB on Linux) grows by less than 300 MiB over every refused size (before
    these checks: 16 GB for the template hole, an abort in the automaton builder for minItems 10**9)."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(tests=str(HERE))], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(v not in ("no error",) and not v.startswith("RAW") for v in res["cases"].values()), res["cases"]
    assert res["grew_kb"] < 300 * 1024, res


# ---- plugins: a malformed edit or a stall names the one culprit plugin


def _plugin(name, **hooks):
    mod = types.ModuleType(name)
    for k, f in hooks.items():
        setattr(mod, k, sd.hookimpl(f))
    return sd.register_plugin(mod, name)


@pytest.fixture
def plugin():
    names = []

    def add(name, **hooks):
        names.append(_plugin(name, **hooks))

    yield add
    for n in names:
        sd.unregister_plugin(n)


def _innocent_edit(logits):
    return sd.LogitsEdit(bias=torch.zeros(logits.shape[-1]))


def _innocent_check(commit):
    return None


PLUGIN_BAD = [
    ("nan_bias", dict(adjust_logits=lambda logits: sd.LogitsEdit(bias=torch.full(logits.shape, float("nan")))),
     PluginError, r"plugin 'nan_bias' in hook 'adjust_logits': bias holds a non-finite value \(nan\)"),
    ("inf_bias", dict(adjust_logits=lambda logits: sd.LogitsEdit(bias=torch.full(logits.shape[-1:], float("-inf")))),
     PluginError, r"plugin 'inf_bias' in hook 'adjust_logits': bias holds a non-finite value \(-inf\)"),
    ("list_rows", dict(adjust_logits=lambda logits: sd.LogitsEdit(bias=torch.zeros(logits.shape[-1]), rows=[7])),
     PluginError, "plugin 'list_rows' .*rows must be a torch.Tensor"),
    ("row_seven", dict(adjust_logits=lambda logits: sd.LogitsEdit(bias=torch.zeros(logits.shape[-1]), rows=torch.tensor([7]))),
     PluginError, r"plugin 'row_seven' .*rows holds \[7\], outside the batch's rows \[0, 1\)"),
    ("row_minus", dict(adjust_logits=lambda logits: sd.LogitsEdit(allowed=torch.ones(logits.shape[-1], dtype=torch.bool),
                                                                     rows=torch.tensor([-1]))),
     PluginError, r"plugin 'row_minus' .*rows holds \[-1\]"),
    ("row_twice", dict(adjust_logits=lambda logits: sd.LogitsEdit(bias=torch.zeros(logits.shape[-1]), rows=torch.tensor([0, 0]))),
     PluginError, "plugin 'row_twice' .*a row twice"),
    ("writes_nan", dict(adjust_logits=lambda logits: logits.__setitem__((0, 0, 5), float("nan"))),
     PluginError, "plugin 'writes_nan' in hook 'adjust_logits': wrote nan or \\+inf into the logits at row 0"),
    ("bans_all", dict(adjust_logits=lambda logits: sd.LogitsEdit(allowed=torch.zeros(logits.shape[-1], dtype=torch.bool))),
     ConstraintError, "plugin 'bans_all' bans every token there"),
    ("drops_all", dict(check_commit=lambda commit: commit.fill_(False)),
     PluginError, "plugin 'drops_all' in hook 'check_commit': dropped every commit of row 0"),
    ("remasks", dict(on_commit=lambda committed: committed.clone()),
     PluginError, "plugin 'remasks' in hook 'check_commit/on_commit': no progress after"),
]


@pytest.mark.parametrize("name,hooks,cls,message", PLUGIN_BAD, ids=[p[0] for p in PLUGIN_BAD])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_plugin_fault_names_the_one_culprit(model, plugin, name, hooks, cls, message, temperature):
    plugin("bystander", adjust_logits=_innocent_edit, check_commit=_innocent_check)  # never blamed
    plugin(name, **hooks)
    with pytest.raises(cls, match=message) as info:
        sd.generate(model, ["x"], length=6, temperature=temperature)
    assert "bystander" not in str(info.value)


def test_nan_logits_from_the_model_are_a_model_error(model, monkeypatch):
    real = model.logits

    def broken(ids, attn):
        out = real(ids, attn)
        out[..., 3] = float("nan")
        return out

    monkeypatch.setattr(model, "logits", broken)
    with pytest.raises(ModelError, match="the model's logits are nan or \\+inf at row 0"):
        sd.generate(model, "x", length=4)


# ---- fill: null is a value; schema problems are named


@pytest.mark.parametrize("schema", [{"type": "null"}, {"const": None}, {"enum": [None]}])
def test_fill_returns_none_for_a_null_schema(model, schema):
    assert sd.fill(model, schema, "nothing to see") is None
    assert sd.fill(model, schema, ["a", "b"]) == [None, None]


def test_fill_null_is_a_value_and_garbage_is_not(model):
    from steerdiff.fill import _constraint
    from steerdiff.errors import ValidationFailed

    c = _constraint({"type": ["null", "integer"]})
    assert c.parse("null") is None and c.parse("12") == 12
    with pytest.raises(ValidationFailed, match="not JSON"):
        c.parse("")  # nothing parsed is an error, not None


def test_circular_ref_is_reported_as_such(model):
    schema = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    for call in (lambda: sd.fill(model, schema, "x"), lambda: sd.JSONSchema(schema)):
        with pytest.raises(UnsupportedSchemaError, match=r"circular reference #/\$defs/a -> #/\$defs/b -> #/\$defs/a") as info:
            call()
        assert info.value.keyword == "$ref" and info.value.pointer == "#/$defs/a" and "anyOf" not in str(info.value)
    via_allof = {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}, {"type": "string"}]}}, "$ref": "#/$defs/a"}
    with pytest.raises(UnsupportedSchemaError, match=r"#/\$defs/a -> #/\$defs/a/allOf/0 -> #/\$defs/a"):
        sd.fill(model, via_allof, "x")


def test_recursion_through_a_value_is_not_circular():
    from steerdiff.validate import check_schema_shape

    tree = {"$defs": {"t": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}}}},
            "$ref": "#/$defs/t"}
    check_schema_shape(tree)  # a recursive type, fine


def _nested(depth):
    s = {"type": "string", "maxLength": 2}
    for _ in range(depth):
        s = {"type": "object", "properties": {"a": s}, "required": ["a"]}
    return s


def test_deep_nesting_is_a_named_error_not_recursion(model):
    for call in (lambda: sd.fill(model, _nested(200), "x"), lambda: sd.JSONSchema(_nested(200)),
                 lambda: sd.generate(model, "x", length=8, constraints=[{"type": "json_schema", "schema": _nested(200)}])):
        with pytest.raises(ConstraintError, match="nested more than 128 levels deep at #/properties/a"):
            call()


@pytest.mark.parametrize("schema, where, why", [
    ({"type": "string", "pattern": "a{99999999999}"}, "pattern", "the repetition number is too large"),
    ({"type": "object", "properties": {"x": {"type": "string", "pattern": "(?:" * 2000 + "a" + ")" * 2000}}},
     "properties/x/pattern", "maximum recursion depth"),
    ({"type": "object", "patternProperties": {"b{99999999999}": {}}}, "patternProperties/b{99999999999}",
     "the repetition number is too large"),
])
def test_a_regex_python_cannot_compile_is_named_with_its_place(model, schema, where, why):
    """A count past re's MAXREPEAT (OverflowError) or nesting past the recursion limit (RecursionError) in a
    schema's pattern: the schema check names where, not a traceback from the metaschema's format check."""
    for call in (lambda: sd.JSONSchema(schema), lambda: sd.fill(model, schema, "x")):
        with pytest.raises(ConstraintError, match=f"schema itself is invalid at {re.escape(where)}: .* is not a regex "
                                                  f"Python compiles \\({why}"):
            call()
    for rx in ("a{99999999999}", "(?:" * 2000 + "a" + ")" * 2000):  # the same in a regex constraint
        with pytest.raises(ConstraintError, match="does not compile"):
            sd.Regex(rx)


def test_fill_canvas_is_never_shorter_than_the_shortest_valid_text(model):
    from steerdiff.fill import _constraint, canvas_length, shortest_tokens

    schema = _nested(20)
    c = _constraint(schema)
    assert canvas_length(model, c, 3) >= shortest_tokens(model, c) > 0
    value = sd.fill(model, schema, "x")
    for _ in range(20):
        value = value["a"]
    assert isinstance(value, str)


# ---- grammar imports


def test_grammar_imports_only_lark_bundled_grammars(tmp_path, monkeypatch):
    (tmp_path / "secret.lark").write_text('FOO: "secret"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GrammarError, match=r"grammar line 2: relative import '%import \.secret\.FOO' is refused"):
        sd.Grammar("start: FOO\n%import .secret.FOO\n")
    with pytest.raises(GrammarError, match="grammar line 1: '%import secret.FOO' names no grammar bundled with lark"):
        sd.Grammar("%import secret.FOO\nstart: FOO\n")
    sd.Grammar("start: WORD (WS WORD)*\n%import common (WORD, WS)\n")  # lark's own common.lark
    g = sd.Grammar("start: FOO\n%import secret.FOO\n", import_paths=[str(tmp_path)])  # explicit: allowed
    assert g.import_paths == (str(tmp_path),)
    with pytest.raises(GrammarError, match="import_paths must be a list of existing directories"):
        sd.Grammar("start: FOO\n%import secret.FOO\n", import_paths=str(tmp_path))


# ---- plugin autoload: built-ins by module, never by a distribution name


AUTOLOAD_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import steerdiff as sd
    from steerdiff.plugins import plugin_table
    print(json.dumps({"types": sorted(sd.constraint_types()), "imported": "evil_mod" in sys.modules,
                      "origins": {n: o for n, o, _ in plugin_table()}}))
""")


@pytest.mark.parametrize("disabled", ["1", ""])
def test_a_distribution_called_steerdiff_is_not_a_builtin(tmp_path, disabled):
    site = tmp_path / "site"
    (site / "steerdiff-99.0.dist-info").mkdir(parents=True)
    (site / "steerdiff-99.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: steerdiff\nVersion: 99.0\n")
    (site / "steerdiff-99.0.dist-info" / "entry_points.txt").write_text("[steerdiff]\nevil = evil_mod\ntemplate = evil_mod\n")
    (site / "evil_mod.py").write_text("import steerdiff\n@steerdiff.hookimpl\ndef register_constraints(register):\n"
                                      "    pass\n")
    env = dict(os.environ, PYTHONPATH=str(site), STEERDIFF_DISABLE_PLUGIN_AUTOLOAD=disabled)
    proc = subprocess.run([sys.executable, "-c", AUTOLOAD_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for t in ("template", "regex", "json_schema", "grammar", "classifier", "copy"):
        assert t in res["types"], f"built-in {t} missing (autoload disabled={disabled!r})"
    assert res["origins"]["template"] == "steerdiff_plugins.template (built-in)"
    if disabled:
        assert not res["imported"], "with autoload off, a distribution merely called steerdiff is not imported"


def test_builtin_table_matches_pyproject_entry_points():
    import tomllib

    from steerdiff.plugins import BUILTIN

    eps = tomllib.loads((HERE.parent / "pyproject.toml").read_text())["project"]["entry-points"]["steerdiff"]
    assert eps == BUILTIN


# ---- random argument values: a result or a steerdiff error, nothing else

_wild_int = st.one_of(st.integers(-3, 12), st.sampled_from([0, -1, 10**9, 2**64, True, False]), st.floats(allow_nan=True),
                      st.none(), st.text(max_size=2))
_wild_float = st.one_of(st.floats(-2, 4), st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, 1e308]),
                        st.integers(-2, 3), st.none(), st.text(max_size=2), st.booleans())
_wild_prompt = st.one_of(st.text(max_size=12), st.lists(st.text(max_size=6), max_size=3), st.integers(), st.none(),
                         st.binary(max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=_wild_prompt, length=_wild_int, steps=_wild_int, temperature=_wild_float, top_k=_wild_int, top_p=_wild_float,
       seed=_wild_int, batch_size=_wild_int,
       schedule=st.sampled_from(["low_confidence", "random", "margin", "entropy", "threshold", "blocks", "nope", 3]))
def test_generate_random_arguments_give_a_result_or_a_steerdiff_error(model, prompt, length, steps, temperature, top_k,
                                                                      top_p, seed, batch_size, schedule):
    try:
        out = sd.generate(model, prompt, length=length, steps=steps, temperature=temperature, top_k=top_k, top_p=top_p,
                          seed=seed, batch_size=batch_size, schedule=schedule)
    except SteerdiffError:
        return
    for r in out if isinstance(out, list) else [out]:
        assert isinstance(r, sd.Result) and len(r.token_ids) == length and isinstance(r.text, str)


_SCHEMAS = [{"type": "integer", "minimum": 0, "maximum": 99}, {"type": "null"}, {"const": None}, {"enum": ["a", "b", None]},
            {"type": "object", "properties": {"n": {"type": "string", "maxLength": 4}}, "required": ["n"]},
            {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}, {"type": "number"}, True, {"type": 7}, "nope"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=st.sampled_from(_SCHEMAS), text=_wild_prompt, length=_wild_int, steps=_wild_int, seed=_wild_int,
       max_depth=_wild_int, copy=_wild_float, extract=st.one_of(st.booleans(), st.none()))
def test_fill_random_arguments_give_a_valid_value_or_a_steerdiff_error(model, schema, text, length, steps, seed, max_depth,
                                                                         copy, extract):
    import jsonschema

    try:
        out = sd.fill(model, schema, text, length=length, steps=steps, seed=seed, max_depth=max_depth, copy=copy,
                      extract=extract)
    except SteerdiffError:
        return
    for v in out if not isinstance(text, str) else [out]:
        jsonschema.validate(v, schema)  # a returned value is always valid
    assert not (isinstance(copy, float) and math.isnan(copy))
