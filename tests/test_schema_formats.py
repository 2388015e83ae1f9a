"""Format regexes added for issue 23 item 4 (``fragments.FORMATS``: hostname, ipv6, regex, uri-reference)
and draft-3-only formats (``color``): every compiled text passes python-jsonschema's own format checker
and the library it calls (``ipaddress``, ``re.compile``, ``fqdn``, ``rfc3987``); random strings the
language accepts are valid (hypothesis); ``color`` is an annotation after draft 3 and refused in draft 3."""

from __future__ import annotations

import ipaddress
import json
import random
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.compiled import compile_schema, sample_text

DRAFT7 = "http://json-schema.org/draft-07/schema#"


def _schema(fmt: str, **kw) -> dict:
    return {"$schema": DRAFT7, "type": "string", "format": fmt, **kw}


def _valid(schema, value) -> bool:
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(value)


def _hostname_rules(s: str) -> bool:
    """RFC 1123 as fqdn.FQDN(min_labels=1) reads it, written here so the test needs no optional library."""
    labels = s.split(".")
    return len(s) <= 253 and all(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", x) for x in labels)


def _regex_ok(s: str) -> bool:
    try:
        re.compile(s)
        return True
    except re.error:
        return False


def _ipv6_ok(s: str) -> bool:
    try:
        return not ipaddress.IPv6Address(s).scope_id
    except ValueError:
        return False


CHECKS = {"hostname": _hostname_rules, "ipv6": _ipv6_ok, "regex": _regex_ok}


@pytest.mark.parametrize("fmt", ["hostname", "ipv6", "regex", "uri-reference"])
def test_samples_pass_the_checkers(fmt):
    schema = _schema(fmt)
    comp = compile_schema(schema)
    rng = random.Random(0)
    for _ in range(400):
        text = sample_text(comp.regex, rng, max_repeat=6)
        value = json.loads(text)
        assert _valid(schema, value), text
        if fmt in CHECKS:
            assert CHECKS[fmt](value), text


def test_uri_reference_passes_rfc3987():
    rfc3987 = pytest.importorskip("rfc3987")  # the library python-jsonschema uses for uri-reference
    comp = compile_schema(_schema("uri-reference"))
    rng = random.Random(1)
    for _ in range(400):
        value = json.loads(sample_text(comp.regex, rng, max_repeat=6))
        assert rfc3987.match(value, rule="URI_reference"), value


def test_hostname_passes_fqdn():
    fqdn = pytest.importorskip("fqdn")  # the library python-jsonschema uses for hostname
    comp = compile_schema(_schema("hostname"))
    rng = random.Random(2)
    for _ in range(400):
        value = json.loads(sample_text(comp.regex, rng, max_repeat=70))
        assert fqdn.FQDN(value, min_labels=1).is_valid, value


@settings(max_examples=1500, deadline=None)
@given(fmt=st.sampled_from(["hostname", "ipv6", "regex"]),
       s=st.text(alphabet="aZ09-.:\\^$*+?()[]{}|dw", max_size=24))
def test_accepted_strings_are_valid(fmt, s):
    comp = compile_schema(_schema(fmt))
    if comp.fullmatch(json.dumps(s, ensure_ascii=False)):
        assert CHECKS[fmt](s) and _valid(_schema(fmt), s), (fmt, s)


@settings(max_examples=500, deadline=None)
@given(n=st.integers(0, 2 ** 128 - 1), exploded=st.booleans())
def test_ipv6_addresses_are_accepted(n, exploded):
    """Not a token subset: every address in its compressed or exploded form is in the language."""
    a = ipaddress.IPv6Address(n)
    text = a.exploded if exploded else a.compressed
    if "." not in text:  # an embedded IPv4 tail (::ffff:1.2.3.4) is the documented narrowing
        assert compile_schema(_schema("ipv6")).fullmatch(json.dumps(text)), text


def test_hostname_keeps_long_labels_and_many_labels():
    comp = compile_schema(_schema("hostname"))
    assert comp.fullmatch(json.dumps("a" * 63 + ".b.c.d.e.f.example"))
    assert not comp.fullmatch(json.dumps("-a.com")) and not comp.fullmatch(json.dumps("a..b"))


def test_color_is_an_annotation_after_draft_3():
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "string", "format": "color"}
    assert compile_schema(schema).fullmatch('"not a colour"') and _valid(schema, "not a colour")
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema({"$schema": "http://json-schema.org/draft-03/schema#", "type": "object",
                        "properties": {"c": {"type": "string", "format": "color"}}})
    assert e.value.keyword == "format" and e.value.pointer == "#/properties/c/format"


def test_hostname_with_max_length_is_bounded():
    schema = _schema("hostname", maxLength=20)
    comp = compile_schema(schema)
    rng = random.Random(3)
    for _ in range(200):
        value = json.loads(sample_text(comp.regex, rng, max_repeat=30))
        assert len(value) <= 20 and _hostname_rules(value), value
