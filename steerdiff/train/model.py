"""The model built for training: BERT (absolute positions) or RoFormer (rotary) masked LMs."""
from __future__ import annotations

from .config import TrainConfig


def bert_to_roformer(bert):
    """A ``RoFormerForMaskedLM`` with ``bert``'s weights (same layout; rotary instead of absolute positions)."""
    from transformers import RoFormerConfig, RoFormerForMaskedLM

    bc = bert.config
    rc = RoFormerConfig(vocab_size=bc.vocab_size, embedding_size=bc.hidden_size, hidden_size=bc.hidden_size,
                        num_hidden_layers=bc.num_hidden_layers, num_attention_heads=bc.num_attention_heads,
                        intermediate_size=bc.intermediate_size, max_position_embeddings=bc.max_position_embeddings,
                        type_vocab_size=bc.type_vocab_size, pad_token_id=bc.pad_token_id,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    for k in ("mask_token_id", "eos_token_id", "cls_token_id", "sep_token_id"):
        setattr(rc, k, getattr(bc, k, None))
    model = RoFormerForMaskedLM(rc)
    src = {k.replace("bert.", "roformer.", 1): v for k, v in bert.state_dict().items()}
    ported = {k: src[k] for k, v in model.state_dict().items() if k in src and src[k].shape == v.shape}
    left = set(model.state_dict()) - set(ported)
    if left - {"roformer.encoder.embed_positions.weight"}:  # the rotary table is fixed, computed at init
        raise ValueError(f"cannot port BERT weights to RoFormer: {sorted(left)[:5]}")
    model.load_state_dict(ported, strict=False)
    return model


def build_model(cfg: TrainConfig, tok):
    from transformers import BertConfig, BertForMaskedLM

    conf = BertConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=tok.pad_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    # ids the inference loop needs, also readable from config.json
    conf.mask_token_id = tok.mask_token_id
    conf.eos_token_id = tok.eos_token_id
    conf.cls_token_id = tok.cls_token_id
    conf.sep_token_id = tok.sep_token_id
    return bert_to_roformer(BertForMaskedLM(conf)) if cfg.arch == "roformer" else BertForMaskedLM(conf)
