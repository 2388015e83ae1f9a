"""Real diffusion LMs (LLaDA, Dream, LLaDA2) loaded natively, checked against their PUBLISHED code.

``tests/fixtures/real_models/<family>/`` holds a tiny random-weight twin of each checkpoint (real
config.json scaled down, real tensor names, bfloat16 safetensors; built by scripts/make_twins.py) and
``reference.safetensors``: logits that the published modelling code computed on that twin in its own
environment (transformers 4.46.3 for LLaDA and Dream, 4.57.1 for LLaDA2; scripts/parity_reference.py,
provenance in ``reference.json``). CI compares steerdiff's native model with them; it never needs that
environment or the published code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import steerdiff as sd
from steerdiff.adapters import DreamAdapter, LLaDA2Adapter, LLaDAAdapter
from steerdiff.errors import ConfigError
from steerdiff.families import NativeDiffusionLM
from steerdiff.forward import canvas_logits
from steerdiff.testing import span_text

FIX = Path(__file__).parent / "fixtures" / "real_models"
FAMILIES = {"llada": (LLaDAAdapter, 0), "dream": (DreamAdapter, 1), "llada2": (LLaDA2Adapter, 0)}
TOL = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(scope="module")
def twin():
    torch.set_num_threads(1)
    cache: dict[str, sd.Adapter] = {}

    def get(family: str) -> sd.Adapter:
        if family not in cache:
            cache[family] = sd.load_model(FIX / family)
        return cache[family]

    return get


def _ref(family: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIX / family / "reference.safetensors"))


def _padded(ref) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference rows right-padded into one batch, as steerdiff lays a batch out: ids (B, T), mask (B, T)."""
    ids, n = ref["input_ids"].clone(), ref["lengths"]
    am = (torch.arange(ids.shape[1])[None] < n[:, None]).long()  # (B, T)
    return ids, am


def _close_on_real(got: torch.Tensor, want: torch.Tensor, lengths, mask_id: int) -> None:
    keep = torch.arange(want.shape[-1]) != mask_id  # the adapter bans the mask column (-inf)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[b, :n][:, keep], want[b, :n][:, keep], **TOL)


# --- loading ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_twin_loads_natively_without_remote_code(twin, family):
    cls, shift = FAMILIES[family]
    raw = json.loads((FIX / family / "config.json").read_text())
    assert raw["auto_map"], "the twin keeps the real config's auto_map (custom code it does not need)"
    model = twin(family)
    assert type(model) is cls and model.native and model.shift == shift and not model.autoregressive
    assert isinstance(model.model, NativeDiffusionLM)
    assert model.mask_id == raw["mask_token_id"] == model.tokenizer.mask_token_id
    assert model.fill_id == model.tokenizer.eos_token_id
    assert all(not getattr(m, "is_causal", False) for m in model.model.modules())
    assert next(model.model.parameters()).dtype == torch.float32  # bf16 checkpoint, fp32 on the CPU by default


def test_real_configs_map_onto_native_classes():
    """The real 8B/7B configs (no weights here) build their native configs with the published sizes."""
    from steerdiff.families import dream_config, llada2_config, llada_config

    code = FIX.parents[2].parent / "shared" / "testdata" / "model_code"
    if not code.is_dir():
        pytest.skip(f"published model code not found at {code} (../shared/testdata)")
    lc, _ = llada_config(json.loads((code / "llada-8b-instruct" / "config.json").read_text()))
    assert (lc.hidden_size, lc.num_hidden_layers, lc.intermediate_size, lc.vocab_size) == (4096, 32, 12288, 126464)
    assert lc.rope_parameters["rope_theta"] == 500000.0 and not lc.tie_word_embeddings
    dc, _ = dream_config(json.loads((code / "dream-v0-instruct-7b" / "config.json").read_text()))
    assert (dc.hidden_size, dc.num_key_value_heads, dc.vocab_size) == (3584, 4, 152064)
    with pytest.raises(ConfigError, match="'num_key_value_heads' = 0"):
        llada2_config({})  # the LLaDA2 config class defaults (num_key_value_heads=0) do not run, published or native


