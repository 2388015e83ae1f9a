"""Reference logits from the PUBLISHED modelling code on the tiny twins (run in the old-transformers venv).

    bash scripts/make_parity_venv.sh /work/venv-tf446 4.46.3      # LLaDA, Dream (written for 4.46)
    bash scripts/make_parity_venv.sh /work/venv-tf457 4.57.1      # LLaDA2 (dllm's code needs >= 4.5x)
    /work/venv-tf446/bin/python scripts/parity_reference.py tests/fixtures/real_models llada dream
    /work/venv-tf457/bin/python scripts/parity_reference.py tests/fixtures/real_models llada2

For each family, ``DIR/<family>/`` holds the twin (scripts/make_twins.py). The twin and the published
``*.py`` files from ../shared/testdata/model_code are copied to a temporary folder, loaded with
``AutoModel.from_pretrained(..., trust_remote_code=True, torch_dtype=float32)`` (Dream and LLaDA2 with
``attn_implementation="sdpa"``, the path their generation code is run with)
exactly as a user of the real checkpoint would, and called the way each family's own generation code
calls it. ``DIR/<family>/reference.safetensors`` gets the inputs and fp32 logits of every case; ``reference.json``
the versions and the sha256 of the code that produced them. This script imports nothing from steerdiff.

Cases (rows of different lengths with mask ids in them; ``lengths`` gives each row's real length):
- ``rows``: every row alone, unpadded (LLaDA's code ignores attention_mask, so padding is compared
  against this); LLaDA2 rows alone with no mask (fully bidirectional).
- ``dream_padded``: Dream's padded batch as its ``_sample`` builds it: a (B, 1, T, T) bool mask and
  ``tok_idx`` position ids (right padding).
- ``llada2_blocks``: LLaDA2's block-diffusion forward as its ``generate`` calls it: a block-causal mask
  (``tril`` over blocks of 8 positions), one row at a time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
MODEL_CODE = ROOT.parent / "shared" / "testdata" / "model_code"
CODE_DIR = {"llada": "llada-8b-instruct", "dream": "dream-v0-instruct-7b", "llada2": "llada2-moe"}
LENGTHS = [16, 23, 9]
BLOCK = 8


def inputs(mask_id: int, vocab: int) -> torch.Tensor:
    """(3, 23) token rows with every third position from 4 on masked; positions past a row's length hold 0."""
    gen = torch.Generator().manual_seed(7)
    rows = torch.randint(3, vocab, (len(LENGTHS), max(LENGTHS)), generator=gen)
    rows[:, 4::3] = mask_id
    rows[:, -2:] = mask_id
    for b, n in enumerate(LENGTHS):
        rows[b, n:] = 0
    return rows


def load_published(family: str, twin: Path, tmp: Path):
    from transformers import AutoModel

    d = tmp / family
    shutil.copytree(twin, d)
    for f in (MODEL_CODE / CODE_DIR[family]).glob("*.py"):
        if f.name != "__init__.py":
            shutil.copy(f, d / f.name)
    kw = {} if family == "llada" else {"attn_implementation": "sdpa"}  # LLaDA's code calls F.sdpa itself
    model = AutoModel.from_pretrained(d, trust_remote_code=True, torch_dtype=torch.float32, **kw)
    return model.eval()


@torch.no_grad()
def reference(family: str, twin: Path, tmp: Path) -> dict[str, torch.Tensor]:
    cfg = json.loads((twin / "config.json").read_text())
    model = load_published(family, twin, tmp)
    tok_vocab = len(json.loads((twin / "tokenizer.json").read_text())["model"]["vocab"])
    ids = inputs(int(cfg["mask_token_id"]), tok_vocab)  # (B, T)
    B, T = ids.shape
    lengths = torch.tensor(LENGTHS)
    out = {"input_ids": ids, "lengths": lengths}
    V = model.get_output_embeddings().weight.shape[0]
    rows = torch.zeros((B, T, V))  # (B, T, V)
    for b, n in enumerate(LENGTHS):
        x = ids[b: b + 1, :n]
        if family == "dream":
            rows[b, :n] = model(x, "full", None).logits[0]
        else:
            rows[b, :n] = model(input_ids=x).logits[0]
    out["rows"] = rows
    if family == "dream":  # Dream's _sample with padding: 4D bool mask + tok_idx
        am = (torch.arange(T)[None] < lengths[:, None]).long()  # (B, T)
        tok_idx = am.cumsum(-1) - 1
        tok_idx.masked_fill_(am == 0, 1)
        mask4 = torch.logical_and(am.bool()[:, None, None, :], am.bool()[:, None, :, None])  # (B, 1, T, T)
        logits = model(ids, mask4, tok_idx).logits
        out["dream_padded"] = torch.where(am.bool()[..., None], logits, torch.zeros(()))
    if family == "llada2":  # generate(): block-causal attention over blocks of BLOCK positions
        blocks = torch.zeros((B, T, V))
        for b, n in enumerate(LENGTHS):
            nb = (n + BLOCK - 1) // BLOCK
            block_mask = torch.tril(torch.ones(nb, nb)).repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)
            m = block_mask[:n, :n].bool()[None, None]  # (1, 1, n, n)
            pos = torch.arange(n)[None]
            blocks[b, :n] = model(input_ids=ids[b: b + 1, :n], attention_mask=m, position_ids=pos).logits[0]
        out["llada2_blocks"] = blocks
        out["block_length"] = torch.tensor(BLOCK)
    return out


def main(argv: list[str]) -> int:
    import transformers
    from safetensors.torch import save_file

    root, families = Path(argv[0]), argv[1:]
    torch.set_num_threads(1)
    for fam in families:
        twin = root / fam
        with tempfile.TemporaryDirectory() as tmp:
            ref = reference(fam, twin, Path(tmp))
        save_file({k: v.contiguous() for k, v in ref.items()}, str(twin / "reference.safetensors"))
        code = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((MODEL_CODE / CODE_DIR[fam]).glob("*.py"))}
        meta = {"family": fam, "transformers": transformers.__version__, "torch": torch.__version__,
                "published_code": f"../shared/testdata/model_code/{CODE_DIR[fam]}", "sha256": code,
                "cases": sorted(k for k in ref if k not in ("input_ids", "lengths", "block_length"))}
        (twin / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(fam, {k: tuple(v.shape) for k, v in ref.items()}, "transformers", transformers.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
