#!/usr/bin/env bash
# The README's real-face AU-proxy table (SI / SDR / MDR, dr-paper Table 1 on real footage), end to end.
#
#   scripts/downstream_real.sh STORE CV OUT [INPUT ...]      INPUT: si, sdr, mdr (default: all three)
#
# STORE is a prepared clip store with person-level folds (`facedyn split STORE --folds 5`); CV is the
# output folder of `facedyn cv rank --data STORE --T 5 --S 2`: its foldK/ DR never saw fold K's people.
# For every fold K the AU model of each input is trained on the store's other people (fold K+1 picks the
# checkpoint) and tested on fold K, the SDR / MDR computed by foldK's DR, so no network of the pipeline
# has seen a test person. Labels are the landmark AU proxies (`--labels proxies`). The table pools the
# folds (every person tested once) with paired differences to SI. Every step resumes: rerun after an
# interruption. FOLDS="0 1" limits the folds; each training is one thread. Two instances can share the work
# (one with si, one with sdr mdr): give one of them EVAL=0 so that the table is made once, by the other.
set -euo pipefail
STORE=${1:?usage: scripts/downstream_real.sh STORE CV OUT [si sdr mdr]}
CV=${2:?usage: scripts/downstream_real.sh STORE CV OUT [si sdr mdr]}
OUT=${3:?usage: scripts/downstream_real.sh STORE CV OUT [si sdr mdr]}
shift 3
INPUTS=("$@")
[ ${#INPUTS[@]} -gt 0 ] || INPUTS=(si sdr mdr)
FOLDS=${FOLDS:-0 1 2 3 4}
FD=${FACEDYN:-facedyn}
export OMP_NUM_THREADS=1
TRAIN="--labels proxies --epochs 5 --steps-per-epoch 800 --lr-schedule cosine --frames-per-subject 600
       --max-val-batches 40 --threads 1 --seed 0"
mkdir -p "$OUT/runs"

for k in $FOLDS; do
  # the fold's DR becomes the active T=5 representation that this fold's SDR / MDR runs record
  [ "${INPUTS[*]}" = si ] || $FD represent --data "$STORE" --run "$CV/fold$k"
  for inp in "${INPUTS[@]}"; do
    # shellcheck disable=SC2086
    $FD train au --data "$STORE" --fold "$k" --input "$inp" $TRAIN --out "$OUT/runs/${inp}_f$k" --resume
  done
done

[ "${EVAL:-1}" = 1 ] || exit 0
RUNS=()
for inp in si sdr mdr; do
  for k in 0 1 2 3 4; do [ -f "$OUT/runs/${inp}_f$k/config.json" ] && RUNS+=(--run "$OUT/runs/${inp}_f$k"); done
done
$FD eval au --data "$STORE" --labels proxies "${RUNS[@]}" --out "$OUT/results"
