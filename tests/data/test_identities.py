"""The identity check: subjects that look like one person, by face descriptor.

The real-footage tests file one person (talking_d10) under two names, from two different stretches of
the clip, and another person (talking_d12) under a third name; a store is made from those few frames."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from facedyn.data import identities
from facedyn.data.identities import cached_only, check_identities, identity_pairs
from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.video import iter_frames, write_video
from facedyn.errors import ConfigError, InputNotFoundError

FRAMES = 4  # frames per clip in these tests (the default is 10)


def test_pairs_sorted_with_threshold_and_leaks() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 128)).astype(np.float32) * 0.1
    desc = {"A": base[0], "B": base[0] + 0.01, "C": base[1], "D": base[2]}
    df = identity_pairs(desc, threshold=0.45, split_of={"A": "train", "B": "test", "C": "train", "D": "val"})
    assert len(df) == 6 and df["distance"].is_monotonic_increasing
    first = df.iloc[0]
    assert (first.subject_a, first.subject_b) == ("A", "B") and first.same_person and first.leak
    assert first.distance == pytest.approx(np.linalg.norm(np.full(128, 0.01)), rel=1e-4)
    assert df["same_person"].sum() == 1 and not df["close"].iloc[0]
    assert list(identity_pairs({"A": base[0]}).columns) == ["subject_a", "subject_b", "distance", "same_person",
                                                            "close"]
    # the band from the threshold up to `look`: listed as close, not as one person
    two = {"A": np.zeros(128, np.float32), "B": np.r_[0.42, np.zeros(127)].astype(np.float32),
           "C": np.r_[0.0, 0.9, np.zeros(126)].astype(np.float32)}
    band = identity_pairs(two, threshold=0.40, look=0.45)
    assert list(band["same_person"]) == [False, False, False] and list(band["close"]) == [True, False, False]
    assert identity_pairs(two, threshold=0.43, look=0.45)["same_person"].iloc[0]


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        check_identities(tmp_path, threshold=-1)
    with pytest.raises(ConfigError, match="frames per clip"):
        check_identities(tmp_path, frames_per_clip=0)
    with pytest.raises(InputNotFoundError, match="no such store or folder"):
        check_identities(tmp_path / "nothing")


@pytest.fixture(scope="module")
def one_person_two_names(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``anna/`` and ``berta/``: frames 0–23 and 300–323 of talking_d10 (one person); ``carl/``: talking_d12."""
    root = tmp_path_factory.mktemp("ids") / "videos"
    for name, clip, start in (("anna", "talking_d10", 0), ("berta", "talking_d10", 300), ("carl", "talking_d12", 0)):
        frames = [f for f, _ in iter_frames(real_data / f"{clip}.mp4", start=start, stop=start + 24)]
        write_video(root / name / f"{name}.mp4", frames, fps=25)
    return root


@pytest.fixture(scope="module")
def store(one_person_two_names: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ids") / "store"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = prepare([one_person_two_names], out, PrepareOptions(size=64, seed=1))
    assert not any(r.error for r in res)
    return out


def _assert_found(df: object) -> None:
    first = df.iloc[0]  # type: ignore[attr-defined]
    assert (first.subject_a, first.subject_b) == ("anna", "berta") and first.same_person
    assert first.distance < 0.3
    others = df.iloc[1:]  # type: ignore[attr-defined]
    assert not others["same_person"].any() and others["distance"].min() > 0.5


@pytest.mark.real
def test_store_finds_one_person_under_two_names_and_caches(store: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy without the descriptors other tests of this module may have cached: any order of the tests
    store = Path(shutil.copytree(store, tmp_path / "store", ignore=shutil.ignore_patterns("identities")))
    assert not cached_only(store, FRAMES)
    df = check_identities(store, frames_per_clip=FRAMES)
    _assert_found(df)
    assert {"split_a", "split_b", "leak"} <= set(df.columns)
    assert df.attrs["subjects"] == 3 and df.attrs["from_crops"] == [] and df.attrs["no_face"] == []
    assert sorted(p.name for p in (store / "identities").iterdir()) == ["anna.npz", "berta.npz", "carl.npz"]

    def no_decoding(*args: object) -> None:
        raise AssertionError("a cached clip was described again")

    monkeypatch.setattr(identities, "_compute", no_decoding)
    assert cached_only(store, FRAMES)
    again = check_identities(store, frames_per_clip=FRAMES)
    assert again["distance"].tolist() == df["distance"].tolist()


@pytest.mark.real
def test_folder_of_videos_names_subjects_as_prepare(one_person_two_names: Path) -> None:
    df = check_identities(one_person_two_names, frames_per_clip=FRAMES)
    _assert_found(df)
    assert "leak" not in df.columns


@pytest.mark.real
def test_missing_sources_fall_back_to_crops_with_a_warning(store: Path, one_person_two_names: Path,
                                                          tmp_path: Path) -> None:
    moved = tmp_path / "store"
    shutil.copytree(store, moved, ignore=shutil.ignore_patterns("identities"))
    for clip in ("anna", "berta"):  # their recorded sources now point nowhere
        meta = (moved / clip / "meta.json").read_text()
        (moved / clip / "meta.json").write_text(meta.replace(str(one_person_two_names), str(tmp_path / "gone")))
    with pytest.warns(UserWarning, match=r"2 clip\(s\) \(anna, berta\) have no source video"):
        df = check_identities(moved, frames_per_clip=FRAMES)
    assert df.attrs["from_crops"] == ["anna", "berta"]
    assert len(df) == 3 and df.iloc[0].subject_a == "anna" and df.iloc[0].subject_b == "berta"


@pytest.mark.real
def test_cli_split_and_prepare_report_the_pair(store: Path, one_person_two_names: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from facedyn.cli import main

    def run(args: list[str]) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["facedyn", *args])
        monkeypatch.setenv("COLUMNS", "200")
        try:
            main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        cap = capsys.readouterr()
        return code, cap.out + cap.err

    code, text = run(["split", str(store), "--check-identities", "--identity-frames", str(FRAMES)])
    assert code == 0, text
    assert "same person?" in text and "anna" in text and "one folder per person" in text and "--folds K" in text
    # prepare again (every clip complete): the cached descriptors make its warning free
    code, text = run(["prepare", str(one_person_two_names), "--out", str(store), "--seed", "1"])
    assert code == 0, text
    assert "may be one person" in text and "anna~berta (0." in text


def test_frames_at_gives_the_frames_a_full_pass_gives(tmp_path: Path) -> None:
    from facedyn.data.video import frames_at

    rng = np.random.default_rng(0)
    video = tmp_path / "v.mp4"
    write_video(video, (rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(40)), fps=25)
    full = [f for f, _ in iter_frames(video)]
    got = dict(frames_at(video, [35, 3, 17, 3, 99]))
    assert sorted(got) == [3, 17, 35]  # sorted, once each, past the end left out
    for i, f in got.items():
        np.testing.assert_array_equal(f, full[i])


def test_cli_defaults_are_the_library_constants() -> None:
    import inspect

    from facedyn import cli

    params = inspect.signature(cli.split).parameters
    assert params["identity_threshold"].default == identities.IDENTITY_THRESHOLD
    assert params["identity_frames"].default == identities.FRAMES_PER_CLIP
