#!/usr/bin/env bash
# Build the separate environment that runs the models' PUBLISHED modelling code (written for transformers
# 4.46) so scripts/parity_reference.py can compute reference logits. CI never needs it: the references are
# committed under tests/fixtures/real_models/. LLaDA2's code (dllm) imports names that transformers added
# after 4.46 (TransformersKwargs, dynamic_rope_update), so it gets its own venv with the 4.57 line:
#   bash scripts/make_parity_venv.sh /work/venv-tf446 4.46.3
#   bash scripts/make_parity_venv.sh /work/venv-tf457 4.57.1
set -euo pipefail
VENV=${1:-/work/venv-tf446}
TF=${2:-4.46.3}
PY=${PYTHON:-python3}
[ -d "$VENV" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0" "transformers==$TF" "safetensors>=0.4" "numpy<3"
"$VENV/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
