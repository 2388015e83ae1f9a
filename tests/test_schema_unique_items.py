"""``uniqueItems`` (issue 23 item 4, ``containers``): exact for arrays of enum values (``minItems`` 1 included)
and for arrays of objects told apart by a required enum key (an ordered selection, one item per key value:
a narrowing); refused by name and pointer for arbitrary items. Every text the compiled regex accepts must
validate with python-jsonschema (sampled texts, labelled instances, random arrays drawn by hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema
from schema_checks import assert_samples_valid, validator as _validator

ENUM_NONEMPTY = {"type": "array", "items": {"enum": ["a", "b", "c"]}, "uniqueItems": True, "minItems": 1}
KEYED = {"type": "array", "uniqueItems": True,  # uplugin's LocalizationTargets, fewer values
         "items": {"type": "object", "required": ["LoadingPolicy", "Name"],
                   "properties": {"LoadingPolicy": {"type": "string", "enum": ["Never", "Always", "Editor"]},
                                  "Name": {"type": "string"}}}}
KEYED_NONEMPTY = {"type": "array", "minItems": 1, "uniqueItems": True,  # vsix-publish's installTargets, shorter
                  "items": {"type": "object", "required": ["sku", "version"],
                            "properties": {"sku": {"type": "string", "enum": ["Pro", "Community"]},
                                           "version": {"type": "string", "pattern": "^[0-9\\[\\(,. \\)\\]]+$"}}}}
CASES = {"enum-nonempty": ENUM_NONEMPTY, "keyed": KEYED, "keyed-nonempty": KEYED_NONEMPTY}


@pytest.mark.parametrize("name", list(CASES))
def test_sampled_texts_validate(name):
    schema = CASES[name]
    comp = compile_schema(schema)
    assert_samples_valid(schema, comp)


def _t(policy, name="x"):
    return {"LoadingPolicy": policy, "Name": name}


@pytest.mark.parametrize("name,valid,invalid", [
    ("enum-nonempty", [["a"], ["a", "c"], ["a", "b", "c"]], [[], ["a", "a"], ["d"]]),
    ("keyed", [[], [_t("Never")], [_t("Never"), _t("Editor", "y")], [_t("Never"), _t("Always"), _t("Editor")]],
     [[_t("Never"), _t("Never")], [_t("Other")], [{"Name": "x"}]]),
    ("keyed-nonempty", [[{"sku": "Pro", "version": "[1.0,2.0)"}]], [[], [{"sku": "Pro", "version": "x"}]]),
])
def test_labelled_instances(name, valid, invalid):
    schema = CASES[name]
    comp = compile_schema(schema)
    v = _validator(schema)
    for x in valid:
        assert v.is_valid(x), x  # the labels themselves are right
        assert comp.fullmatch(comp.dumps(x)), x
    for x in invalid:
        assert not v.is_valid(x), x
        assert not comp.fullmatch(comp.dumps(x)), x


def test_items_equal_at_the_key_are_not_written_together():
    """The narrowing: [{Never, x}, {Never, y}] is valid (distinct items) but never written."""
    comp = compile_schema(KEYED)
    x = [_t("Never", "x"), _t("Never", "y")]
    assert _validator(KEYED).is_valid(x)
    assert not comp.fullmatch(comp.dumps(x))
    assert any("uniqueItems" in n for n in comp.notes)


_item = st.fixed_dictionaries({"LoadingPolicy": st.sampled_from(["Never", "Always", "Editor", "x"]),
                               "Name": st.sampled_from(["a", "b"])})


@settings(max_examples=400, deadline=None)
@given(xs=st.lists(_item, max_size=4))
def test_random_arrays_accepted_only_when_valid(xs):
    comp = compile_schema(KEYED)
    if comp.fullmatch(json.dumps(xs, separators=(",", ":"), ensure_ascii=False)):
        assert _validator(KEYED).is_valid(xs), xs


@pytest.mark.parametrize("schema", [
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},  # arbitrary strings: not regular
    {"type": "array", "items": KEYED["items"], "uniqueItems": True, "maxItems": 2},  # fewer slots than values
    {"type": "array", "items": KEYED["items"], "uniqueItems": True, "minItems": 2},
    {"type": "array", "uniqueItems": True, "items": {"type": "object", "properties": {"k": {"enum": [1, 2]}}}},  # optional key
])
def test_refused_by_name_and_pointer(schema):
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == "uniqueItems" and e.value.pointer == "#/uniqueItems", str(e.value)
