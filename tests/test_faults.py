"""Faults, tested for real: a ``facedyn`` process SIGKILLed part-way leaves no file that is ever read half-written,
and the same command run again resumes and ends where an uninterrupted run ends.

Each test starts the real command line in a subprocess (its own session, so one ``killpg`` takes its pool
workers and manager too) under :data:`HARNESS`, which injects the fault at a chosen moment without touching
the library: it either pauses a prepare worker mid-clip (the test then kills the whole process group from
outside) or lets the Nth atomic write of a named file fill its temporary file, cuts that file in half and
SIGKILLs the process before the rename (the worst moment: a partial file on disk). The rerun goes through
the same entry point in this process (one interpreter start less per test).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import facedyn
from facedyn import runs
from facedyn.data import prepare as prep
from facedyn.data.store import TMP_PREFIX, ClipDataset
from facedyn.dr.representations import read_part
from facedyn.errors import DatasetError
from support.cli import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")]

#: Runs ``facedyn ARGS`` (``python -c HARNESS ARGS``) with the fault that ``$FACEDYN_FAULT`` (JSON) describes:
#: ``{"write": NAME, "nth": N}``: the Nth atomic write of a file named NAME fills its temporary file, which is then
#: cut to half its size, and the whole process group is SIGKILLed before the rename;
#: ``{"pause": CLIP, "part": K, "frame": F, "marker": PATH}``: the prepare worker writing time segment K of
#: clip CLIP stops after its F-th frame (flushed), writes PATH and sleeps until the test kills it.
#: ``"min_segment_frames"`` sets :data:`facedyn.data.prepare.MIN_SEGMENT_FRAMES` (clips cut into segments).
HARNESS = r"""
import json, os, signal, sys, time
from contextlib import contextmanager
from pathlib import Path

spec = json.loads(os.environ["FACEDYN_FAULT"])

def die():
    if os.getsid(0) == os.getpgid(0):  # the session the test started: workers and manager die too
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)

