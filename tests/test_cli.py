"""The command line end to end on tiny synthetic videos, and its handling of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facedyn.cli import main
from facedyn.data.video import write_video
from support.cli import run_cli


def run(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run ``facedyn ARGS`` in-process through the real entry point; returns (exit code, stdout, stderr)."""
    return run_cli(args, capsys, monkeypatch)


def test_help_for_every_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (["--help"], ["synth", "--help"], ["prepare", "--help"], ["info", "--help"], ["split", "--help"],
                 ["train", "--help"], ["train", "dr", "--help"], ["train", "unet_mse", "--help"],
                 ["train", "pix2pix", "--help"], ["train", "unet_p", "--help"], ["train", "vgg_features", "--help"],
                 ["eval", "rank", "--help"], ["eval", "metrics", "--help"], ["infer", "--help"], ["demo", "--help"],
                 ["merge", "--help"], ["represent", "--help"], ["report", "--help"], ["cv", "rank", "--help"],
                 ["export", "onnx", "--help"], ["eval", "au", "--help"], ["eval", "affect", "--help"],
                 ["eval", "probe", "--help"], ["train", "tcae", "--help"], ["train", "fabnet", "--help"],
                 ["train", "au", "--help"], ["train", "affect", "--help"]):
        code, out, _ = run(args, capsys, monkeypatch)
        assert code == 0 and "Usage" in out, args
    code, out, _ = run(["--version"], capsys, monkeypatch)
    assert code == 0 and "facedyn" in out


