"""Extractive schemas: a JSON Schema narrowed so that free strings and numbers are copied from a text.

``extractive_schema(schema, text)``: every free string subschema (``type: string`` without
``enum``/``const``) becomes an ``enum`` of the text's candidate spans (``steerdiff.extractive``) that the
subschema accepts, with python-jsonschema's format checker and the exact ``format`` language of the regular
engine (``fragments.FORMATS``); every free ``integer``/``number`` subschema an ``enum`` of the numbers the text
writes that it accepts. A subschema none of whose candidates it accepts is left as it was. The narrowed
schema's instances are a subset of the original's.
"""

from __future__ import annotations

import re
from typing import Any

from steerdiff.extractive import (
    candidate_dates,
    candidate_numbers,
    candidate_spans,
    candidate_times,
)
from steerdiff_plugins.schema.fragments import FORMATS

__all__ = ["extractive_schema"]


def _free(node: dict, kind: str) -> bool:
    t = node.get("type")
    return t == kind and "enum" not in node and "const" not in node and "$ref" not in node


def extractive_schema(schema: Any, text: str) -> Any:
    """A copy of ``schema`` whose free strings and numbers are narrowed to what ``text`` contains."""
    import jsonschema

    spans, numbers = candidate_spans(text), candidate_numbers(text)
    written = list(dict.fromkeys(candidate_dates(text) + candidate_times(text)))  # ISO forms of dates/times

    def accepted(node: dict, values: list) -> list:
        v = jsonschema.Draft202012Validator(node, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        fmt = FORMATS.get(node.get("format")) if isinstance(node.get("format"), str) else None
        # python-jsonschema's format checks are loose (an email only needs an "@"): a candidate must also be
        # in the language the exact constraint compiles the format to
        return [x for x in values if v.is_valid(x) and (fmt is None or not isinstance(x, str) or re.fullmatch(fmt, x))]

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) if k not in ("enum", "const", "default", "examples") else v for k, v in node.items()}
        if _free(node, "string"):
            fixed_form = "format" in node or "pattern" in node
            keep = accepted(node, list(dict.fromkeys(spans + written)) if fixed_form else spans)
        elif _free(node, "integer") or _free(node, "number"):
            keep = accepted(node, numbers)
        else:
            return node
        if keep:
            node["enum"] = keep
        return node

    return walk(schema)  # walk builds new dicts and lists; enum/const/default values are shared, never mutated