if "write" in spec:
    import facedyn.atomic as atomic  # patched before any module binds atomic_path

    real, seen = atomic.atomic_path, [0]

    @contextmanager
    def atomic_path(path):
        with real(path) as tmp:
            yield tmp
            if Path(path).name == spec["write"]:
                seen[0] += 1
                if seen[0] == spec.get("nth", 1):
                    with open(tmp, "r+b") as f:
                        f.truncate(os.path.getsize(tmp) // 2)
                    die()

    atomic.atomic_path = atomic_path

if "min_segment_frames" in spec:
    import facedyn.data.prepare as prep

    prep.MIN_SEGMENT_FRAMES = spec["min_segment_frames"]

if "pause" in spec:
    from facedyn.data.store import ClipWriter

    add = ClipWriter.add

    def paused_add(self, *a, **k):
        add(self, *a, **k)
        if (self.n == spec["frame"] and self.clip_id == "seg-%05d" % spec["part"]
                and self.dataset_dir.name.startswith(".tmp-" + spec["pause"] + "-")):
            self._raw.flush()
            Path(spec["marker"]).write_text(str(os.getpid()))
            time.sleep(300)

    ClipWriter.add = paused_add

sys.argv = ["facedyn", *sys.argv[1:]]
from facedyn.cli import main

main()
"""

#: settings of a tiny, deterministic DR training (a second or two)
TINY_DR = ["--T", "2", "--S", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--width", "4", "--depth", "2",
           "--precision", "fp32", "--channels-last", "off", "--threads", "1", "--device", "cpu", "--seed", "0"]


def _start(args: list[str], fault: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """``facedyn ARGS`` in a new session (its own process group) under the fault injector."""
    env = {**os.environ, "FACEDYN_FAULT": json.dumps(fault), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-c", HARNESS, *args], env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _group_alive(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies waiting to be reaped do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            alive.append(int(stat.parent.name))
    return alive


def _assert_killed(p: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    """``p`` ended by SIGKILL (the injected fault fired), and no process of its group runs on."""
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        pytest.fail(f"the fault never fired; output:\n{log.read_text()[-3000:]}")
    assert code == -signal.SIGKILL, f"exit {code}, the fault never fired; output:\n{log.read_text()[-3000:]}"
    if Path("/proc").is_dir():
        deadline = time.monotonic() + 10
        while _group_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(p.pid), "a worker of the killed process survived"


def _wait_for(path: Path, p: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if p.poll() is not None or time.monotonic() > deadline:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            pytest.fail(f"never reached the pause point (exit {p.returncode}); output:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def _leftovers(root: Path) -> list[str]:
    """Hidden files and folders under ``root``: temporaries of atomic writes and partial clips, stale locks."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """``facedyn ARGS`` in this process (conftest gives back the thread count ``--threads 1`` sets)."""
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, out + err
    return out


# -- prepare ------------------------------------------------------------------------------------------------------

def test_prepare_killed_mid_clip_resumes_to_the_uninterrupted_store(synth_videos: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``prepare --workers 2`` killed (process group) while a worker is inside a clip's second time segment: the
    rerun keeps the complete clips, removes the partial one and makes the store one run makes, byte for byte."""
    args = ["prepare", str(synth_videos), "--size", "32", "--workers", "2"]
    store, marker, log = tmp_path / "store", tmp_path / "paused", tmp_path / "prepare.log"
    # 60-frame clips in 2 segments, so both workers work inside one clip
    p = _start([*args, "--out", str(store)], {"min_segment_frames": 20, "pause": "S003", "part": 1, "frame": 12,
                                              "marker": str(marker)}, log)
    _wait_for(marker, p, log)
    partial = list(store.glob(f"{TMP_PREFIX}S003-*"))
    assert len(partial) == 1 and any(partial[0].glob(f"{TMP_PREFIX}seg-00001-*/frames.raw"))
    assert (store / "S001" / "meta.json").is_file() and (store / "S002" / "meta.json").is_file()
    os.killpg(p.pid, signal.SIGKILL)
    _assert_killed(p, log)
    assert not (store / "S003").exists() and not (store / "index.json").exists()
    with pytest.raises(DatasetError, match="not a prepared dataset"):  # nothing half-made is taken for a store
        ClipDataset(store)
    (store / ".index.k3x9_q2a.json").write_text('{"format": 2, "cl')  # as a kill inside write_index leaves it

    monkeypatch.setattr(prep, "MIN_SEGMENT_FRAMES", 20)
    out = _cli([*args, "--out", str(store)], capsys, monkeypatch)
    assert out.count("skipped (complete)") == 2
    assert _leftovers(store) == []  # the partial clip, the half-written index and the dead run's lock are gone
    _cli([*args, "--out", str(tmp_path / "once")], capsys, monkeypatch)
    assert ClipDataset(store).clip("S003").meta["segment_starts"] == [0, 30]
    assert _files(store) == _files(tmp_path / "once")


# -- train --------------------------------------------------------------------------------------------------------

def _check_run_readable(run: Path) -> None:
    """Every file of the run a reader opens is complete (safetensors, the resume state, metrics, config)."""
    for ck in (run / "checkpoints").glob("[!.]*.safetensors"):  # not the temporaries of killed writes
        load_file(str(ck))
    if (run / "checkpoints" / "last.state.pt").is_file():
        torch.load(run / "checkpoints" / "last.state.pt", weights_only=False)
    json.loads((run / "config.json").read_text())
    epochs = [r["epoch"] for r in runs.read_metrics(run)]
    assert epochs == list(range(len(epochs)))


def test_train_killed_while_writing_checkpoints_resumes_to_the_uninterrupted_run(
        synth_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed half-way through writing the resume state (after metrics and weights of that epoch were published),
    then, resumed, half-way through writing ``last.safetensors``: ``--resume`` continues from the last complete
    checkpoint both times and ends with the weights and metrics of a run never interrupted."""
    args = ["train", "dr", "--data", str(synth_store), *TINY_DR, "--epochs", "3"]
    run, log = tmp_path / "run", tmp_path / "train.log"
    p = _start([*args, "--out", str(run)], {"write": "last.state.pt", "nth": 2}, log)  # epoch 2's state
    _assert_killed(p, log)
    _check_run_readable(run)
    assert any((run / "checkpoints").glob(".last.state.*.pt"))  # the half-written state, under its temporary name

    p = _start([*args, "--out", str(run), "--resume"], {"write": "last.safetensors", "nth": 1}, log)
    _assert_killed(p, log)
    _check_run_readable(run)
    assert any((run / "checkpoints").glob(".last.*.safetensors"))

    _cli([*args, "--out", str(run), "--resume"], capsys, monkeypatch)
    assert _leftovers(run) == []  # temporaries of the killed writes cleaned, lock released
    _cli([*args, "--out", str(tmp_path / "once")], capsys, monkeypatch)
    done, once = pd.read_csv(run / "metrics.csv"), pd.read_csv(tmp_path / "once" / "metrics.csv")
    assert done["epoch"].tolist() == [0, 1, 2, 3]
    cols = [c for c in once.columns if c.startswith(("val_", "train_")) or c in ("epoch", "step")]
    pd.testing.assert_frame_equal(done[cols], once[cols])
    for name in ("last", "best", "init"):
        a, b = (load_file(str(r / "checkpoints" / f"{name}.safetensors")) for r in (run, tmp_path / "once"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert facedyn.load(run, device="cpu").encode(torch.rand(2, 3, 32, 32)).shape[0] == 2


# -- represent, merge, cv rank -------------------------------------------------------------------------------------

def _tiny_run(store: Path, out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    _cli(["train", "dr", "--data", str(store), *TINY_DR, "--epochs", "1", "--out", str(out)], capsys, monkeypatch)
    return out


def test_represent_killed_mid_cache_reruns_to_the_same_cache(synth_store: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while writing the second clip's cached DRs: no half-written part is read; the rerun fills the
    cache as one run does and leaves no temporary file."""
    run = _tiny_run(synth_store, tmp_path / "dr", capsys, monkeypatch)
    data, once = tmp_path / "data", tmp_path / "once"
    shutil.copytree(synth_store, data)
    shutil.copytree(synth_store, once)
    args = ["represent", "--run", str(run), "--device", "cpu", "--batch-size", "16"]
    log = tmp_path / "represent.log"
    p = _start([*args, "--data", str(data)], {"write": "S002.npy", "nth": 1}, log)
    _assert_killed(p, log)
    cache = data / "representations"
    (key,) = (d.name for d in cache.iterdir() if d.is_dir())
    assert sorted(f.name for f in (cache / key).glob("[!.]*.npy")) == ["S001.npy"]  # S002 only as a temporary
    assert np.load(cache / key / "S001.npy").shape[0] == 60
    with pytest.raises(DatasetError, match="not cached for clip S002"):  # what a task would read instead
        read_part(ClipDataset(data), key, "S002")

    _cli([*args, "--data", str(data)], capsys, monkeypatch)
    assert _leftovers(data) == []
    _cli([*args, "--data", str(once)], capsys, monkeypatch)
    assert _files(cache) == _files(once / "representations")


def test_merge_killed_before_publishing_reruns_to_the_one_run_store(synth_videos: Path, synth_store: Path,
                                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while writing the merged index: the store does not appear at all; the rerun makes the store one
    ``prepare`` makes, file for file, and leaves nothing of the killed attempt."""
    parts = [tmp_path / f"part{k}" for k in (1, 2)]
    for k, part in enumerate(parts, 1):
        _cli(["prepare", str(synth_videos), "--size", "32", "--shard", f"{k}/2", "--out", str(part)], capsys,
             monkeypatch)
    out, log = tmp_path / "merged" / "store", tmp_path / "merge.log"
    p = _start(["merge", *map(str, parts), "--out", str(out)], {"write": "index.json", "nth": 1}, log)
    _assert_killed(p, log)
    assert not out.exists()

    _cli(["merge", *map(str, parts), "--out", str(out)], capsys, monkeypatch)
    assert _leftovers(out.parent) == []
    assert _files(out) == _files(synth_store)


def test_cv_rank_killed_in_a_fold_reruns_to_the_same_table(synth_store: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while writing fold 1's second resume state: the rerun keeps fold 0 (trained and evaluated), resumes
    fold 1 and writes the tables of an uninterrupted run."""
    data, ref = tmp_path / "data", tmp_path / "ref"
    shutil.copytree(synth_store, data)
    shutil.copytree(synth_store, ref)
    args = ["cv", "rank", "--folds", "3", *TINY_DR, "--epochs", "2", "--n-boot", "50", "--max-windows", "24"]
    out, log = tmp_path / "cv", tmp_path / "cv.log"
    p = _start([*args, "--data", str(data), "--out", str(out)], {"write": "last.state.pt", "nth": 4}, log)
    _assert_killed(p, log)
    assert (out / "fold0" / "ranking.csv").is_file() and not (out / "fold1" / "ranking.csv").exists()
    assert not (out / "cv.csv").exists()
    _check_run_readable(out / "fold1")
    fold0 = _files(out / "fold0")

    _cli([*args, "--data", str(data), "--out", str(out)], capsys, monkeypatch)
    assert _leftovers(out) == []
    assert {k: v for k, v in _files(out / "fold0").items() if k != "config.json"} == \
        {k: v for k, v in fold0.items() if k != "config.json"}  # a finished fold is kept as it was
    _cli([*args, "--data", str(ref), "--out", str(tmp_path / "once")], capsys, monkeypatch)
    for name in ("cv.csv", "per_subject.csv", "cv.md"):
        assert (out / name).read_text() == (tmp_path / "once" / name).read_text(), name
