"""Templates: fixed text byte-identical for every tokenizer family, holes padded only as a suffix."""

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import steerdiff as sd
from steerdiff.testing import tiny_model

KINDS = ["bytelevel", "sentencepiece", "wordpiece"]
MODELS = {k: tiny_model("masked", k) for k in KINDS}

fixed_text = st.text(alphabet=st.sampled_from(list("abcdeXYZ ,.!?-'\"{}:01é€\n")), min_size=0, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), parts=st.lists(fixed_text, min_size=2, max_size=4),
       sizes=st.lists(st.integers(1, 4), min_size=3, max_size=3), seed=st.integers(0, 10_000),
       schedule=st.sampled_from(["low_confidence", "random", "margin"]))
def test_fixed_text_is_byte_identical(kind, parts, sizes, seed, schedule):
    assume(not any("{{" in p for p in parts))  # a literal "{{" is refused as a malformed hole (tested below)
    model = MODELS[kind]
    text = "".join(p + (f"{{{{h{i}:{sizes[i]}}}}}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))
    tpl = sd.Template(text)
    out = sd.generate(model, "q", length=64, steps=8, constraints=[tpl], seed=seed, temperature=1.0, schedule=schedule)
    rebuilt = ""
    for i, p in enumerate(parts):
        assert out.text[len(rebuilt):].startswith(p), (out.text, p)
        rebuilt += p
        if i < len(parts) - 1:
            rebuilt += out.fields[f"h{i}"]
    assert rebuilt == out.text
    assert model.mask_id not in out.token_ids


def test_padding_only_as_a_suffix_of_each_hole():
    model = MODELS["bytelevel"]
    tpl = sd.Template("<{{a:6}}|{{b:6}}>")
    fill = model.fill_id
    for seed in range(30):
        out = sd.generate(model, "", length=20, steps=5, constraints=[tpl], seed=seed, temperature=2.0, schedule="random")
        lay_ids = out.token_ids
        # locate hole spans: '<' token(s), 6 positions, '|', 6 positions, '>'
        n_open = len(model.tokenizer("<", add_special_tokens=False)["input_ids"])
        n_bar = len(model.tokenizer("|", add_special_tokens=False)["input_ids"])
        for s in (n_open, n_open + 6 + n_bar):
            hole = lay_ids[s : s + 6]
            pads = [t == fill for t in hole]
            assert pads == sorted(pads), f"padding must be a suffix run: {hole}"
            assert not any(t in model.tokenizer.all_special_ids and t != fill for t in hole)


def test_template_positions_after_the_template_are_padding():
    model = MODELS["bytelevel"]
    out = sd.generate(model, "", length=30, steps=3, constraints=[sd.Template("ab {{x:2}} cd")], seed=0)
    assert out.text.startswith("ab ") and out.text.endswith(" cd")
    assert out.token_ids[-5:] == [model.fill_id] * 5


@pytest.mark.parametrize("text, words", [
    ("Dear {{name:60}}", "needs 6"),
    ("a {{x:0}} b", "at least 1 token"),
    ("a {{x:2}} {{x:3}}", "appears twice"),
    ("a {{x}} b", "malformed hole"),
])
def test_template_errors_are_named(text, words):
    with pytest.raises(sd.ConstraintError, match=words):
        sd.generate(MODELS["bytelevel"], "", length=16, steps=2, constraints=[sd.Template(text)])


def test_unknown_slot_is_named():
    with pytest.raises(sd.ConstraintError, match="name no hole"):
        sd.Template("a {{x:2}}", slots={"y": sd.Template("q")})


def test_literal_braces_next_to_holes_are_text():
    """A "{" just before a hole or a "}" just after one is fixed text (found by the property test above)."""
    tpl = sd.Template("{{{h0:1}}{")
    assert tpl.parts == ["{", ("h0", 1), "{"]
    assert sd.Template("x {{a:2}}} y").parts == ["x ", ("a", 2), "} y"]
    with pytest.raises(sd.ConstraintError, match="malformed hole"):
        sd.Template("a {{b} c")
