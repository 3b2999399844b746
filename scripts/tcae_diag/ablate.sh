#!/usr/bin/env bash
# One ablation run of docs/results/tcae/diagnosis.md ("Experiments"), then its diag_state.py rows.
#
#   scripts/tcae_diag/ablate.sh NAME [facedyn train tcae options ...]
#
# Trains `facedyn train tcae` into $RUNS/NAME (default runs/tcae_diag/NAME) on $DATA (default
# models_work/real64box, the store `make models` builds) with the document's base settings:
#   --threads 1 --precision fp32 --channels-last off --val-pairs 128 --seed 0
#   --epochs 3 --steps-per-epoch 150 --flow-gain $FLOW_GAIN
# FLOW_GAIN defaults to 1, the displacement gain every run of the document was trained with unless its row says
# `--flow-gain 0.0625` (1/16 is the library's default since; the base rows need 1 written out). The options given
# after NAME come last, so they override these (e.g. --epochs 8, and --keep-steps 100,300,600 for the 8 x 150 base
# run's rows of kept steps). Then `diag_state.py` measures init, every kept step and last on the validation pairs,
# prints the markdown rows and writes $RUNS/NAME/diag_state.csv. Training resumes (--resume): rerun after an
# interruption. PYTHON and FACEDYN name the interpreter and the CLI (default: those of .venv when it exists,
# else python and facedyn on PATH).
#
# Examples (diagnosis.md lists the command of every row):
#   scripts/tcae_diag/ablate.sh base --epochs 8 --keep-steps 100,300,600
#   scripts/tcae_diag/ablate.sh lambda3_0 --lambda3 0
#   DATA=path/to/store RUNS=runs/other scripts/tcae_diag/ablate.sh fixed --flow-gain 0.0625
set -euo pipefail
usage="usage: scripts/tcae_diag/ablate.sh NAME [facedyn train tcae options ...]"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
  ""|-*) echo "$usage (--help: more)" >&2; exit 2 ;;
esac
NAME=$1
shift
DATA=${DATA:-models_work/real64box}
RUNS=${RUNS:-runs/tcae_diag}
FLOW_GAIN=${FLOW_GAIN:-1}
HERE=$(dirname "$0")
if [ -x .venv/bin/python ]; then BIN=.venv/bin/; else BIN=; fi
PY=${PYTHON:-${BIN}python}
FD=${FACEDYN:-${BIN}facedyn}
RUN="$RUNS/$NAME"

$FD train tcae --data "$DATA" --out "$RUN" --resume \
  --threads 1 --precision fp32 --channels-last off --val-pairs 128 --seed 0 \
  --epochs 3 --steps-per-epoch 150 --flow-gain "$FLOW_GAIN" "$@"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} $PY "$HERE/diag_state.py" "$RUN" --weights init,all --data "$DATA" \
  --out "$RUN/diag_state.csv"
