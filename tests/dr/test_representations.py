"""Representation cache: what `facedyn represent` writes, keys that follow the checkpoint, input resolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facedyn.api import load
from facedyn.data.store import ClipDataset
from facedyn.data.windows import to_float
from facedyn.dr import representations as R
from facedyn.dr.dynamic_image import make_target
from facedyn.errors import CheckpointError, ConfigError, DatasetError
from support.task_fixtures import make_task_store, train_tiny_dr


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rep")
    data = make_task_store(root / "data")
    return {"data": data, "dr5": train_tiny_dr(data, root / "dr5", T=5), "dr3": train_tiny_dr(data, root / "dr3", T=3)}


def test_represent_caches_run_outputs_and_window_dis(setup: dict[str, Path]) -> None:
    store = ClipDataset(setup["data"])
    srcs = R.represent(store, [setup["dr5"], setup["dr3"]], windows=["di"], device="cpu", batch_size=7)
    assert [s.label for s in srcs] == ["dr", "dr", "di"] and srcs[0].key.startswith("dr-T5S2-")
    clip = store.clip("P4_c")
    arr = R.read_part(store, srcs[0].key, "P4_c")
    assert arr.dtype == np.float16 and arr.shape == (40, 3, 32, 32)
    with torch.no_grad():
        want = load(setup["dr5"], device="cpu").net(to_float(clip.frames[:10]))
    np.testing.assert_allclose(arr[:10][np.arange(10) != 3], want.numpy()[np.arange(10) != 3], atol=2e-2, rtol=1e-2)
    assert not arr[3].any()  # no face: zeros
    # the true DI of frame 20 pools frames 10, 12, ..., 20
    di = R.read_part(store, "di-T5S2", "P4_c")
    win = to_float(clip.frames[20 + np.arange(-5, 6) * 2])[None]
    np.testing.assert_allclose(di[20], make_target(win, "di")[0].numpy(), atol=2e-2, rtol=1e-2)
    idx = json.loads((setup["data"] / "representations" / "index.json").read_text())
    assert idx["active"] == [s.key for s in srcs]
    # a second call recomputes nothing
    p = R.part_path(store, srcs[0].key, "P4_c")
    before = p.stat().st_mtime_ns
    R.represent(store, [setup["dr5"]], device="cpu")
    assert p.stat().st_mtime_ns == before


def test_resolve_inputs_and_errors(setup: dict[str, Path]) -> None:
    store = ClipDataset(setup["data"])
    R.represent(store, [setup["dr5"], setup["dr3"]], windows=["bdi"], device="cpu")
    assert R.resolve_input(store, "si", "au") == [R.IMAGE]
    sdr = R.resolve_input(store, "sdr", "au")
    assert len(sdr) == 1 and sdr[0].T == 5
    au = R.resolve_input(store, "mdr", "au")
    aff = R.resolve_input(store, "mdr", "affect")
    assert au[0] == R.IMAGE and [p.T for p in au[1:]] == [5]
    assert aff[0] == R.IMAGE and [p.T for p in aff[1:]] == [3, 5]
    assert R.resolve_input(store, "bdi", "au")[0].key == "bdi-T5S2"
    with pytest.raises(ConfigError, match="unknown input"):
        R.resolve_input(store, "nope", "au")
    R.represent(store, [setup["dr5"]], device="cpu")  # only T=5 active now
    with pytest.raises(ConfigError, match="T=3"):
        R.resolve_input(store, "mdr", "affect")
    with pytest.raises(DatasetError, match="not cached"):
        R.read_part(store, "dr-T9S9-0000000000", "P1_c")
    with pytest.raises(ConfigError):
        R.represent(store, [], device="cpu")


def test_key_follows_the_checkpoint(setup: dict[str, Path], tmp_path: Path) -> None:
    a = R.run_source(setup["dr5"])
    other = train_tiny_dr(setup["data"], tmp_path / "dr5b", T=5, seed=1)  # same settings, other weights
    b = R.run_source(other)
    assert a.key != b.key and a.label == b.label == "dr" and a.net == b.net
    with pytest.raises(ConfigError, match="unknown window"):
        R.window_source("xx")
    # a run retrained in place: its recorded source is stale and says so
    import shutil

    ck = R.runs.checkpoint_path(other)
    shutil.copy(R.runs.checkpoint_path(setup["dr5"]), ck)
    with pytest.raises(CheckpointError, match="changed"):
        R.load_source_net(b)
