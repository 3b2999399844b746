"""Synthetic face videos: determinism, labels, landmarks, AU appearance, temporal structure, files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facedyn.data import synthetic as sy
from facedyn.data.video import read_video
from facedyn.errors import ConfigError, OutputError


def _frames(clip: sy.SyntheticClip) -> np.ndarray:
    return np.stack(list(clip.frames()))


def _region(frame: np.ndarray, pts: np.ndarray, margin: int = 3) -> np.ndarray:
    """Pixels of ``frame`` in the bounding box of ``pts`` (N, 2) plus ``margin``."""
    x0, y0 = np.floor(pts.min(0)).astype(int) - margin
    x1, y1 = np.ceil(pts.max(0)).astype(int) + margin
    return frame[max(y0, 0):y1, max(x0, 0):x1].astype(np.float32)


def _centred_floor_accuracy(frames: np.ndarray, T: int, S: int) -> float:
    """Fraction of Eq. 2 pairs ranked right by d = I_t - per-channel mean(I_t), over every centre t."""
    X = frames.astype(np.float32) / 255.0
    n = len(X)
    right = total = 0
    offs = np.arange(-T, T + 1) * S
    for t in range(T * S, n - T * S):
        d = X[t] - X[t].mean(axis=(0, 1), keepdims=True)
        s = np.einsum("hwc,khwc->k", d, X[t + offs])  # scores of the window, in temporal order
        for a in range(2 * T + 1):
            for b in range(2 * T + 1):
                if (b < a <= T) or (T <= a < b):  # a closer to t than b, same side
                    total += 1
                    right += s[a] > s[b]
    return right / total


# ------------------------------------------------------------------------------------------ clips


def test_same_seed_same_clip_other_seed_other_clip() -> None:
    a, b, c = sy.synthesize_clip(3, 0.4), sy.synthesize_clip(3, 0.4), sy.synthesize_clip(4, 0.4)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    fa, fb, fc = _frames(a), _frames(b), _frames(c)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(fa[4], a.frame(4))  # random access renders the same frame
    assert np.abs(fa.astype(int) - fc.astype(int)).mean() > 10  # another person
    assert not np.allclose(a.landmarks, c.landmarks)
    # the identity does not depend on the clip length
    long = sy.synthesize_clip(3, 2.0)
    np.testing.assert_array_equal(long.identity.shape, a.identity.shape)


def test_labels_columns_and_ranges() -> None:
    for seed in range(4):
        clip = sy.synthesize_clip(seed, 20.0, fps=25.0, size=160)
        lab = clip.labels
        assert list(lab.columns) == sy.LABEL_COLUMNS
        assert len(lab) == len(clip) == 500
        np.testing.assert_array_equal(lab["frame"].to_numpy(), np.arange(500))
        assert lab["frame"].dtype.kind == "i"
        np.testing.assert_allclose(lab["timestamp"].to_numpy(), np.arange(500) / 25.0)
        au = lab[sy.AU_NAMES].to_numpy()
        assert np.isfinite(au).all() and au.min() >= 0 and au.max() <= 5
        assert au[:, sy.AU_NAMES.index("AU45")].max() > 4  # at least one full blink in 20 s
        assert (au.max(0) > 1).sum() >= 5  # several AUs are active
        for col in ("valence", "arousal"):
            v = lab[col].to_numpy()
            assert v.min() >= -1 and v.max() <= 1 and v.std() > 0.02
        for col, lim in zip(("pose_yaw", "pose_pitch", "pose_roll"), sy.POSE_LIMITS, strict=True):
            p = lab[col].to_numpy()
            assert np.abs(p).max() <= lim and p.std() > 0.1
        # landmarks: float32 pixels inside the frame
        assert clip.landmarks.shape == (500, 68, 2) and clip.landmarks.dtype == np.float32
        assert clip.landmarks.min() >= 0 and clip.landmarks.max() < 160
        width = clip.landmarks[:, 16, 0] - clip.landmarks[:, 0, 0]
        assert 0.45 * 160 < np.median(width) < 0.72 * 160  # the face fills most of the frame


def test_au_curves_are_episodes_not_noise() -> None:
    clip = sy.synthesize_clip(5, 30.0)
    au = clip.au
    slow = [sy.AU_NAMES.index(k) for k in sy.AU_NAMES if k not in ("AU25", "AU26", "AU45")]  # not speech, blinks
    step = np.abs(np.diff(au[:, slow], axis=0)).max()
    assert step <= 1.5 + 1e-9  # onsets/offsets last >= 0.2 s: smoothstep slope <= 1.5 x 5 / 5 frames
    active = au > 0.05
    assert active.any(axis=0).sum() >= 6
    # episodes overlap: several AUs on at the same time in some frames (expressions)
    assert (active.sum(1) >= 2).mean() > 0.05


def test_valence_follows_smiles_and_frowns() -> None:
    n = 50
    au = np.zeros((3 * n, 12))
    au[:n, sy.AU_NAMES.index("AU12")] = 5
    au[:n, sy.AU_NAMES.index("AU06")] = 4
    au[2 * n:, sy.AU_NAMES.index("AU04")] = 4
    au[2 * n:, sy.AU_NAMES.index("AU15")] = 4
    v, a = sy.affect_from_aus(au, 25.0)
    assert v[n // 2] > 0.5 and v[2 * n + n // 2] < -0.5 and abs(v[n + n // 2]) < 0.2
    au2 = np.zeros((n, 12))
    au2[:, [sy.AU_NAMES.index(k) for k in ("AU01", "AU02", "AU25", "AU26")]] = 4
    assert sy.affect_from_aus(au2, 25.0)[1][n // 2] > a[n + n // 2] + 0.5


# ------------------------------------------------------------------------------------- rendering


def test_render_frame_shapes_and_errors() -> None:
    ident = sy.sample_identity(np.random.default_rng(0))
    frame, lm = sy.render_frame(ident, {}, (0, 0, 0), 128, np.random.default_rng(0))
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert lm.shape == (68, 2) and (lm > 0).all() and (lm < 128).all()
    assert frame.std() > 20  # not a blank image
    same, lm2 = sy.render_frame(ident, np.zeros(12), (0, 0, 0), 128, np.random.default_rng(0))
    np.testing.assert_array_equal(frame, same)
    np.testing.assert_array_equal(lm, lm2)
    with pytest.raises(ConfigError):
        sy.render_frame(ident, {"AU99": 1.0}, (0, 0, 0), 128)
    with pytest.raises(ConfigError):
        sy.render_frame(ident, np.zeros(5), (0, 0, 0), 128)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aus_change_pixels_where_they_act(seed: int) -> None:
    ident = sy.sample_identity(np.random.default_rng(seed))
    neutral, L = sy.render_frame(ident, {}, (0, 0, 0), 160)

    def change(au: dict[str, float], pts: np.ndarray) -> float:
        f, _ = sy.render_frame(ident, au, (0, 0, 0), 160)
        return float(np.abs(_region(f, pts) - _region(neutral, pts)).mean())

    mouth, forehead = L[48:68], np.concatenate([L[17:27], L[17:27] - [0, 20]])
    eyes = np.concatenate([L[36:42], L[42:48]])
    # jaw drop + lips apart: the mouth changes, the forehead does not
    open_mouth = {"AU25": 5, "AU26": 5}
    assert change(open_mouth, mouth) > 15
    assert change(open_mouth, forehead) < 0.1 * change(open_mouth, mouth)
    # brow raise: forehead lines and brows, not the mouth
    surprise = {"AU01": 5, "AU02": 5}
    assert change(surprise, forehead) > 3 * change(surprise, mouth)
    # blink: the eyes really close (no sclera left, lids meet) and nothing else moves much
    closed, Lc = sy.render_frame(ident, {"AU45": 5}, (0, 0, 0), 160)
    assert change({"AU45": 5}, eyes) > 3 * change({"AU45": 5}, mouth)
    opening = lambda lm: (lm[[41, 40, 47, 46], 1] - lm[[37, 38, 43, 44], 1]).mean()  # noqa: E731
    assert opening(L) > 2 and abs(opening(Lc)) < 0.3
    def sclera(f: np.ndarray) -> int:  # bright, grey pixels in the eyes
        r = _region(f, eyes, 0)
        return int((((r.max(-1) - r.min(-1)) < 20) & (r.min(-1) > 110)).sum())

    assert sclera(neutral) > 10 and sclera(closed) < 0.1 * sclera(neutral)
    # smile: lip corners go up and out
    _, Ls = sy.render_frame(ident, {"AU12": 5}, (0, 0, 0), 160)
    assert Ls[48, 1] < L[48, 1] - 1 and Ls[54, 1] < L[54, 1] - 1
    assert Ls[54, 0] - Ls[48, 0] > L[54, 0] - L[48, 0]
    # frown: brows come down and together
    _, Lf = sy.render_frame(ident, {"AU04": 5}, (0, 0, 0), 160)
    assert Lf[21, 1] > L[21, 1] + 1 and Lf[22, 0] - Lf[21, 0] < L[22, 0] - L[21, 0]


def test_head_pose_rotates_the_face() -> None:
    ident = sy.sample_identity(np.random.default_rng(1))
    _, L0 = sy.render_frame(ident, {}, (0, 0, 0), 160)
    _, Ly = sy.render_frame(ident, {}, (12, 0, 0), 160)
    _, Lp = sy.render_frame(ident, {}, (0, 8, 0), 160)
    _, Lr = sy.render_frame(ident, {}, (0, 0, 8), 160)
    assert Ly[30, 0] - L0[30, 0] > 2  # yaw > 0: the nose turns towards image right
    assert Lp[30, 1] < L0[30, 1] - 1  # pitch > 0: chin up, nose moves up
    eye_line = lambda lm: np.degrees(np.arctan2(*(lm[45] - lm[36])[::-1]))  # noqa: E731
    assert eye_line(Lr) - eye_line(L0) == pytest.approx(8, abs=1.0)  # roll > 0: clockwise


def test_motion_is_temporally_smooth() -> None:
    F = _frames(sy.synthesize_clip(2, 3.0)).astype(np.float32)
    d1 = np.abs(F[1:] - F[:-1]).mean()
    d4 = np.abs(F[4:] - F[:-4]).mean()
    d16 = np.abs(F[16:] - F[:-16]).mean()
    assert d1 < d4 < d16


def test_centred_still_image_floor_ranks_above_chance_but_not_perfectly() -> None:
    """The floor d = I_t - mean(I_t) must find real temporal structure, yet leave room to learn."""
    accs = [_centred_floor_accuracy(_frames(sy.synthesize_clip(seed, 4.0, size=96)), T=5, S=2)
            for seed in (0, 1)]
    assert 0.6 < np.mean(accs) < 0.97, accs


# ----------------------------------------------------------------------------------------- files


def test_synth_writes_videos_and_sidecars_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    calls: list[int] = []
    paths = sy.synth(out, subjects=2, seconds=0.8, fps=10.0, seed=7, size=64, progress=calls.append)
    assert paths == [out / "S001" / "S001.mp4", out / "S002" / "S002.mp4"]
    assert sum(calls) == 2
    for i, mp4 in enumerate(paths):
        frames, _, fps = read_video(mp4)
        assert frames.shape == (8, 64, 64, 3) and fps == pytest.approx(10.0)
        lab = pd.read_csv(mp4.with_suffix(".csv"))
        assert list(lab.columns) == sy.LABEL_COLUMNS and len(lab) == 8
        lm = np.load(mp4.parent / f"{mp4.stem}.landmarks.npy")
        assert lm.shape == (8, 68, 2) and lm.dtype == np.float32
        clip = sy.synthesize_clip(sy.subject_seed(7, i), 0.8, 10.0, 64)
        np.testing.assert_allclose(lab[sy.AU_NAMES].to_numpy(), clip.au, atol=1e-3)
        np.testing.assert_array_equal(lm, clip.landmarks)
        # the video holds the clip's frames (up to H.264 loss)
        assert np.abs(frames.astype(np.float32) - _frames(clip)).mean() < 8  # noise sigma 3-7 is mostly lost
    meta = json.loads((out / "synth.json").read_text())
    assert meta["args"]["seed"] == 7 and meta["args"]["subjects"] == 2 and meta["version"]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))  # no temp files left

    # resumable: complete subjects are skipped, an incomplete one is redone
    stamp = paths[0].stat().st_mtime_ns
    (paths[1].with_suffix(".csv")).unlink()
    sy.synth(out, subjects=3, seconds=0.8, fps=10.0, seed=7, size=64)
    assert paths[0].stat().st_mtime_ns == stamp
    assert paths[1].with_suffix(".csv").exists() and (out / "S003" / "S003.landmarks.npy").exists()
    # other settings into the same folder would mix datasets
    with pytest.raises(OutputError, match="other settings"):
        sy.synth(out, subjects=2, seconds=2.0, fps=10.0, seed=7, size=64)


def test_synth_same_seed_same_files_in_another_process(tmp_path: Path) -> None:
    """``synth`` with one seed writes the same files in this process and in a fresh one with another
    ``PYTHONHASHSEED``: the same decoded frames (libx264's own SIMD code gave frames up to 29 grey levels apart from
    run to run), byte-identical sidecars; another seed draws other people."""
    a, b = tmp_path / "a", tmp_path / "b"
    kw = {"subjects": 2, "seconds": 1.2, "size": 96, "seed": 3}
    sy.synth(a, **kw)
    code = f"import sys; from facedyn.data.synthetic import synth; synth(sys.argv[1], **{kw!r})"
    hash_seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    subprocess.run([sys.executable, "-c", code, str(b)], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "PYTHONHASHSEED": hash_seed})
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and len(files) == 7
    for f in files:
        if f.suffix == ".mp4":
            np.testing.assert_array_equal(read_video(a / f)[0], read_video(b / f)[0])
        assert (a / f).read_bytes() == (b / f).read_bytes(), f  # sidecars, synth.json and the mp4s themselves
    other = sy.synth(tmp_path / "c", **{**kw, "seed": 4})
    for mp4 in other:
        fa, fc = read_video(a / mp4.relative_to(tmp_path / "c"))[0], read_video(mp4)[0]
        assert np.abs(fa.astype(int) - fc.astype(int)).mean() > 10


def test_synth_unwritable_out_raises_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError) as e:
        sy.synth(blocker / "out", subjects=1, seconds=0.2, fps=10.0)
    assert "\n" not in str(e.value) and "--out" in str(e.value)
    with pytest.raises(ConfigError):
        sy.synth(tmp_path / "x", subjects=0, seconds=1.0)


# ------------------------------------------------------------------------------------- resting morphology


def test_resting_morphology_ranges_and_independent_stream() -> None:
    from facedyn.data.synthetic.resting import RESTING_RANGES, sample_resting

    rests = np.stack([sample_resting(s) for s in range(400)])
    for name, (p, (lo, hi)) in RESTING_RANGES.items():
        v = rests[:, sy.AU_NAMES.index(name)]
        on = v > 0
        assert abs(on.mean() - p) < 0.08, name
        assert ((v[on] >= lo) & (v[on] <= hi)).all(), name
    assert not rests[:, sy.AU_NAMES.index("AU26")].any()
    np.testing.assert_array_equal(sample_resting(7), sample_resting(7))


def test_resting_shape_moves_the_face_not_the_labels() -> None:
    seed = next(s for s in range(50) if sy.synthesize_clip(s, 0.1).rest[sy.AU_NAMES.index("AU15")] > 0)
    plain = sy.synthesize_clip(seed, 0.8, resting=False)
    rest = sy.synthesize_clip(seed, 0.8)
    pd.testing.assert_frame_equal(plain.labels, rest.labels)  # labels = activity, the same timeline
    assert not plain.rest.any() and rest.rest[sy.AU_NAMES.index("AU15")] > 0
    np.testing.assert_array_equal(plain.identity.shape, rest.identity.shape)  # the same person otherwise
    corners = [48, 54]
    drop = (rest.landmarks[:, corners, 1] - plain.landmarks[:, corners, 1]).mean()
    assert drop > 0.3  # down-turned corners at rest (pixels, y down)
    np.testing.assert_allclose(rest.shown, np.minimum(rest.au + rest.rest, 5))
    assert np.abs(_frames(plain).astype(int) - _frames(rest).astype(int)).mean() > 0.1


def test_synth_records_resting_and_refuses_to_mix(tmp_path: Path) -> None:
    sy.synth(tmp_path / "a", subjects=1, seconds=0.2, size=64, resting=False)
    meta = json.loads((tmp_path / "a" / "synth.json").read_text())
    assert meta["args"]["resting"] is False and meta["version"] == sy.GENERATOR_VERSION
    with pytest.raises(OutputError):
        sy.synth(tmp_path / "a", subjects=1, seconds=0.2, size=64, resting=True)
