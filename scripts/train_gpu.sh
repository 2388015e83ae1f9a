#!/usr/bin/env bash
# Train two steerdiff-tiny candidates side by side on one GPU (the small models leave it mostly idle, so
# two processes share it), each building its own data with WORKERS processes:
#   A: the shipped checkpoint continued (4 layers, 4.8M parameters);
#   B: a fresh 8-layer model (7.9M parameters) with the shipped tokenizer.
# Both land in $DEST/{A,B}; pick with benchmarks/extraction.py and copy the winner to
# steerdiff/models/steerdiff-tiny. Knobs (env): DEST, N (examples per candidate), MINUTES (wall-clock limit
# per candidate, data included), BATCH, WORKERS, STEPS, EXTRA (more flags for both).
# Needs faker and WordNet's data.* files (STEERDIFF_WORDNET_DIR, default /usr/share/wordnet).
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-runs/gpu}
N=${N:-1200000}
MINUTES=${MINUTES:-7.5}
BATCH=${BATCH:-512}
WORKERS=${WORKERS:-7}
STEPS=${STEPS:-100000}
EXTRA=${EXTRA:-}
PY=${PY:-python3}
mkdir -p "$DEST"
common="--arch roformer --workers $WORKERS --n-examples $N --steps $STEPS --batch-size $BATCH --max-minutes $MINUTES
 --mix 0.85,0.1,0.05 --nonce 0.5 --copy 0.25 --context 0.4 --max-extra-eos 96 --eval-every 5000 --eval-n 24
 --log-every 200 --threads 2 $EXTRA"
# shellcheck disable=SC2086
$PY -m steerdiff.train --out "$DEST/A" --init-from steerdiff/models/steerdiff-tiny --seed 21 --lr 5e-4 --warmup 300 \
    $common > "$DEST/A.log" 2>&1 &
# shellcheck disable=SC2086
$PY -m steerdiff.train --out "$DEST/B" --tokenizer-from steerdiff/models/steerdiff-tiny --layers 8 --seed 22 \
    --lr 1e-3 --warmup 500 $common > "$DEST/B.log" 2>&1 &
wait
tail -n 4 "$DEST/A.log" "$DEST/B.log"
