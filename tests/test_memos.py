"""The compile path's memos (``steerdiff_plugins.memos``): every cached function of the regular engines is either a
registered memo, a per-pattern cache that ``token_walk.cache_clear`` forgets, or a named per-process table of fixed
inputs; ``memos.clear`` empties every registered memo. So a memo added later cannot escape the benchmark's reset
(``benchmarks.constraints._reset_memos``) unnoticed."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import steerdiff_plugins.automata
import steerdiff_plugins.schema
from steerdiff_plugins import memos

# cleared by token_walk.cache_clear (whole automata, keyed by pattern)
PER_PATTERN = {"byte_level.check_regex", "byte_level.byte_dfa", "engine_regex.parse_regex",
               "engine_regex.to_engine_regex", "token_walk._compile_cached", "compile_budget.expansion"}
# per-process tables of fixed inputs: the same for every compile
FIXED = {"engine_regex._category_ranges", "char_languages.format_tree", "char_sets._unicode_set"}


def _modules():
    out = [importlib.import_module("steerdiff_plugins.compile_budget")]
    for pkg in (steerdiff_plugins.automata, steerdiff_plugins.schema):
        for info in pkgutil.iter_modules(pkg.__path__):
            try:
                out.append(importlib.import_module(f"{pkg.__name__}.{info.name}"))
            except ImportError:  # numba kernels without numba
                continue
    return out


def _cached_functions():
    for mod in _modules():
        for name, obj in vars(mod).items():
            if callable(getattr(obj, "cache_clear", None)) and getattr(obj, "__module__", None) == mod.__name__:
                yield f"{mod.__name__.rpartition('.')[2]}.{name}", obj


def test_every_cached_function_is_accounted_for():
    cached = list(_cached_functions())  # imports the modules: their memos register
    registered = {id(m) for m in memos.registered()}
    loose = [name for name, fn in cached
             if id(fn) not in registered and name not in PER_PATTERN and name not in FIXED]
    assert not loose, f"cached functions neither registered (steerdiff_plugins.memos.memo) nor listed here: {loose}"
    names = {name for name, _ in cached}
    assert PER_PATTERN <= names and FIXED <= names  # the lists name what exists


def test_clear_empties_every_registered_memo_and_cache_clear_the_per_pattern_ones():
    from steerdiff.testing import tiny_tokenizer
    from steerdiff.vocab import vocab_for
    from steerdiff_plugins.automata import token_walk as td
    from steerdiff_plugins.schema.compiled import compile_schema

    schema = {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "^[a-f]+x?$", "maxLength": 6}, "e": {"enum": ["x", "é"]},
        "n": {"type": "number", "multipleOf": 0.5, "minimum": 0, "maximum": 3}}, "required": ["a", "n"]}
    tok = tiny_tokenizer("bytelevel")
    td.compile_token_dfa(compile_schema(schema).regex, vocab_for(tok), None)
    filled = [m for m in memos.registered() if (len(m) if isinstance(m, dict) else m.cache_info().currsize)]
    assert len(filled) >= 5  # the compile above went through atoms, fragments, patterns and multiples
    memos.clear()
    assert all(not (len(m) if isinstance(m, dict) else m.cache_info().currsize) for m in memos.registered())
    td.cache_clear()
    per_pattern = [fn for name, fn in _cached_functions() if name in PER_PATTERN]
    assert all(fn.cache_info().currsize == 0 for fn in per_pattern)


def test_memo_takes_dicts_and_caches_only():
    with pytest.raises(TypeError, match="memo: a dict or a function with cache_clear"):
        memos.memo([])
