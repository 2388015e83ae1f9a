#!/usr/bin/env bash
# Nightly-style randomised run: the hypothesis tests with larger, non-derandomised searches, seeded so that a
# failure can be replayed. CI runs the same tests with their small fixed budgets (some derandomised).
#
#   bash benchmarks/nightly_fuzz.sh [SEED]      # SEED defaults to the date, e.g. 20261206
#
# STEERDIFF_NIGHTLY=1 raises: tests/test_grammar.py::test_hypothesis_orders_and_logits_never_dead_end
# (25 derandomised -> 300 random examples), tests/test_jsonschema_regex.py::test_random_schemas_exact
# (150 -> 1500). Replay a failure with the same SEED (hypothesis also prints the failing example).
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-$(date -u +%Y%m%d)}
. .venv/bin/activate
echo "hypothesis seed $SEED"
STEERDIFF_NIGHTLY=1 python -m pytest -q -p no:cacheprovider --hypothesis-seed="$SEED" \
  tests/test_grammar.py tests/test_jsonschema_regex.py tests/test_tokendfa.py tests/test_dfamin.py \
  tests/test_extractive.py tests/test_template.py -k "hypothesis or fuzz or random or byte_dfa_accepts or minimise"
