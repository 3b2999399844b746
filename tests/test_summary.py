"""``facedyn.summarize`` and infer's ``summary.csv`` (issue 30, item 6): the arithmetic on tables built by hand,
and the blinks of a synthetic clip whose blink times are known."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import facedyn
from facedyn.face_summary import SUMMARY_COLUMNS, blink_onsets, frame_durations, summarize
from facedyn.tasks.proxies import PROXY_COLUMNS


def _table(rows: list[dict]) -> pd.DataFrame:
    """An analyze-like table: the given columns, every proxy 0 and confidence 1 unless given."""
    base = {"success": 1, "confidence": 1.0, "pose_yaw_deg": 0.0, "pose_pitch_deg": 0.0, "pose_roll_deg": 0.0,
            **dict.fromkeys(PROXY_COLUMNS, 0.0)}
    out = []
    for r in rows:
        if r["face_id"] < 0:
            out.append({"success": 0, "confidence": 0.0, **{k: np.nan for k in base if k not in ("success",
                                                                                                "confidence")}, **r})
        else:
            out.append({**base, **r})
    return pd.DataFrame(out)


def test_summary_arithmetic_by_hand() -> None:
    """Two faces over 11 frames at 25 fps (frame 10 without a face); every number worked out by hand."""
    au45 = [0, 1.0, 0.2, 0.9, 0, 0, 0, 1.2, 0, 0]  # active (> 0.6) at 0.04, 0.12 (one blink: 0.08 s apart), 0.28
    yaw = [-10, -5, 0, 5, 10, 20, 20, 20, 20, 20]
    rows = [{"frame": k, "timestamp": 0.04 * k, "face_id": 0, "confidence": 0.5 + 0.05 * k, "pose_yaw_deg": yaw[k],
             "AU45_p": au45[k], "AU12_p": 0.5, "AU25_p": 0.9 * (k < 4), "dr": np.full((1, 2, 2), float(k))}
            for k in range(10)]
    rows += [{"frame": k, "timestamp": 0.04 * k, "face_id": 1, "AU01_p": 0.3 + 0.1 * (k == 3),
              "dr": np.zeros((1, 2, 2))} for k in (2, 3)]
    rows.append({"frame": 10, "timestamp": 0.4, "face_id": -1})
    df = _table(rows).sort_values(["frame", "face_id"]).reset_index(drop=True)
    np.testing.assert_allclose(frame_durations(df).to_numpy(), np.full(11, 0.04))  # last frame: the median
    s = facedyn.summarize(df)
    assert list(s.columns) == [*SUMMARY_COLUMNS, "dr_motion"] and s["face_id"].tolist() == [0, 1]
    a, b = s.iloc[0], s.iloc[1]
    assert (a["frames"], b["frames"]) == (10, 2)
    assert (a["start_s"], a["end_s"], b["start_s"], b["end_s"]) == pytest.approx((0, 0.36, 0.08, 0.12))
    assert (a["visible_s"], b["visible_s"]) == pytest.approx((0.4, 0.08))
    assert a["confidence_mean"] == pytest.approx(0.725)  # 0.5 .. 0.95
    # numpy's linear percentiles of [-10, -5, 0, 5, 10, 20 x5]: p5 at rank 0.45, p95 at rank 8.55
    assert a["pose_yaw_deg_p5"] == pytest.approx(-10 + 0.45 * 5) and a["pose_yaw_deg_p95"] == pytest.approx(20)
    assert a["pose_pitch_deg_p5"] == a["pose_pitch_deg_p95"] == 0
    assert a["AU45_p_active"] == pytest.approx(0.3) and a["AU45_p_peak"] == pytest.approx(1.2)
    assert a["AU12_p_active"] == pytest.approx(1.0) and a["AU12_p_peak"] == pytest.approx(0.5)
    assert a["AU25_p_active"] == pytest.approx(0.4) and a["AU25_p_peak"] == pytest.approx(0.9)  # 0.9 > 0.8 on 4 rows
    assert b["AU01_p_active"] == pytest.approx(0.5) and b["AU01_p_peak"] == pytest.approx(0.4)  # 0.4 > 0.3 only
    assert a["blinks"] == 2 and a["blink_rate_per_min"] == pytest.approx(2 / 0.4 * 60)  # 300 a minute
    assert b["blinks"] == 0 and b["blink_rate_per_min"] == 0
    assert a["dr_motion"] == pytest.approx(9 * 1.0 / 0.36)  # 9 steps of 1 in every value over 0.36 s
    assert b["dr_motion"] == 0
    assert blink_onsets(df[df.face_id == 0]["timestamp"], au45) == pytest.approx([0.04, 0.28])
    # the same from faces.csv and the DRs given apart (as infer writes them): maps one array per row
    maps = {"dr": [r if isinstance(r, np.ndarray) else np.full((1, 2, 2), np.nan) for r in df["dr"]]}
    t = summarize(df.drop(columns="dr"), maps)
    pd.testing.assert_frame_equal(t, s)


def test_time_weighting_and_every() -> None:
    """Frames stand for the time up to the next analysed frame (variable frame rate, every=k)."""
    rows = [{"frame": f, "timestamp": t, "face_id": 0, "AU12_p": v}
            for f, t, v in ((0, 0.0, 0.0), (3, 0.1, 1.0), (6, 0.4, 0.0))]
    rows.append({"frame": 9, "timestamp": 0.5, "face_id": -1})
    s = summarize(_table(rows))
    assert s.loc[0, "visible_s"] == pytest.approx(0.1 + 0.3 + 0.1)
    assert s.loc[0, "AU12_p_active"] == pytest.approx(0.3 / 0.5)  # active on the frame that lasts 0.3 s
    assert "dr_motion" not in s
    one = summarize(_table([{"frame": 0, "timestamp": 0.0, "face_id": 0, "AU45_p": 1.0}]))  # a still image
    assert one.loc[0, "visible_s"] == 0 and one.loc[0, "blinks"] == 1 and np.isnan(one.loc[0, "blink_rate_per_min"])
    assert one.loc[0, "AU45_p_active"] == 1.0
    assert summarize(_table([{"frame": 0, "timestamp": 0.0, "face_id": -1}])).empty


FPS = 25
BLINKS = (1.0, 2.5, 3.9, 5.6, 7.0)  # blink starts (s) in an 8 s clip


def _au45(t: float) -> float:
    """Lids close in 0.08 s, stay shut 0.04 s and reopen in 0.12 s from each blink start."""
    v = 0.0
    for s in BLINKS:
        x = t - s
        v = max(v, 5 * x / 0.08 if 0 <= x < 0.08 else 5.0 if 0.08 <= x < 0.12 else
                5 * (0.24 - x) / 0.12 if 0.12 <= x < 0.24 else 0.0)
    return v


@pytest.fixture(scope="module")
def blink_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of a synthetic face at 25 fps with blinks at :data:`BLINKS` (AU45 = 5: lids shut) and the head turning
    (yaw ±6°, pitch ±3°), as an MPEG-1 program stream (``.mpg``, B-frames)."""
    import av

    from facedyn.data.synthetic import render_frame, sample_identity

    ident = sample_identity(np.random.default_rng(3))
    path = tmp_path_factory.mktemp("blinks") / "blinks.mpg"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg1video", rate=FPS)
        s.width = s.height = 160
        s.pix_fmt, s.codec_context.bit_rate, s.codec_context.max_b_frames = "yuv420p", 2_000_000, 2
        for i in range(8 * FPS):
            t = i / FPS
            pose = (6 * np.sin(2 * np.pi * t / 5), 3 * np.sin(2 * np.pi * t / 7), 0.0)
            frame, _ = render_frame(ident, {"AU45": _au45(t)}, pose, 160, np.random.default_rng(i))
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_infer_summary_counts_the_known_blinks(blink_clip: Path, tmp_path: Path) -> None:
    """5 blinks in 8 s: ``blinks`` 5 and 37.5 a minute, exactly. No tolerance, as the margins are wide: on this
    clip each blink read AU45_p above the 0.6 threshold on 4 consecutive frames with a peak of 0.94-1.12, and the
    open eyes read at most 0.36 (the head turning included), so a blink would have to lose a third of its
    amplitude to be missed or split; ``visible_s`` is exact (200 frames of 0.04 s). Each onset falls within the
    blink's first 0.12 s (closing and shut)."""
    from facedyn.infer import infer_file

    res = infer_file(["dr-t5"], blink_clip, tmp_path, device="cpu", html=True)
    assert res["frames"] == 8 * FPS and "summary.csv" in res["files"]
    csv = pd.read_csv(tmp_path / "summary.csv")
    assert len(csv) == 1 and list(csv.columns) == [*SUMMARY_COLUMNS, "dr_motion"]
    r = csv.iloc[0]
    assert r["frames"] == 8 * FPS and r["visible_s"] == pytest.approx(8.0) and r["start_s"] == 0
    assert r["blinks"] == len(BLINKS) and r["blink_rate_per_min"] == pytest.approx(len(BLINKS) / 8 * 60)
    assert 0.5 < r["confidence_mean"] <= 1 and r["pose_yaw_deg_p5"] < -3 < 3 < r["pose_yaw_deg_p95"]
    # the lids are at least half shut (AU45 >= 2.5) on 18 frames of 200 (20 read active here)
    assert 0.05 < r["AU45_p_active"] < 0.2 and r["AU45_p_peak"] > 0.6
    assert np.isfinite(r["dr_motion"]) and r["dr_motion"] > 0
    faces = pd.read_csv(tmp_path / "faces.csv")
    assert len(faces) == 8 * FPS and faces["frame"].tolist() == list(range(8 * FPS))  # one row per decoded frame
    onsets = blink_onsets(faces["timestamp"], faces["AU45_p"])
    assert all(s <= o <= s + 0.12 for o, s in zip(onsets, BLINKS, strict=True)), onsets
    # facedyn.summarize on the files infer wrote gives summary.csv (to its 6 significant digits)
    again = facedyn.summarize(faces, {"dr": np.load(tmp_path / "dr.npy", mmap_mode="r")})
    pd.testing.assert_frame_equal(again, csv, check_dtype=False, rtol=1e-5)
    page = (tmp_path / "view.html").read_text()
    assert "Summary per face" in page and "blink_rate_per_min</td><td>37.5</td>" in page
