#!/usr/bin/env bash
# The few-labels downstream benchmark of docs/results/downstream/fewlabels/ (issue 17), end to end:
#
#   scripts/downstream_fewlabels.sh [WORK]        WORK: models_work (default; relative to the repository root)
#
# 1. real: every real clip (corpus + talking clips) prepared as `make models` prepares it (64 px, similarity
#    alignment for the DR and the task networks, box alignment for FAb-Net and TCAE), with the shipped models'
#    splits; the test people are the shipped models' 10 test people (no shipped model trained or validated on
#    them); labels are the landmark AU proxies. SI / SI-HG / SDR / MDR networks and linear / MLP heads on frozen
#    FAb-Net, TCAE, DR, init networks and PCA pixels at 3, 5, 10, 20 and all 76 other people.
# 2. synthetic: 60 generated people (4 s each, seed 0); the generator's 12 AU intensities; the 24 people of the
#    store's val and test splits are tested, the others labelled; the shipped (real-trained) models.
# 3. item 3 of the issue: the MDR with DRs of three window lengths (T = 3, 5, 9), a DR fine-tuned from dr-t5
#    on every person's unlabelled frames, the test people's included (transductive, --allow-seen), and the MDR
#    with its DR trained along with the CNN (mdr-ft).
# Every step resumes (prepare skips complete clips, eval downstream keeps its cells): rerun after an
# interruption. Each process uses one torch thread; ~3 h of one core in all on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-models_work}
FD=${FACEDYN:-.venv/bin/facedyn}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
mkdir -p "$W"

# 1. real footage, as make models prepares it
$PY - "$W" <<'PY'
import sys
from pathlib import Path
from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.splits import set_splits
w = Path(sys.argv[1])
shared = Path("..") / "shared" / "data"
inputs = [shared / "corpus", *sorted((shared / "real").glob("talking_*.mp4"))]
val = "M003,W023,dpe_s,klobuchar,talking_d12".split(",")
test = ("W011,fer_woman2,ffpp_519,furious1,german_anchor,happyenglish,mead_eamm_w2,natalie_morales,reagan,"
        "ytf_bill_clinton").split(",")
for align, name in (("similarity", "real64"), ("box", "real64box")):
    prepare(inputs, w / name, PrepareOptions(size=64, track="fit", align=align), workers=2)
    set_splits(w / name, val=val, test=test)
PY
$FD eval downstream --data "$W/real64" --box-data "$W/real64box" --labels proxies --out "$W/ds_real" --threads 1

# 2. synthetic people
[ -d "$W/synth60/videos" ] || $FD synth --out "$W/synth60/videos" --subjects 60 --seconds 4 --fps 25 --seed 0
$FD prepare "$W/synth60/videos" --out "$W/synth60/store" --size 64
$FD prepare "$W/synth60/videos" --out "$W/synth60/storebox" --size 64 --align box
$FD eval downstream --data "$W/synth60/store" --box-data "$W/synth60/storebox" --labels store \
  --test-split val,test --out "$W/ds_synth" --threads 1

# 3a. the multi-level DR (T = 5, 3, 9 stacked with the image)
$FD eval downstream --data "$W/real64" --labels proxies --kinds si,mdr --dr dr-t5,dr-t3,dr-t9 --budgets 3,5,10 \
  --out "$W/ds_real_mdr3" --threads 1
# 3b. a DR fine-tuned on every person's unlabelled frames (a store view with the test people in training)
$PY - "$W" <<'PY'
import json, os, sys
from pathlib import Path
w = Path(sys.argv[1])
src, dst = w / "real64", w / "real64_all"
dst.mkdir(exist_ok=True)
idx = json.loads((src / "index.json").read_text())
for cid in idx["clips"]:
    if not (dst / cid).exists():
        os.symlink(os.path.relpath(src / cid, dst), dst / cid)
sp = idx["splits"]
idx["splits"] = {"train": sorted(sp["train"] + sp["test"]), "val": sp["val"], "test": []}
(dst / "index.json").write_text(json.dumps(idx, indent=1))
PY
[ -f "$W/runs/dr_t5_all/checkpoints/best.safetensors" ] || $FD train dr --data "$W/real64_all" --init-from dr-t5 \
  --T 5 --S 2 --time-budget 10m --lr-schedule cosine --checkpoint-every 5 --threads 1 --seed 0 \
  --out "$W/runs/dr_t5_all" --resume
$FD eval downstream --data "$W/real64" --labels proxies --kinds si,sdr,mdr --dr "$W/runs/dr_t5_all" --allow-seen \
  --budgets 3,5,10 --out "$W/ds_real_trans" --threads 1

# 3c. the MDR with its DR network trained along (not frozen); the still image's cells of 3a are reused
mkdir -p "$W/ds_real_mdrft"
cp -rn "$W/ds_real_mdr3/cells" "$W/ds_real_mdr3/features" "$W/ds_real_mdrft/"
$FD eval downstream --data "$W/real64" --labels proxies --kinds si,mdr-ft --dr dr-t5 --budgets 3,5,10 \
  --out "$W/ds_real_mdrft" --threads 1

# the committed copies (tables, figures, settings; not the cells and features)
for d in ds_real ds_synth ds_real_mdr3 ds_real_trans ds_real_mdrft; do
  mkdir -p "docs/results/downstream/fewlabels/$d"
  cp "$W/$d/downstream.md" "$W/$d/downstream.csv" "$W/$d/run.json" "docs/results/downstream/fewlabels/$d/"
  cp "$W/$d/figures/downstream.png" "docs/results/downstream/fewlabels/$d/"
done
