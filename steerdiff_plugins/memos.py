"""The compile path's memos of small pure functions, each registered where it is defined (:func:`memo`), so
that :func:`clear` forgets them all at once: benchmarks time compiles that take nothing an earlier compile left
there, whichever module a memo lives in.

A memo here holds results of a pure function of small inputs (a parsed regex atom, a class's byte fragment, a
pattern's translation, a range's enumerated multiples). Not registered: per-pattern caches of whole automata
(``token_walk.cache_clear`` forgets those), and per-process tables of fixed inputs (Unicode categories, format
trees, a tokenizer's prefix tree), which every compile shares alike."""

from __future__ import annotations

_REGISTERED: list = []


def memo(obj):
    """Register ``obj``, a ``dict`` or a function with ``cache_clear`` (``functools.lru_cache``'s), and return it
    (usable as a decorator above ``lru_cache``)."""
    if not (isinstance(obj, dict) or callable(getattr(obj, "cache_clear", None))):
        raise TypeError(f"memo: a dict or a function with cache_clear, got {type(obj).__name__}")
    _REGISTERED.append(obj)
    return obj


def clear() -> None:
    """Empty every registered memo."""
    for obj in _REGISTERED:
        if isinstance(obj, dict):
            obj.clear()
        else:
            obj.cache_clear()


def registered() -> tuple:
    """The memos registered so far (those of the modules imported so far)."""
    return tuple(_REGISTERED)
