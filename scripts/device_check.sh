#!/usr/bin/env bash
# Device check (run on a lent GPU machine with the wheels of the missing packages in .whl/): steerdiff importable with its entry points from the working tree, then the
# GPU tests, the loop-overhead benchmark on cuda and JSON fills on cuda with the shipped model.
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
ln -sfn "$PWD/plugins" "$SITE/steerdiff_plugins"
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1
OUTD=${OUT:-/tmp/gpu_out}; mkdir -p "$OUTD"
python3 -c "import steerdiff as sd; print(sorted(sd.constraint_types()))"
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -3
[ "$DEV" = cuda ] && timeout 120 python3 benchmarks/loop_overhead.py --device $DEV --out "$OUTD/loop_overhead_gpu.json" 2>&1 | tail -4
timeout 120 python3 - "$DEV" <<'PY' 2>&1 | tee "$OUTD/fill_cuda.txt"
import sys, time, torch, steerdiff as sd
from steerdiff.demo import PARAGRAPH, Person
sys.path.insert(0, "."); from benchmarks.extraction_data import heldout
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
