"""``scripts/model_card.py``: the card of a shipped model is read from its run record, metrics and curve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from facedyn.eval.curves import ranking_curve, write_ranking_curve
from facedyn.train import train
from facedyn.train.loop import Runtime

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "model_card.py"


def test_model_card_of_a_dr_run(synth_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "dr-mini"
    res = train("dr", synth_store, run, {"T": 2, "S": 1, "epochs": 2, "steps_per_epoch": 2, "batch_size": 4,
                                         "keep_steps": "2", "precision": "fp32"},
                Runtime(device="cpu", channels_last="off"))
    curve = ranking_curve(run, synth_store, split="test", max_windows=20, device="cpu")
    write_ranking_curve(curve, tmp_path / "curve")
    (tmp_path / "note.md").write_text("Reading: a two-epoch run.\n")
    p = subprocess.run([sys.executable, str(SCRIPT), str(run), "--curve", str(tmp_path / "curve"),
                        "--note", f"@{tmp_path / 'note.md'}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    card = (run / "MODEL_CARD.md").read_text()
    assert card.startswith("# dr-mini: model card")
    assert "Method `dr`: T=2, S=1" in card
    metrics = pd.read_csv(run / "metrics.csv")
    assert f"| training | {int(metrics['step'].iloc[-1])} steps of 4 samples" in card
    # the shipped checkpoint is the first best validation row, the untrained one included (the loop keeps it
    # unless a later epoch is strictly better)
    best = res.history[max(range(len(res.history)), key=lambda i: res.history[i]["val_acc"])]
    shipped = re.search(r"\| checkpoint shipped \| best validation acc \(max\): step (\d+), ([\d.]+) %", card)
    assert shipped is not None and int(shipped[1]) == best["step"]
    # the card shows the accuracy (read back from metrics.csv) rounded to 0.01: within 0.005 of the history's
    assert abs(float(shipped[2]) - 100 * best["val_acc"]) <= 0.005 + 1e-9
    # one table row per checkpoint of the curve, and the note after it
    for w in curve["weights"]:
        assert f"| {w} | " in card
    assert card.rstrip().endswith("Reading: a two-epoch run.")
    assert "test people | 1 (" in card  # the frames of each split are counted from the store
