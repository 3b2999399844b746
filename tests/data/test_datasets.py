"""Dataset adapters: each on a tiny fixture written here in that dataset's own layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from facedyn.data.datasets import ADAPTERS, bp4d, discover, recola
from facedyn.data.datasets.labels import (
    frame_labels,
    read_arff_trace,
    read_frame_csv,
    read_trace,
    resample_trace,
)
from facedyn.data.video import read_video, write_video
from facedyn.errors import ConfigError, DatasetError, InputNotFoundError, LabelFormatError
from support import layouts

RNG = np.random.default_rng(0)


def touch(path: Path) -> Path:
    """A stand-in video file: discovery and labels() never decode it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def noise_video(path: Path, n: int = 10, fps: float = 25.0) -> Path:
    write_video(path, (RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)), fps)
    return path


def images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(folder / name), RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return folder


def avec_arff(path: Path, name: str, times: list[float], values: list[str]) -> Path:
    rows = "\n".join(f"'{name}',{t:.6f},{v}" for t, v in zip(times, values, strict=True))
    header = ("@relation GoldStandard\n\n@attribute Instance_name string\n@attribute frameTime numeric\n"
              "@attribute GoldStandard numeric\n\n@data\n")
    return write(path, f"{header}{rows}\n")


def one_line_error(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def by_id(sources):
    return {s.clip_id: s for s in sources}


# ---------------------------------------------------------------------------------------------
# labels.py


def test_read_frame_csv_wrong_columns_is_one_line_label_format_error(tmp_path):
    p = write(tmp_path / "bad.csv", "frm,AU06\n0,1\n1,2\n")
    with pytest.raises(LabelFormatError) as e:
        read_frame_csv(p)
    msg = one_line_error(e)
    assert "bad.csv" in msg and "missing column(s) frame" in msg and "expected columns frame" in msg
    with pytest.raises(LabelFormatError):  # headerless with the wrong number of columns
        read_frame_csv(write(tmp_path / "three.txt", "1,0,7\n2,1,7\n"), names=("frame", "intensity"))
    with pytest.raises(LabelFormatError):
        read_frame_csv(write(tmp_path / "frac.csv", "frame,x\n0.5,1\n"))
    with pytest.raises(InputNotFoundError):
        read_frame_csv(tmp_path / "absent.csv")


def test_read_frame_csv_headerless_and_spaced_header(tmp_path):
    df = read_frame_csv(write(tmp_path / "a.txt", "1,0\n2,3\n"), names=("frame", "intensity"))
    assert list(df.columns) == ["frame", "intensity"] and df["frame"].tolist() == [1, 2]
    df = read_frame_csv(write(tmp_path / "b.csv", "frame, AU01_r\n0, 0.5\n"))  # OpenFace-style spaces
    assert list(df.columns) == ["frame", "AU01_r"] and df["AU01_r"].iloc[0] == 0.5


def test_frame_labels_one_based_shift_and_unlabelled_code():
    df = pd.DataFrame({"frame": [1, 2, 3, 4, 5], "v": [0, 3, 9, 2, 1]})
    one = frame_labels(df, 6, one_based=True, unlabelled=9)
    assert one["frame"].tolist() == list(range(6)) and one["v"].dtype == np.float64
    np.testing.assert_array_equal(one["v"].to_numpy(), [0, 3, np.nan, 2, 1, np.nan])
    zero = frame_labels(df, 3, one_based=False)
    np.testing.assert_array_equal(zero["v"].to_numpy(), [np.nan, 0, 3])
    by_name = frame_labels(df, 3, numbers=np.array([2, 4, 5]))
    np.testing.assert_array_equal(by_name["v"].to_numpy(), [3, 2, 1])


def test_frame_labels_rejects_repeated_frames_and_text_values():
    with pytest.raises(LabelFormatError):
        frame_labels(pd.DataFrame({"frame": [0, 0], "v": [1, 2]}), 2)
    with pytest.raises(LabelFormatError) as e:
        frame_labels(pd.DataFrame({"frame": [0, 1], "v": ["a", "b"]}), 2, source="x.csv")
    assert "x.csv" in one_line_error(e)


def test_resample_trace_linear_inside_nan_outside():
    got = resample_trace(np.array([0.0, 1.0, 2.0]), np.array([0.0, 10.0, 20.0]),
                         np.array([-0.5, 0.0, 0.5, 1.25, 2.0, 2.5]))
    np.testing.assert_allclose(got, [np.nan, 0, 5, 12.5, 20, np.nan])
    # unsorted, repeated time (averaged), 2-D values
    got2 = resample_trace(np.array([1.0, 0.0, 1.0]), np.array([[10.0, 1], [0, 0], [30, 1]]), np.array([0.5]))
    np.testing.assert_allclose(got2, [[10.0, 0.5]])


def test_read_arff_trace_avec_string_instance_column(tmp_path):
    p = avec_arff(tmp_path / "train_1.arff", "train_1", [0.0, 0.04, 0.08], ["-0.1", "0.3", "?"])
    tr = read_arff_trace(p)
    assert list(tr.columns) == ["time", "GoldStandard"]
    np.testing.assert_allclose(tr["time"], [0, 0.04, 0.08])
    np.testing.assert_array_equal(tr["GoldStandard"].to_numpy(), [-0.1, 0.3, np.nan])
    no_time = write(tmp_path / "nt.arff", "@relation r\n@attribute x numeric\n@data\n1\n")
    with pytest.raises(LabelFormatError) as e:
        read_arff_trace(no_time)
    assert "frameTime" in one_line_error(e)
    with pytest.raises(LabelFormatError):
        read_arff_trace(write(tmp_path / "junk.arff", "not an arff file\n"))


def test_read_trace_headerless_text(tmp_path):
    tr = read_trace(write(tmp_path / "s_valence.txt", "0.0 0.5\n0.02 0.7\n"))
    assert list(tr.columns) == ["time", "value"] and tr["value"].tolist() == [0.5, 0.7]


# ---------------------------------------------------------------------------------------------
# folder


def test_folder_synthetic_layout_labels_and_landmarks(tmp_path):
    root = tmp_path / "out"
    for s in ("S001", "S002"):
        noise_video(root / s / f"{s}.mp4", n=10)
        rows = "\n".join(f"{i},{i / 25:.2f},{i / 10},{-i / 10}" for i in range(8))  # frames 8, 9 unlabelled
        write(root / s / f"{s}.csv", f"frame,timestamp,AU01,valence\n{rows}\n")
        np.save(root / s / f"{s}.landmarks.npy", np.zeros((10, 68, 2), np.float32))
    touch(root / "S001" / ".S001.tmp123.mp4")  # an interrupted atomic write: ignored
    srcs = discover("folder", root, splits={"S001": "training"})
    assert [s.clip_id for s in srcs] == ["S001", "S002"]
    assert [s.subject for s in srcs] == ["S001", "S002"]
    assert [s.split for s in srcs] == ["train", None]
    assert srcs[0].landmarks == root / "S001" / "S001.landmarks.npy"
    _, ts, _ = read_video(srcs[0].video)
    lab = srcs[0].labels(ts)
    assert list(lab.columns) == ["frame", "AU01", "valence"]  # timestamp is not a label
    assert len(lab) == len(ts) == 10
    np.testing.assert_allclose(lab["AU01"].to_numpy()[:8], np.arange(8) / 10)
    assert lab["AU01"].isna().tolist()[8:] == [True, True]


def test_folder_reads_what_synth_writes(tmp_path):
    from facedyn.data.synthetic import synth

    synth(tmp_path / "syn", subjects=1, seconds=0.2, fps=25, size=48)
    (src,) = discover("folder", tmp_path / "syn")
    assert (src.clip_id, src.subject) == ("S001", "S001") and src.landmarks is not None
    lab = src.labels(np.arange(5) / 25)
    assert "timestamp" not in lab.columns and {"AU01", "valence", "arousal"} <= set(lab.columns)
    assert lab.drop(columns="frame").notna().all().all()


def test_folder_image_sequences_nesting_and_unique_ids(tmp_path):
    root = tmp_path / "data"
    seq = images(root / "P1" / "take1", ["1.png", "2.png", "10.png"])
    write(seq / "labels.csv", "frame,smile\n0,0.1\n2,0.3\n")
    np.save(seq / "landmarks.npy", np.zeros((3, 68, 2), np.float32))
    touch(root / "P2" / "day1" / "clip.mp4")
    touch(root / "P3" / "clip.mp4")
    touch(root / "loose.avi")
    srcs = by_id(discover("folder", root, fps=30))
    assert set(srcs) == {"take1", "P2_day1_clip", "P3_clip", "loose"}
    assert srcs["take1"].subject == "P1" and srcs["take1"].fps == 30.0
    assert srcs["take1"].landmarks == seq / "landmarks.npy"
    np.testing.assert_array_equal(srcs["take1"].labels(np.zeros(3))["smile"].to_numpy(), [0.1, np.nan, 0.3])
    assert srcs["P2_day1_clip"].subject == "P2" and srcs["P2_day1_clip"].fps is None
    assert srcs["loose"].subject == "loose" and srcs["loose"].labels is None
    regex = by_id(discover("folder", root, subject_regex=r"^(P\d)"))
    assert regex["loose"].subject == "loose" and regex["P3_clip"].subject == "P3"


def test_folder_single_video_and_single_image_folder_roots(tmp_path):
    vid = touch(tmp_path / "a b.mp4")
    write(tmp_path / "a b.csv", "frame,x\n0,1\n")
    (src,) = discover("folder", vid)
    assert (src.clip_id, src.subject, src.video) == ("a_b", "a b", vid) and src.labels is not None
    seq = images(tmp_path / "seq", ["0.png", "1.png"])
    (one,) = discover("folder", seq)
    assert (one.clip_id, one.video) == ("seq", seq)


def test_folder_splits_from_csv_and_bad_split_names(tmp_path):
    touch(tmp_path / "d" / "A" / "a.mp4")
    touch(tmp_path / "d" / "B" / "b.mp4")
    table = write(tmp_path / "splits.csv", "subject,split\nA,devel\nB,test\n")
    assert [s.split for s in discover("folder", tmp_path / "d", splits=table)] == ["val", "test"]
    with pytest.raises(ConfigError):
        discover("folder", tmp_path / "d", splits={"A": "holdout"})
    with pytest.raises(InputNotFoundError):
        discover("bp4d", tmp_path / "d", au_dir=tmp_path / "no_such_dir")


def test_folder_wrong_label_columns_raise_on_load(tmp_path):
    vid = touch(tmp_path / "v" / "c.mp4")
    write(tmp_path / "v" / "c.csv", "idx,AU01\n0,1\n")
    (src,) = discover("folder", vid)
    with pytest.raises(LabelFormatError) as e:
        src.labels(np.zeros(2))
    assert "c.csv" in one_line_error(e)


# ---------------------------------------------------------------------------------------------
# BP4D / FERA 2015


def test_fera2015_partition_lists():
    assert len(bp4d.FERA2015_TRAIN) == 21 and len(bp4d.FERA2015_DEVEL) == 20
    assert not set(bp4d.FERA2015_TRAIN) & set(bp4d.FERA2015_DEVEL)
    assert set(bp4d.FERA2015_TRAIN) | set(bp4d.FERA2015_DEVEL) == (
        {f"F{i:03d}" for i in range(1, 24)} | {f"M{i:03d}" for i in range(1, 19)})


def test_bp4d_discovery_splits_and_au_alignment(tmp_path):
    root = tmp_path / "BP4D"
    touch(root / "videos" / "F001_T1.mp4")
    touch(root / "videos" / "F003_T2.avi")  # no AU files: no labels
    images(root / "images" / "M002" / "T3", ["0101.jpg", "0102.jpg", "0103.jpg", "0104.jpg"])
    au = root / "AUCoding" / "AU_INT"
    write(au / "AU06" / "F001_T1_AU06.csv", "1,0\n2,3\n3,9\n4,5\n")
    write(au / "AU12" / "F001_T1_AU12.csv", "frame,intensity\n1,1\n2,2\n")
    write(au / "AU06" / "M002_T3_AU06.csv", "101,1\n102,9\n103,2\n104,4\n")
    srcs = by_id(discover("bp4d", root))
    assert set(srcs) == {"F001_T1", "F003_T2", "M002_T3"}
    assert [srcs[k].subject for k in sorted(srcs)] == ["F001", "F003", "M002"]
    assert [srcs[k].split for k in sorted(srcs)] == ["train", "train", "val"]
    assert srcs["F003_T2"].labels is None and srcs["M002_T3"].fps == 25.0

    lab = srcs["F001_T1"].labels(np.arange(5) / 25)  # 1-based: decoded frame 0 = file frame 1
    assert list(lab.columns) == ["frame", "AU06", "AU10", "AU12", "AU14", "AU17"]
    np.testing.assert_array_equal(lab["AU06"].to_numpy(), [0, 3, np.nan, 5, np.nan])  # 9 -> NaN
    np.testing.assert_array_equal(lab["AU12"].to_numpy(), [1, 2, np.nan, np.nan, np.nan])
    assert lab["AU10"].isna().all()
    # image folder: image N (0-based file number) is AU row N + 1 (BP4D user guide), 0101.jpg -> row 102
    img = srcs["M002_T3"].labels(np.arange(4) / 25)
    np.testing.assert_array_equal(img["AU06"].to_numpy(), [np.nan, 2, 4, np.nan])

    zero = by_id(discover("bp4d", root, one_based=False, splits={"F001": "test"}))
    np.testing.assert_array_equal(zero["F001_T1"].labels(np.zeros(3))["AU06"].to_numpy(), [np.nan, 0, 3])
    np.testing.assert_array_equal(zero["M002_T3"].labels(np.zeros(4))["AU06"].to_numpy(), [1, np.nan, 2, 4])
    assert zero["F001_T1"].split == "test"


def test_bp4d_occurrence_real_layout_both_alignments(tmp_path):
    """AU_OCC files as the release lays them out (header 0..99, frame column, LF and CRLF): occurrence of every
    coded AU on the coded segment, NaN elsewhere and for 9; a video's AU row f is decoded frame f - 1, an image
    folder's AU row N + 1 is image N (BP4D user guide), each source saying which."""
    root = tmp_path / "BP4D"
    touch(root / "videos" / "F001_T1.mp4")
    images(root / "Sequences" / "F002" / "T1", [f"{n:04d}.jpg" for n in range(2437, 2443)])  # images 2437..2442
    touch(root / "videos" / "F003_T1.mp4")  # intensity only
    occ = root / "AUCoding" / "AU_OCC"
    # F001_T1 (LF): AU rows 3..6 coded; AU1 0,1,9,1; AU12 1,1,0,0; AU27 all absent (coded); other AUs 9
    layouts.bp4d_occ(occ / "F001_T1.csv", range(3, 7), {1: [0, 1, 9, 1], 12: [1, 1, 0, 0], 27: [0, 0, 0, 0]})
    # F002_T1 (CRLF): the coded segment starts at AU row 2440 = image 2439.jpg
    layouts.bp4d_occ(occ / "F002_T1.csv", range(2440, 2444), {1: [1, 0, 1, 9], 12: [9, 9, 9, 9]}, crlf=True)
    assert (occ / "F002_T1.csv").read_bytes().startswith(b"0,1,2,3,") and b"\r\n2440,1,9,9," in (
        occ / "F002_T1.csv").read_bytes()
    write(root / "AUCoding" / "AU_INT" / "AU12" / "F003_T1_AU12.csv", "1,2\n2,3\n")
    with pytest.warns(UserWarning) as said:
        srcs = by_id(discover("bp4d", root))
    (line,) = [str(w.message) for w in said if "BP4D labels" in str(w.message)]
    assert "occurrence (AU_OCC) for 2 of 3" in line and "intensity (AU_INT) for 1" in line and "\n" not in line
    assert "videos: AU row f = video frame f counted from 1" in line and "image folders: AU row N+1 = image" in line

    vid = srcs["F001_T1"].labels(np.arange(8) / 25)
    # intensity columns because the dataset has intensity files; occurrence: AUs with a 0/1 code (27: all 0)
    assert list(vid.columns) == ["frame", "AU06", "AU10", "AU12", "AU14", "AU17", "AU01_occ", "AU12_occ",
                                 "AU27_occ"]
    assert vid["AU12"].isna().all()  # no AU_INT file for F001_T1
    np.testing.assert_array_equal(vid["AU01_occ"], [np.nan, np.nan, 0, 1, np.nan, 1, np.nan, np.nan])
    np.testing.assert_array_equal(vid["AU12_occ"], [np.nan, np.nan, 1, 1, 0, 0, np.nan, np.nan])
    np.testing.assert_array_equal(vid["AU27_occ"], [np.nan, np.nan, 0, 0, 0, 0, np.nan, np.nan])
    assert srcs["F001_T1"].extra["label_alignment"].startswith("AU row f = video frame f counted from 1")

    img = srcs["F002_T1"].labels(np.arange(6) / 25)  # images 2437..2442 -> AU rows 2438..2443
    assert [c for c in img.columns if c.endswith("_occ")] == ["AU01_occ"]  # AU12 all 9: not coded
    np.testing.assert_array_equal(img["AU01_occ"], [np.nan, np.nan, 1, 0, 1, np.nan])
    assert srcs["F002_T1"].extra["label_alignment"].startswith("AU row N+1 = image file numbered N")
    assert list(srcs["F003_T1"].labels(np.zeros(2)).columns) == ["frame", "AU06", "AU10", "AU12", "AU14", "AU17"]

    zero = by_id(discover("bp4d", root, one_based=False))  # no offset: AU row f = decoded frame f = image f
    np.testing.assert_array_equal(zero["F001_T1"].labels(np.zeros(8))["AU01_occ"],
                                  [np.nan, np.nan, np.nan, 0, 1, np.nan, 1, np.nan])
    np.testing.assert_array_equal(zero["F002_T1"].labels(np.zeros(6))["AU01_occ"],
                                  [np.nan, np.nan, np.nan, 1, 0, 1])


def test_bp4d_occurrence_wrong_layouts_fail_in_one_line(tmp_path):
    touch(tmp_path / "F001_T1.mp4")
    occ = tmp_path / "AUCoding" / "AU_OCC" / "F001_T1.csv"
    cases = {
        "2440,0,1,9\n2441,1,1,9\n": ("line 1", "header row 0,1,2,...,99"),  # no header row
        "0,1,2,3\n2440,0,1,9\n2441,1,2,9\n": ("line 3", "AU 2 has code '2'"),
        "0,1,2,3\n2440,0,1,9\n2441,1\n": ("line 3", "has 2 cells, the header 4"),
        "0,1,2,3\n2440,0,1,9\n2440,1,1,9\n": ("line 3", "frame 2440 appears again"),
    }
    for text, (where, what) in cases.items():
        write(occ, text)
        (src,) = discover("bp4d", tmp_path)
        with pytest.raises(LabelFormatError) as e:
            src.labels(np.zeros(3))
        msg = one_line_error(e)
        assert "F001_T1.csv" in msg and where in msg and what in msg, msg


def test_bp4d_bad_au_file_is_label_format_error(tmp_path):
    touch(tmp_path / "F001_T1.mp4")
    write(tmp_path / "au" / "F001_T1_AU06.csv", "frame,intensity,extra\n1,2,3\n")
    (src,) = discover("bp4d", tmp_path, au_dir=tmp_path / "au")
    with pytest.raises(LabelFormatError) as e:
        src.labels(np.zeros(2))
    assert "F001_T1_AU06.csv" in one_line_error(e)


# ---------------------------------------------------------------------------------------------
# DISFA


def test_disfa_cameras_and_one_based_labels(tmp_path):
    root = tmp_path / "DISFA"
    touch(root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi")
    touch(root / "Videos_LeftCamera" / "LeftVideoSN002_comp.avi")
    touch(root / "Videos_RightCamera" / "RightVideoSN001_comp.avi")
    write(root / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt", "1,0\n2,1\n3,5\n")
    write(root / "ActionUnit_Labels" / "SN001" / "SN001_au12.txt", "1,2\n2,2\n3,2\n4,2\n")
    left = by_id(discover("disfa", root))
    assert set(left) == {"SN001_left", "SN002_left"}
    assert left["SN001_left"].subject == "SN001" and left["SN001_left"].split is None
    assert left["SN002_left"].labels is None
    lab = left["SN001_left"].labels(np.zeros(4))
    assert [c for c in lab.columns if c != "frame"] == [
        "AU01", "AU02", "AU04", "AU05", "AU06", "AU09", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26"]
    np.testing.assert_array_equal(lab["AU01"].to_numpy(), [0, 1, 5, np.nan])
    np.testing.assert_array_equal(lab["AU12"].to_numpy(), [2, 2, 2, 2])
    both = discover("disfa", root, camera="both")
    assert [s.clip_id for s in both] == ["SN001_left", "SN001_right", "SN002_left"]
    with pytest.raises(ConfigError):
        discover("disfa", root, camera="top")


# ---------------------------------------------------------------------------------------------
# SEMAINE


def test_semaine_layout_splits_and_interpolation(tmp_path):
    root = tmp_path / "semaine"
    touch(root / "train" / "s01_u07.mp4")
    write(root / "train" / "s01_u07.csv", "time,valence,arousal\n0.0,0.0,1.0\n0.1,1.0,1.0\n0.2,0.0,1.0\n")
    touch(root / "devel" / "s02_u08.avi")
    avec_arff(root / "devel" / "s02_u08_valence.arff", "s02_u08", [0.0, 1.0], ["0", "1"])
    write(root / "devel" / "s02_u08_arousal.txt", "0.0 0.2 0.4\n1.0 0.4 0.6\n")  # two raters: averaged
    touch(root / "test" / "s03_u09.mp4")
    srcs = by_id(discover("semaine", root, subject_regex=r"_(u\d+)$"))
    assert [srcs[k].split for k in sorted(srcs)] == ["train", "val", "test"]
    assert [srcs[k].subject for k in sorted(srcs)] == ["u07", "u08", "u09"]
    assert srcs["s03_u09"].labels is None

    ts = np.arange(13) / 50.0  # ~50 fps
    lab = srcs["s01_u07"].labels(ts)
    assert list(lab.columns) == ["frame", "valence", "arousal"]
    np.testing.assert_allclose(lab["valence"].to_numpy()[[0, 1, 5, 10]], [0.0, 0.2, 1.0, 0.0])
    assert np.isnan(lab["valence"].to_numpy()[11:]).all()  # after the trace ends
    lab2 = srcs["s02_u08"].labels(np.array([0.0, 0.5, 2.0]))
    np.testing.assert_allclose(lab2["valence"].to_numpy(), [0.0, 0.5, np.nan])
    np.testing.assert_allclose(lab2["arousal"].to_numpy(), [0.3, 0.4, np.nan])


def test_semaine_splits_csv_and_subject_in_two_splits(tmp_path):
    root = tmp_path / "s"
    touch(root / "a_user.mp4")
    touch(root / "b_user.mp4")
    write(root / "splits.csv", "session,split\na_user,train\nb_user,dev\n")
    srcs = by_id(discover("semaine", root))  # subject = session by default
    assert (srcs["a_user"].split, srcs["b_user"].split) == ("train", "val")
    with pytest.raises(DatasetError) as e:  # both sessions belong to one subject
        discover("semaine", root, subjects={"a_user": "u1", "b_user": "u1"})
    assert "u1" in one_line_error(e)
    write(root / "splits.csv", "name,part\na_user,train\n")
    with pytest.raises(LabelFormatError):
        discover("semaine", root)


# ---------------------------------------------------------------------------------------------
# RECOLA


def test_recola_avec2016_layout_and_splits(tmp_path):
    root = tmp_path / "RECOLA"
    for name in ("P16", "P34", "P99", "train_1", "dev_2"):
        touch(root / "recordings_video" / f"{name}.mp4")
    times = [i * 0.04 for i in range(5)]  # 0 .. 0.16 s
    gold = root / "ratings_gold_standard"
    avec_arff(gold / "arousal" / "P16.arff", "P16", times, ["0", "0.1", "0.2", "0.3", "0.4"])
    avec_arff(gold / "valence" / "P16.arff", "P16", times, ["1", "1", "1", "1", "?"])
    avec_arff(gold / "arousal" / "train_1.arff", "train_1", times, ["0"] * 5)
    srcs = by_id(discover("recola", root))
    assert {k: s.split for k, s in srcs.items()} == {
        "P16": "train", "P34": "val", "P99": "test", "train_1": "train", "dev_2": "val"}
    assert srcs["P16"].subject == "P16" and srcs["P34"].labels is None
    lab = srcs["P16"].labels(np.array([0.0, 0.04, 0.06, 0.16, 0.2]))
    assert list(lab.columns) == ["frame", "arousal", "valence"]
    np.testing.assert_allclose(lab["arousal"].to_numpy(), [0.0, 0.1, 0.15, 0.4, np.nan])
    np.testing.assert_array_equal(lab["valence"].to_numpy(), [1, 1, 1, np.nan, np.nan])  # '?' -> NaN
    assert list(srcs["train_1"].labels(np.zeros(2)).columns) == ["frame", "arousal"]
    assert recola.avec2016_split("test_3") == "test"


# ---------------------------------------------------------------------------------------------
# registry


def test_registry_errors(tmp_path):
    assert set(ADAPTERS) == {"folder", "bp4d", "disfa", "semaine", "recola", "voxceleb", "300w", "mafl", "aflw",
                             "emotionet"}
    with pytest.raises(ConfigError):
        discover("affectnet", tmp_path)
    with pytest.raises(ConfigError) as e:
        discover("disfa", tmp_path, colour="red")
    assert "colour" in one_line_error(e)
    with pytest.raises(InputNotFoundError):
        discover("folder", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    for kind in ADAPTERS:
        with pytest.raises(DatasetError) as e:
            discover(kind, tmp_path / "empty")
        assert "expected" in one_line_error(e)


def test_prepare_collect_sources_uses_the_registry(tmp_path):
    from facedyn.data.prepare import collect_sources

    touch(tmp_path / "x" / "S1" / "S1.mp4")
    touch(tmp_path / "y.mp4")
    srcs = collect_sources([tmp_path / "x", tmp_path / "y.mp4"])
    assert sorted(s.clip_id for s in srcs) == ["S1", "y"]


# ---------------------------------------------------------------------------------------------
# the published variants, told apart by their content; each with a wrong-layout twin failing in one line


def fails_in_one_line(load, *expected: str) -> str:
    with pytest.raises(LabelFormatError) as e:
        load()
    msg = one_line_error(e)
    assert all(x in msg for x in expected), msg
    return msg


def test_recola_original_release_per_rater_files_averaged_and_counted(tmp_path):
    root = tmp_path / "RECOLA"
    touch(root / "RECOLA-Video-recordings" / "P16.mp4")
    touch(root / "RECOLA-Video-recordings" / "P17.mp4")  # no annotation: no labels
    ann = root / "RECOLA-Annotation" / "emotional_behaviour"
    t = np.arange(4) * 0.04
    six = {n: [0.1 * k + 0.01 * i for i in range(4)] for k, n in enumerate(("FM1", "FM2", "FM3", "FF1", "FF2", "FF3"))}
    layouts.recola_raters(ann / "arousal" / "P16.csv", t, six)
    layouts.recola_raters(ann / "valence" / "P16.csv", t, {"FM1": [0.0, 0.2, 0.4, 0.6],
                                                           "FF1": [0.2, np.nan, 0.6, 0.8]}, crlf=True)
    assert (ann / "arousal" / "P16.csv").read_text().startswith("time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3\n0.00;0.0000;")
    srcs = by_id(discover("recola", root))
    assert srcs["P17"].labels is None and srcs["P16"].split == "train"
    assert srcs["P16"].extra["label_raters"] == ("arousal: 6 raters (FM1, FM2, FM3, FF1, FF2, FF3); "
                                                 "valence: 2 raters (FM1, FF1)")
    assert srcs["P16"].extra["label_format"].startswith("original release: per-rater annotations")
    lab = srcs["P16"].labels(np.array([0.0, 0.04, 0.06, 0.2]))
    np.testing.assert_allclose(lab["arousal"], [0.25, 0.26, 0.265, np.nan])  # the mean of the six raters
    np.testing.assert_allclose(lab["valence"], [0.1, 0.2, 0.35, np.nan])  # FF1's empty cell left out of the mean

    arousal = ann / "arousal" / "P16.csv"
    src = srcs["P16"]
    write(arousal, "time;FM1 ;FM2\n0,00;0,1;0,2\n")  # decimal commas
    fails_in_one_line(lambda: src.labels(np.zeros(2)), "P16.csv, line 2", "'0,00'", "decimal point")
    write(arousal, "t;FM1 ;FM2\n0.00;0.1;0.2\n")  # no time column
    fails_in_one_line(lambda: src.labels(np.zeros(2)), "P16.csv, line 1", "no time column", "found t, FM1, FM2")
    write(arousal, "time;FM1 ;FM2\n0.00;0.1;0.2\n0.04;0.1\n")  # a rater's cell missing
    fails_in_one_line(lambda: src.labels(np.zeros(2)), "P16.csv, line 3", "has 2 fields, line 1 has 3")
    write(arousal, "time;FM1 ;FM2\n0.00;0.1;0.2\n0.04;0.1;0.2l\n")  # a typo never drops a rater silently
    fails_in_one_line(lambda: src.labels(np.zeros(2)), "P16.csv, line 3", "'0.2l' in column 'FM2'")


def test_semaine_session_tu_va_files(tmp_path):
    root = tmp_path / "SEMAINE"
    touch(root / "sessions" / "12" / "2009.01.06.14.53.49_User HeadMounted.avi")
    touch(root / "sessions" / "12" / "2009.01.06.14.53.49_Operator HeadMounted.avi")  # TU = the target user
    touch(root / "sessions" / "13" / "2009.01.07.10.02.11_User HeadMounted.avi")  # no TU_VA.csv
    layouts.tu_va(root / "TrainingInput" / "12" / "TU_VA.csv", np.arange(3) * 0.02, np.array([0.1, 0.2, 0.3]),
                  np.array([-0.1, 0.0, 0.5]))
    srcs = {s.video.name: s for s in discover("semaine", root)}
    user = srcs["2009.01.06.14.53.49_User HeadMounted.avi"]
    assert user.subject == "12" and user.extra["label_format"] == "session file TU_VA.csv (time, arousal, valence)"
    assert srcs["2009.01.06.14.53.49_Operator HeadMounted.avi"].labels is None
    assert srcs["2009.01.07.10.02.11_User HeadMounted.avi"].labels is None
    lab = user.labels(np.array([0.0, 0.01, 0.04, 0.06]))
    assert list(lab.columns) == ["frame", "arousal", "valence"]
    np.testing.assert_allclose(lab["arousal"], [0.1, 0.15, 0.3, np.nan])
    np.testing.assert_allclose(lab["valence"], [-0.1, -0.05, 0.5, np.nan])

    write(root / "TrainingInput" / "12" / "TU_VA.csv", "Time,Arousal\n0.00,0.1\n")  # no valence column
    fails_in_one_line(lambda: user.labels(np.zeros(2)), "TU_VA.csv, line 1", "no valence column",
                      "expected a header time, arousal, valence", "found Time, Arousal")


EMOTIONET_AUS = (1, 2, 4, 25, 43)


@pytest.mark.parametrize("name", ["EmotioNet_FACS_aws_2020_24600.csv", "EmotioNet_FACS.tsv",
                                  "EmotioNet_FACS_aws_2020_24600.xlsx"])
def test_emotionet_facs_release_csv_tab_and_xlsx(tmp_path, name):
    root = tmp_path / "EmotioNet"
    images(root / "images", ["N_0000000.jpg", "N_0000001.jpg", "N_0000002_orig.jpg"])
    rows = [("http://a.example.org/img/N_0000000.jpg", "http://o.example.org/N_0000000.jpg", {1: 1, 2: 0, 25: 1}),
            ("http://a.example.org/img/N_0000001.jpg", "http://o.example.org/N_0000001.jpg", {1: 0, 2: 1, 43: 1}),
            # not downloaded under its URL's name: the original URL's name is used
            ("http://a.example.org/img/N_0000002.jpg", "http://o.example.org/N_0000002_orig.jpg", {1: 1})]
    ann = layouts.emotionet_facs(root / name, rows, EMOTIONET_AUS)
    srcs = by_id(discover("emotionet", root))
    assert set(srcs) == {"N_0000000", "N_0000001", "N_0000002"}
    lab = {k: s.labels(np.zeros(1)).iloc[0] for k, s in srcs.items()}
    assert [c for c in lab["N_0000000"].index if c != "frame"] == ["AU01", "AU02", "AU25", "AU43"]  # AU4 never coded
    assert (lab["N_0000000"]["AU01"], lab["N_0000000"]["AU02"], lab["N_0000000"]["AU25"]) == (1, 0, 1)
    assert np.isnan(lab["N_0000000"]["AU43"]) and lab["N_0000001"]["AU43"] == 1  # 999 -> NaN
    assert srcs["N_0000002"].video.name == "N_0000002_orig.jpg"
    fmt = srcs["N_0000000"].extra["label_format"]
    assert "image URL column 'URL', 'URL orig' where it is missing, 5 AU columns by name" in fmt
    assert "never coded, left out: AU04" in fmt and ("XLSX" in fmt) == name.endswith(".xlsx")

    # the wrong-layout twin: a value that is not 0, 1 or 999 on the second image's row
    rows[1] = (rows[1][0], rows[1][1], {1: 0, 2: 7})
    layouts.emotionet_facs(ann, rows, EMOTIONET_AUS)
    where = "sheet 'Sheet' row 3" if name.endswith(".xlsx") else "line 3"
    fails_in_one_line(lambda: discover("emotionet", root), f"{name}, {where}", "AU 2 has '7'",
                      "expected 1 (present), 0 (absent) or 999 (not coded)")


def test_emotionet_headerless_lists_and_wrong_headers(tmp_path):
    from facedyn.data.datasets.emotionet import read_table

    # the original image lists: tab-separated, no header, URL, original URL, then AU1..AU60
    wide = write(tmp_path / "list.txt", "http://a.org/N_1.jpg\thttp://b.org/N_1.jpg\t" + "\t".join(
        ["1", "0"] + ["999"] * 58) + "\r\n")
    t = read_table(wide)
    assert t.columns == ["AU01", "AU02"] and t.rows == [("N_1.jpg", "N_1.jpg", {"AU01": 1.0, "AU02": 0.0})]
    assert "no header: image URL, original URL, then AU1..AU60 (60 columns)" in t.form
    fails_in_one_line(lambda: read_table(write(tmp_path / "a.csv", "URL,foo,bar\nhttp://a.org/N.jpg,1,0\n")),
                      "a.csv, line 1", "expected a header row")
    fails_in_one_line(lambda: read_table(write(tmp_path / "b.csv", "http://a.org/N.jpg,1,0,0\n")),
                      "b.csv, line 1", "3 AU values", "expected 12")
    fails_in_one_line(lambda: read_table(write(tmp_path / "c.tsv", "URL\tAU1\tAU2\nhttp://a.org/N.jpg\t1\n")),
                      "c.tsv, line 2", "has 2 cells, the first row 3")
    fails_in_one_line(lambda: read_table(write(tmp_path / "d.csv", "URL,AU1,AU 1\nhttp://a.org/N.jpg,1,1\n")),
                      "d.csv, line 1", "AU 1 heads two columns")
    fails_in_one_line(lambda: read_table(write(tmp_path / "e.xls", "")), "e.xls", "save it as .xlsx or CSV")


@pytest.mark.parametrize("form,crlf,bom,trailing", [
    ("frame,intensity", False, False, ""), ("frame,intensity", True, True, "  "),
    ("intensity", False, False, ""), ("intensity", True, True, " ")])
def test_disfa_both_line_formats_crlf_bom_trailing_spaces(tmp_path, form, crlf, bom, trailing):
    root = tmp_path / "DISFA"
    touch(root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi")
    lab_dir = root / "ActionUnit_Labels" / "SN001"
    layouts.disfa_au(lab_dir / "SN001_au1.txt", [0, 1, 5], form, crlf, bom, trailing)
    layouts.disfa_au(lab_dir / "SN001_au12.txt", [2, 2, 2, 2], form, crlf, bom, trailing)
    (src,) = discover("disfa", root)
    fmt = "frame,value lines" if form == "frame,intensity" else "one value per line (line k = frame k, from 1)"
    assert src.extra == {"label_format": fmt, "label_alignment": "label frame f (or line f) = video frame f counted "
                                                                   "from 1 (decoded frame f-1)"}
    lab = src.labels(np.zeros(4))
    np.testing.assert_array_equal(lab["AU01"], [0, 1, 5, np.nan])
    np.testing.assert_array_equal(lab["AU12"], [2, 2, 2, 2])

    # the wrong-layout twin: the second line in the other form
    other = "2" if form == "frame,intensity" else "2,1"
    end = "\r\n" if crlf else "\n"
    first = ("1,0" if form == "frame,intensity" else "0") + trailing
    (lab_dir / "SN001_au1.txt").write_bytes(f"{first}{end}{other}{end}".encode())
    fails_in_one_line(lambda: src.labels(np.zeros(4)), "SN001_au1.txt, line 2", "expected")


def test_value_files_refuse_gaps_text_and_wide_lines_in_one_line(tmp_path):
    from facedyn.data.datasets.labels import read_value_file

    fails_in_one_line(lambda: read_value_file(write(tmp_path / "gap.txt", "0\n\n3\n")), "gap.txt, line 2",
                      "without gaps")
    fails_in_one_line(lambda: read_value_file(write(tmp_path / "x.txt", "1,0\n2,x\n")), "x.txt, line 2",
                      "value 'x' is not a number")
    fails_in_one_line(lambda: read_value_file(write(tmp_path / "w.txt", "1,0,3\n")), "w.txt, line 1",
                      "expected frame,value")
    fails_in_one_line(lambda: read_value_file(write(tmp_path / "h.csv", "frame,intensity,extra\n1,2,3\n")),
                      "h.csv, line 1", "header frame, intensity, extra")
    df = read_value_file(write(tmp_path / "ok.csv", "frame,intensity\n1,2\n2,9\n\n"))
    assert df["frame"].tolist() == [1, 2] and df.attrs["format"] == "frame,value lines"
