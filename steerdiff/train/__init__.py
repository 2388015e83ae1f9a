"""Training of steerdiff-tiny, the embedded default masked diffusion model.

``python -m steerdiff.train --out DIR --steps N --seed 0`` builds the data (``data.py``), trains the
byte-level BPE (``tokenizer.py``), then trains a ``BertForMaskedLM`` with the MDLM/LLaDA objective:

    input_ids = tok(prompt)["input_ids"] + canvas + [SEP]      # tok() adds [CLS] ... [SEP]
    canvas    = tok(target, add_special_tokens=False)["input_ids"] + [EOS] * extra,  extra ~ U{0..24}

per sequence ``t ~ U(eps, 1)``; each canvas position is masked with probability ``t`` (the prompt
never); loss = sum over masked positions of CE / t, divided by the number of canvas tokens in the batch.

Modules: ``config`` (TrainConfig, lr schedule), ``data`` (examples from a seed), ``tokenizer``,
``batches`` (encoding, padded batches), ``objective`` (the loss), ``model`` (BERT / RoFormer),
``evaluate`` (greedy denoising, copy probe), ``checkpoint`` (save + TRAINING.md), ``loop`` (the run).
Training never imports ``benchmarks``; a held-out set comes in as a file (``--heldout-file``).
"""
from __future__ import annotations

from .batches import Packed, encode_canvas, encode_example, make_batch, make_batch_packed
from .config import TrainConfig
from .evaluate import copy_probe, evaluate, greedy_denoise, load_heldout
from .loop import _maybe_set_threads, build_data, train
from .model import bert_to_roformer, build_model
from .objective import diffusion_loss

__all__ = [
    "Packed", "TrainConfig", "bert_to_roformer", "build_data", "build_model", "copy_probe", "diffusion_loss",
    "encode_canvas", "encode_example", "evaluate", "greedy_denoise", "load_heldout", "make_batch", "make_batch_packed",
    "train", "_maybe_set_threads",
]
