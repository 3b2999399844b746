"""Nearest-neighbour retrieval across people with a frozen embedding (the FAb-Net paper's retrieval figure).

    from facedyn.fabnet.retrieval import retrieval_figure, retrieval_scores
    retrieval_figure("runs/fabnet", "data/box", "out/retrieval.png")   # queries + 5 neighbours from other people
    retrieval_scores("runs/fabnet", "data/box")                        # how alike the neighbours' faces are

Frames are drawn from held-out people (the store's ``val`` and ``test`` splits; every clip when those hold
fewer than two people), every ``every``-th valid frame of each clip. Features are compared by cosine
similarity; a query's neighbours are the ``k`` most similar frames of *other* people.

The figure has no ground truth; :func:`retrieval_scores` measures it with the store's landmarks: the mean
distance between a query's 68 landmarks and each neighbour's, in crop pixels divided by the query's outer-eye
distance (an NME; on box-aligned crops it sees head pose, position and scale as well as expression), for the
trained embedding, the same network at initialisation, raw pixels, and a random frame of another person.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from facedyn.api import load
from facedyn.data.store import ClipDataset
from facedyn.errors import ConfigError, DatasetError
from facedyn.reports.plots import save_figure

#: outer eye corners of the 68-point scheme (the inter-ocular normaliser of 300-W)
OUTER_EYES = (36, 45)


@dataclass
class FramePool:
    """Frames drawn for retrieval: ``images`` uint8 ``(N, H, W, 3)``, ``subjects`` ``(N,)`` str,
    ``landmarks`` float32 ``(N, 68, 2)`` crop pixels, ``clips`` ``(N,)`` str, ``t`` ``(N,)`` frame index."""

    images: np.ndarray
    subjects: np.ndarray
    landmarks: np.ndarray
    clips: np.ndarray
    t: np.ndarray


def held_out_pool(data: str | Path, splits: tuple[str, ...] = ("val", "test"), every: int = 5,
                  max_per_clip: int = 200) -> FramePool:
    """Every ``every``-th valid frame (at most ``max_per_clip`` per clip, evenly spread) of the clips of
    ``splits``; every clip of the store when those splits hold fewer than two people."""
    if every < 1 or max_per_clip < 1:
        raise ConfigError("every and max_per_clip must be >= 1")
    store = ClipDataset(data)
    people = {s for sp in splits for s in store.splits.get(sp, [])}
    clips = [c for sp in splits for c in store.clips(split=sp)] if len(people) >= 2 else store.clips()
    imgs, subs, lms, cids, ts = [], [], [], [], []
    for c in clips:
        idx = np.flatnonzero(c.valid)[::every]
        if len(idx) > max_per_clip:
            idx = idx[np.linspace(0, len(idx) - 1, max_per_clip).round().astype(int)]
        if not len(idx):
            continue
        imgs.append(np.asarray(c.frames[idx]))
        lms.append(np.asarray(c.landmarks[idx], np.float32))
        subs += [c.subject] * len(idx)
        cids += [c.clip_id] * len(idx)
        ts.append(idx)
    if len(set(subs)) < 2:
        raise DatasetError(f"{data}: retrieval across people needs frames of at least two people")
    return FramePool(np.concatenate(imgs), np.asarray(subs), np.concatenate(lms), np.asarray(cids),
                     np.concatenate(ts))


def nearest_other_people(features: np.ndarray, subjects: np.ndarray, queries: np.ndarray, k: int = 5,
                         distinct: bool = False) -> np.ndarray:
    """Indices ``(Q, k)`` of the ``k`` frames most cosine-similar to each query among frames of other people.

    Args:
        features: ``(N, D)`` float; subjects: ``(N,)``; queries: ``(Q,)`` int indices into ``features``.
        distinct: at most one frame per person (the most similar one of each), so the ``k`` neighbours are
            ``k`` different people.
    """
    subjects = np.asarray(subjects)
    f = np.asarray(features, np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    sim = f[queries] @ f.T  # (Q, N)
    sim[subjects[None, :] == subjects[queries][:, None]] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")
    out = np.zeros((len(queries), k), dtype=np.int64)
    for qi in range(len(queries)):
        cand = order[qi][np.isfinite(sim[qi, order[qi]])]
        if distinct:
            _, first = np.unique(subjects[cand], return_index=True)
            cand = cand[np.sort(first)]
        if len(cand) < k:
            raise DatasetError(f"fewer than {k} {'people' if distinct else 'frames of other people'} to retrieve "
                               "from; lower k")
        out[qi] = cand[:k]
    return out


def landmark_nme(landmarks: np.ndarray, queries: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per query ``(Q,)``: mean over its neighbours ``(Q, k)`` of the mean point distance between the query's
    and the neighbour's landmarks ``(N, 68, 2)``, divided by the query's outer-eye distance."""
    q = landmarks[queries]  # (Q, 68, 2)
    d = np.linalg.norm(landmarks[neighbours] - q[:, None], axis=-1).mean(axis=-1)  # (Q, k)
    iod = np.linalg.norm(q[:, OUTER_EYES[0]] - q[:, OUTER_EYES[1]], axis=-1)
    return d.mean(axis=1) / np.maximum(iod, 1e-6)


def embed(run: str | Path, images: np.ndarray, weights: str = "best", device: str = "cpu") -> np.ndarray:
    """A run's ``encode`` of uint8 aligned faces ``(N, H, W, 3)`` → ``(N, D)`` float."""
    model = load(run, weights=weights, device=device)
    return model.encode(images, aligned=True).numpy()


def _queries(pool: FramePool, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(pool.images), size=min(n, len(pool.images)), replace=False))