@pytest.mark.parametrize("family", list(FAMILIES))
def test_parity_rows_padded_batch_against_published_code(twin, family):
    """Rows of lengths 16/23/9 holding mask ids, padded into one batch, against the published code on each row
    alone (LLaDA's published attention ignores attention_mask, so padding is compared with unpadded rows)."""
    model, ref = twin(family), _ref(family)
    ids, am = _padded(ref)
    assert (ids == model.mask_id).sum() > 5
    if family == "llada2":
        model.block_length = None  # the reference rows ran with no mask: fully bidirectional
    try:
        got = model.logits(ids, am)  # (B, T, V)
    finally:
        if family == "llada2":
            model.block_length = 32
    _close_on_real(got, ref["rows"], ref["lengths"], model.mask_id)


def test_parity_dream_padded_batch_with_its_4d_mask(twin):
    """Dream's own _sample pads with a (B, 1, T, T) bool mask and tok_idx position ids: same logits."""
    model, ref = twin("dream"), _ref("dream")
    ids, am = _padded(ref)
    _close_on_real(model.logits(ids, am), ref["dream_padded"], ref["lengths"], model.mask_id)


def test_parity_llada2_block_causal_schedule(twin):
    """LLaDA2's generate(): position i sees only blocks up to its own (blocks of 8 here)."""
    model, ref = twin("llada2"), _ref("llada2")
    ids, am = _padded(ref)
    model.block_length = int(ref["block_length"])
    try:
        got = model.logits(ids, am)
    finally:
        model.block_length = 32
    _close_on_real(got, ref["llada2_blocks"], ref["lengths"], model.mask_id)
    assert not torch.allclose(ref["llada2_blocks"][1, :16], ref["rows"][1, :16], atol=1e-2), "the block mask matters"
    # a later block cannot change an earlier one: edit position 20 (block 2), positions 0..15 stay the same
    edited = ids.clone()
    edited[1, 20] = 5 if int(ids[1, 20]) != 5 else 6
    model.block_length = 8
    try:
        again = model.logits(edited, am)
    finally:
        model.block_length = 32
    torch.testing.assert_close(again[1, :16], got[1, :16])
    assert not torch.allclose(again[1, 16:24], got[1, 16:24])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_parity_through_the_loop_layout_and_shift(twin, family):
    """canvas_logits (the loop's layout: prompts of 11/18/4 tokens, canvas of 5, right padding) reads each
    canvas position's logits where the published code puts them: i for LLaDA/LLaDA2, i - 1 for Dream."""
    model, ref = twin(family), _ref(family)
    ids, n = ref["input_ids"], ref["lengths"].tolist()
    L = 5
    prompts = [ids[b, : n[b] - L].tolist() for b in range(len(n))]
    canvas = torch.stack([ids[b, n[b] - L: n[b]] for b in range(len(n))])  # (B, L)
    if family == "llada2":
        model.block_length = None
    try:
        got = canvas_logits(model, prompts, canvas)  # (B, L, V)
    finally:
        if family == "llada2":
            model.block_length = 32
    keep = torch.arange(got.shape[-1]) != model.mask_id
    for b in range(len(n)):
        s = n[b] - L - model.shift
        torch.testing.assert_close(got[b][:, keep], ref["rows"][b, s: s + L][:, keep], **TOL)
        if model.shift:  # the shift is no no-op: unshifted positions give other logits
            assert not torch.allclose(got[b][:, keep], ref["rows"][b, s + 1: s + 1 + L][:, keep], atol=1e-2)


def test_parity_fails_when_the_rename_map_is_wrong(monkeypatch):
    """The comparison can fail: LLaDA with ff_proj and up_proj swapped no longer matches the published code."""
    from steerdiff import families

    swapped = dict(families._LLADA_BLOCK, ff_proj="mlp.up_proj", up_proj="mlp.gate_proj")
    monkeypatch.setattr(families, "_LLADA_BLOCK", swapped)
    model, ref = sd.load_model(FIX / "llada"), _ref("llada")
    ids, am = _padded(ref)
    with pytest.raises(AssertionError):
        _close_on_real(model.logits(ids, am), ref["rows"], ref["lengths"], model.mask_id)


