"""The open-ended extraction-task generator (steerdiff/train/fields.py, tasks.py): every target validates with
python-jsonschema (FormatChecker on) and is in the exact constraint's language, values that are copied appear in
the text, and the data is varied (kinds, shapes, key spellings, nesting, nulls) and reproducible from a seed."""
from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

pytest.importorskip("faker")
jsonschema = pytest.importorskip("jsonschema")

from faker import Faker  # noqa: E402

from steerdiff.train.fields import POOL  # noqa: E402
from steerdiff.train.tasks import SHAPES, build_open_dataset, make_task, to_json  # noqa: E402

N = 300


@pytest.fixture(scope="module")
def tasks():
    fk = Faker(["en_US", "en_GB"])
    fk.seed_instance(11)
    rng = random.Random(11)
    return [make_task(fk, rng) for _ in range(N)]


def test_pool_has_60_kinds_with_valid_schema_fragments():
    assert len({k.name for k in POOL}) >= 60
    fk = Faker("en_US")
    fk.seed_instance(0)
    rng = random.Random(0)
    for k in POOL:
        jsonschema.Draft202012Validator.check_schema(k.schema)
        v = k.sample(fk, rng)
        jsonschema.Draft202012Validator(k.schema, format_checker=jsonschema.FormatChecker()).validate(v)
        assert isinstance(k.surface(v, rng), str) and k.surface(v, rng)


def test_every_target_validates(tasks):
    for t in tasks:
        jsonschema.Draft202012Validator.check_schema(t["schema"])
        v = jsonschema.Draft202012Validator(t["schema"], format_checker=jsonschema.FormatChecker())
        errs = list(v.iter_errors(t["expected"]))
        assert not errs, (t["text"], t["expected"], errs[0].message)
        assert json.loads(to_json(t["expected"])) == t["expected"]


def test_targets_are_in_the_exact_constraint_language(tasks):
    import steerdiff as sd

    make = sd.constraint_types()["json_schema"][0]
    for t in tasks[:40]:  # the regex engine's language must contain the canonical target (keys in schema order)
        rx = make(t["schema"], max_depth=3, max_items=None)._compiled.regex
        assert re.fullmatch(rx, to_json(t["expected"])), (t["schema"], to_json(t["expected"]))


def test_copied_values_appear_in_the_text(tasks):
    n = 0
    for t in tasks:
        for v in t["verbatim"]:
            assert v in t["text"], (v, t["text"])
            n += 1
    assert n > N  # most tasks copy at least one value


