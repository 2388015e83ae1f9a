"""Loading a lark grammar (LALR, contextual lexer) with errors that name the rule or line."""

from __future__ import annotations

import re
import threading

from steerdiff.errors import GrammarError


def _line_of(grammar: str, needle: str) -> str:
    for i, line in enumerate(grammar.splitlines(), 1):
        if needle and needle in line:
            return f" (line {i}: {line.strip()!r})"
    return ""


# Productions (an upper bound: rule lines and their "|" characters) lark's LALR analysis takes. Measured on
# this machine under load: schema grammars of 2870 and 6604 productions (numeric bounds as rules) load in
# 11 s and 6 s; one of 9091 (a JSONSchemaBench vega-lite schema) took 20 s and more before failing on a
# conflict. Checked on the grammars schema_to_lark writes for recursive schemas (fill's fallback), which
# then stop at once, by name (compile_budget). A proxy, not a clock: lark's time also grows with terminals.
MAX_GRAMMAR_PRODUCTIONS = 8000


_TERMINAL_LINE = re.compile(r"\s*[A-Z_][A-Z_0-9]*(?:\.-?\d+)?\s*:")


def grammar_productions(grammar: str) -> int:
    """An upper bound on the productions of ``grammar``: one per line, plus the ``|`` characters of the lines
    that do not define a terminal (a terminal's regex alternation is no production)."""
    return sum(1 if _TERMINAL_LINE.match(line) else 1 + line.count("|") for line in grammar.splitlines())


def check_grammar_size(grammar: str) -> None:
    """Raise :class:`~steerdiff_plugins.compile_budget.CompileBudgetExceeded` (stage ``grammar``) when
    ``grammar`` has over ``MAX_GRAMMAR_PRODUCTIONS`` productions (:func:`grammar_productions`)."""
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded

    n = grammar_productions(grammar)
    if n > MAX_GRAMMAR_PRODUCTIONS:
        raise CompileBudgetExceeded("grammar", "grammar", f"about {n} productions (rule lines and '|'), above the limit of "
                                                          f"{MAX_GRAMMAR_PRODUCTIONS} that lark's LALR analysis builds in seconds")


_loaded: dict = {}
_loaded_lock = threading.Lock()


def load_lark(grammar: str, start: str, import_paths: tuple = ()):
    """``lark.Lark(grammar, start=start, parser="lalr", lexer="contextual")``, turning every failure into a
    GrammarError naming the rule or line. Cached per (grammar, start): the constraint's fail-fast check,
    the compiled engine and the validator of finished outputs share one instance (building the LALR table
    of a large schema grammar takes most of a second). ``%import`` reaches lark's bundled grammars only,
    unless ``import_paths`` names directories (``steerdiff.validate.check_grammar_imports``)."""
    key = (grammar, start, tuple(import_paths))
    with _loaded_lock:
        hit = _loaded.get(key)
    if hit is None:
        hit = _load_lark(grammar, start, tuple(import_paths))
        with _loaded_lock:
            if len(_loaded) >= 64:
                _loaded.clear()
            _loaded[key] = hit
    return hit


def _load_lark(grammar: str, start: str, import_paths: tuple = ()):
    import lark
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import UnexpectedInput

    from steerdiff.validate import check_grammar_imports

    if not isinstance(grammar, str) or not grammar.strip():
        raise GrammarError("the grammar is empty: give the text of a lark grammar")
    check_grammar_imports(grammar, import_paths)
    from steerdiff_plugins import compile_budget
    from steerdiff_plugins.compile_budget import CompileBudgetExceeded

    try:
        with compile_budget.time_budget("grammar", "grammar", compile_budget.GRAMMAR_SECONDS, f"lark's LALR analysis of {grammar_productions(grammar)} "
                                                                 "productions"):
            return lark.Lark(grammar, start=start, parser="lalr", lexer="contextual", import_paths=list(import_paths))
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
    except CompileBudgetExceeded:
        raise
    except Exception as exc:
        text = str(exc).strip()
        if start in text and ("undefined" in text.lower() or "not defined" in text.lower()):
            raise GrammarError(f"start rule {start!r} is not defined in the grammar: {text}") from None
        raise GrammarError(f"lark could not load the grammar: {type(exc).__name__}: {text}") from None