# --- generation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generate_uses_checkpoint_defaults(twin, family):
    model = twin(family)
    out = sd.generate(model, "Dear Maria", length=12, steps=6, seed=0)
    assert len(out.token_ids) == 12 and model.mask_id not in out.token_ids and out.steps == 6
    assert out.trace.steps[-1].masks_left == [0]
    d = model.defaults
    explicit = sd.generate(model, "Dear Maria", length=12, steps=6, seed=0, schedule=d["schedule"],
                           block_length=d.get("block_length"), temperature=d["temperature"])
    assert explicit.token_ids == out.token_ids
    assert d["schedule"] == {"llada": "blocks", "dream": "entropy", "llada2": "blocks"}[family]


def test_dream_defaults_follow_generation_config(tmp_path):
    d = tmp_path / "dream"
    shutil.copytree(FIX / "dream", d)
    gen = json.loads((d / "generation_config.json").read_text())
    assert gen["alg"] == "origin" and sd.load_model(d).defaults["schedule"] == "entropy"  # model card: entropy
    gen.update(alg="maskgit_plus", temperature=0.2, top_p=0.95)
    (d / "generation_config.json").write_text(json.dumps(gen))
    m = sd.load_model(d)
    assert m.defaults == {"schedule": "low_confidence", "temperature": 0.2, "top_p": 0.95}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fill_returns_a_valid_object(twin, family):
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=8)
        age: int = Field(ge=0, le=120)

    p = sd.fill(twin(family), Person, "Maria Lopez is 34 years old.", seed=1)
    assert isinstance(p, Person) and 0 <= p.age <= 120 and len(p.name) <= 8


@pytest.mark.parametrize("family", list(FAMILIES))
def test_grammar_constraint_output_parses(twin, family):
    import lark

    g = 'start: item ("," item)*\nitem: NUMBER | "x"\n%import common.NUMBER\n'
    for seed in range(2):
        r = sd.generate(twin(family), "List:", length=14, constraints=[sd.Grammar(g)], seed=seed, temperature=1.0)
        lark.Lark(g, start="start", parser="lalr").parse(r.text)


# --- bad input ------------------------------------------------------------------------------------------------


def _copy(family: str, tmp_path: Path, **edit) -> Path:
    d = tmp_path / family
    shutil.copytree(FIX / family, d)
    cfg = json.loads((d / "config.json").read_text())
    for k, v in edit.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (d / "config.json").write_text(json.dumps(cfg))
    return d


_TRAP = "import pathlib\npathlib.Path(__file__).with_name('EXECUTED').write_text('yes')\n"


def test_native_load_runs_nothing_from_the_folder(tmp_path):
    d = _copy("llada", tmp_path)
    for f in ("modeling_llada.py", "configuration_llada.py"):
        (d / f).write_text(_TRAP)
    for trust in (False, True):
        m = sd.load_model(d, trust_remote_code=trust)
        assert m.native and not (d / "EXECUTED").exists()


def test_unknown_custom_code_refused_and_not_run(tmp_path):
    d = _copy("llada", tmp_path, model_type="mystery_dlm", architectures=["MysteryModel"],
              auto_map={"AutoConfig": "configuration_mystery.MysteryConfig", "AutoModel": "modeling_mystery.MysteryModel"})
    for f in ("modeling_mystery.py", "configuration_mystery.py"):
        (d / f).write_text(_TRAP)
    with pytest.raises(ConfigError, match=r"'mystery_dlm'.*modeling_mystery\.py.*trust_remote_code=True"):
        sd.load_model(d)
    assert not (d / "EXECUTED").exists()


