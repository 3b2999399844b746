#!/usr/bin/env bash
# GPU path check (issue 12): the DR paper preset (224 px, width 64) for a few hundred steps on CUDA,
# fp32 vs bf16, NCHW vs channels_last; prints img/s and peak memory. Needs a CUDA machine; run from the repo root.
set -euo pipefail
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" benchmarks/gpu_check.py "$@"
