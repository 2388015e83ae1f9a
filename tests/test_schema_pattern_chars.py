"""Patterns read over characters (issue 23 item 4, ``char_languages``): a ``pattern`` together with a
``format`` (the intersection of the pattern, the format's regex and the length bounds), a negative
lookahead (the rest of the branch less what the lookahead rules out) and an anchor inside the pattern
(``$`` as the string's end). The compiled language must be a subset of the valid instances: sampled texts
validate with python-jsonschema (format checks on), labelled instances from the schemas that needed it
(bukkit-plugin, o60770, stripe-app, o74172, o79440, o90970) are told apart, and brute force over small
alphabets shows the lookahead and inner-anchor readings exact where Python and ECMA-262 agree."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steerdiff.errors import UnsupportedSchemaError
from steerdiff_plugins.schema.char_languages import _ANYSTAR, _pattern_tree, format_tree, string_language, strings_meet
from steerdiff_plugins.schema.compiled import compile_schema
from steerdiff_plugins.schema.fragments import FORMATS
from schema_checks import assert_samples_valid, validator

BUKKIT = {"type": "string", "pattern": "^(?!org\\.bukkit\\.)([a-zA-Z_$][a-zA-Z\\d_$]*\\.)*[a-zA-Z_$][a-zA-Z\\d_$]*$"}
INNER_END = {"type": "string", "pattern": "^(\\/?((\\.{2})|([a-z0-9\\-]*))($|\\/))*$"}  # o60770
HTTPS_URI = {"type": "string", "format": "uri", "pattern": "^https?://"}  # stripe-app, o79440 (via allOf)
HTTPS_URI_ALLOF = {"type": "string", "allOf": [{"format": "uri"}, {"pattern": "^https?://"}]}
URI_REF = {"type": "string", "format": "uri-reference", "pattern": "^(https?://|/).+"}  # o90970
REGEX_SLASHES = {"type": "string", "format": "regex", "pattern": "^/.+/$"}  # o90970
DATE_2000S = {"type": "string", "format": "date", "pattern": "^20", "maxLength": 10}
EMAIL_SHORT = {"type": "string", "format": "email", "pattern": "\\.org$", "minLength": 8, "maxLength": 12}
URI_OR_NULL = {"type": ["string", "null"], "pattern": "^https:", "format": "uri"}  # o74172
CASES = {"bukkit": BUKKIT, "inner-end": INNER_END, "https-uri": HTTPS_URI, "https-uri-allof": HTTPS_URI_ALLOF,
         "uri-ref": URI_REF, "regex-slashes": REGEX_SLASHES, "date-2000s": DATE_2000S, "email-short": EMAIL_SHORT,
         "uri-or-null": URI_OR_NULL}


@pytest.mark.parametrize("name", list(CASES))
def test_sampled_texts_validate(name):
    schema = CASES[name]
    assert_samples_valid(schema, compile_schema(schema), n=200)


@pytest.mark.parametrize("name,valid,invalid", [
    ("bukkit", ["com.example.Main", "Main", "org.bukkitx.A", "org.bukkit"], ["org.bukkit.Main", "org.bukkit.a.B",
                                                                             "com..A", "1a.B", ""]),
    ("inner-end", ["", "/", "a/b", "../x", "/..", "abc", "a-b/"], ["a.b", "//./", ".", "A", "a/.../b"]),
    ("https-uri", ["https://example.com/x", "http://a"], ["ftp://a.b", "http:/a", "example.com", 3]),
    ("https-uri-allof", ["https://example.com/x?y=1"], ["ftp://a.b", "https:/a"]),
    ("uri-ref", ["/a/b", "https://x.org/y"], ["/", "ftp://x", "a/b", "https://"]),
    ("regex-slashes", ["/a+/", "/\\d+\\.\\d+/"], ["a+", "/(/", "//", "/[/"]),
    ("date-2000s", ["2021-02-28", "2024-02-29"], ["1999-01-01", "2021-02-29", "20", "2021-13-01"]),
    ("email-short", ["ab@cd.org", "a.b@x.y.org"], ["ab@cd.com", "a@b.org", "abcdefgh@xyz.org", "ab.cd.org"]),
    ("uri-or-null", [None, "https://a.b/c"], ["http://a.b", "ftp:x", 3]),
])
def test_labelled_instances(name, valid, invalid):
    schema = CASES[name]
    comp, v = compile_schema(schema), validator(schema)
    for x in valid:
        assert v.is_valid(x), x  # the labels themselves are right
        assert comp.fullmatch(json.dumps(x, ensure_ascii=False)), x
    for x in invalid:  # invalid under this python-jsonschema (its format checkers: those installed)
        assert not v.is_valid(x), x
        assert not comp.fullmatch(json.dumps(x, ensure_ascii=False)), x
        assert not comp.fullmatch(json.dumps(x)), x


@pytest.mark.parametrize("pattern,alphabet,n", [
    ("^(?!ab)[abc]*$", "abc", 6),
    ("^a(?!b|cc)[abc]+$", "abc", 6),
    ("^(?!a)(?!.*b$).*", "abc", 5),  # two lookaheads; the second looks at the whole rest
    ("(?!ab)c", "abc", 5),  # unanchored: any position
    ("^(\\/?((\\.{2})|([a-z0-9\\-]*))($|\\/))*$", "/.a", 7),  # o60770: $ inside a repeated group
    ("^(a$|b)+", "ab", 7),
])
def test_sub_reading_is_exact_on_small_alphabets(pattern, alphabet, n):
    """The subset reading equals re.search on every string of ``alphabet`` up to length ``n`` (no newline,
    no \\d \\w \\s: Python and ECMA-262 agree there), through the canonical encoding ``string_language`` writes."""
    rx = string_language([_pattern_tree(pattern, "sub")], [])
    compiled = re.compile(rx if rx is not False else "(?!)")
    for k in range(n + 1):
        for t in itertools.product(alphabet, repeat=k):
            s = "".join(t)
            assert bool(compiled.fullmatch(s)) == bool(re.search(pattern, s)), (pattern, s)


@pytest.mark.parametrize("pattern", ["^(?!ab)[abc]*$", "(?!ab)c", "^(a$|b)+", "x(?=y)"])
def test_sup_reading_contains_every_match(pattern):
    """A superset (what a negation or a disjointness proof reads) keeps every string the pattern matches."""
    rx = re.compile(string_language([_pattern_tree(pattern, "sup")], []))
    for k in range(6):
        for t in itertools.product("abcxy", repeat=k):
            s = "".join(t)
            if re.search(pattern, s):
                assert rx.fullmatch(s), (pattern, s)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_format_trees_need_no_escape_but_regex(fmt):
    """A format's decoded strings are its regex's strings: none but "regex" holds a character JSON escapes,
    and "regex"'s tree holds a single backslash where its encoded regex has two."""
    escaped = ("cat", [_ANYSTAR, ("set", ((0, 0x1F), (0x22, 0x22), (0x5C, 0x5C))), _ANYSTAR])
    assert strings_meet([format_tree(fmt), escaped]) == (fmt == "regex")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["org", ".", "bukkit", "a", "Z", "_", "$", "1", "x.y", "٣"]), max_size=7))
