"""`prepare --align box`: loose square crops that keep head roll, scale and shift (TCAE, FAb-Net)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from facedyn.cli import main
from facedyn.data.faces.align import (
    BOX_SCALE,
    box_matrix,
    box_track,
    landmark_boxes,
    smooth_track,
)
from facedyn.data.prepare import PrepareOptions, prepare, template_id
from facedyn.data.store import ClipDataset
from facedyn.data.synthetic.face3d import sample_identity
from facedyn.data.synthetic.render import render_frame
from facedyn.data.video import write_video

ROLL = 14.0 * np.sin(np.linspace(0, 2 * np.pi, 40))  # degrees, one slow roll right and left over 1.6 s


@pytest.fixture(scope="module")
def rolling_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic person rolling the head (no other motion), 40 frames at 25 fps, with its landmarks."""
    root = tmp_path_factory.mktemp("roll") / "v"
    (root / "S001").mkdir(parents=True)
    ident = sample_identity(np.random.default_rng(7))
    frames, lms = [], []
    for r in ROLL:
        f, lm = render_frame(ident, {}, (0.0, 0.0, float(r)), size=128)
        frames.append(f)
        lms.append(lm)
    write_video(root / "S001" / "S001.mp4", frames, 25.0)
    np.save(root / "S001" / "S001.landmarks.npy", np.stack(lms).astype(np.float32))
    return root


def _eye_line_angle(lm: np.ndarray) -> np.ndarray:
    """Angle (degrees, clockwise in the image) of the line from the image-left to the image-right eye centre."""
    a, b = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    d = b - a
    return np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def test_box_crops_keep_roll_and_similarity_crops_remove_it(rolling_head: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # box through the CLI (its --align option), similarity through the API
    monkeypatch.setattr(sys, "argv", ["facedyn", "prepare", str(rolling_head), "--out", str(tmp_path / "box"),
                                      "--size", "32", "--align", "box"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None)
    prepare([rolling_head], tmp_path / "sim", PrepareOptions(size=32))
    box = ClipDataset(tmp_path / "box").clips()[0]
    sim = ClipDataset(tmp_path / "sim").clips()[0]
    assert box.valid.all() and sim.valid.all()
    a_box, a_sim = _eye_line_angle(box.landmarks), _eye_line_angle(sim.landmarks)
    src = np.load(rolling_head / "S001" / "S001.landmarks.npy")
    a_src = _eye_line_angle(src)
    assert np.ptp(a_src) > 20
    np.testing.assert_allclose(a_box, a_src, atol=0.05)  # no rotation: the crop keeps the roll exactly
    assert np.abs(a_sim).max() < 1.0  # similarity alignment levels the eyes
    # the box crop's pixels roll too: the crop of the most rolled frames differ, the similarity ones much less
    i, j = int(np.argmax(ROLL)), int(np.argmin(ROLL))
    d_box = np.abs(box.frames[i].astype(float) - box.frames[j]).mean()
    d_sim = np.abs(sim.frames[i].astype(float) - sim.frames[j]).mean()
    assert d_box > 2 * d_sim


def test_box_store_contract_and_default_mask(rolling_head: Path, tmp_path: Path) -> None:
    prepare([rolling_head], tmp_path / "d", PrepareOptions(size=32, align="box"))
    ds = ClipDataset(tmp_path / "d")
    assert ds.spec()["align"] == "box" and ds.spec()["mask"] is False
    assert ds.spec()["template"] == template_id("box") == f"box:{BOX_SCALE:g}x,sigma0.5s"
    raw = json.loads((tmp_path / "d" / "index.json").read_text())
    assert raw["align"] == "box" and raw["mask"] is False
    clip = ds.clips()[0]
    assert clip.meta["align"] == "box"
    # unmasked: the corners show background, not zeros
    assert clip.frames[:, :3, :3].mean() > 10
    # masking stays an option
    prepare([rolling_head], tmp_path / "m", PrepareOptions(size=32, align="box", mask=True))
    m = ClipDataset(tmp_path / "m")
    assert m.mask is True and m.clips()[0].frames[:, :3, :3].max() == 0


def test_box_math() -> None:
    lm = np.zeros((3, 68, 2))
    lm[:, :, 0] = np.linspace(10, 30, 68)  # x 10..30: width 20
    lm[:, :, 1] = np.linspace(50, 90, 68)  # y 50..90: height 40
    lm[2] += 100
    valid = np.array([True, False, True])
    b = landmark_boxes(lm, valid)
    np.testing.assert_allclose(b[0], [20, 70, 40])
    assert np.isnan(b[1]).all()
    # the box's centre goes to the crop's centre and the enlarged side spans the crop
    M = box_matrix(b[0], 64, scale=2.0)
    c = M[:, :2] @ np.array([20.0, 70.0]) + M[:, 2]
    np.testing.assert_allclose(c, [31.5, 31.5])
    np.testing.assert_allclose(M[0, 0] * 2.0 * 40, 64)
    assert M[0, 1] == M[1, 0] == 0  # no rotation
    # runs of valid frames are smoothed separately; invalid frames are left alone
    x = np.array([[0.0], [10.0], [np.nan], [100.0], [100.0]])
    s = smooth_track(x, np.array([True, True, False, True, True]), sigma=5.0)
    assert 0 < s[0, 0] < 10 and 0 < s[1, 0] < 10 and np.isnan(s[2, 0]) and np.allclose(s[3:], 100)
    mats = box_track(lm, valid, fps=25.0, size=32)
    assert mats.shape == (3, 2, 3) and np.isnan(mats[1]).all() and np.isfinite(mats[[0, 2]]).all()


def test_unknown_align_is_refused(tmp_path: Path) -> None:
    from facedyn.errors import ConfigError

    with pytest.raises(ConfigError, match="--align 'perspective'"):
        prepare([tmp_path / "x.mp4"], tmp_path / "d", PrepareOptions(align="perspective"))
