"""``facedyn reproduce``: every recipe end to end on its datasets' own layouts (tiny fixtures, ``--preset cpu``,
one step per training), resumability, the dry run's plan and estimate, and the CLI.

The DR recipes share one ``--out`` (as a user running them one after another would: the RECOLA DRs, the
baselines and the prepared stores are made once), and so do the FAb-Net recipes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facedyn.errors import ConfigError, DatasetError
from facedyn.reproduce import RECIPES, Settings, dry_run, run_recipe, stage_list
from facedyn.reproduce.stages import DATASET_DIRS
from support import layouts
from support.cli import run_cli

#: the cpu preset with one step per training at 32 px: seconds per recipe
TINY = {"size": 32, "epochs": 1, "steps": 1, "batch_size": 2, "val_batches": 1, "max_windows": 8, "n_boot": 10,
        "frames": 20, "threads": 1, "grid_T": "3,5", "grid_S": "2", "precision": "fp32", "channels_last": "off"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    for name, build in layouts.BUILDERS.items():
        build(root / DATASET_DIRS[name])
    return root


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repro")


def tiny(**extra: object) -> Settings:
    return Settings(preset="cpu", device="cpu", overrides={**TINY, **extra})


def numbers(md: str, row_start: str) -> list[float]:
    """The numeric cells of the first markdown table row starting with ``| row_start``."""
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {row_start}"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    out = []
    for c in cells:
        try:
            out.append(float(c))
        except ValueError:
            continue
    return out


def run(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    code, out, err = run_cli(args, capsys, monkeypatch, columns=250)
    return code, out + err


def test_list_names_the_eight_recipes(capsys, monkeypatch):
    code, text = run(["reproduce", "--list"], capsys, monkeypatch)
    names = ["dr-fig3", "dr-fig4", "dr-table1", "dr-table2", "tcae-au", "fabnet-landmarks", "fabnet-pose", "fabnet-au"]
    assert code == 0 and list(RECIPES) == names and all(n in text for n in names)
    assert "RECOLA/" in text and "CelebA/" in text and "300W/" in text
    code, text = run(["reproduce", "--help"], capsys, monkeypatch)
    assert code == 0 and "--dry-run" in text and "--data-root" in text


@pytest.mark.slow
def test_dr_fig3_ranks_on_bp4d_and_semaine_and_resumes(data_root, out):
    res = run_recipe("dr-fig3", data_root, out, tiny())
    md = res["table"]
    assert "≈ 80" in md and "dr-paper.txt §4.3" in md
    for row in ("DR (Rank Loss)", "UNet(MSE), Seq DI", "UNet(P), Seq DI", "Pix2Pix, Seq DI", "RankSVM (upper bound)"):
        bp4d, semaine, average = numbers(md, f"5 | 2 | {row}")[2:5]
        # each cell is rounded to 0.1 on its own: the average of the two rounded cells is within 0.05 of the true
        # average, which is within 0.05 of its rounded cell (68.8 vs 68.7 is right, not a disagreement)
        assert 0 <= bp4d <= 100 and 0 <= semaine <= 100
        assert abs(average - (bp4d + semaine) / 2) <= 0.1 + 1e-9
    assert numbers(md, "5 | 2 | RankSVM")[-1] > 90  # fits each window's own frames
    assert (out / "results" / "dr-fig3" / "table.md").read_text() == md
    again = run_recipe("dr-fig3", data_root, out, tiny())  # everything done: nothing reruns
    # (in another test order dr-fig4 or dr-table2 may have made some of its 13 stages already)
    assert len(res["ran"]) + len(res["skipped"]) == 13 and res["ran"]
    assert again["ran"] == [] and len(again["skipped"]) == 13


@pytest.mark.slow
def test_dr_fig4_grid_shares_the_fig3_runs(data_root, out):
    run_recipe("dr-fig3", data_root, out, tiny())  # nothing to do after its own test (the file's order); any order
    res = run_recipe("dr-fig4", data_root, out, tiny())
    assert "train:dr/T5_S2" in res["skipped"] and "train:dr/T3_S2" in res["ran"] + res["skipped"]
    for T in (3, 5):
        assert len(numbers(res["table"], f"{T} | 2 | DR (Rank Loss)")) == 5
    csv = pd.read_csv(out / "results" / "dr-fig4" / "rank_bp4d" / "ranking.csv")
    assert set(zip(csv["T"], csv["S"], strict=True)) == {(3, 2), (5, 2)}


@pytest.mark.slow
def test_dr_table1_au_on_bp4d_beside_the_paper(data_root, out):
    res = run_recipe("dr-table1", data_root, out, tiny())
    md = res["table"]
    from facedyn.data.store import ClipDataset

    store = ClipDataset(out / "data" / "bp4d-similarity-32")
    assert store.splits == {"train": ["F001"], "val": ["F003"], "test": ["F002"]}  # FERA 2015 devel = test
    assert "paper: MDR+HG-HMR | 0.77 | 0.83 | 0.87 | 0.62 | 0.49 | 0.72" in md
    for inp in ("SI", "SDR", "MDR", "UNet(MSE)", "UNet(P)", "Pix2Pix"):
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| {inp} + HG-HMR | facedyn"))
        cells = [c.strip() for c in row.strip("|").split("|")][2:]
        assert len(cells) == 6 and all(c == "–" or -1 <= float(c) <= 25 for c in cells)  # – : ICC undefined
    table = pd.read_csv(out / "results" / "dr-table1" / "au" / "au.csv")
    assert set(table["input"]) == {"si", "sdr", "mdr", "unet_mse", "unet_p", "pix2pix", "di", "bdi"}
    assert np.isfinite(table["mse_avg"]).all()


@pytest.mark.slow
def test_dr_table2_affect_on_semaine_beside_the_paper(data_root, out):
    run_recipe("dr-fig4", data_root, out, tiny())  # nothing to do after its own test (the file's order); any order
    res = run_recipe("dr-table2", data_root, out, tiny())
    md = res["table"]
    assert "train:dr/T3_S2" in res["skipped"]  # made by dr-fig4
    assert "paper: MDR+VGG | 0.335 | 0.058 | – | 0.316 | 0.072 | –" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| MDR + VGG | facedyn"))
    assert len(row.strip("|").split("|")) == 8 and len(numbers(md, "MDR + VGG | facedyn")) >= 2  # MSEs at least
    assert "trained from scratch" in md


#: TCAE's AU-detection protocol: occurrence of 12 BP4D AUs, 8 DISFA AUs (intensity >= 2), 3 subject-exclusive folds
TCAE_BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
TCAE_DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)


@pytest.mark.slow
def test_tcae_au_probes_on_bp4d_and_disfa(data_root, tmp_path):
    res = run_recipe("tcae-au", data_root, tmp_path, tiny())
    md = res["table"]
    assert "**BP4D**" in md and "**DISFA**" in md and "images only" in md and "no published numbers" in md
    assert "| representation | " + " | ".join(f"AU{a}" for a in TCAE_BP4D_AUS) + " | avg |" in md
    assert "| representation | " + " | ".join(f"AU{a}" for a in TCAE_DISFA_AUS) + " | avg |" in md
    results = tmp_path / "results" / "tcae-au"
    for ds, cols, subjects in (("bp4d", [f"AU{a:02d}_occ" for a in TCAE_BP4D_AUS], {"F001", "F002", "F003"}),
                               ("disfa", [f"AU{a:02d}" for a in TCAE_DISFA_AUS], {"SN001", "SN002", "SN003"})):
        df = pd.read_csv(results / f"probe_{ds}" / "probes_au.csv")
        assert list(df["representation"]) == ["trained", "init", "pixels"] and list(df["features"])[:2] == ["au", "au"]
        assert [c[:-3] for c in df.columns if c.endswith(" F1") and c != "mean F1"] == cols  # exactly the protocol's
        assert "mean F1" in df.columns
        folds = json.loads((results / f"probe_{ds}" / "folds.json").read_text())
        assert len(folds["folds"]) == 3 and "GroupKFold(3) by subject" in folds["folding"]
        flat = [s for f in folds["folds"] for s in f]
        assert sorted(flat) == sorted(subjects)  # every subject tested once, in one fold: subject-exclusive
        assert f"{cols[0]}..{cols[-1]}" in folds["targets"]
    assert "present = value >= 2" in json.loads((results / "probe_disfa" / "folds.json").read_text())["targets"]
    from facedyn.data.store import ClipDataset

    assert ClipDataset(tmp_path / "data" / "disfa-box-32").align == "box"
    bp4d = ClipDataset(tmp_path / "data" / "bp4d-box-32")  # occurrence beside intensity, NaN off the coded segment
    labels = bp4d.clip("F001_T1").labels
    assert {"AU06", "AU12", "AU12_occ", "AU24_occ"} <= set(labels.columns)
    assert np.isnan(labels["AU12_occ"].iloc[0]) and np.isfinite(labels["AU12_occ"].iloc[1])


def test_tcae_au_stages_follow_the_papers_protocol(data_root, tmp_path, capsys, monkeypatch):
    code, text = run(["eval", "probe", "--help"], capsys, monkeypatch)  # the stages' commands are the CLI's
    assert code == 0 and "--au-columns" in text
    probes = {s.output.name: s for s in stage_list("tcae-au", data_root, tmp_path, tiny()) if s.kind == "probe"}
    bp4d, disfa = probes["probe_bp4d"], probes["probe_disfa"]
    assert "--au-columns " + ",".join(f"AU{a:02d}_occ" for a in TCAE_BP4D_AUS) in bp4d.command
    assert "--presence" not in bp4d.command and "--folds 3" in bp4d.command
    assert "--presence 2 " in disfa.command and "--folds 3" in disfa.command
    assert "--au-columns " + ",".join(f"AU{a:02d}" for a in TCAE_DISFA_AUS) + " " in disfa.command
    assert disfa.key["au_columns"] == [f"AU{a:02d}" for a in TCAE_DISFA_AUS] and disfa.key["presence"] == 2.0


@pytest.mark.slow
def test_fabnet_recipes_share_three_runs(data_root, out):
    fab = out / "fabnet"
    land = run_recipe("fabnet-landmarks", data_root, fab, tiny())["table"]
    for row, (w300, mafl) in (("FAB-Net |", (6.31, 3.78)), ("FAB-Net w/ curric. |", (5.73, 3.49)),
                              ("FAB-Net w/ curric., 3 source frames", (5.71, 3.44))):
        vals = numbers(land, row)
        assert vals[1] == w300 and vals[4] == mafl and all(v >= 0 for v in vals)
    probes = pd.read_csv(fab / "results" / "fabnet-landmarks" / "probe_mafl_s3c" / "probes_landmarks.csv")
    assert np.isfinite(probes["NME %"]).all()
    pose = run_recipe("fabnet-pose", data_root, fab, tiny())
    assert {"train:fabnet/s1", "train:fabnet/s1c", "train:fabnet/s3c"} <= set(pose["skipped"])
    assert numbers(pose["table"], " | paper")[:4] == [5.54, 7.84, 12.93, 8.77]
    assert len(numbers(pose["table"], "FAB-Net | facedyn")) == 4
    au = run_recipe("fabnet-au", data_root, fab, tiny())
    assert numbers(au["table"], " | paper")[-1] == pytest.approx(76.4) and "EmotioNet" in au["table"]


#: a throughput table of fixed numbers: the shipped throughput.json is a measurement (rewritten by
#: benchmarks/bench_reproduce.py on a CPU, benchmarks/gpu_check.py --write on a GPU) and FACEDYN_THROUGHPUT may name
#: another one; the estimate is tested on numbers that do not change
PINNED_THROUGHPUT = {"measured": "never", "machine": "a fixed test table", "device": "cpu", "size": 64,
                     "basis": "pinned", "rates": {"prepare": 100.0, "train:dr": 1.0}}


@pytest.fixture
def throughput(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("throughput") / "throughput.json"
    path.write_text(json.dumps(PINNED_THROUGHPUT))
    monkeypatch.setenv("FACEDYN_THROUGHPUT", str(path))
    return path


def test_dry_run_plan_commands_and_estimate_basis(data_root, tmp_path, throughput):
    md = dry_run("dr-table1", data_root, tmp_path, Settings(preset="paper"), throughput=throughput)
    assert "facedyn train dr --data" in md and "--preset paper" in md and "--size 224" in md
    assert "Estimate, not a measurement" in md and "1000x" in md and "GPU hours" in md
    assert "a fixed test table" in md
    # 20 epochs x 1000 steps x 16 images at 1 image/s, x (224/64)^2 for the crop: 1089 CPU h, / 1000 on a GPU
    assert "| train:dr/T5_S2 | to do | 3.2e+05 | 1.1 | 1089 |" in md
    assert "| to do |" in md and "done" not in md.split("## Stages")[1].split("**Total")[0].replace("to do", "")
    stages = stage_list("dr-table1", data_root, tmp_path, Settings(preset="paper"))
    assert [s.kind for s in stages].count("train") == 1 + 1 + 3 + 8  # DR, VGG features, 3 baselines, 8 AU inputs
    missing = dry_run("fabnet-pose", tmp_path / "nothing", tmp_path, Settings(preset="paper", overrides={
        "gpu_factor": 50.0}))
    assert "no aflw under --data-root" in missing and "50x" in missing


def test_user_mistakes_are_one_line_errors(data_root, tmp_path, capsys, monkeypatch):
    with pytest.raises(DatasetError) as e:
        run_recipe("fabnet-au", tmp_path / "empty", tmp_path / "o", tiny())
    assert "EmotioNet" in str(e.value) or "VoxCeleb" in str(e.value)
    code, text = run(["reproduce", "dr-fig9", "--data-root", str(data_root), "--out", str(tmp_path)], capsys,
                     monkeypatch)
    assert code == 2 and "unknown recipe 'dr-fig9'" in text and "Traceback" not in text
    code, text = run(["reproduce", "dr-fig3", "--data-root", str(data_root), "--out", str(tmp_path), "--set", "x=1"],
                     capsys, monkeypatch)
    assert code == 2 and "KEY=VALUE" in text


def test_a_stage_done_with_other_settings_is_refused(data_root, tmp_path):
    s = stage_list("tcae-au", data_root, tmp_path, tiny())[1]
    s.marker(tmp_path).parent.mkdir(parents=True)
    s.marker(tmp_path).write_text(json.dumps({"id": s.id, "key": {**s.key, "steps_per_epoch": 99}}))
    with pytest.raises(ConfigError) as e:
        s.done(tmp_path)
    assert "another --out" in str(e.value) and "\n" not in str(e.value)


def test_cli_dry_run(data_root, tmp_path, capsys, monkeypatch, throughput):
    code, text = run(["reproduce", "tcae-au", "--data-root", str(data_root), "--out", str(tmp_path), "--dry-run",
                      "--preset", "cpu"], capsys, monkeypatch)
    assert code == 0 and "facedyn train tcae" in text and "facedyn eval probe" in text and "--folds 3" in text
    assert not (tmp_path / "runs").exists()


def test_dry_run_checks_every_clips_labels_and_lists_what_is_missing(data_root, tmp_path, throughput):
    md = dry_run("tcae-au", data_root, tmp_path, Settings(preset="paper"), throughput=throughput)
    labels = md.split("## Labels")[1].split("## Equivalent commands")[0]
    assert "**voxceleb**" in labels and "no labels used" in labels
    bp4d_part, disfa_part = labels.split("**labels of bp4d")[1].split("**labels of disfa")
    assert f"({data_root / 'BP4D'}): 3 clip(s)" in bp4d_part and "AU occurrence: 13 columns AU01_occ" in bp4d_part
    assert "alignment: AU row f = video frame f counted from 1" in bp4d_part and "- missing: nothing" in bp4d_part
    # the fixture's DISFA has no AU9 / AU26 files, two of TCAE's eight DISFA AUs
    assert "- missing: disfa: no labelled frame of AU09, AU26, which the recipe needs" in disfa_part
    assert not (tmp_path / "data").exists()  # nothing prepared
    absent = dry_run("fabnet-au", tmp_path / "nothing", tmp_path, Settings(preset="paper"), throughput=throughput)
    assert "**labels of emotionet: " in absent and "- missing: " in absent
    assert "EmotioNet: not found; expected EmotioNet: an annotation file" in absent
