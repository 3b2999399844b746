"""AU intensity (method `au`): AU centres and heatmaps, the hourglass, training on cached inputs, loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facedyn.api import load
from facedyn.data.faces.landmarks68 import template
from facedyn.data.store import ClipDataset
from facedyn.data.windows import to_float
from facedyn.dr.representations import represent
from facedyn.errors import ConfigError
from facedyn.nn.hourglass import StackedHourglass
from facedyn.tasks.au_intensity import AU_CENTRES, au_centres, au_of, heatmaps
from facedyn.tasks.evaluation import evaluate_task
from facedyn.train import train
from facedyn.train.loop import Runtime
from support.task_fixtures import AUS, make_task_store, train_tiny_dr


def test_au_names_and_centres() -> None:
    assert au_of("AU12") == au_of("AU12_r") == au_of("AU12_p") == "AU12"
    assert au_of("AU6") == au_of("AU6_r") == "AU06"
    with pytest.raises(ConfigError, match="no AU location"):
        au_of("valence")
    lm = torch.from_numpy(template(64)).float()[None]
    c, mask, iod = au_centres(lm, ["AU12", "AU25", "AU01"])
    assert float(iod[0]) > 20  # eye centres ~25 px apart at 64 px
    np.testing.assert_allclose(c[0, 0].numpy(), lm[0, [48, 54]].numpy(), atol=1e-5)  # lip corners
    np.testing.assert_allclose(c[0, 1, 0].numpy(), lm[0, [62, 66]].mean(0).numpy(), atol=1e-5)
    assert mask.tolist() == [[True, True], [True, False], [True, True]]
    assert float(c[0, 2, 0, 1]) < float(lm[0, 21, 1])  # AU01 sits above the inner brow
    # bilateral offsets are mirrored: AU14's centres lie outside the lip corners on both sides
    c14, _, _ = au_centres(lm, ["AU14"])
    assert float(c14[0, 0, 0, 0]) < float(lm[0, 48, 0]) and float(c14[0, 0, 1, 0]) > float(lm[0, 54, 0])
    for groups, _ in AU_CENTRES.values():
        assert all(0 <= i < 68 for g in groups for i in g)


def test_heatmap_peak_is_the_intensity_at_the_centre() -> None:
    lm = torch.from_numpy(template(64)).float()[None].repeat(2, 1, 1)
    y = torch.tensor([[3.0, 0.0], [float("nan"), 1.5]])
    h = heatmaps(lm, y, ["AU12", "AU25"], size=64, stride=2, sigma_iod=0.15)
    assert h.shape == (2, 2, 32, 32)
    assert float(h[0, 0].max()) == pytest.approx(3.0, abs=0.1) and float(h[0, 1].max()) == 0.0
    assert float(h[1, 0].max()) == 0.0 and float(h[1, 1].max()) == pytest.approx(1.5, abs=0.05)
    # the peak of AU25 lies at the inner-lip midpoint, in heatmap pixels
    c = (lm[1, [62, 66]].mean(0) + 0.5) / 2 - 0.5
    iy, ix = divmod(int(h[1, 1].argmax()), 32)
    assert abs(ix - float(c[0])) <= 1 and abs(iy - float(c[1])) <= 1


def test_stacked_hourglass_shapes() -> None:
    net = StackedHourglass(6, 5, width=8, depth=2, stacks=2, stem_stride=2)
    outs = net(torch.rand(2, 6, 32, 32))
    assert len(outs) == 2 and all(o.shape == (2, 5, 16, 16) for o in outs)
    with pytest.raises(ValueError):
        net(torch.rand(1, 6, 30, 30))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("au")
    data = make_task_store(root / "data")
    dr5 = train_tiny_dr(data, root / "dr5", T=5)
    represent(data, [dr5], windows=["di"], device="cpu")
    return {"data": data, "root": root}


SMALL = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 8, "width": 8, "depth": 2, "input_norm_samples": 32}


def test_train_au_on_each_input_then_load_and_evaluate(store: dict[str, Path]) -> None:
    root, data = store["root"], store["data"]
    run_dirs = []
    for inp in ("si", "mdr", "di"):
        res = train("au", data, root / f"au_{inp}", {**SMALL, "input": inp}, Runtime(device="cpu", threads=1))
        assert res.config.label_columns == ",".join(AUS)
        run_dirs.append(root / f"au_{inp}")
    cnn = train("au", data, root / "au_cnn", {**SMALL, "model": "cnn"}, Runtime(device="cpu", threads=1))
    assert np.isfinite(cnn.history[-1]["val_mse"])
    # the saved MDR network goes from a still face to intensities, as on the cached input
    model = load(root / "au_mdr", device="cpu")
    ds = model.method.dataset(ClipDataset(data), "test")
    it = ds[5]
    clip = ds.clips[it["clip"]]
    face = to_float(clip.frames[it["t"]])[None]
    direct = model.outputs(face)["au"]
    cached = model.method.net.predict_rep(it["x"][None])
    assert direct.shape == (1, 3)
    np.testing.assert_allclose(direct.numpy(), cached.detach().numpy(), atol=5e-2)
    assert model.encode(face).shape[0] == 1
    with pytest.raises(ConfigError, match="neighbouring frames"):
        load(root / "au_di", device="cpu").outputs(face)
    res = evaluate_task("au", data, run_dirs, root / "eval", n_boot=20, device="cpu")
    tab = res["table"]
    assert list(tab["input"]) == ["si", "di", "mdr"]
    assert {"icc_AU12", "icc_AU12_lo", "icc_AU12_hi", "mse_avg"} <= set(tab.columns)
    assert (root / "eval" / "au.md").is_file() and (root / "eval" / "figures" / "traces.png").is_file()
    assert (tab["subjects"] == 1).all()  # the test split is P4
    # every non-SI row carries its paired difference to SI, equal to the difference of the two averages
    mdr, si = tab.set_index("input").loc["mdr"], tab.set_index("input").loc["si"]
    assert mdr["icc_avg_vs_si"] == pytest.approx(mdr["icc_avg"] - si["icc_avg"], abs=1e-9)
    # one test person: values without intervals, and the table says so
    assert np.isnan(mdr["mse_avg_vs_si_lo"]) and np.isnan(si["icc_avg_lo"]) and np.isfinite(si["icc_avg"])
    md = (root / "eval" / "au.md").read_text()
    assert "Paired difference to SI" in md and "No intervals: only 1 test people" in md


def test_au_errors(store: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="unknown input"):
        train("au", store["data"], store["root"] / "bad", {**SMALL, "input": "xyz"}, Runtime(device="cpu"))
    with pytest.raises(ConfigError, match="no AU location"):
        train("au", store["data"], store["root"] / "bad2", {**SMALL, "label_columns": "valence"},
              Runtime(device="cpu"))


def test_cap_per_subject_keeps_evenly_spaced_frames() -> None:
    from facedyn.tasks.inputs import cap_per_group

    index = np.stack([np.zeros(10, int), np.arange(10)], 1)
    groups = np.array(["a"] * 7 + ["b"] * 3)
    kept = cap_per_group(index, groups, 3)
    assert kept[:, 1].tolist() == [0, 3, 6, 7, 8, 9]
    with pytest.raises(ConfigError):
        cap_per_group(index, groups, 0)
