"""steerdiff.train: a few steps on a tiny config, the saved layout, and the shipped steerdiff-tiny."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

pytest.importorskip("faker")

from steerdiff.train import TrainConfig, encode_canvas, make_batch, train  # noqa: E402
from steerdiff.train import data as D  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "steerdiff" / "models" / "steerdiff-tiny"
SPECIALS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "[EOS]": 5}
TEXTS = [
    "Maria Lopez, 34, maria@example.org, signs in as a user.",
    '{"name":"Maria Lopez","age":34,"email":"maria@example.org","role":"user"}',
    "  leading spaces, tabs\tand\nnewlines; unicode: café ✓ 日本",
    "The food was great.",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    cfg = TrainConfig(out=str(out), steps=4, n_examples=300, tokenizer_examples=300, vocab_size=700,
                      hidden=32, layers=1, heads=2, intermediate=64, batch_size=8, warmup=2,
                      log_every=2, eval_every=1000, eval_n=2)
    info = train(cfg)
    return out, info


def _byte_decoder():
    # GPT-2's byte <-> printable-character table used by the ByteLevel pre-tokenizer
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BD = _byte_decoder()


def _token_bytes(token: str) -> bytes:
    return bytes(_BD[ch] for ch in token)


def _check_tokenizer(tok):
    for s, i in SPECIALS.items():
        assert tok.convert_tokens_to_ids(s) == i
    assert (tok.cls_token, tok.sep_token, tok.mask_token, tok.pad_token, tok.eos_token) == \
        ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[EOS]")
    for s in TEXTS:
        plain = tok(s, add_special_tokens=False)["input_ids"]
        assert tok(s)["input_ids"] == [tok.cls_token_id] + plain + [tok.sep_token_id]
        assert tok.decode(plain) == s  # byte-level: decoding is the concatenation of the tokens' bytes
        # decoding is exactly the concatenation of the tokens' bytes
        assert b"".join(_token_bytes(t) for t in tok.convert_ids_to_tokens(plain)) == s.encode("utf-8")


def test_few_steps_finite_and_saved_dir_loads(trained):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out, info = trained
    assert info["step"] == 4 and math.isfinite(info["final_loss"]) and info["final_loss"] > 0
    assert info["evals"] and info["evals"][-1]["n"] == 2
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "TRAINING.md"):
        assert (out / f).exists(), f
    assert "final loss" in (out / "TRAINING.md").read_text()
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ in ("BertForMaskedLM", "RoFormerForMaskedLM")
    _check_tokenizer(tok)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["mask_token_id"] == 4 and cfg["eos_token_id"] == 5


def test_input_layout(trained):
    from transformers import AutoTokenizer

    out, _ = trained
    tok = AutoTokenizer.from_pretrained(out)
    prompt, target = TEXTS[0], TEXTS[1]
    p = tok(prompt)["input_ids"]
    c = encode_canvas(tok, [target])
    assert c == tok(target, add_special_tokens=False)["input_ids"]
    cfg = TrainConfig(out=str(out), max_extra_eos=5)
    ids, att, cm = make_batch([(p, c), (tok("")["input_ids"], encode_canvas(tok, ["a b", 3, " c"]))],
                              tok, random.Random(0), cfg)
    row = ids[0][att[0].bool()].tolist()
    L = int(cm[0].sum())
    assert row[: len(p)] == p and row[-1] == tok.sep_token_id
    assert row[len(p): len(p) + len(c)] == c
    assert all(t == tok.eos_token_id for t in row[len(p) + len(c): -1]) and L == len(row) - len(p) - 1
    assert L - len(c) <= 5
    # prompt and trailing [SEP] are never canvas; padding is on the right with attention 0
    assert not cm[0, : len(p)].any() and not cm[0, len(row) - 1]
    row1 = ids[1][att[1].bool()].tolist()
    assert row1[:2] == [tok.cls_token_id, tok.sep_token_id]
    assert tok.eos_token_id in row1[2:-1]
    assert (ids[att == 0] == tok.pad_token_id).all()


def test_data_examples_are_consistent():
    ds = D.build_dataset(600, seed=3)
    sizes = ds["sizes"]
    assert sizes["total"] == 600 and sizes["extraction"] == 360
    sch = D.schemas()
    for e in ds["examples"]:
        if e["kind"] != "extract":
            continue
        obj = json.loads(e["canvas"][0])
        s = sch[e["schema"]]
        assert e["canvas"][0] == D.to_json(obj)
        assert list(obj) == [k for k in s["properties"] if k in obj]  # schema key order
        assert set(s["required"]) <= set(obj) and None not in obj.values()
    # reproducible from the seed
    again = D.build_dataset(600, seed=3)["examples"]
    assert again[:50] == ds["examples"][:50]


def test_heldout_matches_schemas_and_is_not_training_text():
    jsonschema = pytest.importorskip("jsonschema")
    from benchmarks.extraction_data import HELDOUT_TEMPLATES, heldout, schemas

    hs = heldout(60)
    assert len(hs) == 60 and {h["schema_name"] for h in hs} == set(schemas())
    for h in hs:
        jsonschema.validate(h["expected"], h["schema"])
        assert list(h["expected"]) == [k for k in h["schema"]["properties"] if k in h["expected"]]
    whole = {t for spec in D.TRAIN.values() for t in spec.get("whole", [])}
    assert not whole & {t for ts in HELDOUT_TEMPLATES.values() for t in ts}


@pytest.mark.skipif(not (SHIPPED / "config.json").exists(),
                    reason="steerdiff/models/steerdiff-tiny not trained yet (python -m steerdiff.train --out ...)")
def test_shipped_model():
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    size = sum(f.stat().st_size for f in SHIPPED.iterdir() if f.is_file())
    assert size <= 40 * 2**20, f"package size {size / 2**20:.1f} MiB > 40 MiB"
    tok = AutoTokenizer.from_pretrained(SHIPPED)
    model = AutoModelForMaskedLM.from_pretrained(SHIPPED).eval()
    assert type(model).__name__ in ("BertForMaskedLM", "RoFormerForMaskedLM")
    _check_tokenizer(tok)
    ids = tok("Maria Lopez, 34")["input_ids"] + [tok.mask_token_id] * 10 + [tok.sep_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), model.config.vocab_size)
    assert model.config.vocab_size >= len(tok) and torch.isfinite(logits).all()
    assert (SHIPPED / "TRAINING.md").exists()


def test_continue_from_saved_dir(trained, tmp_path):
    from transformers import AutoTokenizer

    src, _ = trained
    cfg = TrainConfig(out=str(tmp_path / "more"), steps=2, n_examples=200, batch_size=4, warmup=1,
                      log_every=1, eval_every=1000, eval_n=1, init_from=str(src))
    info = train(cfg)
    assert math.isfinite(info["final_loss"])
    a, b = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(tmp_path / "more")
    assert a.get_vocab() == b.get_vocab()
    assert "Continued from" in (tmp_path / "more" / "TRAINING.md").read_text()


def test_threads_file_changes_a_running_jobs_thread_count(tmp_path):
    from steerdiff.train import _maybe_set_threads

    before = torch.get_num_threads()
    cfg = TrainConfig(out=str(tmp_path))
    try:
        _maybe_set_threads(cfg)  # no file: nothing changes
        assert torch.get_num_threads() == before
        want = 1 if before != 1 else 2
        (tmp_path / "THREADS").write_text(f"{want}\n")
        _maybe_set_threads(cfg)
        assert torch.get_num_threads() == want
        (tmp_path / "THREADS").write_text("many")  # unreadable: ignored
        _maybe_set_threads(cfg)
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)


def test_spaces_are_tokens_of_their_own(trained):
    """A value has the same ids in running text and in the JSON canvas (copying is a look-up)."""
    from transformers import AutoTokenizer

    out, _ = trained
    tok = AutoTokenizer.from_pretrained(out)
    text, js = TEXTS[0], TEXTS[1]
    for word in ("Maria", "Lopez", "34"):
        ids = tok(word, add_special_tokens=False)["input_ids"]
        assert _contains(tok(text, add_special_tokens=False)["input_ids"], ids), word
        assert _contains(tok(js, add_special_tokens=False)["input_ids"], ids), word


def _contains(seq, sub) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_nonce_and_copy_examples():
    """Nonce records keep text and JSON in agreement (free strings verbatim in the text); copy tasks copy."""
    ds = D.build_dataset(800, seed=4, mix=(0.8, 0.1, 0.1), nonce=1.0, copy=0.25)
    assert ds["sizes"]["copy"] == 200 and ds["sizes"]["extraction"] == 440
    free = {"name", "customer", "city", "company", "street", "title", "location", "email", "phone", "order_id"}
    n_ext = 0
    for e in ds["examples"]:
        if e["kind"] == "copy":
            assert e["canvas"][0] and e["canvas"][0] in e["prompt"]
        elif e["kind"] == "extract":
            n_ext += 1
            obj = json.loads(e["canvas"][0])
            for k, v in obj.items():
                if k in free:
                    assert v in e["prompt"], (k, v, e["prompt"])
    assert n_ext == 440
    assert D.build_dataset(800, seed=4, mix=(0.8, 0.1, 0.1), nonce=1.0, copy=0.25)["examples"][:40] == ds["examples"][:40]


def test_continue_as_roformer_ports_the_bert_weights(trained, tmp_path):
    """--arch roformer on a BERT checkpoint: every weight but the absolute positions carries over, training
    runs, and the saved model loads as a masked diffusion model that fills a schema."""
    import torch
    from transformers import AutoModelForMaskedLM

    import steerdiff as sd
    from steerdiff.train import bert_to_roformer

    src, _ = trained
    bert = AutoModelForMaskedLM.from_pretrained(src)
    rof = bert_to_roformer(bert)
    assert torch.equal(rof.roformer.embeddings.word_embeddings.weight, bert.bert.embeddings.word_embeddings.weight)
    assert torch.equal(rof.roformer.encoder.layer[0].attention.self.query.weight, bert.bert.encoder.layer[0].attention.self.query.weight)
    cfg = TrainConfig(out=str(tmp_path / "rof"), steps=2, n_examples=200, batch_size=4, warmup=1, log_every=1,
                      eval_every=1000, eval_n=1, init_from=str(src), arch="roformer")
    assert math.isfinite(train(cfg)["final_loss"])
    model = sd.load_model(str(tmp_path / "rof"))
    assert model.family == "masked" and type(model.model).__name__ == "RoFormerForMaskedLM"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    assert isinstance(sd.fill(model, schema, "it is 12")["n"], int)


def test_context_examples_keep_values_in_the_text():
    """Context words around an extraction text change the prompt only: the free-text values stay verbatim in
    it and the JSON is still canonical; ``with_context`` keeps the text whole and adds words before or after it."""
    if not D.wordnet_sentences():
        pytest.skip("Debian's wordnet-base is not installed (context words come from it)")
    ds = D.build_dataset(600, seed=5, mix=(0.9, 0.05, 0.05), nonce=0.5, context=1.0)
    free = {"name", "customer", "city", "company", "street", "title", "location", "email", "phone", "order_id"}
    n = 0
    for e in ds["examples"]:
        if e["kind"] != "extract":
            continue
        n += 1
        obj = json.loads(e["canvas"][0])
        assert e["canvas"][0] == D.to_json(obj)
        for k, v in obj.items():
            if k in free:
                assert v in e["prompt"], (k, v, e["prompt"])
    assert n == 540
    import random

    rng = random.Random(0)
    wn = D.wordnet_sentences()
    outs = [D.with_context("Maria Lopez is 34.", rng, wn) for _ in range(50)]
    assert all("Maria Lopez is 34." in o and len(o) > len("Maria Lopez is 34.") for o in outs)
    assert any(not o.startswith("Maria") for o in outs) and any(not o.endswith("34.") for o in outs)


def _reference_batch(items, tok, rng, cfg):
    """make_batch's layout written out plainly with Python lists (the reference the packed builder must match)."""
    eos, sep, pad = tok.eos_token_id, tok.sep_token_id, tok.pad_token_id
    seqs, canv = [], []
    for p, c in items:
        c = c + [eos] * rng.randint(0, cfg.max_extra_eos)
        budget = cfg.max_len - len(p) - 1
        if budget < 8:  # over-long prompt: keep its end
            p = p[: 1] + p[-(cfg.max_len // 2):]
            budget = cfg.max_len - len(p) - 1
        c = c[:budget]
        seqs.append(p + c + [sep])
        canv.append((len(p), len(p) + len(c)))
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    cm = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, (s, (a, b)) in enumerate(zip(seqs, canv)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        cm[i, a:b] = True
    return ids, att, cm


def test_packed_batch_matches_the_plain_layout():
    """The GPU feeder (make_batch_packed over flat arrays, which make_batch calls) builds exactly the plain
    list-based layout, over-long prompts (cut to [CLS] + their end) and canvases cut at max_len included."""
    from steerdiff.train import Packed, make_batch_packed

    class Tok:
        eos_token_id, sep_token_id, pad_token_id = 5, 3, 0

    r = random.Random(7)
    pairs = [([2] + [r.randrange(6, 99) for _ in range(r.choice([0, 3, 40, 70, 130]))] + [3],
              [r.randrange(6, 99) for _ in range(r.choice([0, 1, 9, 60]))]) for _ in range(64)]
    data = Packed(pairs)
    assert [data.item(i) for i in range(len(pairs))] == pairs
    cfg = TrainConfig(out="unused", max_len=96, max_extra_eos=30)
    for trial in range(6):
        bidx = r.sample(range(len(pairs)), 8)
        want = _reference_batch([pairs[i] for i in bidx], Tok, random.Random(trial), cfg)
        got = make_batch_packed(data, bidx, Tok, random.Random(trial), cfg)
        for w, g in zip(want, got):
            assert w.dtype == g.dtype and torch.equal(w, g)