def test_unknown_family_names_model_type_architectures_and_supported(tmp_path):
    d = _copy("llada", tmp_path, model_type="llama", architectures=["LlamaModel"], auto_map=None, mask_token_id=None)
    with pytest.raises(ConfigError, match=r"model_type 'llama' \(architectures: LlamaModel\).*dream.*llada.*llada2"):
        sd.load_model(d)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_missing_mask_token_names_the_field(tmp_path, family):
    d = _copy(family, tmp_path, mask_token_id=None)
    with pytest.raises(ConfigError, match=f"{family} config.json has no 'mask_token_id'"):
        sd.load_model(d)


def test_mask_token_outside_the_vocabulary(tmp_path):
    d = _copy("dream", tmp_path, mask_token_id=151666)  # the real id, but the twin's vocabulary is 320
    with pytest.raises(ConfigError, match="'mask_token_id' = 151666 is outside the vocabulary"):
        sd.load_model(d)


def test_unsupported_architecture_field_is_named(tmp_path):
    d = _copy("llada", tmp_path, block_type="sequential")
    with pytest.raises(ConfigError, match="'block_type' = 'sequential' is not supported natively"):
        sd.load_model(d)


def test_weights_that_do_not_match_the_config(tmp_path):
    d = _copy("dream", tmp_path, num_hidden_layers=3)
    with pytest.raises(ConfigError, match=r"does not match its config: missing \['model\.layers\.2\."):
        sd.load_model(d)
    d2 = _copy("llada", tmp_path / "x", d_model=32)
    with pytest.raises(ConfigError, match="has shape"):
        sd.load_model(d2)


# --- Dream's real 151k tokenizer through the constraint engine -------------------------------------------------

CODE = FIX.parents[2].parent / "shared" / "testdata" / "model_code"
DREAM_CODE = CODE / "dream-v0-instruct-7b"
_have_dream = pytest.mark.skipif(not (DREAM_CODE / "vocab.json").is_file(),
                                 reason=f"Dream's tokenizer not found at {DREAM_CODE} (../shared/testdata)")


def need_dream_tokenizer(fn):
    """Needs ../shared/testdata; slow (reading the 151k BPE takes 6-40 s on a shared CPU, once per module)."""
    return pytest.mark.slow(_have_dream(fn))


@pytest.fixture(scope="module")
def dream151k(tmp_path_factory):
    """A Dream twin at the real vocabulary (152064 rows, width 16, one layer) with Dream's real tokenizer.

    The tokenizer is read from vocab.json + merges.txt once (Qwen2TokenizerFast, no custom code) and saved
    as tokenizer.json beside the twin's weights."""
    import importlib.util

    from steerdiff.families import load_tokenizer

    spec = importlib.util.spec_from_file_location("make_twins", FIX.parents[2] / "scripts" / "make_twins.py")
    mt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mt)
    d = tmp_path_factory.mktemp("dream151k")
    tok = load_tokenizer(DREAM_CODE, "dream")
    tok.save_pretrained(d)
    cfg = json.loads((DREAM_CODE / "config.json").read_text())
    cfg.update(hidden_size=16, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=1, intermediate_size=32)
    (d / "config.json").write_text(json.dumps(cfg))
    shutil.copy(DREAM_CODE / "generation_config.json", d / "generation_config.json")
    from safetensors.torch import save_file

    save_file(mt.random_tensors(mt.tensor_shapes("dream", cfg), seed=5), str(d / "model.safetensors"))
    return sd.load_model(d)


def _bytes_valid(vocab, fill: int, seq, ok) -> bool:
    """Independent check of a whole span: padding only as a trailing run, no specials, ``ok(text)``."""
    text = span_text(vocab, fill, seq)
    return text is not None and ok(text)