def test_help_reads_at_80_columns(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's --help in an 80-column terminal: no line wider, no help line of a lone word."""
    import typer.main

    from facedyn import cli

    cli._add_train_commands()

    def paths(cmd: object, path: list[str]) -> list[list[str]]:
        subs = getattr(cmd, "commands", {})
        return [path] + [p for name in sorted(subs) for p in paths(subs[name], [*path, name])]

    commands = paths(typer.main.get_command(cli.app), [])
    assert ["train", "fabnet"] in commands and ["eval", "probe"] in commands and len(commands) > 25
    for path in commands:
        monkeypatch.setattr(sys, "argv", ["facedyn", *path, "--help"])
        monkeypatch.setenv("COLUMNS", "80")
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code in (0, None), path
        lines = capsys.readouterr().out.splitlines()
        assert any("Usage" in line for line in lines), path
        for line in lines:
            words = line.split()
            assert len(line) <= 80, (path, line)
            # a lone word is a help text's widow; an option's names or a section title stand alone by design
            assert len(words) != 1 or words[0].startswith("-") or words[0].endswith(":"), (path, line)


def test_end_to_end(synth_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    code, out, err = run(["prepare", str(synth_videos), "--out", str(data), "--size", "32"], capsys, monkeypatch)
    assert code == 0, err
    idx = json.loads((data / "index.json").read_text())
    assert len(idx["clips"]) == 3 and {k for k, v in idx["splits"].items() if v} == {"train", "val", "test"}
    code, out, _ = run(["info", str(data)], capsys, monkeypatch)
    assert code == 0 and "100.0 %" in out and "AU12" in out
    # rerun: complete clips are skipped
    code, out, _ = run(["prepare", str(synth_videos), "--out", str(data), "--size", "32"], capsys, monkeypatch)
    assert code == 0 and "skipped" in out

    runs = tmp_path / "runs"
    code, out, err = run(["train", "dr", "--data", str(data), "--T", "2", "--S", "1", "--out", str(runs / "dr"),
                          "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4", "--width", "4",
                          "--depth", "2"], capsys, monkeypatch)
    assert code == 0, err
    assert (runs / "dr" / "checkpoints" / "best.safetensors").exists()
    cfg = json.loads((runs / "dr" / "config.json").read_text())
    assert cfg["method"] == "dr" and cfg["config"]["T"] == 2 and cfg["config"]["theta"] > 0
    assert cfg["config"]["betas"] == [0.5, 0.9] and cfg["data"]["size"] == 32 and "train dr" in cfg["command"]
    # resume continues to more epochs
    code, _, err = run(["train", "dr", "--data", str(data), "--T", "2", "--S", "1", "--out", str(runs / "dr"),
                        "--epochs", "3", "--steps-per-epoch", "2", "--batch-size", "4", "--width", "4", "--depth",
                        "2", "--resume"], capsys, monkeypatch)
    assert code == 0, err
    assert pd.read_csv(runs / "dr" / "metrics.csv")["epoch"].tolist() == [0, 1, 2, 3]

    res = tmp_path / "rank"
    code, out, err = run(["eval", "rank", "--data", str(data), "--run", str(runs / "dr"), "--out", str(res),
                          "--methods", "identity,centred,random,seq-di,ranksvm"], capsys, monkeypatch)
    assert code == 0, err
    df = pd.read_csv(res / "ranking.csv")
    assert set(df["method"]) == {"dr", "identity", "centred", "random", "seq-di", "ranksvm"}
    assert df["acc"].between(0, 100).all() and (df["T"] == 2).all()
    assert "| method |" in (res / "ranking.md").read_text()
    assert (res / "figures" / "dr_gallery.png").stat().st_size > 1000

    # inference on a video the detector must find faces in, and on a real photograph
    video = next(synth_videos.rglob("*.mp4"))
    inf = tmp_path / "inf"
    code, out, err = run(["infer", str(video), "--run", str(runs / "dr"), "--out", str(inf)], capsys, monkeypatch)
    assert code == 0, err
    dr = np.load(inf / "dr.npy")
    assert dr.shape == (60, 3, 32, 32) and np.isfinite(dr).all()
    assert (inf / "side_by_side.mp4").exists() and len(list((inf / "png").glob("*.png"))) == 60
    table = pd.read_csv(inf / "faces.csv")
    assert list(table.columns[:6]) == ["frame", "timestamp", "face_id", "success", "x_0", "x_1"]
    assert len(table) == 60 and (table["success"] == 1).all()
    import cv2
    import skimage.data

    import facedyn

    photo = skimage.data.astronaut()
    cv2.imwrite(str(tmp_path / "astronaut.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    code, out, err = run(["infer", str(tmp_path / "astronaut.png"), "--run", str(runs / "dr"), "--out",
                          str(tmp_path / "i2")], capsys, monkeypatch)
    assert code == 0, err
    model = facedyn.load(str(runs / "dr"), device="cpu")
    d = model(photo)  # raw photo: detected, aligned and masked by the model wrapper
    assert d.shape == (1, 3, 32, 32)
    per_face = np.load(tmp_path / "i2" / "dr.npy")  # every face infer found; the largest is the one aligned
    assert min(float(np.abs(d.numpy()[0] - x).max()) for x in per_face) < 1e-4


def test_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["prepare", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "d")], capsys, monkeypatch)
    assert code == 2 and "no such file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_videos_fail_clearly_and_keep_good_clips(synth_videos: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "notes.mp4").write_text("not a video at all\n" * 50)
    good = next(synth_videos.rglob("*.mp4"))
    data = good.read_bytes()
    (bad / "cut.mp4").write_bytes(data[: len(data) // 3])
    code, _out, err = run(["prepare", str(bad / "notes.mp4"), str(bad / "cut.mp4"), str(good.parent), "--out",
                          str(tmp_path / "d"), "--size", "32"], capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert "notes.mp4" in err and "cut.mp4" in err and "2 of 3 clips failed" in err
    clips = [p.name for p in (tmp_path / "d").iterdir() if p.is_dir()]
    assert clips == [good.parent.name]  # the good clip is complete, nothing half-written


def test_unwritable_output(synth_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(["prepare", str(synth_videos), "--out", str(blocker / "d")], capsys, monkeypatch)
    assert code == 2 and "cannot write" in err and "Traceback" not in err


def test_wrong_label_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    vids = tmp_path / "v" / "P1"
    vids.mkdir(parents=True)
    write_video(vids / "clip.mp4", np.zeros((5, 32, 32, 3), np.uint8), fps=25)
    pd.DataFrame({"time": [0, 1], "AU12": [1, 2]}).to_csv(vids / "clip.csv", index=False)
    code, _, err = run(["prepare", str(tmp_path / "v"), "--out", str(tmp_path / "d")], capsys, monkeypatch)
    assert code == 2 and "frame" in err and "Traceback" not in err


def test_no_face_video_warns_and_completes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    write_video(tmp_path / "noise.mp4", (rng.random((6, 64, 64, 3)) * 60).astype(np.uint8), fps=25)
    code, _out, err = run(["prepare", str(tmp_path / "noise.mp4"), "--out", str(tmp_path / "d")], capsys,
                         monkeypatch)
    assert code == 0 and "no face found" in err
    valid = np.load(tmp_path / "d" / "noise" / "valid.npy")
    assert valid.shape == (6,) and not valid.any()


def test_interrupted_prepare_resumes(synth_videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facedyn.data.prepare as prep

    calls = {"n": 0}
    real_align = None
    from facedyn.data import faces

    real_align = faces.align_face

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 70:  # part-way through the second clip
            raise KeyboardInterrupt
        return real_align(*a, **k)

    monkeypatch.setattr(faces, "align_face", flaky)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare([synth_videos], tmp_path / "d", prep.PrepareOptions(size=32))
    done = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert done == ["S001"]  # one complete clip, no partial directory left
    monkeypatch.setattr(faces, "align_face", real_align)
    res = prep.prepare([synth_videos], tmp_path / "d", prep.PrepareOptions(size=32))
    assert [r.skipped for r in res] == [True, False, False] and all(r.error is None for r in res)
    assert all(r.n_valid == r.n_frames == 60 for r in res)


def test_console_script_exit_code(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("facedyn")
    p = subprocess.run([str(exe), "info", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "facedyn prepare" in p.stderr


@pytest.mark.real
def test_prepare_real_footage(real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Real videos through the real detector: faces found, the no-face clip warned about, enter/leave marked."""
    files = [real_data / n for n in ("single_face.mp4", "no_face.mp4", "face_noface.mov")]
    code, _out, err = run(["prepare", *map(str, files), "--out", str(tmp_path / "d"), "--workers", "2"], capsys,
                         monkeypatch)
    assert code == 0, err
    assert "no_face: no face found" in err
    v = {n: np.load(tmp_path / "d" / n / "valid.npy") for n in ("single_face", "no_face", "face_noface")}
    assert v["single_face"].mean() >= 0.95
    assert v["no_face"].sum() == 0 and len(v["no_face"]) > 90
    leave = v["face_noface"]
    assert leave[:40].all() and not leave[-40:].any()  # the face leaves: marked frame by frame
    faces = pd.read_csv(tmp_path / "d" / "face_noface" / "faces.csv")
    assert list(faces.columns[:5]) == ["frame", "timestamp", "success", "x_0", "x_1"]
    assert (faces["success"].to_numpy() == leave.astype(int)).all()


def test_split_sweep_config_and_eval_metrics(synth_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_store, data)
    code, out, err = run(["split", str(data), "--val", "S001", "--test", "S002"], capsys, monkeypatch)
    assert code == 0, err
    idx = json.loads((data / "index.json").read_text())
    assert idx["splits"] == {"train": ["S003"], "val": ["S001"], "test": ["S002"]}
    code, _, err = run(["split", str(data), "--val", "nobody"], capsys, monkeypatch)
    assert code == 2 and "nobody" in err and len(err.strip().splitlines()) == 1

    small = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--width", "4", "--depth", "2"]
    code, out, err = run(["train", "unet_mse", "--data", str(data), "--out", str(tmp_path / "g"), "--grid", "T=1,2",
                          "--grid", "S=1", "--target", "bdi", *small], capsys, monkeypatch)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["T1_S1", "T2_S1"]
    assert json.loads((tmp_path / "g" / "T2_S1" / "config.json").read_text())["config"]["target"] == "bdi"
    # --config copies a run's settings; options given on the command line win
    code, _, err = run(["train", "unet_mse", "--data", str(data), "--out", str(tmp_path / "c"), "--config",
                        str(tmp_path / "g" / "T2_S1"), "--target", "di", "--epochs", "1"], capsys, monkeypatch)
    assert code == 0, err
    c = json.loads((tmp_path / "c" / "config.json").read_text())["config"]
    assert (c["T"], c["width"], c["target"]) == (2, 4, "di")
    code, out, err = run(["eval", "metrics", "--data", str(data), "--run", str(tmp_path / "c"), "--split", "test"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert {line.split()[0] for line in out.strip().splitlines()} == {"side_acc", "acc", "mse"}
    code, _, err = run(["train", "unet_mse", "--data", str(data), "--out", str(tmp_path / "x"), "--grid", "Q=1"],
                       capsys, monkeypatch)
    assert code == 2 and "not a setting" in err
    code, _, err = run(["train", "dr", "--data", str(data), "--out", str(tmp_path / "x"), "--norm", "layer"],
                       capsys, monkeypatch)
    assert code == 2 and "--norm must be one of" in err


@pytest.mark.real
def test_infer_every_face_of_a_real_photo(real_data: Path, synth_store: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from facedyn.train import train

    train("dr", synth_store, tmp_path / "dr", {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "T": 2, "S": 1,
                                               "width": 4, "depth": 2})
    code, _, err = run(["infer", str(real_data / "multi_face.jpg"), "--run", str(tmp_path / "dr"), "--out",
                          str(tmp_path / "o")], capsys, monkeypatch)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "faces.csv")
    assert table["face_id"].tolist() == [0, 1, 2, 3] and (table["success"] == 1).all()
    assert np.load(tmp_path / "o" / "dr.npy").shape == (4, 3, 32, 32)
    assert len(list((tmp_path / "o" / "png").glob("dr_*.png"))) == 4


def test_infer_without_any_face_writes_nothing(synth_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import toy_method  # noqa: F401  (registers the toy method)
    from facedyn.train import train

    train("toy", synth_store, tmp_path / "toy", {"epochs": 1, "steps_per_epoch": 1})
    rng = np.random.default_rng(0)
    write_video(tmp_path / "noise.mp4", (rng.random((5, 64, 64, 3)) * 60).astype(np.uint8), fps=25)
    code, _, err = run(["infer", str(tmp_path / "noise.mp4"), "--run", str(tmp_path / "toy"), "--out",
                        str(tmp_path / "o")], capsys, monkeypatch)
    assert code == 2 and "no face found" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "faces.csv").exists() and not (tmp_path / "o" / "side_by_side.mp4").exists()
    assert not [p for p in (tmp_path / "o").iterdir() if p.is_file()]


def test_init_from_a_missing_run_is_one_line_and_writes_nothing(synth_store: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for source, message in (("nope", "nope: no such run directory"), ("fold{fold}", "{fold} needs --fold K")):
        code, _, err = run(["train", "dr", "--data", str(synth_store), "--out", str(tmp_path / "r"), "--init-from",
                            str(tmp_path / source), "--epochs", "1", "--steps-per-epoch", "1", "--precision", "fp32"],
                           capsys, monkeypatch)
        assert code == 2 and message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r" / "checkpoints").exists()
