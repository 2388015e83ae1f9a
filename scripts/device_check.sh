#!/usr/bin/env bash
# Device check (run on a lent GPU machine with the wheels of the missing packages in .whl/): steerdiff importable with its entry points from the working tree, then the
# GPU tests, the loop-overhead benchmark on cuda, JSON fills on cuda with the shipped model, the real-model twins
# (tests/fixtures/real_models: LLaDA, Dream, LLaDA2) on cuda in bf16 against their fp32 CPU logits, and a 1B-parameter
# LLaDA-shaped random model (B=32, L=256, bf16) through benchmarks/loop_overhead.py. Budget: about 6 minutes.
set -uo pipefail
SITE=${SITE:-/tmp/site}
DEV=${DEV:-cuda}
mkdir -p "$SITE"
if ls .whl/*.whl >/dev/null 2>&1 && [ "$DEV" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 3
fi
D="$SITE/steerdiff-0.1.0.dist-info"; mkdir -p "$D"
printf 'Metadata-Version: 2.1\nName: steerdiff\nVersion: 0.1.0\n' > "$D/METADATA"
python3 - "$D/entry_points.txt" <<'PY'
import sys, tomllib
eps = tomllib.load(open("pyproject.toml", "rb"))["project"]["entry-points"]["steerdiff"]
open(sys.argv[1], "w").write("[steerdiff]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
PY
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1
OUTD=${OUT:-/tmp/gpu_out}; mkdir -p "$OUTD"
python3 -c "import steerdiff as sd; print(sorted(sd.constraint_types()))"
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -3
[ "$DEV" = cuda ] && timeout 120 python -m benchmarks.loop_overhead --device $DEV --out "$OUTD/loop_overhead_gpu.json" 2>&1 | tail -4
timeout 120 python3 - "$DEV" <<'PY' 2>&1 | tee "$OUTD/fill_cuda.txt"
import sys, time, torch, steerdiff as sd
from steerdiff.demo import PARAGRAPH, Person
from benchmarks.extraction_data import heldout
dev = sys.argv[1]
m = sd.load_model(device=dev)
print("device", m.device, torch.cuda.get_device_name() if dev == "cuda" else "cpu")
t = time.time(); p = sd.fill(m, Person, PARAGRAPH); print("person", p, f"{time.time() - t:.2f}s")
hs = heldout(n=48, seed=12345)
by = {}
for h in hs:
    by.setdefault(h["schema_name"] if "schema_name" in h else h["kind"], []).append(h)
ok = n = 0
for k, rows in by.items():
    t = time.time()
    outs = sd.fill(m, rows[0]["schema"], [r["text"] for r in rows])
    ok += sum(o == r["expected"] for o, r in zip(outs, rows)); n += len(rows)
    print(k, len(rows), f"{time.time() - t:.2f}s")
print(f"cuda fills: {n} valid outputs (fill validates), {ok} whole objects exact")
PY
timeout 240 python3 - "$DEV" <<'PY' 2>&1 | tee "$OUTD/real_models_cuda.txt"
# the twins of the real checkpoints on the device in bf16: logits against fp32 on the CPU, generate and fill there
import sys, time, torch, steerdiff as sd
from pathlib import Path
from safetensors.torch import load_file
from pydantic import BaseModel, Field
dev = sys.argv[1]
class Person(BaseModel):
    name: str = Field(max_length=8)
    age: int = Field(ge=0, le=120)
print("device", dev, torch.cuda.get_device_name() if dev == "cuda" else "cpu")
for fam in ("llada", "dream", "llada2"):
    d = Path("tests/fixtures/real_models") / fam
    cpu = sd.load_model(d)
    gpu = sd.load_model(d, device=dev, dtype=torch.bfloat16 if dev == "cuda" else None)
    ref = load_file(str(d / "reference.safetensors"))
    ids, n = ref["input_ids"], ref["lengths"]
    am = (torch.arange(ids.shape[1])[None] < n[:, None]).long()
    for m in (cpu, gpu):
        if fam == "llada2":
            m.block_length = None
    a = cpu.logits(ids, am)
    b = gpu.logits(ids.to(gpu.device), am.to(gpu.device)).float().cpu()
    keep = torch.arange(a.shape[-1]) != cpu.mask_id
    real = am.bool()
    diff = (a - b)[real][:, keep].abs().max().item()
    agree = (a[real][:, keep].argmax(-1) == b[real][:, keep].argmax(-1)).float().mean().item()
    for m in (cpu, gpu):
        if fam == "llada2":
            m.block_length = 32
    t = time.time(); out = sd.generate(gpu, "Dear Maria", length=32, steps=8, seed=0); tg = time.time() - t
    t = time.time(); p = sd.fill(gpu, Person, "Maria Lopez is 34 years old.", seed=0); tf = time.time() - t
    print(f"{fam}: bf16 vs fp32 max|dlogit| {diff:.3f}, argmax agreement {agree:.3f}; generate {tg:.2f}s "
          f"({out.steps} steps); fill {p!r} {tf:.2f}s")
PY
[ "$DEV" = cuda ] && timeout 300 python -m benchmarks.loop_overhead --device $DEV --arch llada --width 2048 --layers 12 \
  --vocab 126464 --batch 32 --length 256 --dtype bfloat16 --out "$OUTD/loop_overhead_gpu_llada1b.json" 2>&1 | tail -5
