"""prepare --shard K/N + merge make the store one prepare run makes, byte for byte; bad shards and
parts that do not belong together are refused with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facedyn.data.datasets.base import ClipSource
from facedyn.data.merge import merge
from facedyn.data.prepare import PrepareOptions, parse_shard, prepare, shard_sources
from facedyn.errors import ConfigError, DatasetError, OutputError
from test_cli import run


def _snapshot(d: Path) -> dict[str, bytes]:
    """Every file of a store by relative path, with its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def one_run_and_parts(synth_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("shards")
    opts = PrepareOptions(size=32)
    prepare([synth_videos], root / "one", opts)
    parts = [root / f"part{k}" for k in (1, 2)]
    for k, part in enumerate(parts, start=1):
        prepare([synth_videos], part, opts, shard=(k, 2))
    return root / "one", parts


def test_shards_partition_the_clips(one_run_and_parts: tuple[Path, list[Path]]) -> None:
    one, parts = one_run_and_parts
    clips = [set(json.loads((p / "index.json").read_text())["clips"]) for p in parts]
    assert clips == [{"S001", "S003"}, {"S002"}]  # sorted clip ids, dealt round-robin
    assert set(json.loads((one / "index.json").read_text())["clips"]) == clips[0] | clips[1]


def test_merged_shards_equal_one_run_byte_for_byte(one_run_and_parts: tuple[Path, list[Path]],
                                                   tmp_path: Path) -> None:
    one, parts = one_run_and_parts
    merged = merge(parts[::-1], tmp_path / "merged")  # the order of the parts does not matter
    assert {k for k, v in merged["splits"].items() if v} == {"train", "val", "test"}
    want, got = _snapshot(one), _snapshot(tmp_path / "merged")
    assert sorted(got) == sorted(want)
    assert [f for f in want if got[f] != want[f]] == []
    assert not list(tmp_path.glob(".tmp-*"))


def test_merge_cli(one_run_and_parts: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, parts = one_run_and_parts
    code, out, err = run(["merge", *map(str, parts), "--out", str(tmp_path / "m")], capsys, monkeypatch)
    assert code == 0, err
    assert "3 clips" in out and (tmp_path / "m" / "index.json").is_file()
    code, _, err = run(["merge", *map(str, parts), "--out", str(tmp_path / "m")], capsys, monkeypatch)
    assert code == 2 and "not empty" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_bad_shard_strings(text: str) -> None:
    with pytest.raises(ConfigError, match="K/N") as e:
        parse_shard(text)
    assert "\n" not in str(e.value)


def test_bad_shard_on_the_command_line(synth_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(["prepare", str(synth_videos), "--out", str(tmp_path / "d"), "--shard", "3/2"],
                         capsys, monkeypatch)
    assert code == 2 and "--shard must be K/N" in err and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "d").exists()


def test_shards_cover_every_source_once() -> None:
    sources = [ClipSource(clip_id=c, video=Path(f"{c}.mp4"), subject=c) for c in "edcbaf"]
    shards = [[s.clip_id for s in shard_sources(sources, (k, 4))] for k in range(1, 5)]
    assert shards == [["a", "e"], ["b", "f"], ["c"], ["d"]]


def test_merge_refuses_other_contracts(synth_videos: Path, one_run_and_parts: tuple[Path, list[Path]],
                                       tmp_path: Path) -> None:
    _, parts = one_run_and_parts
    other = tmp_path / "other"
    prepare([synth_videos], other, PrepareOptions(size=48), shard=(2, 2))
    with pytest.raises(DatasetError, match=r"size=48, but .* with size=32") as e:
        merge([parts[0], other], tmp_path / "m")
    assert "\n" not in str(e.value) and not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def test_merge_refuses_duplicates_and_bad_parts(one_run_and_parts: tuple[Path, list[Path]], tmp_path: Path) -> None:
    one, parts = one_run_and_parts
    with pytest.raises(DatasetError, match="'S002' is in both"):
        merge([parts[1], one], tmp_path / "m")
    with pytest.raises(DatasetError, match="no such store part"):
        merge([parts[0], tmp_path / "nowhere"], tmp_path / "m")
    broken = tmp_path / "broken"
    shutil.copytree(parts[1], broken)
    shutil.rmtree(broken / "S002")
    with pytest.raises(DatasetError, match=r"'S002' listed in index\.json is missing"):
        merge([parts[0], broken], tmp_path / "m")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(OutputError, match="not empty"):
        merge(parts, tmp_path / "full")
    assert not (tmp_path / "m").exists()