def test_variety(tasks):
    kinds = Counter(k for t in tasks for k in t["kinds"])
    assert len(kinds) >= 60, len(kinds)
    shapes = Counter(t["shape"] for t in tasks)
    assert set(shapes) == set(SHAPES) and min(shapes.values()) >= 5, shapes
    keys = {k for t in tasks for k in t["keys"]}
    assert len(keys) >= 150, len(keys)
    assert any(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+", k) for k in keys)  # camelCase
    assert any(re.fullmatch(r"[a-z]+(?:_[a-z]+)+", k) for k in keys)  # snake_case
    assert any(re.fullmatch(r"[a-z]+(?:-[a-z]+)+", k) for k in keys)  # kebab-case
    assert any(re.fullmatch(r"(?:[A-Z][a-z]+){2,}", k) for k in keys)  # PascalCase
    company_names = {k for k in keys if k.lower().replace("_", "").replace("-", "") in
                     ("company", "employer", "organisation", "organization", "orgname", "companyname", "firm", "business")}
    assert len(company_names) >= 3, company_names
    objs = sum(any(isinstance(v, dict) for v in t["expected"].values()) for t in tasks)
    arrays_of_objs = sum(any(isinstance(v, list) and v and isinstance(v[0], dict) for v in t["expected"].values())
                         for t in tasks)
    arrays_of_vals = sum(any(isinstance(v, list) and v and isinstance(v[0], str) for v in t["expected"].values())
                         for t in tasks)
    nulls = sum(any(v is None for v in t["expected"].values()) for t in tasks)
    omitted = sum(len(t["expected"]) < len(t["schema"]["properties"]) for t in tasks)
    assert objs >= N * 0.1 and arrays_of_objs >= N * 0.05 and arrays_of_vals >= N * 0.05, (objs, arrays_of_objs, arrays_of_vals)
    assert nulls >= N * 0.05 and omitted >= N * 0.05, (nulls, omitted)
    types = Counter(type(v).__name__ for t in tasks for v in t["expected"].values())
    assert {"str", "int", "float", "bool", "list", "dict", "NoneType"} <= set(types), types
    texts = [t["text"] for t in tasks]
    assert len(set(texts)) == N


def test_distractors_are_not_the_answer(tasks):
    marked = [t for t in tasks if re.search(r"used to be|ignore the old|no longer the|was previously|\(not |Old |old ", t["text"])]
    assert len(marked) >= N * 0.05


def test_dataset_reproducible_and_mixed():
    a = build_open_dataset(60, seed=3, mix=(0.7, 0.1, 0.2))
    b = build_open_dataset(60, seed=3, mix=(0.7, 0.1, 0.2))
    c = build_open_dataset(60, seed=4, mix=(0.7, 0.1, 0.2))
    assert a == b and a["examples"] != c["examples"]
    kinds = Counter(e["kind"] for e in a["examples"])
    assert kinds["open"] >= 42 and kinds["fill"] == 6
    for e in a["examples"]:
        if e["kind"] == "open":
            json.loads(e["canvas"][0])


def test_build_dataset_selects_open_data():
    from steerdiff.train import data as D

    ds = D.build_dataset(20, seed=1, mix=(1.0, 0.0, 0.0), data="open")
    assert all(e["kind"] == "open" for e in ds["examples"])
    with pytest.raises(ValueError, match="unknown data"):
        D.build_dataset(5, data="nope")


def _char_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789{}\":, .-_")
    vocab = {c: i for i, c in enumerate(["<pad>", "<eos>", "<|mask|>"] + chars)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    t.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=t, pad_token="<pad>", eos_token="<eos>", mask_token="<|mask|>"), vocab


def test_a2d_llama_is_bidirectional_and_loads_as_a_masked_lm(tmp_path):
    """steerdiff.a2d: a Llama with bidirectional attention (a later token changes earlier logits), padding
    invariant, saved and loaded back through sd.load_model as the masked family (no shift, EOS fills)."""
    import torch
    from transformers import LlamaConfig

    import steerdiff as sd
    from steerdiff.a2d import A2DLlamaForMaskedLM, a2d_config

    torch.manual_seed(0)
    tok, vocab = _char_tokenizer()
    lc = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    m = A2DLlamaForMaskedLM(a2d_config(lc, vocab["<|mask|>"], len(vocab))).eval()
    x = torch.randint(3, len(vocab), (1, 12))
    x2 = x.clone()
    x2[0, 11] = 3 if x[0, 11] != 3 else 4
    with torch.no_grad():
        l1, l2 = m(input_ids=x).logits, m(input_ids=x2).logits
        pad = torch.cat([x, torch.zeros(1, 4, dtype=torch.long)], 1)
        att = torch.cat([torch.ones(1, 12), torch.zeros(1, 4)], 1).long()
        l3 = m(input_ids=pad, attention_mask=att).logits
    assert (l1[0, 0] - l2[0, 0]).abs().max() > 1e-6  # position 0 sees position 11
    assert torch.allclose(l3[0, :12], l1[0], atol=1e-5)
    m.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model = sd.load_model(tmp_path)
    assert model.family == "masked" and model.shift == 0 and model.mask_id == vocab["<|mask|>"]
    assert model.fill_id == vocab["<eos>"] and model.suffix_ids == []
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99}}, "required": ["a"]}
    out = sd.fill(model, schema, "a is 12", length=12, steps=6)
    jsonschema.validate(out, schema)


