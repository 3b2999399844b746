"""AU proxies from landmarks: formulas, invariances, per-person rest, NaN on frames without a face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedyn.data.faces.landmarks68 import template
from facedyn.data.store import ClipDataset, ClipWriter, write_index
from facedyn.errors import ConfigError, DatasetError
from facedyn.tasks.proxies import PROXY_COLUMNS, measures, presence_threshold, store_proxies


def _faces(n: int, mouth: np.ndarray | None = None, size: int = 64) -> np.ndarray:
    """``n`` template faces; ``mouth`` (n,) opens the inner lips by that many IODs."""
    lm = np.repeat(template(size)[None], n, axis=0).astype(np.float64)
    if mouth is not None:
        iod = np.linalg.norm(lm[0, 36:42].mean(0) - lm[0, 42:48].mean(0))
        lm[:, [65, 66, 67]] = lm[:, [63, 62, 61]]  # lower inner lip onto the upper one, then down
        lm[:, [65, 66, 67], 1] += (mouth * iod)[:, None]
    return lm


def _rotate_scale(lm: np.ndarray, deg: float, s: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return s * lm @ R.T + np.asarray(shift)


def test_mouth_gap_in_iods_and_similarity_invariance() -> None:
    lm = _faces(3, mouth=np.array([0.0, 0.1, 0.3]))
    g = measures(lm)
    assert g["AU25_p"] == pytest.approx([0.0, 0.1, 0.3], abs=1e-9)
    g2 = measures(_rotate_scale(lm, 17.0, 2.5, (40.0, -7.0)))  # roll, scale and shift change nothing
    for k in PROXY_COLUMNS:
        np.testing.assert_allclose(g2[k], g[k], atol=1e-9)
    # raising the inner brows by 0.05 IOD raises AU01's measure by exactly that, leaves AU02's alone
    up = lm.copy()
    iod = np.linalg.norm(lm[0, 36:42].mean(0) - lm[0, 42:48].mean(0))
    up[:, [20, 21, 22, 23], 1] -= 0.05 * iod
    g3 = measures(up)
    np.testing.assert_allclose(g3["AU01_p"] - g["AU01_p"], 0.05, atol=1e-9)
    np.testing.assert_allclose(g3["AU02_p"], g["AU02_p"], atol=1e-9)
    with pytest.raises(ConfigError):
        measures(np.zeros((3, 5, 2)))


def _store(root: Path) -> ClipDataset:
    """Person A: two clips, mouth resting closed; person B: one clip, resting mouth 0.1 IOD open."""
    rng = np.random.default_rng(0)
    info = {}
    clips = {"a1": ("A", 0.0), "a2": ("A", 0.0), "b1": ("B", 0.1)}
    for cid, (subj, rest) in clips.items():
        n = 40
        mouth = rest + np.where(rng.random(n) < 0.3, rng.uniform(0.1, 0.4, n), 0.0)
        lm = _faces(n, mouth=mouth, size=32)
        w = ClipWriter(root, cid, 32)
        for i in range(n):
            w.add(np.full((32, 32, 3), 100, np.uint8), lm[i], i != 5, i / 25)
        w.commit(None, {"fps": 25.0, "subject": subj, "source": "test"})
        info[cid] = {"subject": subj, "n_frames": n, "n_valid": n - 1, "fps": 25.0}
    write_index(root, info, "test")
    return ClipDataset(root)


def test_store_proxies_relative_to_each_persons_rest(tmp_path: Path) -> None:
    store = _store(tmp_path)
    out = store_proxies(store)
    assert set(out) == {"a1", "a2", "b1"}
    for df in out.values():
        assert list(df.columns) == list(PROXY_COLUMNS) and len(df) == 40
        assert df.iloc[5].isna().all() and (df.drop(index=5).to_numpy() >= 0).all()
    # B's resting 0.1 IOD gap is not activity: both people's proxies start from ~0 at rest
    for cid in out:
        assert np.nanpercentile(out[cid]["AU25_p"], 5) == pytest.approx(0.0, abs=1e-6)
    assert np.nanmax(out["b1"]["AU25_p"]) <= 4.0 + 1e-6  # activity <= 0.4 IOD = 4 tenths
    only = store_proxies(store, clips=["a2"])
    np.testing.assert_allclose(only["a2"].to_numpy(), out["a2"].to_numpy())  # rest still over both A clips
    with pytest.raises(DatasetError):
        store_proxies(store, clips=["zz"])


def test_presence_thresholds() -> None:
    for c in PROXY_COLUMNS:
        assert 0 < presence_threshold(c) < 2
    with pytest.raises(ConfigError):
        presence_threshold("AU99_p")


def test_stream_proxies_use_the_running_rest_and_mark_the_warm_up() -> None:
    from facedyn.tasks.proxies import StreamProxies

    opening = np.r_[np.zeros(10), np.full(5, 0.3), np.zeros(5)]  # rest, mouth open by 0.3 IOD, rest
    # image-plane measures: these 2-D template faces are no 3-D face's projection, and the exact values are the point
    # here (the frontalised measures analyze uses are tested in test_turned_heads.py)
    stream = StreamProxies(warmup=8, frontalise=False)
    out = [stream(lm) for lm in _faces(len(opening), mouth=opening)]
    values = np.array([o[0]["AU25_p"] for o in out])
    ready = [o[1] for o in out]
    assert ready == [False] * 7 + [True] * 13
    np.testing.assert_allclose(values, 10 * opening, atol=1e-9)  # tenths of the IOD above the rest so far
    assert all(np.isfinite(list(o[0].values())).all() for o in out)
    # the rest so far: a face that starts with its mouth open reads 0 until it has been seen closed
    stream = StreamProxies(warmup=1, frontalise=False)
    first, _ = stream(_faces(1, mouth=np.array([0.3]))[0])
    assert first["AU25_p"] == 0.0
    assert stream(_faces(1, mouth=np.array([0.0]))[0])[0]["AU25_p"] == 0.0
