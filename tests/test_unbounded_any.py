"""Any values of every depth (``any_depth=None``, issue 23 MaskBench work): the regular engine refuses them by name
(keyword ``any_depth``), fill takes the grammar engine (``tree_to_lark(compile_tree(any_depth=None))``), undeclared
keys (``extra_keys``) included. Checked against python-jsonschema with its FormatChecker."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

lark = pytest.importorskip("lark")

import steerdiff as sd  # noqa: E402
from steerdiff.errors import ConfigError, ConstraintError, UnsupportedSchemaError  # noqa: E402
from steerdiff_plugins.grammars.loader import load_lark  # noqa: E402
from steerdiff_plugins.json_schema import JSONSchema, JSONSchemaGrammar, fill_constraint  # noqa: E402
from steerdiff_plugins.schema.compiled import compile_schema, compile_tree, has_unbounded_any  # noqa: E402
from tests.test_tree_grammar_refs import _samples  # noqa: E402

FREE = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6}, "meta": {},
                                         "tags": {"type": "array", "items": {"description": "untyped"}}},
        "required": ["name"]}
OPEN = {"type": "object", "properties": {"id": {"type": "integer", "minimum": 0}, "when": {"type": "string",
                                                                                      "format": "date"}},
        "required": ["id"]}
CLOSED_NUM = {"type": "object", "properties": {"n": {"type": "number", "minimum": 1}}, "additionalProperties": False}


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _deep(n: int):
    v = {"leaf": [1, "x", None]}
    for i in range(n):
        v = {"k": [v, i]} if i % 2 else [{"n": v}]
    return v


def _parser(schema, **kw):
    c = fill_constraint(schema, any_depth=None, **kw)
    assert isinstance(c, JSONSchemaGrammar)
    return load_lark(c.grammar, "start"), compile_tree(schema, any_depth=None, **kw)[0]


@pytest.mark.parametrize("extra_keys", [False, True])
def test_nested_deeper_than_any_bound_is_accepted(extra_keys):
    """A free-form value nested 40 levels deep (past any ``max_depth``/``any_depth``) is rejected by every bounded
    regex and parsed by the grammar; so is one under an undeclared key with ``extra_keys``."""
    parser, node = _parser(FREE, extra_keys=extra_keys)
    inst = {"name": "ab", "meta": _deep(40), "tags": [_deep(30), 3]}
    assert _validator(FREE).is_valid(inst)
    parser.parse(node.dump(inst))
    for depth in (0, 2):
        assert not compile_schema(FREE, extra_keys=extra_keys, any_depth=depth).fullmatch(node.dump(inst))
    undeclared = {"zz": _deep(25), "id": 4}
    if extra_keys:
        parser2, node2 = _parser(OPEN, extra_keys=True)
        parser2.parse(node2.dump(undeclared))
        assert node2.dump(undeclared).startswith('{"zz":')
    else:
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(json.dumps({"name": "ab", "zz": 1}, separators=(",", ":")))


@pytest.mark.parametrize("schema", [FREE, OPEN], ids=["free", "open"])
@pytest.mark.parametrize("extra_keys", [False, True])
def test_grammar_samples_validate(schema, extra_keys):
    """Random derivations of the grammar (deep any values taken) are JSON valid under the schema, formats on."""
    if schema is OPEN and not extra_keys:
        assert not has_unbounded_any(OPEN)  # nothing free-form: the regular engine's compile
        assert isinstance(fill_constraint(OPEN, any_depth=None), JSONSchema)
        return
    parser, _ = _parser(schema, extra_keys=extra_keys)
    v, rng = _validator(schema), random.Random(3)
    texts = _samples(parser, rng, 300, depth=14)
    for text in texts:
        assert v.is_valid(json.loads(text)), text
    assert max(t.count("[") + t.count("{") for t in texts) >= 6  # deep values were drawn


def test_invalid_instances_are_rejected():
    """Instances that break a declared keyword are rejected however deep the free-form parts are."""
    parser, node = _parser(FREE, extra_keys=True)
    v = _validator(FREE)
    for bad in ({"name": "toolongname", "meta": _deep(9)}, {"meta": 1}, {"name": 3}, {"name": "a", "tags": {}}):
        assert not v.is_valid(bad)
        for text in (node.dump(bad), json.dumps(bad, separators=(",", ":"))):
            with pytest.raises(lark.exceptions.LarkError):
                parser.parse(text)


def test_regular_engine_refuses_by_name_and_keeps_the_rest():
    with pytest.raises(UnsupportedSchemaError) as exc:
        compile_schema(FREE, any_depth=None)
    assert exc.value.keyword == "any_depth"
    with pytest.raises(UnsupportedSchemaError, match="any_depth"):
        JSONSchema(FREE, any_depth=None)
    assert compile_schema(CLOSED_NUM, any_depth=None).regex == compile_schema(CLOSED_NUM).regex
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConstraintError, match="any_depth"):
            compile_schema(FREE, any_depth=bad)


def test_fill_unbounded_outputs_validate():
    from steerdiff.testing import tiny_model

    model = tiny_model("masked")
    v = _validator(FREE)
    for seed in range(3):
        value = sd.fill(model, FREE, "text", length=40, seed=seed, any_depth=None, temperature=1.0)
        assert v.is_valid(value), value
    with pytest.raises(ConfigError, match="any_depth"):
        sd.fill(model, FREE, "text", length=40, any_depth=-1)
