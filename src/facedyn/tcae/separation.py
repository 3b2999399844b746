"""Do TCAE's twins separate? Synthetic pairs that differ only in head pose, or only in AUs (issue item 5).

The synthetic generator renders one person twice with one factor changed (:func:`render_pairs`): a
*pose* pair keeps the AU intensities and turns, tilts and rolls the head by a few degrees; an *AU* pair
keeps the head pose and changes the AU intensities. Both frames are cropped as the run's data were
(``similarity``: each frame aligned on its own, as ``prepare`` does; ``box``: one box for the pair, the
mean of the two frames' landmark boxes, as the temporal smoothing of ``prepare --align box`` gives
frames a fraction of a second apart). For each pair the network's ``tau^A`` and ``tau^P`` are measured
as their mean magnitude in pixels over the crop (:func:`separation_check`). A network that separates the
two motions moves pose pairs mostly with ``tau^P`` and AU pairs mostly with ``tau^A``: the ratios
``|tau^P| / |tau^A|`` on pose pairs and ``|tau^A| / |tau^P|`` on AU pairs are both above 1.

The people are drawn from their own seed sequence, so they are not the people of a ``facedyn synth``
dataset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from facedyn.data.faces.align import align_face, box_matrix, crop_face, landmark_boxes
from facedyn.data.synthetic.face3d import sample_identity
from facedyn.data.synthetic.labels import AU_NAMES
from facedyn.data.synthetic.render import render_frame
from facedyn.errors import ConfigError

__all__ = ["KINDS", "render_pairs", "separation_check", "separation_pairs", "separation_summary"]

#: The two kinds of pairs.
KINDS = ("pose", "au")


def _random_aus(rng: np.random.Generator, k: int, lo: float, hi: float) -> np.ndarray:
    v = np.zeros(len(AU_NAMES))
    idx = rng.choice(len(AU_NAMES) - 1, size=k, replace=False)  # no blink (AU45) among the drawn AUs
    v[idx] = rng.uniform(lo, hi, size=k)
    return v


def _crop_pair(frames: list[np.ndarray], lms: list[np.ndarray], size: int, align: str, mask: bool,
               ) -> list[Any]:
    if align == "similarity":
        return [align_face(f, lm, size=size, mask=mask) for f, lm in zip(frames, lms, strict=True)]
    if align == "box":
        boxes = landmark_boxes(np.stack(lms), np.ones(len(lms), bool))
        M = box_matrix(boxes.mean(0), size)
        return [crop_face(f, lm, M, size, mask) for f, lm in zip(frames, lms, strict=True)]
    raise ConfigError(f"unknown alignment {align!r}; the separation check knows similarity and box")


#: A landmark that moves more than this (in inter-ocular distances) between an AU pair's frames is moved by the AUs.
MOVED_IOD = 0.02
#: Radius of the disc around each moved landmark that makes up the AU region, in inter-ocular distances.
REGION_IOD = 0.15


def au_region(src_lm: np.ndarray, tgt_lm: np.ndarray, size: int) -> np.ndarray:
    """Where an AU pair's AUs move the face: bool ``(size, size)``, the union of discs of radius
    :data:`REGION_IOD` around the target's landmarks that moved more than :data:`MOVED_IOD` (both in
    inter-ocular distances, eye centres of landmarks 36–41 and 42–47). The generator changes AUs only, with the
    head still, so every moved point is the AUs' doing. Empty when no point moved."""
    iod = float(np.linalg.norm(tgt_lm[36:42].mean(0) - tgt_lm[42:48].mean(0)))
    moved = np.linalg.norm(tgt_lm - src_lm, axis=1) > MOVED_IOD * iod
    yy, xx = np.mgrid[0:size, 0:size]
    region = np.zeros((size, size), bool)
    for x, y in tgt_lm[moved]:
        region |= (xx - x) ** 2 + (yy - y) ** 2 <= (REGION_IOD * iod) ** 2
    return region


