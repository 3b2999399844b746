"""Shared fixtures of the face-task tests: a tiny labelled clip store and tiny DR runs (built by code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.faces.landmarks68 import template
from facedyn.data.store import ClipWriter, write_index
from facedyn.train import train
from facedyn.train.loop import Runtime

SIZE = 32
AUS = ["AU06", "AU12", "AU25"]


def make_task_store(root: Path, n_frames: int = 40, seed: int = 0, subjects: int = 4, size: int = SIZE) -> Path:
    """Four subjects (train P1, P2; val P3; test P4), one 25 fps clip each, ``SIZE`` px.

    With ``subjects`` > 4: train P1..P(n-3), val P(n-2), test the last two; ``size`` px crops.

    Each frame is a dim face-like blob whose mouth brightness follows AU12 (so a still image can learn
    it), with template landmarks plus jitter, labels ``AU06, AU12, AU25, valence, arousal``; frame 3 of
    every clip has no face.
    """
    rng = np.random.default_rng(seed)
    info = {}
    SIZE = size  # the module default crop side, or the one asked for
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    tmpl = template(SIZE).astype(np.float32)
    names = [f"P{i + 1}" for i in range(subjects)]
    for k, subj in enumerate(names):
        cid = f"{subj}_c"
        t = np.arange(n_frames)
        au = np.stack([2.5 + 2.5 * np.sin(t / (4 + k) + j) for j in range(len(AUS))], 1).clip(0, 5)
        w = ClipWriter(root, cid, SIZE)
        for i in range(n_frames):
            img = np.full((SIZE, SIZE, 3), 40, np.float32)
            f = SIZE / 32
            face = ((xx - SIZE / 2) ** 2 / (120 * f * f) + (yy - SIZE / 2) ** 2 / (160 * f * f)) < 1
            img[face] = 120
            mouth = (np.abs(yy - 21 * f) < 2 * f) & (np.abs(xx - SIZE / 2) < 5 * f)
            img[mouth] = 120 + 25 * au[i, 1]
            img += rng.normal(0, 3, img.shape)
            lm = tmpl + rng.normal(0, 0.3, tmpl.shape).astype(np.float32)
            w.add(img.clip(0, 255).astype(np.uint8), lm, i != 3, i / 25)
        labels = pd.DataFrame({"frame": t, **{a: au[:, j] for j, a in enumerate(AUS)},
                               "valence": np.tanh(au[:, 1] - 2.5), "arousal": np.tanh(au[:, 2] - 2.5)})
        w.commit(labels, {"fps": 25.0, "subject": subj, "source": "test", "mask": False, "align": "similarity"})
        info[cid] = {"subject": subj, "n_frames": n_frames, "n_valid": n_frames - 1, "fps": 25.0}
    splits = ({"train": ["P1", "P2"], "val": ["P3"], "test": ["P4"]} if subjects <= 4 else
              {"train": names[:-3], "val": names[-3:-2], "test": names[-2:]})
    write_index(root, info, "test", splits=splits,
                contract={"size": SIZE, "mask": False, "align": "similarity", "template": "t", "detector": "given"})
    return root


def train_tiny_dr(data: Path, out: Path, T: int, S: int = 2, seed: int = 0) -> Path:
    """A DR run of 2 steps (width 4, depth 2): enough to have weights and a config."""
    train("dr", data, out, {"T": T, "S": S, "epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "width": 4,
                            "depth": 2, "seed": seed}, Runtime(device="cpu", threads=1))
    return out


def synthetic_video(path: Path, seed: int, seconds: float = 2.0, size: int = 160) -> pd.DataFrame:
    """Write one synthetic face video (25 fps) to ``path``; returns its per-frame labels (generator ground truth)."""
    from facedyn.data.synthetic import synthesize_clip
    from facedyn.data.video import write_video

    clip = synthesize_clip(seed, seconds, fps=25.0, size=size)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, clip.frames(), clip.fps)
    return clip.labels
