"""The TCAE diagnosis scripts (scripts/tcae_diag/, docs/results/tcae/diagnosis.md): every script's --help, and
diag_state, oracle, step, sep and fig on a tiny run of the tiny task store."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import torch

from facedyn.train import train
from facedyn.train.loop import Runtime
from support.task_fixtures import make_task_store

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "tcae_diag"
PYTHON_SCRIPTS = ("diag_state", "oracle", "step", "sep", "fig")
#: the ``script`` fixture: a script's name -> the script imported as a module
Loader = Callable[[str], ModuleType]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(store, run): the task store and a TCAE run of 3 steps on it that kept step 2 (init, step2, last)."""
    root = tmp_path_factory.mktemp("tcae_diag")
    data = make_task_store(root / "data")
    run = root / "run"
    with warnings.catch_warnings():  # the task store is similarity-aligned: TCAE warns that box crops suit it better
        warnings.simplefilter("ignore", UserWarning)
        train("tcae", data, run, {"epochs": 1, "steps_per_epoch": 3, "batch_size": 4, "width": 4, "emb_dim": 16,
                                  "keep_steps": "2", "val_pairs": 8, "precision": "fp32"},
              Runtime(device="cpu", threads=1, channels_last="off"))
    return data, run


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """Import a script of scripts/tcae_diag as a module (its sibling ``common`` importable), to call its main()
    in this process (no second torch start-up)."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.delitem(sys.modules, "common", raising=False)

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"tcae_diag_{name}", SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    yield load
    sys.modules.pop("common", None)


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """Heading and rows of a printed markdown table."""
    lines = [ln for ln in text.strip().splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    assert set(lines[1]) <= set("|-")
    return cells[0], cells[2:]


@pytest.mark.parametrize("name", PYTHON_SCRIPTS)
def test_help(name: str) -> None:
    r = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--help"], capture_output=True, text=True,
                       timeout=120, cwd=SCRIPTS.parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:") and "diagnosis.md" in r.stdout


def test_ablate_help_and_usage() -> None:
    r = subprocess.run(["bash", str(SCRIPTS / "ablate.sh"), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for opt in ("--threads 1", "--precision fp32", "--channels-last off", "--val-pairs 128", "models_work/real64box",
                "runs/tcae_diag/NAME"):
        assert opt in r.stdout
    r = subprocess.run(["bash", str(SCRIPTS / "ablate.sh")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_diag_state_columns_and_the_init_network(tiny: tuple[Path, Path], script: Loader, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data, run = tiny
    mod = script("diag_state")
    out = tmp_path / "state.csv"
    # the train split: two people, so the within-clip shares are not trivially 1
    mod.main([str(run), "--data", str(data), "--pairs", "12", "--split", "train", "--out", str(out)])
    heading, rows = table(capsys.readouterr().out)
    assert heading == [h for _, h, _ in mod.COLUMNS]
    assert [r[1] for r in rows] == ["init", "step2", "last (3)"]
    df = pd.read_csv(out)
    assert list(df["weights"]) == ["init", "step2", "last (3)"] and (df["pairs"] == 12).all()
    numeric = [c for c, _, _ in mod.COLUMNS[2:]] + ["tau_au_px_edge", "tau_pose_px_crop", "alpha_au_mean"]
    assert df[numeric].notna().all().all() and all(math.isfinite(v) and v >= 0 for v in df[numeric].to_numpy().flat)
    init = df.iloc[0]
    # the initial network is the identity warp, to within its near-zero displacements, and its masks are ½
    assert init["rec_vs_copy"] == pytest.approx(1, abs=0.05)
    assert init["rec_vs_copy_same_emb"] == pytest.approx(1, abs=0.05)
    assert init["tau_au_px"] < 0.5 and init["tau_pose_px"] < 0.5
    assert init["alpha_au_mean"] == pytest.approx(0.5, abs=0.01) and init["alpha_au_sd_pairs"] < 0.01
    assert ((df[["phi_within_clip", "psi_within_clip"]] > 0) & (df[["phi_within_clip", "psi_within_clip"]]
                                                                 <= 1 + 1e-9)).all().all()


def test_within_clip_share(script: Loader) -> None:
    within_clip_share = script("common").within_clip_share
    clip = torch.tensor([0, 0, 1, 1])
    assert within_clip_share(torch.tensor([[0.0], [0.0], [1.0], [1.0]]), clip) == 0  # an identity code
    assert within_clip_share(torch.tensor([[0.0], [1.0], [0.0], [1.0]]), clip) == 1  # the clips' means are equal


def test_oracle_finds_a_known_translation_and_runs_on_a_store(tiny: tuple[Path, Path], script: Loader, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from facedyn.nn.warp import warp

    mod = script("oracle")
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    src = torch.stack([torch.sin(xx / 3) * torch.cos(yy / 4), torch.cos(xx / 5), torch.sin(yy / 2)])[None] * 0.5 + 0.5
    shift = torch.tensor([1.0, -1.5]).view(1, 2, 1, 1).expand(1, 2, 32, 32)
    r = mod.best_translations(src, warp(src, shift), max_shift=2, step=0.5)
    assert (float(r["dx"][0]), float(r["dy"][0])) == (1.0, -1.5)
    assert float(r["err"][0]) < 1e-4 < float(r["copy"][0])

    data, _ = tiny
    out = tmp_path / "oracle.csv"
    mod.main(["--data", str(data), "--pairs", "12", "--max-shift", "1", "--out", str(out)])
    heading, rows = table(capsys.readouterr().out)
    assert heading == [h for _, h, _ in mod.COLUMNS] and len(rows) == 1
    ratio, ratio_crop, median = (float(v) for v in rows[0][1:4])
    assert 0 < ratio <= 1.0005 and ratio_crop > 0 and 0 <= median <= 2 ** 0.5
    per_pair = pd.read_csv(out)
    assert len(per_pair) == 12 and (per_pair["err"] <= per_pair["copy"] + 1e-6).all()


def test_step_moves_displacements_less_with_the_small_gain(script: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    mod = script("step")
    mod.main(["--size", "32", "--emb-dim", "32", "--batch", "4", "--flow-gain", "1,0.0625", "--lr", "1e-3"])
    heading, rows = table(capsys.readouterr().out)
    assert heading == [h for _, h, _ in mod.COLUMNS]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "0.001", "3"), ("0.0625", "0.001", "3")]
    moved = [(float(r[3]), float(r[4])) for r in rows]
    assert all(math.isfinite(v) and v > 0 for m in moved for v in m)
    assert sum(moved[0]) > 2 * sum(moved[1])


def test_sep_summarises_the_separation_check(tiny: tuple[Path, Path], script: Loader, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, run = tiny
    mod = script("sep")
    out = tmp_path / "sep.csv"
    mod.main([str(run), "--weights", "init,last", "--people", "1", "--pairs-per-person", "1", "--out", str(out)])
    heading, rows = table(capsys.readouterr().out)
    assert heading == [h for _, h, _ in mod.COLUMNS] and [r[1] for r in rows] == ["init", "last (3)"]
    df = pd.read_csv(out)
    cols = [c for c, _, _ in mod.COLUMNS[2:]]
    assert all(math.isfinite(v) and v > 0 for v in df[cols].to_numpy().flat)


def test_fig_writes_the_pair_figure(tiny: tuple[Path, Path], script: Loader, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    data, run = tiny
    out = tmp_path / "figs" / "pairs.png"
    script("fig").main([str(run), "--data", str(data), "--out", str(out), "--pairs", "8", "--rows", "2"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == str(out)
