"""The adapters of the datasets TCAE and FAb-Net train and probe on, each on a tiny copy of its real layout.

Layouts come from ``support.layouts`` (synthetic faces with known landmarks, pose and AUs, written as the
datasets ship them); each adapter must read them exactly and refuse a wrong layout with one line naming the
file it expected.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facedyn.data.datasets import discover
from facedyn.data.datasets.stills import five_points
from facedyn.errors import DatasetError, LabelFormatError
from support import layouts


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def by_id(sources):
    return {s.clip_id: s for s in sources}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {k: b(base / k) for k, b in layouts.BUILDERS.items() if k in ("voxceleb", "300w", "mafl", "aflw",
                                                                          "emotionet", "semaine")}


def test_voxceleb_tracks_identities_and_test_split(roots, tmp_path):
    srcs = by_id(discover("voxceleb", roots["voxceleb"]))
    assert set(srcs) == {"id00012_vid0xYz_00001", "id00015_vid1xYz_00001", "id00017_vid2xYz_00001",
                         "id00019_vid3xYz_00001", "id00012_frames0_00002"}
    assert srcs["id00012_frames0_00002"].subject == "id00012" and srcs["id00012_frames0_00002"].fps == 25.0
    assert srcs["id00012_frames0_00002"].video.is_dir() and all(s.split is None for s in srcs.values())
    root = tmp_path / "vox"  # a VoxCeleb1 test identity and a VoxCeleb2 test folder are test
    shutil.copy(srcs["id00015_vid1xYz_00001"].video, layouts.write(root / "id10270/abc/00001.mp4", ""))
    shutil.copy(srcs["id00015_vid1xYz_00001"].video, layouts.write(root / "test/mp4/id00500/xyz/00003.mp4", ""))
    assert {s.subject: s.split for s in discover("voxceleb", root)} == {"id10270": "test", "id00500": "test"}


def test_voxceleb_wrong_layout_names_the_track_path(tmp_path):
    layouts.video(tmp_path / "flat" / "clip.mp4", seed=1, seconds=0.2)  # no identity/video folders
    with pytest.raises(DatasetError) as e:
        discover("voxceleb", tmp_path / "flat")
    assert "id00012/21Uxsk56VDQ/00001.mp4" in one_line(e)


def test_300w_pts_are_one_based_and_the_split_is_the_common_protocol(roots):
    srcs = by_id(discover("300w", roots["300w"]))
    assert {k: s.split for k, s in srcs.items()} == {
        "lfpw_trainset_image_0000": "train", "helen_trainset_image_0001": "train", "afw_image_0002": "train",
        "lfpw_testset_image_0003": "test", "ibug_image_0004": "test", "lfpw_trainset_image_0005": "train"}
    assert srcs["ibug_image_0004"].extra["subset"] == "challenging"
    _, lm, _ = layouts.still(604)  # the generator's landmarks of ibug/image_0004
    got = srcs["ibug_image_0004"].landmarks
    assert got.shape == (1, 68, 2)
    np.testing.assert_allclose(got[0], lm, atol=1e-3)  # written 1-based, read back 0-based


def test_300w_wrong_layouts(roots, tmp_path):
    root = tmp_path / "w"
    shutil.copytree(roots["300w"], root)
    for p in root.rglob("*.pts"):
        p.unlink()
    with pytest.raises(DatasetError) as e:  # images without their .pts
        discover("300w", root)
    assert "lfpw/trainset/image_0001.png" in one_line(e) and ".pts" in one_line(e)
    layouts.write(root / "afw" / "image_0002.pts", "version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(LabelFormatError) as e:
        discover("300w", root)
    assert "image_0002.pts" in one_line(e) and "68" in one_line(e)


def test_mafl_five_points_lists_and_template_placement(roots):
    srcs = by_id(discover("mafl", roots["mafl"]))
    assert [srcs[k].split for k in sorted(srcs)] == ["train"] * 4 + ["test"] * 2
    lab = srcs["000002"].labels(np.zeros(1))
    _, lm, _ = layouts.still(701)
    pts = lab[[f"point{k}_{a}" for k in range(5) for a in "xy"]].to_numpy().reshape(5, 2)
    np.testing.assert_allclose(pts, np.rint(five_points(lm)))  # CelebA's integer pixels
    placed = srcs["000002"].landmarks[0]
    assert np.abs(five_points(placed) - pts).max() < 3.0  # the template fitted to the five points


def test_mafl_wrong_layout_names_the_missing_list(roots, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(roots["mafl"], root)
    (root / "MAFL" / "testing.txt").unlink()
    with pytest.raises(DatasetError) as e:
        discover("mafl", root)
    assert str(root / "MAFL" / "testing.txt") in one_line(e)
    (root / "Anno" / "list_landmarks_align_celeba.txt").unlink()
    with pytest.raises(DatasetError) as e:
        discover("mafl", root)
    assert "list_landmarks_align_celeba.txt" in one_line(e)


def test_aflw_sqlite_pose_in_degrees_boxes_and_test_list(roots):
    srcs = by_id(discover("aflw", roots["aflw"]))
    assert [srcs[k].split for k in sorted(srcs)] == ["train"] * 4 + ["test"] * 2
    _, lm, lab = layouts.still(803)
    got = srcs["face39344"].labels(np.zeros(1))
    np.testing.assert_allclose(got[["pose_yaw", "pose_pitch", "pose_roll"]].to_numpy()[0],
                               [lab["pose_yaw"], lab["pose_pitch"], lab["pose_roll"]], atol=1e-9)
    box = srcs["face39344"].landmarks[0]  # the template placed in FaceRect
    assert np.abs(box.min(0) - lm.min(0).astype(int)).max() < 6 and srcs["face39344"].video.name == "image00005.jpg"


def test_aflw_wrong_layout_names_the_database(roots, tmp_path):
    with pytest.raises(DatasetError) as e:
        discover("aflw", layouts.write(tmp_path / "a" / "readme.txt", "").parent)
    assert "aflw/data/aflw.sqlite" in one_line(e)
    root = tmp_path / "b"
    shutil.copytree(roots["aflw"], root)
    shutil.rmtree(root / "aflw" / "data" / "flickr")
    with pytest.raises(DatasetError) as e:
        discover("aflw", root)
    assert "flickr" in one_line(e) and "image00002.jpg" in one_line(e)


def test_emotionet_urls_au_columns_and_999(roots):
    srcs = by_id(discover("emotionet", roots["emotionet"]))
    assert len(srcs) == 8 and srcs["N_0000000"].video.name == "N_0000000.jpg"
    lab0 = srcs["N_0000000"].labels(np.zeros(1))
    lab1 = srcs["N_0000001"].labels(np.zeros(1))
    assert np.isnan(lab0["AU43"][0]) and lab1["AU43"][0] in (0.0, 1.0)  # 999 = not coded
    assert {c for c in lab0.columns if c.startswith("AU")} == {f"AU{a:02d}" for a in
                                                               (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)}


def test_emotionet_wrong_layouts(roots, tmp_path):
    root = tmp_path / "e"
    shutil.copytree(roots["emotionet"], root)
    (root / "EmotioNet_manual.csv").rename(root / "labels.csv")
    with pytest.raises(DatasetError) as e:
        discover("emotionet", root)
    assert "EmotioNet_manual.csv" in one_line(e)
    layouts.write(root / "EmotioNet_manual.csv", "URL,AU1,AU2\nhttp://x.org/a/N_0000000.jpg,1,7\n")
    with pytest.raises(LabelFormatError) as e:
        discover("emotionet", root)
    assert "999" in one_line(e)


def test_semaine_separate_annotator_files_are_averaged(roots):
    srcs = by_id(discover("semaine", roots["semaine"]))
    assert [srcs[k].split for k in ("s01", "s02", "s03")] == ["train", "val", "test"]
    clip = layouts.synthesize_clip(200, 1.2, fps=50.0, size=layouts.SIZE)
    ts = clip.labels["timestamp"].to_numpy()[:20]
    lab = srcs["s01"].labels(ts)  # R1 = truth - 0.05, R2 = truth + 0.05: the mean is the truth
    np.testing.assert_allclose(lab["valence"], clip.labels["valence"].to_numpy()[:20], atol=1e-3)


def test_stills_prepare_one_frame_clips_and_probe_points_in_crop_pixels(roots, tmp_path):
    from facedyn.data.prepare import PrepareOptions, prepare
    from facedyn.data.store import ClipDataset
    from facedyn.tasks.probes import landmark_nme, probe_targets, select_frames

    res = prepare([roots["mafl"]], tmp_path / "mafl", PrepareOptions(size=32, align="box"), kind="mafl")
    assert not any(r.error for r in res) and all(r.n_frames == 1 == r.n_valid for r in res)
    store = ClipDataset(tmp_path / "mafl")
    assert store.splits["test"] == ["000005", "000006"]
    frames = select_frames(store)
    t = probe_targets(store, frames, "landmarks")
    assert t.continuous.shape == (6, 10) and "5 points" in t.source
    crop_eyes = np.stack([five_points(store.clip(c).landmarks[0])[:2] for c in frames["clip"]])
    np.testing.assert_allclose(t.continuous[:, :4].reshape(6, 2, 2), crop_eyes, atol=1.5)  # the same similarity
    assert (t.continuous >= -1).all() and (t.continuous <= 32).all()
    assert landmark_nme(t.continuous, t.continuous).max() == 0.0