def _check_allowed_sets(pattern: str, vocab, fill: int, alphabet: bytes, ok, n: int) -> int:
    """Allowed sets of the token DFA over the whole vocabulary == the tokens seen in brute-force completions."""
    import itertools

    import numpy as np

    from steerdiff.testing import brute_force_allowed
    from steerdiff_plugins.automata.token_dfa import NEVER
    from steerdiff_plugins.automata.token_walk import compile_token_dfa

    dfa = compile_token_dfa(pattern, vocab, fill)
    cands = [t for t, b in enumerate(vocab.token_bytes) if b and t not in vocab.special and set(b) <= set(alphabet)] + [fill]
    valid = [s for s in itertools.product(cands, repeat=n) if _bytes_valid(vocab, fill, s, ok)]
    assert valid, pattern
    rng = np.random.default_rng(0)
    layouts = [[None] * n]
    for _ in range(8):
        base = valid[rng.integers(len(valid))] if rng.random() < 0.8 else tuple(rng.choice(cands, n))
        keep = rng.random(n) < 0.4
        layouts.append([int(t) if k else None for t, k in zip(base, keep)])
    for lay in layouts:
        seen = brute_force_allowed(lay, cands, lambda seq: _bytes_valid(vocab, fill, seq, ok))
        cls = np.array([dfa.tok2cls[t] if t is not None else NEVER for t in lay])
        res = dfa.allowed_classes(cls, np.array([t is None for t in lay]))
        if res is None:
            assert all(not s for s in seen.values()), lay
            continue
        pos, acls = res
        for row, i in enumerate(pos):
            allowed = set(np.flatnonzero(acls[row][dfa.tok2cls]).tolist())
            assert allowed == seen[i], (pattern, lay, i, sorted(allowed ^ seen[i])[:10])
    return len(cands)


@need_dream_tokenizer
def test_dream_tokenizer_loads_without_custom_code(dream151k):
    from steerdiff.vocab import vocab_for

    tok = dream151k.tokenizer
    assert len(tok) == 151667 and dream151k.mask_id == tok.mask_token_id == 151666 and dream151k.fill_id == 151643
    assert tok("ab <|mask|>")["input_ids"][-1] == 151666
    v = vocab_for(tok)
    assert v.kind == "bytelevel" and {151643, 151666} <= v.special
    ids = tok("Dear María, {\"a\": 1} 日本")["input_ids"]
    assert v.decode(ids) == tok.decode(ids)


@need_dream_tokenizer
@pytest.mark.parametrize("pattern,alphabet", [(r"[ab]{1,3}c?", b"abc"), (r"(0|[1-9][0-9]?)", b"0123456789")])
def test_dream_tokenizer_regex_allowed_sets_match_brute_force(dream151k, pattern, alphabet):
    import re

    from steerdiff.vocab import vocab_for

    n = _check_allowed_sets(pattern, vocab_for(dream151k.tokenizer), 151643, alphabet, lambda s: re.fullmatch(pattern, s) is not None, 3)
    assert n > len(alphabet), "multi-character tokens of the real vocabulary take part"


@need_dream_tokenizer
def test_dream_tokenizer_json_schema_allowed_sets_match_brute_force(dream151k):
    import jsonschema

    from steerdiff.vocab import vocab_for

    schema = {"type": "array", "items": {"enum": [1, 2]}, "maxItems": 2}

    def ok(text: str) -> bool:  # independent: json + python-jsonschema + the compact canonical form
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return jsonschema.Draft202012Validator(schema).is_valid(value) and json.dumps(value, separators=(",", ":")) == text

    _check_allowed_sets(sd.JSONSchema(schema).regex(), vocab_for(dream151k.tokenizer), 151643, b"[],12", ok, 3)


@need_dream_tokenizer
def test_dream_151k_generates_under_regex_schema_and_grammar(dream151k):
    import re

    import lark
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=10)
        age: int = Field(ge=0, le=120)

    p = sd.fill(dream151k, Person, "Maria Lopez is 34 years old.", seed=0)
    assert isinstance(p, Person)
    r = sd.generate(dream151k, "Date:", length=10, constraints=[sd.Regex(r"\d{4}-\d{2}-\d{2}")], seed=0, temperature=1.0)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.text)
    g = 'start: item ("," item)*\nitem: NUMBER | "x"\n%import common.NUMBER\n'
    r = sd.generate(dream151k, "List:", length=12, constraints=[sd.Grammar(g)], seed=1, temperature=1.0)
    lark.Lark(g, start="start", parser="lalr").parse(r.text)
