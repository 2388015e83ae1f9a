"""An enum's own ``type`` is checked by the draft's type checker alone (``_Compiler.typed_values``): the same
values kept as python-jsonschema's full validation keeps, on every draft, for randomised values and types,
and the compiled language unchanged (checked against python-jsonschema on the values themselves)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff_plugins.schema import compiled as jr
from steerdiff_plugins.schema.compiled import compile_schema
from steerdiff_plugins.schema.compiler import _Compiler

DRAFTS = ["http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-07/schema#",
          "https://json-schema.org/draft/2020-12/schema"]
TYPES = ["string", "integer", "number", "boolean", "null", "array", "object", "any", "str"]
VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([1.0, -0.0, 2.5, 1e20]) |
                      st.text(max_size=3), lambda x: st.lists(x, max_size=2) | st.dictionaries(st.text(max_size=2), x,
                                                                                               max_size=2), max_leaves=4)


@settings(max_examples=150, deadline=None)
@given(draft=st.sampled_from(DRAFTS), values=st.lists(VALUES, max_size=8),
       types=st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), max_size=3), st.just(7)))
def test_typed_values_keep_what_full_validation_keeps(draft, values, types):
    root = {"$schema": draft, "enum": values, "type": types}
    comp = _Compiler(root, 3, 8, 16)
    sub = {"type": types}
    try:
        want = comp.valid_values(values, sub)
    except Exception as exc:  # noqa: BLE001 - an unknown type name: the same error both ways
        try:
            comp.typed_values(values, sub)
        except Exception as exc2:  # noqa: BLE001
            assert type(exc2) is type(exc)
            return
        raise AssertionError("typed_values passed where the validation raised") from exc
    assert comp.typed_values(values, sub) == want


def test_an_enum_with_a_type_compiles_as_with_full_validation(monkeypatch):
    """An enum of mixed values under ``type``: the same regex as when every value is validated in full."""
    cases = [{"$schema": d, "enum": ["a", 1, 1.0, 2.5, True, None, [1], {"k": 1}, "b", 3], "type": t}
             for d in DRAFTS for t in ("integer", "number", "string", ["string", "null"], "boolean", "array")]
    jr._CACHE.clear()
    jr._TREES.clear()
    fast = [compile_schema(c).regex for c in cases]
    monkeypatch.setattr(_Compiler, "typed_values", _Compiler.valid_values)
    jr._CACHE.clear()  # compiled again, not taken from the cache
    jr._TREES.clear()
    assert fast == [compile_schema(c).regex for c in cases]
    assert any("2\\.5" in r for r in fast) and any("true" in r for r in fast)  # values kept, not all refused
