"""facedyn.analyze / infer as researchers use them: tracked faces, box, confidence, pose, AU proxies, run outputs,
shipped names, and the HTML page."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import facedyn
from facedyn.analysis import FACE_COLUMNS
from facedyn.cli import main
from facedyn.data.faces import FaceLandmarker, MultiFaceTracker
from facedyn.tasks.proxies import PROXY_COLUMNS


def _check_face_columns(df: pd.DataFrame) -> None:
    faces = df[df["success"] == 1]
    assert set(FACE_COLUMNS) <= set(df.columns)
    assert np.isfinite(faces[FACE_COLUMNS].to_numpy(float)).all()
    assert faces[["pose_yaw_deg", "pose_pitch_deg", "pose_roll_deg"]].abs().le(90).all().all()
    assert (faces[list(PROXY_COLUMNS)] >= 0).all().all()
    assert faces["confidence"].between(0, 1).all() and (faces["confidence"] > 0).mean() > 0.9
    # the nose and eyes lie inside the face box
    for _, r in faces.iterrows():
        cx = np.mean([r[f"x_{i}"] for i in range(27, 48)])
        cy = np.mean([r[f"y_{i}"] for i in range(27, 48)])
        assert r["face_x"] < cx < r["face_x"] + r["face_w"] and r["face_y"] < cy < r["face_y"] + r["face_h"]


@pytest.mark.real
def test_real_clip_every_frame_has_the_researchers_columns(real_data: Path) -> None:
    df = facedyn.analyze(real_data / "talking_d10.mp4", runs=["dr-t5"], device="cpu", every=6)
    assert len(df) == 75 and (df["success"] == 1).all() and (df["face_id"] == 0).all()
    _check_face_columns(df)
    assert df["dr"].iloc[0].shape == (3, 64, 64)
    assert 0 < df["detected"].sum() < len(df)  # fit-tracking: the detector ran on some frames only
    ready = df["proxy_ready"].to_numpy()
    assert ready[:49].sum() == 0 and ready[50:].all()  # the rest settles after the face's 50th frame
    assert df["AU25_p"].max() > 1.0  # she talks: lips part by more than a tenth of her eye distance
    assert df.attrs["source"].endswith("talking_d10.mp4") and df.attrs["runs"] == ["dr-t5"]


@pytest.mark.real
def test_real_photo_still_gives_four_faces(real_data: Path) -> None:
    df = facedyn.analyze(real_data / "multi_face.jpg", device="cpu")
    assert df["face_id"].tolist() == [0, 1, 2, 3] and (df["success"] == 1).all()
    _check_face_columns(df)
    assert (df["detected"] == 1).all() and (df["proxy_ready"] == 0).all()  # one frame: no rest estimate yet


@pytest.mark.real
def test_fit_tracking_follows_detection_with_few_detections(real_data: Path) -> None:
    from facedyn.data.video import iter_frames

    frames = [f for _, (f, _) in zip(range(30), iter_frames(real_data / "talking_d12.mp4"), strict=False)]
    lmk = FaceLandmarker()
    fit, det = MultiFaceTracker(lmk, redetect_every=10), MultiFaceTracker(lmk)
    a = [fit(f) for f in frames]
    b = [det(f) for f in frames]
    assert all([x.face_id for x in fa] == [0] == [x.face_id for x in fb] for fa, fb in zip(a, b, strict=True))
    assert fit.detections <= 6 and det.detections == 30
    nme = [np.linalg.norm(fa[0].landmarks - fb[0].landmarks, axis=1).mean()
           / np.linalg.norm(fb[0].landmarks[36:42].mean(0) - fb[0].landmarks[42:48].mean(0))
           for fa, fb in zip(a, b, strict=True)]
    assert np.mean(nme) < 0.04  # of the eye distance: within the predictor's own box-to-box jitter
    assert sum(not f[0].detected for f in a) == 30 - fit.detections


def _two_faces(t: int, right: bool = True) -> np.ndarray:
    """The astronaut twice on a canvas, drifting a few px per frame ``t`` (the right copy hidden: ``right=False``)."""
    skdata = pytest.importorskip("skimage.data")
    photo = np.ascontiguousarray(np.asarray(skdata.astronaut())[:300, 56:456])
    h, w = photo.shape[:2]
    canvas = np.full((h + 60, 2 * w + 80, 3), 90, np.uint8)
    canvas[20 + 2 * t:20 + 2 * t + h, 10 + 4 * t:10 + 4 * t + w] = photo
    if right:
        canvas[30 - t:30 - t + h, w + 60 - 2 * t:w + 60 - 2 * t + w] = photo
    return canvas


def test_two_moving_faces_keep_their_ids_when_fitted() -> None:
    tr = MultiFaceTracker(FaceLandmarker(), redetect_every=4)
    for t in range(9):
        faces = tr(_two_faces(t))
        assert [f.face_id for f in faces] == [0, 1], t
        assert faces[0].box[2] < faces[1].box[0]
        assert all(0 < f.confidence <= 1 for f in faces)
    assert tr.detections == 3  # frames 0, 4, 8


def test_a_face_the_detector_missed_is_looked_for_on_the_next_frames() -> None:
    tr = MultiFaceTracker(FaceLandmarker(), redetect_every=10, max_gap=5)
    ids = [[f.face_id for f in tr(_two_faces(t, right=t != 10))] for t in range(13)]
    assert ids[:10] == [[0, 1]] * 10 and ids[10] == [0]  # frame 10 detects, the right face is hidden
    assert ids[11:] == [[0, 1]] * 2  # back on frame 11: detected at once (not 10 frames later), same id
    assert tr.detections == 3  # frames 0, 10, 11; frame 12 is fitted again


def test_runs_by_name_embeddings_and_the_page(synth_store: Path, synth_videos: Path, tmp_path: Path) -> None:
    import toy_method  # noqa: F401  (registers the toy method)
    from facedyn.train import train

    video = next(synth_videos.rglob("*.mp4"))
    toy = train("toy", synth_store, tmp_path / "mytoy", {"epochs": 1, "steps_per_epoch": 1}).run
    model = facedyn.load(toy, device="cpu")
    model.net.embedding_output = "embedding"  # as FAb-Net's and TCAE's networks declare theirs
    df = facedyn.analyze(video, runs=["dr-t3", "dr-t5", model], device="cpu", every=6)
    assert len(df) == 10 and (df["success"] == 1).all()
    assert df["dr-t3.dr"].iloc[0].shape == df["dr-t5.dr"].iloc[0].shape == (3, 64, 64)
    assert not np.allclose(df["dr-t3.dr"].iloc[0], df["dr-t5.dr"].iloc[0])
    assert [f"mytoy_{k}" for k in range(8)] == [c for c in df.columns if c.startswith("mytoy_")]
    assert "mytoy.brightness" in df and not any(c.startswith("mytoy.embedding") for c in df.columns)
    page = df.pipe(facedyn.view, tmp_path / "v.html").read_text()
    assert page.startswith("<!doctype html>") and "<canvas" in page and "Embedding over time (PCA)" in page
    assert "embedding mytoy" in page  # the PCA map uses the run's embedding columns
    assert not re.search(r'(src|href)="(?!data:)', page) and "http://" not in page and "https://" not in page


def test_infer_track_and_html(synth_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    video = next(synth_videos.rglob("*.mp4"))
    for track in ("fit", "detect"):
        monkeypatch.setattr(sys, "argv", ["facedyn", "infer", str(video), "--run", "dr-t5", "--track", track,
                                          "--html", "--out", str(tmp_path / track)])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code in (0, None), capsys.readouterr().err
    fit, det = (pd.read_csv(tmp_path / t / "faces.csv") for t in ("fit", "detect"))
    assert len(fit) == len(det) == 60 and set(FACE_COLUMNS) <= set(fit.columns)
    assert det["detected"].all() and fit["detected"].sum() <= 12
    assert np.abs(fit["x_30"] - det["x_30"]).mean() < 1.0  # nose tip, pixels of a 96 px video
    page = (tmp_path / "fit" / "view.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 60 and "dr strip" in page
    monkeypatch.setattr(sys, "argv", ["facedyn", "infer", str(video), "--track", "every", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2 and "--track must be one of fit, detect" in capsys.readouterr().err


def test_box_smoother_follows_the_landmark_box_with_the_prepare_time_constant() -> None:
    from facedyn.analysis import BoxSmoother
    from facedyn.data.faces import BOX_SIGMA_S

    lm = np.stack(np.meshgrid(np.linspace(100, 140, 17), np.linspace(50, 90, 4)), -1).reshape(-1, 2)[:68]
    sm = BoxSmoother()
    first = sm(0, lm, 0.0)
    np.testing.assert_allclose(first, [120.0, 70.0, 40.0])  # centre and larger side of the points
    np.testing.assert_allclose(sm(0, lm, 0.04), first)  # a still face stays put
    moved = sm(0, lm + [10.0, 0.0], 0.04 + BOX_SIGMA_S)  # a step of 10 px: 1 - 1/e of it after one sigma
    assert moved[0] == pytest.approx(120.0 + 10.0 * (1 - np.exp(-1.0)))
    np.testing.assert_allclose(sm(1, lm + 5.0, 1.0), [125.0, 75.0, 40.0])  # another face: its own box
