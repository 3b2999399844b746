"""Two writers of one directory, and writes that run out of room (issue 13, item 5), with real processes.

- A second ``prepare`` into a store, or a second ``train`` into a run directory, refuses in one line naming
  the holder while the first runs; the lock of a process killed with SIGKILL is stale and taken over.
- A write that hits the file-size limit (``RLIMIT_FSIZE``, which fails writes as a full file system does,
  with EFBIG instead of ENOSPC) ends with one line naming the file and the cause, exit status 2, no
  traceback; what the directory held before still opens, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facedyn import lock
from facedyn.errors import BusyError
from support.cli import run_cli

FACEDYN = [sys.executable, "-m", "facedyn.cli"]
TINY_DR = ["--T", "2", "--S", "1", "--batch-size", "4", "--width", "4", "--depth", "2", "--precision", "fp32",
           "--threads", "1", "--channels-last", "off"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digests(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): digest(p) for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process holding the lock of ``tmp_path / "held"`` until it is killed."""
    d = tmp_path / "held"
    code = textwrap.dedent(f"""
        import time
        from facedyn import lock
        with lock.hold({str(d)!r}, "test"):
            print("held", flush=True)
            time.sleep(120)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    yield d, p
    p.kill()
    p.wait()


def test_a_held_directory_refuses_and_a_killed_holder_leaves_no_lock_that_blocks(holder) -> None:
    d, p = holder
    info = lock.read_holder(d)
    assert info["pid"] == p.pid and info["command"]
    with pytest.raises(BusyError, match=rf"another facedyn process is writing here \(pid {p.pid} on "), \
            lock.hold(d, "prepare"):
        pass
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert lock.lock_path(d).exists()  # a SIGKILL leaves the file behind ...
    with lock.hold(d, "prepare") as path:  # ... but not the lock: it is taken over without a word
        assert lock.read_holder(d)["pid"] == os.getpid()
        with lock.hold(d, "prepare"):  # re-entrant within one process
            pass
        assert path.exists()
    assert not lock.lock_path(d).exists()  # released and removed


def test_second_prepare_and_second_train_refuse_in_one_line(holder, synth_videos, synth_store, capsys,
                                                            monkeypatch) -> None:
    d, p = holder
    code, _, err = run_cli(["prepare", str(synth_videos), "--out", str(d), "--size", "32"], capsys, monkeypatch)
    assert code == 2 and f"pid {p.pid}" in err and "wait for it to finish" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(x.name for x in d.iterdir()) == [lock.LOCK_FILE]  # nothing was prepared into it

    code, _, err = run_cli(["train", "dr", "--data", str(synth_store), "--out", str(d), "--epochs", "1",
                              "--steps-per-epoch", "1", *TINY_DR], capsys, monkeypatch)
    assert code == 2 and f"pid {p.pid}" in err and len(err.strip().splitlines()) == 1
    assert not (d / "config.json").exists() and not (d / "checkpoints").exists()


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def run_limited(args: list[str], limit: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``facedyn ARGS`` in a process whose files may not grow past ``limit`` bytes."""
    env = {**os.environ, "COLUMNS": "250", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*FACEDYN, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
                          preexec_fn=lambda: _limited(limit))


def test_train_out_of_room_says_so_in_one_line_and_keeps_the_last_checkpoint(synth_store, tmp_path, capsys,
                                                                              monkeypatch) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "dr", "--data", str(synth_store), "--out", str(run), "--epochs", "1",
                            "--steps-per-epoch", "2", *TINY_DR], capsys, monkeypatch)
    assert code == 0, err
    last = run / "checkpoints" / "last.safetensors"
    before = tree_digests(run)
    res = run_limited(["train", "dr", "--data", str(synth_store), "--out", str(run), "--epochs", "2", "--resume"],
                      limit=last.stat().st_size // 2, cwd=tmp_path)
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    assert "Traceback" not in text and "could not be written (file-size limit reached)" in text
    line = next(ln for ln in text.splitlines() if "error:" in ln)
    assert str(run / "checkpoints") in line.replace("\n", "")  # names the file being written
    # the checkpoints from before are untouched and load; no temporary file is left behind
    after = tree_digests(run)
    assert {k: v for k, v in after.items() if k.startswith("checkpoints/")} == \
        {k: v for k, v in before.items() if k.startswith("checkpoints/")}
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    import torch

    import facedyn

    assert facedyn.load(run, weights="last", device="cpu").encode(torch.zeros(1, 3, 32, 32)).shape[0] == 1


def test_prepare_out_of_room_says_so_and_keeps_the_clips_before(synth_videos, tmp_path, capsys, monkeypatch) -> None:
    videos = sorted(synth_videos.glob("*/*.mp4"))
    first, second = tmp_path / "first", tmp_path / "second"
    for d, v in ((first, videos[0]), (second, videos[1])):
        d.mkdir()
        for f in v.parent.iterdir():  # the video and its sidecars
            shutil.copy2(f, d / f.name)
    store = tmp_path / "store"
    code, _, err = run_cli(["prepare", str(first), "--out", str(store), "--size", "32"], capsys, monkeypatch)
    assert code == 0, err
    before = tree_digests(store)
    frames = next(store.glob("*/frames.npy"))
    res = run_limited(["prepare", str(second), "--out", str(store), "--size", "32"],
                      limit=frames.stat().st_size // 2, cwd=tmp_path)
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    assert "Traceback" not in text and "could not be written (file-size limit reached)" in text
    assert len([ln for ln in text.splitlines() if "error:" in ln]) == 1
    # the store is what it was: the earlier clip and its index unchanged, no partial clip left
    assert tree_digests(store) == before
    from facedyn.data.store import ClipDataset

    ds = ClipDataset(store)
    clips = ds.clips()
    assert len(clips) == 1 and np.asarray(clips[0].frames).shape[1:] == (32, 32, 3)