def retrieval_scores(run: str | Path, data: str | Path, k: int = 5, n_queries: int = 300, every: int = 5,
                     seed: int = 0, device: str = "cpu", pool: FramePool | None = None,
                     trained: np.ndarray | None = None) -> pd.DataFrame:
    """Landmark NME between queries and their ``k`` retrieved neighbours from other people (lower = the
    neighbours' faces are posed and shaped more like the query), one row per feature: ``trained`` (the run's
    best weights), ``init`` (the network before training), ``pixels`` (raw pixels) and ``random`` (``k``
    random frames of other people). Columns ``features, nme_mean, nme_median, n_queries, n_frames``.
    ``pool`` (else :func:`held_out_pool` of ``data``) and ``trained`` (the best weights' embedding of its
    images) may be given when already computed."""
    pool = pool if pool is not None else held_out_pool(data, every=every)
    ok = np.isfinite(pool.landmarks).all(axis=(1, 2))
    q = _queries(pool, n_queries, seed)
    q = q[ok[q]]
    feats = {"trained": trained if trained is not None else embed(run, pool.images, "best", device),
             "init": embed(run, pool.images, "init", device),
             "pixels": pool.images.reshape(len(pool.images), -1).astype(np.float32) / 255.0}
    rows = []
    for name, f in feats.items():
        nn_idx = nearest_other_people(f, pool.subjects, q, k)
        e = landmark_nme(pool.landmarks, q, nn_idx)
        rows.append({"features": name, "nme_mean": float(np.nanmean(e)), "nme_median": float(np.nanmedian(e))})
    rng = np.random.default_rng(seed + 1)
    rand = np.stack([rng.choice(np.flatnonzero((pool.subjects != pool.subjects[i]) & ok), size=k, replace=False)
                     for i in q])
    e = landmark_nme(pool.landmarks, q, rand)
    rows.append({"features": "random", "nme_mean": float(np.nanmean(e)), "nme_median": float(np.nanmedian(e))})
    df = pd.DataFrame(rows)
    df["n_queries"], df["n_frames"] = len(q), len(pool.images)
    return df


def retrieval_figure(run: str | Path, data: str | Path, out: str | Path, n_queries: int = 6, k: int = 5,
                     every: int = 5, seed: int = 0, weights: str = "best", distinct: bool = True,
                     device: str = "cpu", pool: FramePool | None = None,
                     embedding: np.ndarray | None = None) -> Path:
    """Queries (first column) and their ``k`` nearest neighbours from other people, left to right, by the run's
    embedding (``distinct``: ``k`` different people, the closest frame of each); each tile is titled with its
    person. Writes ``out`` (a .png) and returns it. ``pool`` (else :func:`held_out_pool` of ``data``) and
    ``embedding`` (the ``weights``' embedding of its images) may be given when already computed."""
    pool = pool if pool is not None else held_out_pool(data, every=every)
    q = _queries(pool, n_queries, seed)
    emb = embedding if embedding is not None else embed(run, pool.images, weights, device)
    nn_idx = nearest_other_people(emb, pool.subjects, q, k, distinct=distinct)
    fig, axes = plt.subplots(len(q), k + 1, figsize=(1.3 * (k + 1), 1.45 * len(q)), squeeze=False)
    for r, (qi, row) in enumerate(zip(q, nn_idx, strict=True)):
        for c, i in enumerate([qi, *row]):
            ax = axes[r][c]
            ax.imshow(pool.images[i])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(("query " if c == 0 else "") + str(pool.subjects[i])[:14], fontsize=6)
            if c == 0:
                for s in ax.spines.values():
                    s.set_color("tab:red")
                    s.set_linewidth(2)
    fig.suptitle(f"Nearest neighbours from other people{' (one frame each)' if distinct else ''} (cosine, "
                 f"{weights} weights of {Path(run).name})", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def retrieval_report(run: str | Path, data: str | Path, out: str | Path, k: int = 5, n_queries: int = 300,
                     n_figure: int = 6, every: int = 5, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """:func:`retrieval_scores` and :func:`retrieval_figure` of a run written into ``out``: ``retrieval.csv``,
    ``retrieval.md`` (the table, the figure) and ``retrieval.png``. Returns ``{"table", "files", "markdown"}``."""
    from facedyn.atomic import write_text
    from facedyn.reports.tables import markdown_table

    out = Path(out)
    pool = held_out_pool(data, every=every)  # read and embedded once for both
    trained = embed(run, pool.images, "best", device)
    df = retrieval_scores(run, data, k=k, n_queries=n_queries, every=every, seed=seed, device=device, pool=pool,
                          trained=trained)
    fig = retrieval_figure(run, data, out / "retrieval.png", n_queries=n_figure, k=k, every=every, seed=seed,
                           device=device, pool=pool, embedding=trained)
    md = "\n".join([
        "# Nearest-neighbour retrieval", "",
        f"- run: `{run}`; data: `{data}` (validation and test people, every {every}th frame)",
        f"- {int(df['n_queries'].iloc[0])} queries, each with its {k} most cosine-similar frames of *other* people; "
        "score: mean landmark distance between query and neighbours, in outer-eye-corner distances (lower: the "
        "neighbours are posed and shaped like the query); `random`: k random frames of other people", "",
        markdown_table(df[["features", "nme_mean", "nme_median"]], lambda v: f"{v:.4f}" if isinstance(v, float)
                       else str(v)), "",
        f"![retrieval]({fig.name})", ""])
    write_text(out / "retrieval.csv", df.to_csv(index=False, float_format="%.6g"))
    write_text(out / "retrieval.md", md)
    return {"table": df, "files": [out / "retrieval.csv", out / "retrieval.md", fig], "markdown": md}
