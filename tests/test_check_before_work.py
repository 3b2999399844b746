"""Commands check their arguments before slow work starts (issue 13, item 7)."""

from __future__ import annotations

import pandas as pd
import pytest

import facedyn.data.identities as identities
from support.cli import run_cli


def test_split_refuses_an_unknown_name_before_the_identity_check(synth_store, capsys, monkeypatch) -> None:
    def never(*a: object, **k: object) -> None:
        raise AssertionError("the identity check ran before the arguments were checked")

    monkeypatch.setattr(identities, "check_identities", never)
    before = (synth_store / "index.json").read_bytes()
    for args, message in ((["--val", "NOSUCH"], "no subject 'NOSUCH'"), (["--folds", "99"], "--folds must be between"),
                          (["--val", "S001", "--test", "S001"], "named for both val and test")):
        code, _, err = run_cli(["split", str(synth_store), "--check-identities", *args], capsys, monkeypatch)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert (synth_store / "index.json").read_bytes() == before  # nothing written


@pytest.mark.parametrize("method", ["tcae", "fabnet"])
def test_head_motion_methods_warn_on_similarity_crops(method, synth_store, tmp_path, capsys, monkeypatch) -> None:
    code, out, err = run_cli(["train", method, "--data", str(synth_store), "--out", str(tmp_path / "r"), "--epochs",
                              "1", "--steps-per-epoch", "1", "--batch-size", "2", "--width", "4", "--precision", "fp32",
                              "--channels-last", "off", "--threads", "1"], capsys, monkeypatch)
    assert code == 0, err
    lines = [ln for ln in (out + err).splitlines() if "head roll, scale and shift removed" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning:") and "--align box" in lines[0]
    assert len(pd.read_csv(tmp_path / "r" / "metrics.csv")) == 2  # a warning, not a refusal


def test_dr_on_similarity_crops_does_not_warn(synth_store, tmp_path, capsys, monkeypatch) -> None:
    code, out, err = run_cli(["train", "dr", "--data", str(synth_store), "--out", str(tmp_path / "r"), "--epochs", "1",
                              "--steps-per-epoch", "1", "--batch-size", "2", "--width", "4", "--depth", "2", "--T", "2",
                              "--S", "1", "--precision", "fp32", "--channels-last", "off", "--threads", "1"],
                             capsys, monkeypatch)
    assert code == 0, err
    assert "head roll" not in out + err


@pytest.mark.parametrize(("option", "value"), [("--T", "0"), ("--S", "0"), ("--batch-size", "0"), ("--epochs", "0"),
                                               ("--lr", "-0.1"), ("--width", "0")])
def test_out_of_range_settings_refuse_before_reading_data(option, value, tmp_path, capsys, monkeypatch) -> None:
    # the data does not even exist: the setting is refused first, and nothing is written
    code, _, err = run_cli(["train", "dr", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "r"), option,
                            value], capsys, monkeypatch)
    assert code == 2 and f"{option} must be at least" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
