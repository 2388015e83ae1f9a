"""The byte-level BPE tokenizer of steerdiff-tiny, trained on the training text.

Byte-level (GPT-2 style) with the ByteLevel decoder, so decoding a token sequence is exactly the
concatenation of the tokens' bytes (no spaces added, no clean-up). Spaces are pre-split into tokens of
their own (``" "`` is never merged into a word), so a word has the same token ids in running text and
inside a JSON string: ``Lopez`` in "Maria Lopez, 34" and in ``{"name":"Maria Lopez"}`` is one id. With
GPT-2's ``" Lopez"`` merges the prompt and the canvas spell values with different ids, and a small model
must learn that mapping word by word before it can copy; with isolated spaces copying is a plain
look-up (the first checkpoint, trained with space-prefixed words, never learned to copy values). Special tokens come first in the vocabulary, in this order::

    [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 [EOS]=5

``[UNK]`` is never produced (all 256 bytes are in the alphabet); it is there for tools that expect one.
A TemplateProcessing post-processor adds ``[CLS] ... [SEP]``: ``tok("x")["input_ids"] == [CLS] + ids + [SEP]``
and ``tok("x", add_special_tokens=False)`` gives the plain ids.
"""
from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 6144, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers fast tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    for i, s in enumerate(SPECIAL_TOKENS):  # the layout the rest of steerdiff may rely on
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return wrap(tok)


def pre_tokenizer():
    """Spaces isolated, then GPT-2's byte-level split (letters / digits / punctuation runs)."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        eos_token="[EOS]",
        model_max_length=512,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