def test_a2d_delta_round_trip(tmp_path):
    """LoRA + norms + mask row trained on an A2D model, saved as fp16 shards, merged back by assemble(): the
    assembled model gives the LoRA model's logits (mask column aside), and the shards respect the size limit."""
    import copy

    import torch
    from transformers import LlamaConfig

    from steerdiff.a2d import A2DLlamaForMaskedLM, a2d_config, assemble
    from steerdiff.train.a2d import a2d_loss, add_lora, embed, save_delta

    torch.manual_seed(0)
    lc = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=128)
    base = A2DLlamaForMaskedLM(a2d_config(lc, 49, 50)).eval()
    m = copy.deepcopy(base)
    add_lora(m, rank=4, alpha=8.0)
    ids = torch.randint(0, 49, (3, 10))
    att = torch.ones_like(ids)
    cm = torch.zeros_like(ids, dtype=torch.bool)
    cm[:, 5:] = True
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):  # a few real steps so that B, the norms and the mask row move
        loss, _ = a2d_loss(m, ids, att, cm, 1e-3, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss.detach())
    files = save_delta(tmp_path, m, {"rank": 4, "alpha": 8.0, "mask_token_id": 49, "layers": None}, shard_mb=0.003)
    assert len(files) > 2 and all(f.stat().st_size < 3000 + 4000 for f in files)  # 3 kB of tensors + header
    full, _ = assemble(tmp_path, base=(copy.deepcopy(base), None))
    x = ids.clone()
    x[:, 6:8] = 49  # mask tokens in the input use the trained mask row
    m.eval()
    with torch.no_grad():
        h = m.model(inputs_embeds=embed(m, x), attention_mask=m.full_mask(att, 3, 10, "cpu")).last_hidden_state
        want = m.lm_head(h)[..., :49]
        got = full(input_ids=x, attention_mask=att).logits[..., :49]
        changed = (want - base(input_ids=x).logits[..., :49]).abs().max()
    assert (want - got).abs().max() < 2e-2  # fp16 delta
    assert changed > 1e-3  # training changed the model
    # merged in place (what the device run evaluates), saved, loaded by sd.load_model: the same logits
    import steerdiff as sd
    from steerdiff.train.a2d import merge_lora

    tok, vocab = _char_tokenizer()
    m50 = copy.deepcopy(m)
    merge_lora(m50, tok, tmp_path / "merged")
    loaded = sd.load_model(tmp_path / "merged")
    assert loaded.family == "masked"
    with torch.no_grad():
        got2 = loaded.logits(x, att)[..., :49]
    assert (want - got2).abs().max() < 1e-4


def test_handwritten_set_is_valid_and_unlike_the_generator():
    """benchmarks/data/extraction_handwritten.jsonl: >= 60 texts, every expected object validates against its schema
    (FormatChecker on) with keys in schema order, and no text is one the open generator would write (its shapes'
    stock phrases do not occur)."""
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "extraction_handwritten.jsonl"
    recs = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert len(recs) >= 60 and len({r["text"] for r in recs}) == len(recs)
    for r in recs:
        jsonschema.Draft202012Validator(r["schema"], format_checker=jsonschema.FormatChecker()).validate(r["expected"])
        assert [k for k in r["schema"]["properties"] if k in r["expected"]] == list(r["expected"])
    from steerdiff.train.tasks import CHATTER

    stock = CHATTER + ["Here is what we have:", "is no longer the", "used to be", "Please ignore the old"]
    assert not any(s in r["text"] for r in recs for s in stock)


def test_a2d_data_workers_and_batch_layout():
    """build_data in forked workers is reproducible and sized as asked; make_batch lays out prompt, canvas, EOS run,
    with the canvas mask over the target and its EOS run only."""
    import torch

    from steerdiff.train.a2d import build_data, make_batch

    tok, _ = _char_tokenizer()
    a = build_data(tok, 40, 0, "0.9,0.1,0", workers=2)
    b = build_data(tok, 40, 0, "0.9,0.1,0", workers=2)
    assert a == b and len(a[1]) == 40 and a[0]["sizes"]["total"] == 40
    items = a[1][:3]
    ids, att, cm = make_batch(items, tok, random.Random(0), 512, "cpu")
    for r, (p, c) in enumerate(items):
        n = int(att[r].sum())
        assert ids[r, : len(p)].tolist() == p and ids[r, len(p): len(p) + len(c)].tolist() == c
        assert set(ids[r, len(p) + len(c): n].tolist()) <= {tok.eos_token_id}
        assert cm[r].nonzero().flatten().tolist() == list(range(len(p), n))
    assert ids.dtype == torch.long