def render_pairs(kind: str, n_people: int = 8, pairs_per_person: int = 4, size: int = 64,
                 align: str = "similarity", mask: bool = True, seed: int = 0, render_size: int = 160,
                 ) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame]:
    """Synthetic source/target pairs differing only in ``kind`` (``"pose"`` or ``"au"``).

    Per pair the source has 0–3 random AUs at intensity 0–2.5 and a head pose within (±8, ±5, ±4)
    degrees (yaw, pitch, roll); a pose pair adds (±4–10, ±2–6, ±2–6) degrees, an AU pair draws 2–3 other
    AUs at intensity 2–5. Rendered without sensor noise at ``render_size`` px, then cropped to ``size`` as
    ``align`` does.

    Returns:
        ``source``, ``target`` float ``(N, 3, size, size)`` in [0, 1] and a table of the pairs (``person``,
        ``kind``, the pose change ``d_yaw, d_pitch, d_roll``, the summed AU change ``d_au`` and both frames'
        crop landmarks ``src_landmarks``, ``tgt_landmarks``, ``(68, 2)`` arrays).
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    ss = np.random.SeedSequence([seed, 5150, KINDS.index(kind)])
    srcs, tgts, rows = [], [], []
    for p, child in enumerate(ss.spawn(n_people)):
        rng = np.random.default_rng(child)
        ident = sample_identity(rng)
        for _ in range(pairs_per_person):
            au0 = _random_aus(rng, int(rng.integers(0, 4)), 0.0, 2.5)
            pose0 = rng.uniform([-8, -5, -4], [8, 5, 4])
            au1, pose1 = au0, pose0
            if kind == "pose":
                pose1 = pose0 + rng.choice([-1, 1], 3) * rng.uniform([4, 2, 2], [10, 6, 6])
            else:
                au1 = np.maximum(au0, _random_aus(rng, int(rng.integers(2, 4)), 2.0, 5.0))
            frames, lms = [], []
            for au, pose in ((au0, pose0), (au1, pose1)):
                f, lm = render_frame(ident, au, tuple(pose), size=render_size, rng=None)
                frames.append(f)
                lms.append(lm)
            a, b = _crop_pair(frames, lms, size, align, mask)
            srcs.append(a.image)
            tgts.append(b.image)
            d = pose1 - pose0
            rows.append({"person": p, "kind": kind, "d_yaw": d[0], "d_pitch": d[1], "d_roll": d[2],
                         "d_au": float(np.abs(au1 - au0).sum()), "src_landmarks": a.landmarks,
                         "tgt_landmarks": b.landmarks})

    def to_t(x: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(x)).permute(0, 3, 1, 2).float() / 255.0

    return to_t(srcs), to_t(tgts), pd.DataFrame(rows)


def separation_pairs(size: int, align: str, mask: bool, n_people: int = 8, pairs_per_person: int = 4,
                     seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor, pd.DataFrame]]:
    """:func:`render_pairs` of both kinds: ``{"pose": (source, target, table), "au": (...)}``."""
    return {kind: render_pairs(kind, n_people, pairs_per_person, size, align, mask, seed) for kind in KINDS}


def separation_check(model: Any, n_people: int = 8, pairs_per_person: int = 4, seed: int = 0,
                     batch_size: int = 32,
                     pairs: dict[str, tuple[torch.Tensor, torch.Tensor, pd.DataFrame]] | None = None,
                     ) -> pd.DataFrame:
    """Mean magnitudes (pixels) of ``tau^A`` and ``tau^P`` on pose pairs and on AU pairs.

    Args:
        model: a TCAE :class:`~facedyn.api.FaceModel` (``facedyn.load(run)``) or a run directory.
        pairs: pairs made beforehand by :func:`separation_pairs` (to check several networks on the same
            pairs); default: rendered here for the model's crop size and alignment.

    Returns:
        One row per pair: ``person``, ``kind`` (``pose``/``au``), the change drawn, ``tau_au_px``,
        ``tau_pose_px`` (mean over the crop of each field's per-pixel length), ``alpha_au`` (mean
        weight of the AU field in the combination) and, on AU pairs, ``alpha_concentration``: the share of
        α^A's mass inside the AUs' region (:func:`au_region`) over the region's share of the crop (1: α^A
        no more there than anywhere; NaN on pose pairs). See :func:`separation_summary`.
    """
    if not hasattr(model, "reconstruct"):
        from facedyn.api import load

        model = load(model)
    if pairs is None:
        pairs = separation_pairs(model.data.size, model.data.align, bool(model.data.mask), n_people,
                                 pairs_per_person, seed)
    parts = []
    for kind in KINDS:
        src, tgt, table = pairs[kind]
        table = table.copy()
        ta, tp, al, maps = [], [], [], []
        for i in range(0, len(src), batch_size):
            r = model.reconstruct(src[i:i + batch_size], tgt[i:i + batch_size])
            ta.append(r["tau_au"].norm(dim=1).flatten(1).mean(1))
            tp.append(r["tau_pose"].norm(dim=1).flatten(1).mean(1))
            al.append(r["alpha_au"].flatten(1).mean(1))
            maps.append(r["alpha_au"][:, 0].numpy())
        table["tau_au_px"] = torch.cat(ta).numpy()
        table["tau_pose_px"] = torch.cat(tp).numpy()
        table["alpha_au"] = torch.cat(al).numpy()
        table["alpha_concentration"] = np.nan
        if kind == "au" and "tgt_landmarks" in table:
            alpha = np.concatenate(maps)
            conc = []
            for j, (a, b) in enumerate(zip(table["src_landmarks"], table["tgt_landmarks"], strict=True)):
                region = au_region(np.asarray(a), np.asarray(b), alpha.shape[-1])
                share = region.mean()
                mass = alpha[j].sum()
                conc.append(float(alpha[j][region].sum() / mass / share) if share > 0 and mass > 0 else np.nan)
            table["alpha_concentration"] = conc
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def separation_summary(df: pd.DataFrame) -> dict[str, float]:
    """Means per kind and the two separation ratios of :func:`separation_check`'s table.

    Keys: ``pose_tau_au_px``, ``pose_tau_pose_px``, ``au_tau_au_px``, ``au_tau_pose_px``,
    ``pose_ratio`` = |tau^P| / |tau^A| on pose pairs, ``au_ratio`` = |tau^A| / |tau^P| on AU pairs
    (both > 1 when the twins separate), ``alpha_au_pose``/``alpha_au_au`` (mean α^A on each kind) and
    ``alpha_concentration`` (its mean over AU pairs: 1 when α^A ignores where the AUs act).
    """
    m = df.groupby("kind")[["tau_au_px", "tau_pose_px", "alpha_au"]].mean()
    out = {f"{k}_{c}": float(m.loc[k, c]) for k in KINDS for c in ("tau_au_px", "tau_pose_px")}
    out.update({f"alpha_au_{k}": float(m.loc[k, "alpha_au"]) for k in KINDS})
    if "alpha_concentration" in df:
        out["alpha_concentration"] = float(df.loc[df["kind"] == "au", "alpha_concentration"].mean())
    out["pose_ratio"] = out["pose_tau_pose_px"] / max(out["pose_tau_au_px"], 1e-12)
    out["au_ratio"] = out["au_tau_au_px"] / max(out["au_tau_pose_px"], 1e-12)
    return out
