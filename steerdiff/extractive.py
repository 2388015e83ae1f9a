"""Extractive schemas: string and number values must be copied from the source text.

    sd.fill(model, Person, text, extract=True)

Filling a form from a text, a free ``string`` or ``number`` field should hold a span of that text, not a
value the model invents. :func:`extractive_schema` narrows a JSON Schema to that: every free string
subschema (``type: string`` without ``enum``/``const``) becomes an ``enum`` of the text's candidate spans
that the subschema itself accepts (so ``pattern``, ``format``, ``minLength``... still hold), and every
free ``integer``/``number`` subschema an ``enum`` of the numbers written in the text that it accepts.
A subschema none of whose candidates it accepts (a date the text writes as "March 3rd") is left as it
was: the field stays free rather than impossible. The narrowed schema's instances are a subset of the
original's, so an exact constraint on it still never yields an output invalid under the original.

Candidate spans: substrings of one line, without brackets, ``|``, ``;``, ``"`` or ``": "``, that start at a word start (after whitespace or one of
``:;,=|/("'``) and end at a word end (before whitespace, end of text, or one of ``,;.:!?|/)"'``), at most
``MAX_WORDS`` words and ``MAX_CHARS`` characters. Numbers: ``-?digits(.digits)?`` not inside a longer
number (thousands separators ``1,299.99`` read as 1299.99).
"""

from __future__ import annotations

import re
from typing import Any

MAX_WORDS = 5
MAX_CHARS = 64
_START_AFTER = set(" \t\r\n:;,=|/(\"'")
_END_BEFORE = set(" \t\r\n,;.:!?|/)\"'")
_NEVER_INSIDE = set("\n()[]{}|;\"")
_NUMBER = re.compile(r"(?<![\d.,])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|(?<![\d.])-?\d+(?:\.\d+)?(?![\d])")


def candidate_spans(text: str) -> list[str]:
    """Distinct candidate spans of ``text`` (see the module docstring), in order of first appearance."""
    n = len(text)
    starts = [i for i in range(n) if not text[i].isspace() and text[i] not in _START_AFTER and (i == 0 or text[i - 1] in _START_AFTER)]
    ends = {j for j in range(1, n + 1) if not text[j - 1].isspace() and text[j - 1] not in _END_BEFORE
            and (j == n or text[j] in _END_BEFORE)}
    out: dict[str, None] = {}
    for a in starts:
        words = 1
        for b in range(a + 1, min(n, a + MAX_CHARS) + 1):
            ch = text[b - 1]
            if ch in _NEVER_INSIDE or (ch == ":" and b < n and text[b].isspace()):  # no "label: value" spans
                break
            if ch.isspace() and not text[b - 2].isspace():
                words += 1
                if words > MAX_WORDS:
                    break
            if b in ends:
                out.setdefault(text[a:b])
    return list(out)


def candidate_numbers(text: str) -> list[int | float]:
    """Distinct numbers written in ``text`` (ints where there is no fractional part)."""
    out: dict[Any, None] = {}
    for m in _NUMBER.finditer(text):
        s = m.group(0).replace(",", "")
        v = float(s) if "." in s else int(s)
        out.setdefault((type(v), v))
    return [v for _, v in out]


def _free(node: dict, kind: str) -> bool:
    t = node.get("type")
    return t == kind and "enum" not in node and "const" not in node and "$ref" not in node


def extractive_schema(schema: Any, text: str) -> Any:
    """A copy of ``schema`` whose free strings and numbers are narrowed to what ``text`` contains."""
    import jsonschema

    spans, numbers = candidate_spans(text), candidate_numbers(text)

    def accepted(node: dict, values: list) -> list:
        v = jsonschema.Draft202012Validator(node, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        return [x for x in values if v.is_valid(x)]

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) if k not in ("enum", "const", "default", "examples") else v for k, v in node.items()}
        if _free(node, "string"):
            keep = accepted(node, spans)
        elif _free(node, "integer") or _free(node, "number"):
            keep = accepted(node, numbers)
        else:
            return node
        if keep:
            node["enum"] = keep
        return node

    return walk(schema)  # walk builds new dicts and lists; enum/const/default values are shared, never mutated
