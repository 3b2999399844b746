#!/usr/bin/env bash
# The README's synthetic AU-intensity table (dr-paper Table 1 on held-out synthetic people), end to end.
#
#   scripts/downstream_synthetic.sh OUT [MODEL]     MODEL: cnn (default; the CPU table) or hg (HG-HMR)
#
# DR-family networks are trained on 64 synthetic people (seed 1); the AU models on 360 *other* people
# (seed 0, 4 s each, resting morphology; 216 train / 72 val / 72 test, split by person), tested on the 72
# unseen ones. Every step resumes: rerun the script after an interruption. Each training is one thread;
# about 3 h on one CPU core in all (the DR-family networks 12-22 min each, the AU runs 11-12 min each).
set -euo pipefail
OUT=${1:?usage: scripts/downstream_synthetic.sh OUT [cnn|hg]}
MODEL=${2:-cnn}
FD=${FACEDYN:-facedyn}
export OMP_NUM_THREADS=1
mkdir -p "$OUT" && cd "$OUT"

# 1. data: the DR people and the task people are different identities (different seeds)
[ -d store_dr ] || { $FD synth --out videos_dr --subjects 64 --seconds 8 --fps 25 --seed 1
                     $FD prepare videos_dr --out store_dr --size 64; }
[ -d store_task ] || { $FD synth --out videos_task --subjects 360 --seconds 4 --fps 25 --seed 0
                       $FD prepare videos_task --out store_task --size 64; }

# 2. the DR (T=5, S=2) and the DI-target baselines, same budget each (10 x 200 steps)
COMMON="--data store_dr --T 5 --S 2 --epochs 10 --steps-per-epoch 200 --max-val-batches 20 --threads 1 --seed 0"
$FD train dr $COMMON --out runs/dr_T5 --resume
$FD train unet_mse $COMMON --target di --out runs/unet_mse_di --resume
$FD train pix2pix $COMMON --target di --out runs/pix2pix_di --resume
$FD train vgg_features --data store_dr --threads 1 --seed 0 --out runs/feats --resume
$FD train unet_p $COMMON --target di --features runs/feats --out runs/unet_p_di --resume

# 3. cache every representation beside the task store
$FD represent --data store_task --run runs/dr_T5 --run runs/unet_mse_di --run runs/unet_p_di \
  --run runs/pix2pix_di --windows di,bdi

# 4. one AU model per input, checkpoint by validation ICC, then the table on the unseen people
if [ "$MODEL" = cnn ]; then TRAIN="--model cnn --width 16 --epochs 10 --steps-per-epoch 400"
else TRAIN="--model hg --epochs 6 --steps-per-epoch 500"; fi
RUNS=()
for inp in si di bdi unet_mse unet_p pix2pix sdr mdr; do
  # shellcheck disable=SC2086
  $FD train au --data store_task --input "$inp" $TRAIN --threads 1 --seed 0 --out "runs/au_${MODEL}_$inp" --resume
  RUNS+=(--run "runs/au_${MODEL}_$inp")
done
$FD eval au --data store_task "${RUNS[@]}" --out "results/au_$MODEL"
