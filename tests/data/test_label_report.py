"""What was read: the label summary ``facedyn prepare`` ends with, and the same checks run without preparing
(``facedyn reproduce --dry-run``), on tiny BP4D / DISFA layouts with 10-frame videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedyn.data.datasets.report import LabelReport, check_dataset, label_kind
from facedyn.data.video import write_video
from support import layouts
from support.cli import run_cli

RNG = np.random.default_rng(3)


def noise_video(path: Path, n: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, (RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)), 25.0)
    return path


def bp4d_root(root: Path) -> Path:
    """F001_T1 with AU_OCC rows 3..6 (AU1, AU12) and an AU06 intensity file (one 9); F002_T1 with no label file."""
    noise_video(root / "F001_T1.mp4")
    noise_video(root / "F002_T1.mp4")
    layouts.bp4d_occ(root / "AUCoding" / "AU_OCC" / "F001_T1.csv", range(3, 7), {1: [0, 1, 9, 1], 12: [1, 1, 0, 0]})
    layouts.write(root / "AUCoding" / "AU_INT" / "AU06" / "F001_T1_AU06.csv",
                  "\n".join(f"{f},{9 if f == 2 else 1}" for f in range(1, 11)) + "\n")
    return root


def test_label_kinds():
    assert [label_kind(c) for c in ("AU01_occ", "AU12", "point3_y", "pose_yaw", "valence")] == [
        "AU occurrence", "AU", "points", "head pose", "valence"]


def test_check_dataset_counts_frames_per_kind_and_names_clips_without_labels(tmp_path):
    rep = check_dataset("bp4d", bp4d_root(tmp_path / "BP4D"), required=["AU01_occ", "AU07_occ"])
    assert (rep.n_clips, rep.n_frames, rep.unlabelled) == (2, 20, ["F002_T1"])
    occ, au = rep.kinds["AU occurrence"], rep.kinds["AU"]
    assert occ.columns == ["AU01_occ", "AU12_occ"] and occ.labelled == 4 and occ.per_column == {"AU01_occ": 3,
                                                                                                "AU12_occ": 4}
    assert au.columns == ["AU06", "AU10", "AU12", "AU14", "AU17"] and au.labelled == 9  # row 2 is 9 = not coded
    text = "\n".join(rep.lines())
    assert f"labels of bp4d ({tmp_path / 'BP4D'}): 2 clip(s), 20 frame(s)" in text
    assert "AU occurrence: 2 columns AU01_occ, AU12_occ: 4 / 20 frames (20 %), in 1 of 2 clips" in text
    assert "label alignment: AU row f = video frame f counted from 1 (decoded frame f-1)" not in text
    assert "alignment: AU row f = video frame f counted from 1 (decoded frame f-1)" in text
    warns = rep.warnings()
    assert any("1 of 2 bp4d clip(s) have no labels: F002_T1" in w for w in warns)
    assert any("no labelled frame of AU07_occ, which the recipe needs" in w for w in warns)
    assert all("\n" not in w for w in warns)

    # a broken label file: the clip is named with the file's one-line error, the others still counted
    layouts.write(tmp_path / "BP4D" / "AUCoding" / "AU_OCC" / "F001_T1.csv", "0,1,2\n3,0,7\n")
    bad = check_dataset("bp4d", tmp_path / "BP4D")
    (w,) = [w for w in bad.warnings() if "cannot be read" in w]
    assert "F001_T1: " in w and "F001_T1.csv, line 2: AU 2 has code '7'" in w
    md = "\n".join(bad.markdown())
    assert md.startswith(f"**labels of bp4d ({tmp_path / 'BP4D'}): 2 clip(s), 20 frame(s)")
    assert "- missing: 1 of 2 bp4d clip(s)" in md
    absent = check_dataset("disfa", tmp_path / "DISFA")
    assert absent.problem and "DISFA: not found" in absent.problem and "ActionUnit_Labels" in absent.problem


def test_report_of_a_folder_without_labels_is_quiet():
    rep = LabelReport("folder")
    rep.add("a", 10, None)
    assert rep.warnings() == [] and rep.lines() == ["labels of folder: 1 clip(s), 10 frame(s): no label columns"]
    rep.add("b", 10, __import__("pandas").DataFrame({"frame": range(10), "valence": [0.5] * 10}))
    assert rep.warnings()[0].startswith("1 of 2 folder clip(s) have no labels: a")


def test_prepare_ends_with_the_label_summary(tmp_path, capsys, monkeypatch):
    root = bp4d_root(tmp_path / "BP4D")
    code, out, err = run_cli(["prepare", str(root), "--dataset", "bp4d", "--out", str(tmp_path / "d"), "--size",
                              "16"], capsys, monkeypatch, columns=400)
    text = out + err
    assert code == 0, text
    assert "labels of bp4d: 2 clip(s), 20 frame(s); per kind: columns, frames labelled / all frames" in text
    assert "AU occurrence: 2 columns AU01_occ, AU12_occ: 4 / 20 frames (20 %), in 1 of 2 clips" in text
    assert "AU: 5 columns AU06, AU10, AU12, AU14, AU17: 9 / 20 frames" in text
    assert "alignment: AU row f = video frame f counted from 1" in text
    assert "warning: 1 of 2 bp4d clip(s) have no labels: F002_T1" in " ".join(text.split())


@pytest.mark.parametrize("form", ["frame,intensity", "intensity"])
def test_check_dataset_says_which_disfa_line_format_was_read(tmp_path, form):
    root = tmp_path / "DISFA"
    noise_video(root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi", n=6)
    layouts.disfa_au(root / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt", [0, 1, 2, 3], form, crlf=True, bom=True)
    rep = check_dataset("disfa", root)
    assert rep.kinds["AU"].per_column["AU01"] == 4 and rep.kinds["AU"].labelled == 4
    fmt = "frame,value lines" if form == "frame,intensity" else "one value per line"
    assert any(f"format: {fmt}" in ln for ln in rep.lines())
