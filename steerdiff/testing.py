"""Tiny tokenizers and random-weight models built in code, for tests (no download, seconds on a CPU).

``tiny_tokenizer(kind)`` trains a small tokenizer of each family on a fixed corpus:
``"bytelevel"`` (GPT-2 style byte-level BPE), ``"sentencepiece"`` (Metaspace BPE with byte fallback),
``"wordpiece"`` (BERT style). Every one has [PAD] [CLS] [SEP] [MASK] [EOS] [UNK] specials.
"""

from __future__ import annotations

import collections
import functools
import unicodedata
import string

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[EOS]", "[UNK]"]

CORPUS = [
    'Dear Maria, your order ships tomorrow. {"name":"Maria Lopez","age":34,"email":"maria@example.org"}',
    "The food was cold and bland and the staff ignored us. The service was great and friendly!",
    "SELECT name, age FROM people WHERE age > 30 ORDER BY name; 1 + 2 * (3 - 4) / 5",
    'id,name,price\n1,apple,0.5\n2,"pear, green",1.25\n[true, false, null, -1.5e10, "x\\"y"]',
    "Call 555-1234 or 555-9876 on 2024-05-17 at 10:30:00. uuid 123e4567-e89b-12d3-a456-426614174000",
    "user admin role Jack Smith 27 years old lives in Paris, works as an engineer at Acme Inc.",
    string.ascii_letters + string.digits + string.punctuation + " \t\n" + "éü€日本",
] * 4


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", eos_token="[EOS]", unk_token="[UNK]",
    )


@functools.lru_cache(maxsize=None)
def tiny_tokenizer(kind: str = "bytelevel", vocab_size: int = 400) -> PreTrainedTokenizerFast:
    if kind == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind == "sentencepiece":
        tok = Tokenizer(models.BPE(unk_token="[UNK]", byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Sequence([decoders.Metaspace(), decoders.ByteFallback(), decoders.Fuse()])
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
        trainer = trainers.BpeTrainer(vocab_size=vocab_size + 256, special_tokens=SPECIALS + byte_tokens)
    elif kind == "wordpiece":
        # Built here rather than by WordPieceTrainer, whose tie-breaking differs from one process to
        # the next (tests that depend on the vocabulary were flaky): every character alone and as a
        # "##" continuation, then the most frequent whole words, ties broken by the word.
        pre = pre_tokenizers.BertPreTokenizer()
        counts = collections.Counter(w for text in CORPUS for w, _ in pre.pre_tokenize_str(unicodedata.normalize("NFC", text)))
        chars = sorted({c for w in counts for c in w})
        vocab = SPECIALS + chars + ["##" + c for c in chars]
        vocab += [w for w, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if len(w) > 1][: max(0, vocab_size - len(vocab))]
        tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre
        tok.decoder = decoders.WordPiece()
        tok.add_special_tokens(SPECIALS)
        return _wrap(tok)
    else:
        raise ValueError(kind)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return _wrap(tok)


def tiny_model(kind: str = "masked", tokenizer_kind: str = "bytelevel", *, hidden: int = 64, layers: int = 2, seed: int = 0, max_positions: int = 512):
    """A random-weight model of family ``kind`` (``masked``, ``causal``, ``dream``) wrapped in its adapter."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM

    from steerdiff.adapters import wrap_model

    tok = tiny_tokenizer(tokenizer_kind)
    torch.manual_seed(seed)
    if kind == "masked":
        cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=hidden * 2, max_position_embeddings=max_positions, pad_token_id=tok.pad_token_id)
        model = BertForMaskedLM(cfg)
    elif kind in ("causal", "dream"):
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                          num_key_value_heads=2, intermediate_size=hidden * 2, max_position_embeddings=max_positions,
                          pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.cls_token_id)
        model = LlamaForCausalLM(cfg)
    else:
        raise ValueError(kind)
    return wrap_model(model, tok, family=kind, device="cpu")


def span_text(vocab, fill_id: int, seq) -> str | None:
    """The independent reading of one whole span for the exactness tests: the text its tokens spell, or None
    when the span is malformed (padding ``fill_id`` anywhere but a trailing run, a special or empty token, bytes
    that are not UTF-8). It works on ``vocab.token_bytes`` alone, never on an automaton."""
    parts, seen_fill = [], False
    for t in seq:
        if t == fill_id:
            seen_fill = True
            continue
        if seen_fill or t in vocab.special or not vocab.token_bytes[t]:
            return None
        parts.append(vocab.token_bytes[t])
    try:
        return b"".join(parts).decode("utf-8")
    except UnicodeDecodeError:
        return None


def brute_force_allowed(layout: list, cands: list[int], is_valid) -> dict[int, set[int]]:
    """The exactness oracle of the token-automaton tests: for every ``None`` position of ``layout`` (fixed token
    ids elsewhere), the candidate ids that appear there in at least one completion, over every combination of
    ``cands`` at the masked positions, that ``is_valid(sequence)`` accepts."""
    import itertools

    masked = [i for i, t in enumerate(layout) if t is None]
    seen: dict[int, set[int]] = {i: set() for i in masked}
    for combo in itertools.product(cands, repeat=len(masked)):
        seq = list(layout)
        for i, t in zip(masked, combo):
            seq[i] = t
        if is_valid(seq):
            for i, t in zip(masked, combo):
                seen[i].add(t)
    return seen