def test_bukkit_random_names(parts):
    """Sound on random names; complete on those without a non-ASCII digit (``\\d`` read narrow)."""
    x = "".join(parts)
    comp, valid = compile_schema(BUKKIT), validator(BUKKIT).is_valid(x)
    if comp.fullmatch(json.dumps(x, ensure_ascii=False)):
        assert valid, x
    if valid and "٣" not in x:
        assert comp.fullmatch(json.dumps(x, ensure_ascii=False)), x


@pytest.mark.parametrize("schema,keyword,pointer", [
    ({"type": "string", "pattern": "(?<!a)b"}, "pattern", "#/pattern"),  # lookbehind
    ({"type": "string", "pattern": "^a(?=b)"}, "pattern", "#/pattern"),  # a positive lookahead
    ({"type": "string", "format": "date", "pattern": "\\bx"}, "pattern", "#/pattern"),  # word boundary
    ({"properties": {"u": {"format": "uri", "pattern": "^[ab]*a[ab]{12}$"}}}, "pattern", "#/properties/u/pattern"),
])
def test_refused_by_name_and_pointer(schema, keyword, pointer):
    with pytest.raises(UnsupportedSchemaError) as e:
        compile_schema(schema)
    assert e.value.keyword == keyword and e.value.pointer == pointer, str(e.value)


@pytest.mark.parametrize("pattern", ["^(?:a(?::[0-9]*)?)$", "^(?:b(?:c[0-9]*)*)$", "^(?:(?:ab*){2,})$",
                                     "^(?:x(?:y(?:z)*)?)$", "^(?:(?:a|b[0-9]*)?c)$"])
def test_char_automaton_of_nested_repeats_equals_re(pattern):
    """Optional and starred groups that end in a star: the character automaton (and the regex written back
    from it) accepts exactly what re.fullmatch accepts, on every string of up to 5 characters over the
    pattern's alphabet plus one other (a skip edge into a copy's end state once reached the inner star)."""
    import itertools
    import re

    from steerdiff_plugins.schema import char_languages as cl

    back = cl.string_language([cl._pattern_tree(pattern, "sub")], [])
    alphabet = sorted(set(re.sub(r"[^a-z0-9:]", "", pattern.replace("0-9", "05"))) | {"q"})
    for n in range(6):
        for chars in itertools.product(alphabet, repeat=n):
            s = "".join(chars)
            assert bool(re.fullmatch(back, s)) == bool(re.search(pattern, s)), (pattern, s, back)
