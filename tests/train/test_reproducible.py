"""Training reproduces itself: ``facedyn train dr --seed N --threads 1 --precision fp32 --channels-last off`` twice on
one store writes the same ``metrics.csv`` (but for its wall-time columns) and the same weights, whatever the number
of loader workers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from support.cli import run_cli
from support.task_fixtures import make_task_store

#: the columns of metrics.csv that hold wall time, which never reproduces
CLOCK_COLUMNS = ("time_s", "elapsed_s")


def _metrics(run: Path) -> list[dict[str, str]]:
    """metrics.csv without its wall-time columns, the cells as written."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(CLOCK_COLUMNS) <= set(rows[0])
    return [{k: v for k, v in r.items() if k not in CLOCK_COLUMNS} for r in rows]


def _weights(run: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]]:
    """Each checkpoint's tensors and metadata."""
    out = {}
    for path in sorted((run / "checkpoints").glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
        out[path.name] = (load_file(str(path)), meta)
    return out


def test_dr_training_reproduces_metrics_and_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_task_store(tmp_path / "data")

    def train(name: str, *more: str) -> Path:
        out = tmp_path / name
        code, _, err = run_cli(["train", "dr", "--data", str(data), "--out", str(out), "--seed", "3", "--threads", "1",
                                "--precision", "fp32", "--channels-last", "off", "--epochs", "2", "--steps-per-epoch",
                                "3", "--batch-size", "4", "--width", "4", "--depth", "2", *more], capsys, monkeypatch)
        assert code == 0, err
        return out

    # a loader worker collates its batches in other memory and draws no new iterator from the loader's generator
    # on its second epoch: neither may change what is learned
    runs = [train("a"), train("b"), train("workers", "--workers", "1")]
    first = _metrics(runs[0])
    assert [r["epoch"] for r in first] == ["0", "1", "2"] and first[-1]["train_loss"]
    weights = _weights(runs[0])
    assert set(weights) == {"init.safetensors", "best.safetensors", "last.safetensors"}
    init, last = weights["init.safetensors"][0], weights["last.safetensors"][0]
    assert not all(torch.equal(t, last[k]) for k, t in init.items())  # it trained
    for run in runs[1:]:
        assert _metrics(run) == first, run.name
        again = _weights(run)
        assert set(again) == set(weights)
        for name, (tensors, meta) in weights.items():
            assert again[name][1] == meta, (run.name, name)
            assert tensors.keys() == again[name][0].keys()
            assert all(torch.equal(t, again[name][0][k]) for k, t in tensors.items()), (run.name, name)
            # and its bytes (its SHA-256 identifies it: init_sha256, representation caches)
            assert (run / "checkpoints" / name).read_bytes() == (runs[0] / "checkpoints" / name).read_bytes()
