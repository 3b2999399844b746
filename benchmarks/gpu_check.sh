#!/usr/bin/env bash
# GPU path check (issue 12): the DR paper preset (224 px, width 64) for a few hundred steps on CUDA,
# fp32 vs bf16, NCHW vs channels_last; prints img/s and peak memory. Then (issue 21) times every kind of
# `facedyn reproduce` stage at the paper preset, writes benchmarks/gpu_throughput.json and prints each recipe's
# GPU hours (pass --data-root DIR to size the data-bound stages too; --no-recipes skips this part).
# Needs a CUDA machine; run from the repo root.
set -euo pipefail
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" benchmarks/gpu_check.py "$@"
