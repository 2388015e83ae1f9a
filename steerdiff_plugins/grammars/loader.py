"""Loading a lark grammar (LALR, contextual lexer) with errors that name the rule or line."""

from __future__ import annotations

import threading

from steerdiff.errors import GrammarError


def _line_of(grammar: str, needle: str) -> str:
    for i, line in enumerate(grammar.splitlines(), 1):
        if needle and needle in line:
            return f" (line {i}: {line.strip()!r})"
    return ""


_loaded: dict = {}
_loaded_lock = threading.Lock()


def load_lark(grammar: str, start: str):
    """``lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")``, turning every failure into a
    GrammarError naming the rule or line. Cached per (grammar, start): the constraint's fail-fast check,
    the compiled engine and the validator of finished outputs share one instance (building the LALR table
    of a large schema grammar takes most of a second)."""
    key = (grammar, start)
    with _loaded_lock:
        hit = _loaded.get(key)
    if hit is None:
        hit = _load_lark(grammar, start)
        with _loaded_lock:
            if len(_loaded) >= 64:
                _loaded.clear()
            _loaded[key] = hit
    return hit


def _load_lark(grammar: str, start: str):
    import lark
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import UnexpectedInput

    if not isinstance(grammar, str) or not grammar.strip():
        raise GrammarError("the grammar is empty: give the text of a lark grammar")
    try:
        return lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")
    except UnexpectedInput as exc:
        line = getattr(exc, "line", None)
        raise GrammarError(f"lark grammar syntax error at line {line}, column {getattr(exc, 'column', '?')}: {str(exc).strip().splitlines()[0]}") from None
    except LarkGrammarError as exc:
        msg = str(exc).strip()
        if "NonTerminal" in msg and start in msg and "undefined" in msg.lower():
            raise GrammarError(f"start rule {start!r} is not defined in the grammar") from None
        import re as _re

        m = _re.search(r"'([A-Za-z_0-9]+)' used but not defined \(in rule ([A-Za-z_0-9]+)", msg)
        hint = _line_of(grammar, m.group(2)) if m else ""
        raise GrammarError(f"lark grammar error: {msg}{hint}") from None
    except KeyError as exc:
        raise GrammarError(f"start rule {start!r} is not defined in the grammar (lark: KeyError {exc})") from None
    except Exception as exc:
        text = str(exc).strip()
        if start in text and ("undefined" in text.lower() or "not defined" in text.lower()):
            raise GrammarError(f"start rule {start!r} is not defined in the grammar: {text}") from None
        raise GrammarError(f"lark could not load the grammar: {type(exc).__name__}: {text}") from None

