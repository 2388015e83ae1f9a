"""What each token id writes into the text: the table every character-level constraint compiles against.

Constraints are written over characters; models speak tokens. ``vocab_for(tokenizer)`` builds, once per
tokenizer, the bytes each token contributes when it appears inside a text, for the three tokenizer
families:

- byte-level BPE (GPT-2, Llama-3, Qwen, SmolLM, steerdiff-tiny): a token's characters map back to
  bytes through GPT-2's byte table; decoding is plain concatenation.
- SentencePiece (Llama-2, T5 style): ``▁`` is a space; ``<0xNN>`` byte-fallback tokens are one byte.
- WordPiece (BERT): ``##x`` continues a word; any other token starts a new word and so writes a space
  first. The text of a canvas is the concatenation with the first leading space dropped.

Special tokens (CLS, SEP, PAD, MASK, EOS, ...) write nothing and are listed in ``special``. Decoding a
canvas is always ``b"".join(token_bytes)`` of its non-special tokens, so a constraint that reasons on
``token_bytes`` sees exactly the text the user gets.
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=1)
def _gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2's reversible map from printable unicode characters back to bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@dataclass(frozen=True)
class TokenVocab:
    """The text table of one tokenizer.

    ``token_bytes[t]``: bytes token ``t`` writes when it follows other text (b"" for special tokens).
    ``special``: ids that write nothing (never part of a constrained text). ``kind``: ``"bytelevel"``,
    ``"sentencepiece"``, ``"wordpiece"`` or ``"plain"``. ``size``: number of ids with an entry; ids at
    or above it (padding rows of an embedding matrix) are never allowed by a constraint.
    """

    token_bytes: tuple[bytes, ...]
    special: frozenset[int]
    kind: str
    leading_space: bool  # True when a text's first token writes a space that decode() drops (WordPiece, SentencePiece)

    @property
    def size(self) -> int:
        return len(self.token_bytes)

    def decode_bytes(self, ids) -> bytes:
        out = b"".join(self.token_bytes[i] for i in ids if 0 <= i < self.size and i not in self.special)
        if self.leading_space and out.startswith(b" "):
            out = out[1:]
        return out

    def decode(self, ids) -> str:
        """Text of a token sequence: concatenation of token bytes, special tokens dropped."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def _decoder_kind(tokenizer) -> tuple[str, str]:
    """(kind, continuation prefix) read from a fast tokenizer's decoder description."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return "plain", ""
    desc = json.loads(backend.to_str())
    dec = desc.get("decoder") or {}
    parts = dec.get("decoders", [dec]) if dec.get("type") == "Sequence" else [dec]
    types = {p.get("type") for p in parts}
    if "ByteLevel" in types:
        return "bytelevel", ""
    if "WordPiece" in types:
        return "wordpiece", next(p.get("prefix", "##") for p in parts if p.get("type") == "WordPiece")
    if "Metaspace" in types or "ByteFallback" in types or any(p.get("type") == "Replace" and "▁" in json.dumps(p) for p in parts):
        return "sentencepiece", ""
    pre = desc.get("pre_tokenizer") or {}
    if "ByteLevel" in json.dumps(pre):
        return "bytelevel", ""
    return "plain", ""


def build_vocab(tokenizer) -> TokenVocab:
    """Build the table for a Hugging Face tokenizer (fast or slow). Prefer :func:`vocab_for` (cached)."""
    kind, prefix = _decoder_kind(tokenizer)
    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    for tid, tok in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(tok, "special", False):
            special.add(int(tid))
    table = []
    byte_dec = _gpt2_byte_decoder() if kind == "bytelevel" else None
    for tid, piece in enumerate(pieces):
        if piece is None or tid in special:
            table.append(b"")
            continue
        if kind == "bytelevel":
            try:
                table.append(bytes(byte_dec[ch] for ch in piece))
            except KeyError:  # an added (non-special) token stored as plain text
                table.append(piece.encode("utf-8"))
        elif kind == "sentencepiece":
            m = _BYTE_FALLBACK.match(piece)
            table.append(bytes([int(m.group(1), 16)]) if m else piece.replace("▁", " ").encode("utf-8"))
        elif kind == "wordpiece":
            if prefix and piece.startswith(prefix):
                table.append(piece[len(prefix):].encode("utf-8"))
            else:
                table.append((" " + piece).encode("utf-8"))
        else:
            table.append(tokenizer.convert_tokens_to_string([piece]).encode("utf-8"))
    return TokenVocab(tuple(table), frozenset(special), kind, leading_space=kind in ("wordpiece", "sentencepiece"))


_cache: "weakref.WeakKeyDictionary[object, TokenVocab]" = weakref.WeakKeyDictionary()
_cache_by_id: dict[int, TokenVocab] = {}


def vocab_for(tokenizer) -> TokenVocab:
    """The cached :class:`TokenVocab` of ``tokenizer`` (built on first use, once per tokenizer object)."""
    try:
        hit = _cache.get(tokenizer)
    except TypeError:  # not weak-referenceable
        hit = _cache_by_id.get(id(tokenizer))
    if hit is None:
        hit = build_vocab(tokenizer)
        try:
            _cache[tokenizer] = hit
        except TypeError:
            _cache_by_id[id(tokenizer)] = hit
    return hit


# --- canvas capacity (steerdiff_plugins.canvas_bounds: bounds a canvas cannot reach are not built) ---
MIN_BUCKET = 64


def capacity_bucket(nbytes: int) -> int:
    """The power of two at least ``nbytes`` (and at least ``MIN_BUCKET``): a capacity compiles may share."""
    n = max(int(nbytes), MIN_BUCKET)
    return 1 << (n - 1).bit_length()


_MAX_BYTES: dict[int, tuple[object, int]] = {}


def max_token_bytes(vocab) -> int:
    """The most bytes one non-special token of ``vocab`` (a :class:`TokenVocab`) writes."""
    hit = _MAX_BYTES.get(id(vocab))
    if hit is not None and hit[0] is vocab:
        return hit[1]
    k = max((len(b) for t, b in enumerate(vocab.token_bytes) if t not in vocab.special), default=1)
    _MAX_BYTES[id(vocab)] = (vocab, k)
    return k


def canvas_capacity(positions: int, vocab) -> int:
    """The bucketed capacity in bytes of ``positions`` canvas tokens of ``vocab``."""
    return capacity_bucket(positions * max_token_bytes(vocab))
