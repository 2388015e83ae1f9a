"""Extractive schemas: string and number values must be copied from the source text.

    sd.fill(model, Person, text, extract=True)

Filling a form from a text, a free ``string`` or ``number`` field should hold a span of that text, not a
value the model invents. This module reads the candidates from a text; the json_schema plugin's
``steerdiff_plugins.schema.extractive.extractive_schema`` narrows a JSON Schema to that: every free string
subschema (``type: string`` without ``enum``/``const``) becomes an ``enum`` of the text's candidate spans
that the subschema itself accepts (so ``pattern``, ``format``, ``minLength``... still hold), and every
free ``integer``/``number`` subschema an ``enum`` of the numbers written in the text that it accepts.
A subschema none of whose candidates it accepts (a date the text writes as "March 3rd") is left as it
was: the field stays free rather than impossible. The narrowed schema's instances are a subset of the
original's, so an exact constraint on it still never yields an output invalid under the original.

Candidate spans: substrings of one line, without ``[]{}``, ``|``, ``;``, ``"`` or ``": "``, that start at a word start (after whitespace or one of
``:;,=|/("'``) and end at a word end (before whitespace, end of text, or one of ``,;.:!?|/)"'``), at most
``MAX_WORDS`` words and ``MAX_CHARS`` characters; parentheses only balanced inside one word (a phone
``(786)651-1739``), and the first and last words hold a letter or digit (no span starts with a lone ``-``). Numbers: ``-?digits(.digits)?`` not inside a longer
number (thousands separators ``1,299.99`` read as 1299.99).
"""

from __future__ import annotations

import re
from typing import Any

MAX_WORDS = 5
MAX_CHARS = 64
_START_AFTER = set(" \t\r\n:;,=|/(\"'")
_END_BEFORE = set(" \t\r\n,;.:!?|/)\"'")
_NEVER_INSIDE = set("\n[]{}|;\"")
_WORDY = re.compile(r"\w")  # a span starts and ends with a word that has a letter or digit (not "-" or "&")
_NUMBER = re.compile(r"(?<![\d.,])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|(?<![\d.])-?\d+(?:\.\d+)?(?![\d])")


def candidate_spans(text: str) -> list[str]:
    """Distinct candidate spans of ``text`` (see the module docstring), in order of first appearance."""
    n = len(text)
    starts = [i for i in range(n) if not text[i].isspace() and (text[i] not in _START_AFTER or text[i] == "(")
              and (i == 0 or text[i - 1] in _START_AFTER)]  # "(" starts a span only if it closes in the word
    ends = {j for j in range(1, n + 1) if not text[j - 1].isspace() and text[j - 1] not in _END_BEFORE
            and (j == n or text[j] in _END_BEFORE)}
    out: dict[str, None] = {}
    for a in starts:
        words = 1
        depth = 0  # open "(" of the current word: brackets stay inside one word, like "(786)651-1739"
        for b in range(a + 1, min(n, a + MAX_CHARS) + 1):
            ch = text[b - 1]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    break
            elif ch in _NEVER_INSIDE or (ch == ":" and b < n and text[b].isspace()):  # no "label: value" spans
                break
            if ch.isspace():
                if depth:
                    break
                if not text[b - 2].isspace():
                    words += 1
                    if words > MAX_WORDS:
                        break
            if (b in ends or (ch == ")" and (b == n or text[b] in _END_BEFORE))) and depth == 0:
                span = text[a:b]
                if _WORDY.search(span.split()[0]) and _WORDY.search(span.split()[-1]):
                    out.setdefault(span)
    return list(out)


def candidate_numbers(text: str) -> list[int | float]:
    """Distinct numbers written in ``text`` (ints where there is no fractional part)."""
    out: dict[Any, None] = {}
    for m in _NUMBER.finditer(text):
        s = m.group(0).replace(",", "")
        v = float(s) if "." in s else int(s)
        out.setdefault((type(v), v))
    return [v for _, v in out]


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_MONTH = {m: i + 1 for i, m in enumerate(_MONTHS)} | {m[:3]: i + 1 for i, m in enumerate(_MONTHS)} | {"sept": 9}
_MON = r"(?P<mon>" + "|".join(sorted(_MONTH, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YR = r"(?P<year>\d{4})"
_DATE_FORMS = [re.compile(rf"\b{f}\b", re.IGNORECASE) for f in (
    rf"{_MON}\s+{_DAY},?\s+{_YR}",  # May 8, 2027 / May 8th 2027 / Nov. 6, 2027
    rf"(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MON},?\s+{_YR}",  # 8 May 2027 / the 8th of May 2027
    r"(?P<year>\d{4})-(?P<m>\d{1,2})-(?P<day>\d{1,2})",  # ISO (also with one-digit parts)
    r"(?P<m>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})",  # 05/08/2027: month first, and day first below
)]
_TIME_FORMS = re.compile(r"\b(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s*(?P<ap>[ap]\.?m\.?|o'clock)(?![a-z])"
                         r"|\b(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)\b|\b(?P<word>noon|midnight)\b", re.IGNORECASE)


def candidate_dates(text: str) -> list[str]:
    """ISO dates (``YYYY-MM-DD``) the text writes in a common English form, with a year; a numeric
    ``a/b/YYYY`` gives both readings that are real dates. Distinct, in order of appearance."""
    import datetime

    found: list[tuple[int, str]] = []
    for form in _DATE_FORMS:
        for m in form.finditer(text):
            g = m.groupdict()
            year, day = int(g["year"]), int(g["day"])
            month = _MONTH[g["mon"].lower().rstrip(".")] if g.get("mon") else int(g["m"])
            readings = [(month, day)] + ([(day, month)] if "/" in m.group(0) else [])
            for mo, d in readings:
                try:
                    found.append((m.start(), datetime.date(year, mo, d).isoformat()))
                except ValueError:
                    pass
    return list(dict.fromkeys(v for _, v in sorted(found, key=lambda x: x[0])))


def candidate_times(text: str) -> list[str]:
    """24-hour ``HH:MM`` times the text writes (``3:30 pm``, ``9am``, ``10 o'clock``, ``noon``, ``14:05``)."""
    out: dict[str, None] = {}
    for m in _TIME_FORMS.finditer(text):
        if m.group("word"):
            out.setdefault("12:00" if m.group("word").lower() == "noon" else "00:00")
            continue
        if m.group("h24") is not None:
            h, mi = int(m.group("h24")), int(m.group("m24"))
        else:
            h, mi = int(m.group("h")), int(m.group("m") or 0)
            ap = m.group("ap").lower()
            if ap[0] in "ap" and not 1 <= h <= 12:  # "14 pm", "0 am": not a 12-hour time
                continue
            if ap[0] == "p" and h < 12:
                h += 12
            elif ap[0] == "a" and h == 12:
                h = 0
        out.setdefault(f"{h:02d}:{mi:02d}")
    return list(out)
