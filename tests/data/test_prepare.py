"""prepare on synthetic faces: every frame valid, eyes aligned onto the template, labels carried over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facedyn.data.faces import eye_centres, template
from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.store import ClipDataset
from facedyn.data.synthetic import synth


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prep")
    synth(root / "v", subjects=2, seconds=3, fps=25, seed=3, size=128)
    prepare([root / "v"], root / "d", PrepareOptions(size=64), workers=2)  # labels cross to workers
    return root / "d"


def test_synthetic_frames_valid_and_eyes_on_template(prepared: Path) -> None:
    ds = ClipDataset(prepared)
    tmpl = eye_centres(template(64))
    for clip in ds.clips():
        assert clip.valid.mean() >= 0.99
        eyes = np.stack([eye_centres(lm) for lm in clip.landmarks[clip.valid]])
        err = np.linalg.norm(eyes - tmpl[None], axis=-1)
        assert err.max() < 2.0, f"{clip.clip_id}: eye error up to {err.max():.2f} px"
        assert clip.meta["detector"] == "given-landmarks"


def test_labels_follow_frames(prepared: Path) -> None:
    clip = ClipDataset(prepared).clips()[0]
    src = pd.read_csv(next((prepared.parent / "v").rglob(f"{clip.clip_id}.csv")))
    assert len(clip.labels) == len(clip) == len(src)
    np.testing.assert_allclose(clip.labels["AU12"], src["AU12"], atol=1e-5)
    assert "timestamp" not in clip.labels.columns


def test_detector_path_on_synthetic_faces(tmp_path: Path) -> None:
    """Without the generator's landmarks, dlib itself finds the drawn faces."""
    synth(tmp_path / "v", subjects=1, seconds=1, fps=25, seed=5, size=160)
    import shutil

    video = tmp_path / "alone.mp4"  # without its sidecar landmarks
    shutil.copy(next((tmp_path / "v").rglob("*.mp4")), video)
    res = prepare([video], tmp_path / "d", PrepareOptions(size=64))
    assert res[0].n_valid >= 0.9 * res[0].n_frames
    assert ClipDataset(tmp_path / "d").clips()[0].meta["detector"].startswith("dlib-hog")
