"""Linear probes: how much of a task a frozen representation holds, on people it never saw.

``run_probes(run, data, task)`` takes a trained run of any method (its ``encode``, or a named output of
its network's ``outputs()``), a clip store and a task, and fits linear models on the frozen features:

* ``au``: logistic regression per AU for presence (F1 at probability 0.5, AUC; class weights balanced)
  and ridge regression per AU for intensity (PCC, MAE). Targets: the label columns given as
  ``au_columns`` (a paper's protocol, e.g. BP4D's occurrence codes ``AU01_occ``, ...; only frames with one
  of them known are probed), else the store's AU intensities when it has them (``AU..`` label columns,
  the synthetic generator's or a dataset's; present = intensity >= ``presence``, 1 by default), else the
  landmark AU proxies of :mod:`facedyn.tasks.proxies` (present = above
  :func:`~facedyn.tasks.proxies.presence_threshold`);
* ``pose``: ridge regression of yaw, pitch, roll in degrees (MAE, PCC). Targets: the synthetic labels
  (``pose_yaw, pose_pitch, pose_roll``) when present, else :func:`facedyn.tasks.pose.estimate_pose` on the
  face's landmarks *in the source video* (``faces.csv``; the crop's landmarks when a clip has none), so
  on similarity-aligned crops, which remove roll, roll is invisible by construction;
* ``landmarks``: ridge regression of the 68 landmarks in crop pixels; error = mean point-to-point
  distance over the inter-ocular distance (outer eye corners 36–45), in % (NME, FAb-Net's metric).

AU probes take each feature relative to the person's own typical face (``person_norm``, on by default for
``au``): every feature minus its median over that person's probed frames (:func:`person_centred`), the
person-specific normalisation of Baltrušaitis et al. (FG 2015) used by OpenFace's AU detectors. The landmark
proxies are relative to each person's rest, and so are the FACS codes of a dataset (an action, not a
morphology); without it a linear probe mostly sees who the person is. It needs no labels (only the person's
own frames, as a video analysis has them) and is applied to every representation alike. Pose and landmarks are
absolute targets: off by default there.

Every representation is compared on the same folds and frames with the same network at initialisation
(``facedyn.load(run, weights="init")``) and with raw pixels reduced by PCA to the embedding size
(fitted on the training folds only). Features are standardised on the training folds; the ridge alpha
(``ALPHAS``) and the logistic C (``CS``) are chosen by a 3-fold person-level CV inside the training
folds. Folds are person-level: the store's folds (``facedyn split --folds K``) when it has them, else
``GroupKFold`` by subject. Only folds whose people the run neither trained nor validated on are
evaluated (when none is, the people it never saw form one test fold), so every number is on people
unseen by the representation and by the linear model. Predictions of all evaluated folds are pooled,
then each metric is computed on the whole set (:mod:`facedyn.eval.metrics`).

Several checkpoints of one run (``weights="step1000,step3000,best"`` or ``"all"``) are probed on the same
frames and folds, one row each (a learning curve), with the baselines probed once. The baselines' features
(the initial network's, the pixels' PCA per fold) and results are kept in ``STORE/.cache/probes/`` under a
digest of everything they depend on (:class:`ProbeCache`), so the next checkpoint pays for its own features
and fits only. The fits are those of :mod:`facedyn.tasks.linear`: the same models and selection as
scikit-learn's ``StandardScaler`` + ``Ridge`` / ``LogisticRegression`` pipelines, computed once per inner
split for all penalties (ridge) and all AUs (logistic), to convergence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn import runs as runs_mod
from facedyn.atomic import write_text
from facedyn.data.store import Clip, ClipDataset
from facedyn.errors import ConfigError, DatasetError
from facedyn.eval import metrics as M
from facedyn.reports.tables import markdown_table
from facedyn.tasks.linear import LinearModel, logistic_cv, ridge_cv

__all__ = [
    "ALPHAS",
    "CS",
    "TASKS",
    "ProbeTargets",
    "fit_logistic",
    "fit_ridge",
    "landmark_nme",
    "person_centred",
    "person_folds",
    "probe_markdown",
    "probe_report",
    "probe_targets",
    "run_probes",
    "seen_people",
    "select_frames",
    "write_probe_report",
]

TASKS = ("au", "pose", "landmarks")
#: Ridge penalties tried inside the training folds (features standardised).
ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
#: Logistic-regression inverse penalties tried inside the training folds.
CS = (0.01, 0.1, 1.0)
_AU_LABEL = re.compile(r"^AU\d\d$")


# -- frames and targets -------------------------------------------------------------------------------------

def select_frames(store: ClipDataset, max_per_subject: int | None = 150,
                  labelled: Sequence[str] | None = None) -> pd.DataFrame:
    """Valid frames to probe: per subject, at most ``max_per_subject`` evenly spaced over all of its clips.

    ``labelled``: label columns; only frames where at least one of them is known are candidates (e.g. the coded
    segment of a BP4D task, whose other frames have no occurrence codes).

    Returns a table with ``clip`` (clip id), ``frame`` (index in the clip) and ``subject``, one row per frame.
    """
    rows: list[tuple[str, int, str]] = []
    by_subject: dict[str, list[tuple[str, int]]] = {}
    for clip in store.clips():
        ok = np.asarray(clip.valid, bool)
        if labelled is not None:
            ok = ok & np.isfinite(_label_columns(clip, labelled)).any(1)
        for t in np.flatnonzero(ok):
            by_subject.setdefault(clip.subject, []).append((clip.clip_id, int(t)))
    for subject, items in sorted(by_subject.items()):
        if max_per_subject is not None and len(items) > max_per_subject:
            pick = np.unique(np.linspace(0, len(items) - 1, max_per_subject).round().astype(int))
            items = [items[i] for i in pick]
        rows.extend((c, t, subject) for c, t in items)
    if not rows:
        if labelled is not None:
            raise DatasetError(f"{store.path}: no frame with a face has any of the labels {', '.join(labelled)}; "
                               f"check the clips' label columns (`facedyn info {store.path}`) and re-prepare the "
                               "dataset into a new store if its adapter reads these labels now")
        raise DatasetError(f"{store.path}: no frame with a face found; check `facedyn info {store.path}`")
    return pd.DataFrame(rows, columns=["clip", "frame", "subject"])


@dataclass
class ProbeTargets:
    """What the probes predict for the selected frames.

    Attributes:
        binary: ``(N, K)`` 0/1 presence (NaN unknown) per column of ``binary_columns`` (AU task only).
        continuous: ``(N, L)`` regression targets (NaN unknown) per column of ``continuous_columns``.
        source: where the targets come from, in words (for the report).
        kind: ``"au"``, ``"pose"`` or ``"landmarks"``.
    """

    kind: str
    continuous: np.ndarray
    continuous_columns: list[str]
    source: str
    binary: np.ndarray | None = None
    binary_columns: list[str] = field(default_factory=list)


def _label_columns(clip: Clip, columns: Sequence[str]) -> np.ndarray:
    """``(N, K)`` the clip's label ``columns``; NaN for a column (or a whole clip) without labels."""
    df = clip.labels
    out = np.full((len(clip), len(columns)), np.nan)
    if df is not None:
        for j, c in enumerate(columns):
            if c in df.columns:
                out[:, j] = df[c].to_numpy(np.float64)
    return out


def _labels_of(clip: Clip, columns: Sequence[str]) -> np.ndarray | None:
    df = clip.labels
    if df is None or not set(columns) <= set(df.columns):
        return None
    return df[list(columns)].to_numpy(np.float64)


def _synthetic_au_columns(store: ClipDataset) -> list[str]:
    cols: list[str] | None = None
    for clip in store.clips():
        df = clip.labels
        if df is None:  # an unlabelled clip (e.g. a sequence without AU files) gives NaN targets
            continue
        have = [c for c in df.columns if _AU_LABEL.match(str(c))]
        cols = have if cols is None else [c for c in cols if c in have]
    return cols or []


def _point_count(store: ClipDataset) -> int:
    """How many ``point{k}_x/_y`` label columns (a still dataset's own landmarks) every labelled clip has."""
    k: int | None = None
    for clip in store.clips():
        df = clip.labels
        if df is None:
            continue
        have = {str(c) for c in df.columns}
        n = 0
        while f"point{n}_x" in have and f"point{n}_y" in have:
            n += 1
        k = n if k is None else min(k, n)
    return k or 0


def _points_in_crop(clip: Clip, rows: np.ndarray, k: int) -> np.ndarray:
    """The clip's ``point{j}`` labels (source pixels) of frames ``rows`` mapped into crop pixels, ``(R, 2k)``.

    The crop is a similarity of the source frame; it is recovered per frame from the clip's source landmarks
    (``faces.csv``) and crop landmarks, which it maps exactly onto each other.
    """
    from facedyn.data.faces.align import similarity_transform

    cols = [f"point{j}_{a}" for j in range(k) for a in ("x", "y")]
    assert clip.labels is not None
    pts = clip.labels[cols].to_numpy(np.float64)[rows].reshape(len(rows), k, 2)
    src = _source_landmarks(clip)[rows]
    dst = np.asarray(clip.landmarks, np.float64)[rows]
    out = np.full((len(rows), k, 2), np.nan)
    for i in range(len(rows)):
        if np.isfinite(src[i]).all() and np.isfinite(dst[i]).all():
            M = similarity_transform(src[i], dst[i])
            out[i] = pts[i] @ M[:, :2].T + M[:, 2]
    return out.reshape(len(rows), 2 * k)


def _source_landmarks(clip: Clip) -> np.ndarray:
    """``(N, 68, 2)`` landmarks in the source video's pixels (``faces.csv``), else the crop's."""
    p = clip.path / "faces.csv"
    if p.is_file():
        df = pd.read_csv(p)
        if len(df) == len(clip) and {"x_0", "y_67"} <= set(df.columns):
            xs = df[[f"x_{k}" for k in range(68)]].to_numpy(np.float64)
            ys = df[[f"y_{k}" for k in range(68)]].to_numpy(np.float64)
            return np.stack([xs, ys], -1)
    return np.asarray(clip.landmarks, dtype=np.float64)


def probe_targets(store: ClipDataset, frames: pd.DataFrame, task: str, presence: float = 1.0,
                  au_columns: Sequence[str] | None = None) -> ProbeTargets:
    """Targets of ``task`` for the rows of :func:`select_frames` (see the module docstring).

    ``presence``: an AU label column counts as present at this value or above (intensities 0-5: 1 is FACS
    level A; 0/1 presence labels: 1). ``au_columns``: the AU task's label columns, exactly these (a paper's
    protocol, e.g. BP4D's occurrence columns ``AU01_occ``, ...; NaN where a clip lacks one) instead of every
    ``AUxx`` column the clips share.

    Raises:
        DatasetError: ``au_columns`` given and no clip of the store has any of them.
    """
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    clip_ids = list(dict.fromkeys(frames["clip"]))
    where = {c: np.flatnonzero(frames["clip"].to_numpy() == c) for c in clip_ids}
    idx = frames["frame"].to_numpy()
    n = len(frames)

    def gather(per_clip: Callable[[Clip], np.ndarray], width: int) -> np.ndarray:
        out = np.full((n, width), np.nan)
        for c in clip_ids:
            rows = where[c]
            out[rows] = per_clip(store.clip(c))[idx[rows]].reshape(len(rows), width)
        return out

    if task == "landmarks" and (k := _point_count(store)):
        y = np.full((n, 2 * k), np.nan)
        for c in clip_ids:
            y[where[c]] = _points_in_crop(store.clip(c), idx[where[c]], k)
        cols = [f"point{j}_{a}" for j in range(k) for a in ("x", "y")]
        return ProbeTargets("landmarks", y, cols, f"the dataset's own {k} points (labels point0..{k - 1}), mapped "
                                                  "into crop pixels")
    if task == "landmarks":
        y = gather(lambda clip: np.asarray(clip.landmarks, np.float64).reshape(len(clip), -1), 136)
        cols = [f"{a}_{k}" for k in range(68) for a in ("x", "y")]
        return ProbeTargets("landmarks", y, cols, "the store's 68 landmarks (crop pixels)")
    if task == "pose":
        from facedyn.tasks.pose import POSE_COLUMNS, estimate_pose

        cols = list(POSE_COLUMNS)
        if all(_labels_of(store.clip(c), cols) is not None for c in clip_ids):
            return ProbeTargets("pose", gather(lambda clip: _labels_of(clip, cols), 3), cols,  # type: ignore[arg-type,return-value]
                                "the synthetic generator's head pose (degrees)")
        y = np.full((n, 3), np.nan)
        for c in clip_ids:
            rows = where[c]
            lm = _source_landmarks(store.clip(c))[idx[rows]]
            y[rows] = estimate_pose(lm)
        return ProbeTargets("pose", y, cols, "head pose from the source video's landmarks (facedyn.tasks.pose, "
                                             "solvePnP on MEAN_FACE_3D), degrees")
    if au_columns is not None:
        cols = list(au_columns)
        if not any(c.labels is not None and set(cols) & set(c.labels.columns) for c in store.clips()):
            raise DatasetError(f"{store.path}: no clip has any of the AU labels {', '.join(cols)}; check the clips' "
                               f"label columns (`facedyn info {store.path}`)")
        y = gather(lambda clip: _label_columns(clip, cols), len(cols))
        b = np.where(np.isnan(y), np.nan, (y >= presence).astype(np.float64))
        return ProbeTargets("au", y, cols, f"the store's AU labels {cols[0]}..{cols[-1]} ({len(cols)} columns; "
                                           f"present = value >= {presence:g})", b, cols)
    au_cols = _synthetic_au_columns(store)
    if au_cols:
        y = gather(lambda clip: _labels_of(clip, au_cols), len(au_cols))  # type: ignore[arg-type,return-value]
        b = np.where(np.isnan(y), np.nan, (y >= presence).astype(np.float64))
        src = f"the store's AU labels (the synthetic generator's intensities or the dataset's codes; present = " \
              f"value >= {presence:g})"
        return ProbeTargets("au", y, au_cols, src, b, au_cols)
    from facedyn.tasks.proxies import PROXY_COLUMNS, presence_threshold, store_proxies

    prox = store_proxies(store, clip_ids)
    cols = list(PROXY_COLUMNS)
    y = np.full((n, len(cols)), np.nan)
    for c in clip_ids:
        y[where[c]] = prox[c][cols].to_numpy(np.float64)[idx[where[c]]]
    thr = np.array([presence_threshold(c) for c in cols])
    b = np.where(np.isnan(y), np.nan, (y >= thr).astype(np.float64))
    return ProbeTargets("au", y, cols, "landmark AU proxies (facedyn.tasks.proxies; present = above "
                                       "presence_threshold)", b, cols)


def person_centred(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Features ``X`` ``(N, D)`` minus, per column, the median over the rows of the same person (``groups`` ``(N,)``).

    Every person's median feature becomes 0; adding any per-person offset to ``X`` leaves the result unchanged.
    """
    X = np.asarray(X)
    med = pd.DataFrame(X).groupby(np.asarray(groups), sort=False).transform("median").to_numpy(X.dtype)
    return X - med


def default_person_norm(task: str) -> bool:
    """Whether ``task``'s probes take features relative to each person by default: AUs yes (targets relative to
    the person's rest), pose and landmarks no (absolute targets)."""
    return task == "au"


# -- folds --------------------------------------------------------------------------------------------------

def person_folds(subjects: Sequence[str], store_folds: Sequence[Sequence[str]] | None, k: int | None,
                 seen: set[str]) -> tuple[list[list[str]], str]:
    """Test people of each evaluated fold, and how the folds were made (in words).

    ``store_folds`` (the store's, when it has them) or ``GroupKFold(k)`` over ``subjects``; only folds with
    none of the ``seen`` people (those the representation trained or validated on) are kept; when no fold
    qualifies, the unseen people form one fold.

    Raises:
        ConfigError: ``k`` given and different from the store's number of folds, or ``k < 2``.
        DatasetError: every person was seen by the representation, or fewer than 2 people.
    """
    people = sorted(set(subjects))
    if len(people) < 2:
        raise DatasetError("probes need at least 2 people (person-level folds)")
    if store_folds:
        if k is not None and k != len(store_folds):
            raise ConfigError(f"--folds {k}: the store has {len(store_folds)} folds; omit --folds or remake them "
                              f"with `facedyn split DATA --folds {k}`")
        folds = [sorted(set(f) & set(people)) for f in store_folds]
        how = f"the store's {len(store_folds)} person-level folds"
    else:
        from sklearn.model_selection import GroupKFold

        k = 5 if k is None else k
        if k < 2:
            raise ConfigError(f"--folds must be >= 2, got {k}")
        k = min(k, len(people))
        order = np.arange(len(people))
        folds = [sorted(people[i] for i in test) for _, test in GroupKFold(n_splits=k).split(order, groups=order)]
        how = f"GroupKFold({k}) by subject"
    folds = [f for f in folds if f]
    unseen = [p for p in people if p not in seen]
    if not unseen:
        raise DatasetError("the run trained or validated on every person of this store: probe it on people it "
                           "never saw (train with --fold K, or probe another store)")
    keep = [f for f in folds if not set(f) & seen]
    if keep:
        return keep, f"{how}; evaluated: the {len(keep)} fold(s) without people the run trained or validated on"
    return [unseen], f"{how} all hold people the run saw; evaluated: one fold of the {len(unseen)} unseen people"


def split_fold(store: ClipDataset, subjects: Sequence[str], split: str, seen: set[str]) -> tuple[list[list[str]], str]:
    """One evaluated fold: the people of the store's ``split`` (a dataset's own test partition), and how.

    Raises:
        DatasetError: the split holds none of ``subjects``, all of them, or people the representation saw.
    """
    people = set(subjects)
    test = sorted(people & set(store.splits.get(split, [])))
    if not test or len(test) == len(people):
        raise DatasetError(f"{store.path}: its {split!r} split holds {len(test)} of the {len(people)} people probed; "
                           "the probes need people in it and outside it (`facedyn info` shows the splits)")
    if set(test) & seen:
        raise DatasetError(f"{store.path}: the run trained or validated on people of its {split!r} split; probe "
                           "people it never saw")
    rest = len(people) - len(test)
    return [test], f"the store's {split} split ({len(test)} people; the linear models fit on the other {rest})"


# -- linear models ------------------------------------------------------------------------------------------

def fit_ridge(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, alphas: Sequence[float] = ALPHAS) -> LinearModel:
    """Standardise + ridge on ``X`` ``(N, D)`` → ``Y`` ``(N, L)``, alpha by person-level inner CV (lowest MSE).

    Every alpha from one eigendecomposition per inner split (:func:`facedyn.tasks.linear.ridge_cv`); the
    model's ``predict`` gives ``(N, L)``.
    """
    return ridge_cv(X, Y, groups, alphas)[0]


def fit_logistic(X: np.ndarray, y: np.ndarray, groups: np.ndarray, cs: Sequence[float] = CS) -> LinearModel | None:
    """Standardise + balanced logistic regression of 0/1 ``y`` ``(N,)``, C by inner CV (highest AUC).

    None when ``y`` has one class only (no model can be fitted); else ``predict_proba`` gives ``(N, 2)``.
    Several targets sharing ``X`` are fitted together by :func:`facedyn.tasks.linear.logistic_cv`.
    """
    model, chosen = logistic_cv(X, np.asarray(y, np.float64)[:, None], groups, cs)
    return model if chosen[0] is not None else None


#: The two points whose distance normalises the landmark error, by number of points: 68 (300-W): the outer eye
#: corners; 5 (MAFL): the eye centres.
EYE_POINTS: dict[int, tuple[int, int]] = {68: (36, 45), 5: (0, 1)}


def landmark_nme(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-frame landmark error ``(N,)`` in % of the inter-ocular distance (:data:`EYE_POINTS`).

    ``y_true``, ``y_pred`` ``(N, 2K)`` (x, y interleaved per point) or ``(N, K, 2)``, K = 68 or 5.
    """
    t = np.asarray(y_true, dtype=np.float64)
    k = t.shape[1] if t.ndim == 3 else t.shape[1] // 2
    if k not in EYE_POINTS:
        raise ConfigError(f"landmark error is defined for {' or '.join(map(str, EYE_POINTS))} points, got {k}")
    t = t.reshape(-1, k, 2)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1, k, 2)
    a, b = EYE_POINTS[k]
    iod = np.linalg.norm(t[:, a] - t[:, b], axis=-1)
    return 100.0 * np.linalg.norm(p - t, axis=-1).mean(1) / iod


# -- features -----------------------------------------------------------------------------------------------

def _pixels(store: ClipDataset, frames: pd.DataFrame) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` crops of the selected frames."""
    out = []
    for c, grp in frames.groupby("clip", sort=False):
        out.append((grp.index.to_numpy(), np.asarray(store.clip(str(c)).frames[grp["frame"].to_numpy()])))
    n = len(frames)
    first = out[0][1]
    arr = np.zeros((n, *first.shape[1:]), np.uint8)
    for rows, fr in out:
        arr[rows] = fr
    return arr


def _features(model: Any, images: np.ndarray, name: str, batch_size: int = 128) -> np.ndarray:
    """``(N, D)`` float32 features ``name`` (``encode`` or a key of ``outputs()``) of uint8 crops ``(N, H, W, 3)``."""
    import torch

    parts = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        if name == "encode":
            z = model.encode(x)
        else:
            outs = model.outputs(x)
            if name not in outs:
                raise ConfigError(f"--features {name!r}: this run's network has outputs "
                                  f"{', '.join(['encode', *outs])}; pick one of those")
            z = outs[name]
        parts.append(z.reshape(len(x), -1).float().numpy())
    return np.concatenate(parts)


# -- the probes ---------------------------------------------------------------------------------------------

def _pca_features(X: np.ndarray, groups: np.ndarray, folds: list[list[str]], dim: int,
                  seed: int = 0) -> list[np.ndarray]:
    """Per evaluated fold, every row of ``X`` ``(N, D)`` projected by a PCA fitted on that fold's training rows:
    a list of ``(N, min(dim, n_train - 1, D))`` arrays (randomized SVD, ``random_state=seed``)."""
    from sklearn.decomposition import PCA

    out = []
    for test_people in folds:
        tr = ~np.isin(groups, test_people)
        p = PCA(n_components=min(dim, int(tr.sum()) - 1, X.shape[1]), svd_solver="randomized",
                random_state=seed).fit(X[tr])
        out.append(p.transform(X))
    return out


def _evaluate(X: np.ndarray | list[np.ndarray], t: ProbeTargets, groups: np.ndarray,
              folds: list[list[str]]) -> dict[str, float]:
    """Pooled test predictions over ``folds`` → ``{"<column> <METRIC>": value, "mean <METRIC>": ...}``.

    ``X``: ``(N, D)`` features, or one ``(N, D_f)`` array per fold (features of fold f, e.g. its PCA). The
    fits run on one BLAS thread: their matrices are small, and on a busy machine a second thread mostly waits
    (measured: one AU fold 4 s instead of 35 s wall with 2 threads at load 7 on 2 cores).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _evaluate_folds(X, t, groups, folds)


def _evaluate_folds(X: np.ndarray | list[np.ndarray], t: ProbeTargets, groups: np.ndarray,
                    folds: list[list[str]]) -> dict[str, float]:
    cont = np.full(t.continuous.shape, np.nan)
    prob = np.full(t.binary.shape, np.nan) if t.binary is not None else None
    for f, test_people in enumerate(folds):
        Xf = X[f] if isinstance(X, list) else X
        te = np.isin(groups, test_people)
        tr = ~te
        Xtr, Xte = Xf[tr], Xf[te]
        g = groups[tr]
        # continuous targets: one ridge on the rows where every column is known, else per column
        ytr = t.continuous[tr]
        full = np.isfinite(ytr).all(1)
        if full.mean() > 0.95 or t.kind == "landmarks":
            cont[te] = fit_ridge(Xtr[full], ytr[full], g[full]).predict(Xte)
        else:
            for j in range(ytr.shape[1]):
                ok = np.isfinite(ytr[:, j])
                if ok.sum() > 1:
                    cont[te, j] = fit_ridge(Xtr[ok], ytr[ok, j:j + 1], g[ok]).predict(Xte).reshape(len(Xte), -1)[:, 0]
        if prob is not None and t.binary is not None:
            # one logistic regression per column on its known rows; columns known on the same rows share the
            # standardisation, the inner splits and the solver (fitted together, each with its own C)
            btr = t.binary[tr]
            known = np.isfinite(btr)
            by_rows: dict[bytes, list[int]] = {}
            for j in range(btr.shape[1]):
                by_rows.setdefault(np.packbits(known[:, j]).tobytes(), []).append(j)
            for cols in by_rows.values():
                ok = known[:, cols[0]]
                m, _ = logistic_cv(Xtr[ok], btr[ok][:, cols], g[ok], CS)
                if m is not None:
                    prob[np.ix_(te, cols)] = m.predict(Xte)
    evaluated = np.isin(groups, [p for f in folds for p in f])
    out: dict[str, float] = {}
    if t.kind == "landmarks":
        keep = evaluated & np.isfinite(t.continuous).all(1)
        out["NME %"] = float(landmark_nme(t.continuous[keep], cont[keep]).mean())
        return out
    names = {"pose": lambda c: c.replace("pose_", "")}.get(t.kind, lambda c: c)
    regress = ("MAE", "PCC")
    for metric in regress:
        fn = {"MAE": M.mae, "PCC": M.pcc}[metric]
        vals = []
        for j, c in enumerate(t.continuous_columns):
            keep = evaluated & np.isfinite(t.continuous[:, j]) & np.isfinite(cont[:, j])
            v = fn(t.continuous[keep, j], cont[keep, j])
            out[f"{names(c)} {metric}"] = v
            vals.append(v)
        out[f"mean {metric}"] = M.average(vals)
    if prob is not None and t.binary is not None:
        for metric in ("F1", "AUC"):
            fn = {"F1": M.f1, "AUC": M.auc}[metric]
            vals = []
            for j, c in enumerate(t.binary_columns):
                keep = evaluated & np.isfinite(t.binary[:, j]) & np.isfinite(prob[:, j])
                yb = t.binary[keep, j]
                # no positive among the test people (or no model): F1/AUC undefined
                v = fn(yb, prob[keep, j]) if yb.size and yb.max() >= 1 else float("nan")
                out[f"{c} {metric}"] = v
                vals.append(v)
            out[f"mean {metric}"] = M.average(vals)
    return out


def seen_people(run: str | Path) -> set[str]:
    """The people a run (a directory or a shipped model's name) trained or validated on: its ``train`` and ``val``."""
    from facedyn.api import resolve_run

    rec = runs_mod.read_record(resolve_run(run))
    splits = rec.data.get("splits") or {}
    if not isinstance(splits, dict):
        return set()
    return {str(s) for k in ("train", "val") for s in splits.get(k, [])}


def probe_weights(run: str | Path, weights: str | Sequence[str]) -> list[str]:
    """The trained checkpoints to probe: ``best``, ``last``, ``step<N>`` or ``all``, or several, comma-separated.

    ``all``: every kept ``step<N>`` (ascending), then ``last``. Duplicates are dropped, order kept.

    Raises:
        ConfigError: ``init`` (always probed as the baseline), a name that is no checkpoint name, an empty list.
    """
    from facedyn import runs as run_io

    names = [w.strip() for w in (weights.split(",") if isinstance(weights, str) else weights) if w.strip()]
    out: list[str] = []
    for w in names:
        if w == "all":
            from facedyn.api import resolve_run

            out += [f"step{k}" for k in run_io.kept_steps(resolve_run(run))] + ["last"]
        elif w == "init" or not run_io.is_weights_name(w):
            raise ConfigError(f"--weights must be best, last, step<N> or all, comma-separated (init is probed as the "
                              f"baseline), got {w!r}")
        else:
            out.append(w)
    if not out:
        raise ConfigError("--weights: give at least one checkpoint (best, last, step<N> or all)")
    return list(dict.fromkeys(out))


def run_probes(run: str | Path, data: str | Path, task: str, features: Sequence[str] = ("encode",),
               folds: int | None = None, weights: str | Sequence[str] = "best",
               max_frames_per_subject: int | None = 150, baselines: bool = True, device: str = "auto",
               seed: int = 0, cache: bool = True, progress: Callable[[str], None] | None = None,
               test_split: str | None = None, presence: float = 1.0,
               person_norm: bool | None = None, au_columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Linear probes of a run's frozen features on ``task`` (``au``, ``pose`` or ``landmarks``).

    Args:
        run: a trained run directory (any method).
        data: a clip store (crops of the run's size).
        features: ``encode`` and/or names of the network's ``outputs()`` (TCAE: ``au``, ``pose``).
        folds: ``K`` for GroupKFold when the store has no folds (default 5); must match the store's if given.
        weights: the trained checkpoint(s): ``best``, ``last``, ``step<N>``, ``all`` (every kept step, then
            last), or several (a list or comma-separated), probed on the same frames and folds, one row each
            (a learning curve); the baselines are probed once.
        max_frames_per_subject: frames per person (evenly spaced; None: all).
        baselines: also probe the network at initialisation and raw pixels (PCA to the embedding size).
        cache: keep the baselines' features and results in ``DATA/.cache/probes/`` and reuse them (see
            :class:`ProbeCache`; a store that cannot be written is probed without).
        progress: called with a line of text at each stage.
        test_split: evaluate one fold, the store's split of this name (a dataset's own train/test partition,
            e.g. MAFL's or 300-W's), with the linear models fitted on every other person; default: folds.
        presence: AU labels count as present at this value or above (see :func:`probe_targets`).
        au_columns: the AU task's label columns, exactly these (see :func:`probe_targets`); only frames with at
            least one of them known are probed.
        person_norm: every representation's features minus each person's median (:func:`person_centred`)
            before the linear models; None: :func:`default_person_norm` (on for ``au`` only).

    Returns:
        One row per representation × features: ``representation`` (``trained``, ``init``, ``pixels``),
        ``weights`` (the checkpoint; ``init``; empty for pixels), ``step`` (the training step of the weights,
        from the checkpoint; NaN for pixels), ``features``, ``dim``, then one column per target and metric
        (``"AU12 F1"``, ``"yaw MAE"``, ``"NME %"``, ...) and the means (``"mean F1"``, ...). ``attrs`` hold
        ``task``, ``targets`` (their source), ``folds`` (test people of each evaluated fold), ``folding`` (how),
        ``n_frames``, ``n_people``, ``person_norm``, ``run``, ``data``, ``run_align``, ``data_align``, ``method``,
        ``weights``
        (comma-separated), ``cache`` (what was reused, in words).

    Raises:
        ConfigError: an unknown task, weights or features name, or crops of another size than the run's.
        DatasetError: no people the run did not see, or no frames.
    """
    from facedyn.api import load, resolve_run

    say = progress or (lambda s: None)
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    wanted = probe_weights(run, weights)
    norm = default_person_norm(task) if person_norm is None else bool(person_norm)
    if not features:
        raise ConfigError("give at least one --features name (encode, or an output of the network)")
    store = ClipDataset(data)
    run_dir = resolve_run(run)
    model = load(run_dir, weights=wanted[0], device=device)
    if store.size != model.size:
        raise ConfigError(f"{data}: crops of {store.size} px, but the run was trained on {model.size} px; probe a "
                          "store prepared with the run's --size")
    cols = list(au_columns) if au_columns else None
    if cols is not None and task != "au":
        raise ConfigError(f"AU label columns ({', '.join(cols)}) are for --task au, not {task}")
    frames = select_frames(store, max_frames_per_subject, labelled=cols)
    groups = frames["subject"].to_numpy().astype(str)
    if test_split is not None:
        test_folds, how = split_fold(store, groups, test_split, seen_people(run_dir))
    else:
        test_folds, how = person_folds(groups, store.folds, folds, seen_people(run_dir))
    say(f"{len(frames)} frames of {len(set(groups))} people; {how}")
    targets = probe_targets(store, frames, task, presence=presence, au_columns=cols)
    images = _pixels(store, frames)
    pc = ProbeCache(Path(data), images, groups, test_folds, targets, device=str(model.device), say=say) \
        if cache else None
    rows: list[dict[str, Any]] = []

    def probe(rep: str, w: str, step: int | None, name: str, X: np.ndarray | list[np.ndarray], dim: int) -> None:
        say(f"probing {rep} {w + ' ' if rep == 'trained' else ''}{name}")
        if norm:
            X = [person_centred(x, groups) for x in X] if isinstance(X, list) else person_centred(X, groups)
        rows.append({"representation": rep, "weights": w, "step": step, "features": name, "dim": dim,
                     **_evaluate(X, targets, groups, test_folds)})

    for i, w in enumerate(wanted):
        if i:
            model = load(run, weights=w, device=device)
        step = runs_mod.checkpoint_step(run_dir, w)
        for name in features:
            X = _features(model, images, name)
            probe("trained", w, step, name, X, X.shape[1])
    if baselines:
        dim = int(rows[0]["dim"])
        init_key = ProbeCache.init_key(run_dir, model.name, model.cfg)
        init: Any = None
        for name in features:
            res = pc.result("init", init_key, name, norm) if pc else None
            if res is None:
                X = pc.array("init-features", init_key, name) if pc else None
                if X is None:
                    init = init or load(run, weights="init", device=device)
                    X = _features(init, images, name)
                    if pc:
                        pc.put_array(X, "init-features", init_key, name)
                probe("init", "init", 0, name, X, X.shape[1])
                if pc:
                    pc.put_result(rows[-1], "init", init_key, name, norm)
            else:
                say(f"init {name}: reused from {pc.root}")
                rows.append(res)
        res = pc.result("pixels", dim, seed, norm) if pc else None
        if res is None:
            Z = pc.arrays("pixels-pca", dim, seed) if pc else None
            if Z is None:
                say(f"pixels: PCA to {dim} per fold")
                flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
                Z = _pca_features(flat, groups, test_folds, dim, seed)
                if pc:
                    pc.put_arrays(Z, "pixels-pca", dim, seed)
            probe("pixels", "", None, f"PCA {dim}", Z, dim)
            if pc:
                pc.put_result(rows[-1], "pixels", dim, seed, norm)
        else:
            say(f"pixels: reused from {pc.root}")
            rows.append(res)
    df = pd.DataFrame(rows)
    df["step"] = df["step"].astype("Int64")  # <NA> for pixels
    df.attrs.update({"task": task, "targets": targets.source, "folds": test_folds, "folding": how,
                     "n_frames": len(frames), "n_people": len(set(groups)), "person_norm": norm,
                     "run": str(run), "data": str(data),
                     "run_align": model.data.align, "data_align": store.align, "method": model.name,
                     "weights": ",".join(wanted), "cache": pc.summary() if pc else "off"})
    return df


# -- cache of the baselines ---------------------------------------------------------------------------------

def _digest(*parts: Any) -> str:
    """A short hex digest of arrays, strings and JSON-able values."""
    import hashlib
    import json

    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.data)
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()


class ProbeCache:
    """The baselines of :func:`run_probes`, kept beside the store in ``STORE/.cache/probes/``.

    Every entry is named by a digest of everything it depends on, so a change of any of them is a miss, never
    a stale hit: the *content* of the probed crops (``images``, not their paths: another store, other frames
    or re-prepared clips give other bytes), the people of each row, the evaluated folds, and

    * ``init-features-*.npy``: the run's initial weights (file digest), method, settings, features name, device
      and the torch version;
    * ``pixels-pca-*.npz``: the PCA size and seed, the scikit-learn version;
    * ``*-result-*.json``: the above, plus the targets (values and columns) and the source of the probe code
      (``probes.py``, ``linear.py``) and the numpy/scikit-learn versions.

    Files are written atomically; a store that cannot be written turns the cache off (said once).
    """

    def __init__(self, store: Path, images: np.ndarray, groups: np.ndarray, folds: list[list[str]],
                 targets: ProbeTargets, device: str = "cpu", say: Callable[[str], None] = lambda s: None) -> None:
        import sklearn
        import torch

        self.root = store / ".cache" / "probes"
        self.say = say
        self.enabled = True
        self.hits: list[str] = []
        self.rows = _digest(images, groups.astype(str), [list(f) for f in folds])
        self.versions = {"sklearn": sklearn.__version__, "numpy": np.__version__, "torch": torch.__version__,
                         "device": device.split(":")[0]}
        code = "".join((Path(__file__).parent / f).read_text() for f in ("probes.py", "linear.py"))
        self.fit = _digest(code, targets.kind, targets.continuous, targets.continuous_columns,
                           targets.binary if targets.binary is not None else "", targets.binary_columns)

    @staticmethod
    def init_key(run: Path, method: str, cfg: Any) -> str:
        """What the initial network's features depend on besides the crops: its weights, method, settings.

        A run without ``init.safetensors`` (a shipped model) has its init network rebuilt from the recorded
        seed (``facedyn.load(run, weights="init")``), so the settings, seed included, are the key then.
        """
        import dataclasses

        from facedyn import runs as run_io

        path = Path(run) / run_io.CHECKPOINTS / "init.safetensors"
        settings = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg))
        weights = path.read_bytes() if path.is_file() else b"rebuilt from the recorded seed"
        return _digest(weights, method, settings)

    def _path(self, kind: str, *key: Any, suffix: str) -> Path:
        return self.root / f"{kind}-{_digest(self.rows, self.versions, *key)}{suffix}"

    def _write(self, path: Path, write: Callable[[Path], None]) -> None:
        from facedyn.atomic import atomic_path
        from facedyn.errors import OutputError

        if not self.enabled:
            return
        try:
            with atomic_path(path) as tmp:
                write(tmp)
        except (OutputError, OSError) as e:
            self.enabled = False
            self.say(f"cache off: cannot write {self.root} ({e})")

    def _hit(self, path: Path, kind: str) -> bool:
        if self.enabled and path.is_file():
            self.hits.append(kind)
            return True
        return False

    def array(self, kind: str, *key: Any) -> np.ndarray | None:
        path = self._path(kind, *key, suffix=".npy")
        try:
            return np.load(path) if self._hit(path, kind) else None
        except (OSError, ValueError):
            return None

    def put_array(self, a: np.ndarray, kind: str, *key: Any) -> None:
        self._write(self._path(kind, *key, suffix=".npy"), lambda tmp: np.save(tmp, a))

    def arrays(self, kind: str, *key: Any) -> list[np.ndarray] | None:
        path = self._path(kind, *key, suffix=".npz")
        try:
            if not self._hit(path, kind):
                return None
            with np.load(path) as z:
                return [z[f"f{i}"] for i in range(len(z.files))]
        except (OSError, ValueError, KeyError):
            return None

    def put_arrays(self, arrays: list[np.ndarray], kind: str, *key: Any) -> None:
        self._write(self._path(kind, *key, suffix=".npz"),
                    lambda tmp: np.savez(tmp, **{f"f{i}": a for i, a in enumerate(arrays)}))

    def result(self, kind: str, *key: Any) -> dict[str, Any] | None:
        import json

        path = self._path(f"{kind}-result", self.fit, *key, suffix=".json")
        try:
            row = json.loads(path.read_text()) if self._hit(path, f"{kind} result") else None
            return None if row is None else {k: (np.nan if v is None else v) for k, v in row.items()}
        except (OSError, ValueError):
            return None

    def put_result(self, row: dict[str, Any], kind: str, *key: Any) -> None:
        import json

        clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        self._write(self._path(f"{kind}-result", self.fit, *key, suffix=".json"),
                    lambda tmp: tmp.write_text(json.dumps(clean, default=float)))

    def summary(self) -> str:
        if not self.enabled:
            return "off (store not writable)"
        return f"{self.root}: reused " + (", ".join(self.hits) if self.hits else "nothing (first probe of these)")


# -- report -------------------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if v is pd.NA:
        return "–"
    if isinstance(v, float | np.floating):
        return "–" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def _md_table(df: pd.DataFrame) -> list[str]:
    return markdown_table(df, _fmt).splitlines()


def probe_markdown(df: pd.DataFrame, extra: Sequence[str] = ()) -> str:
    """The report of :func:`run_probes`: settings, a summary table (means), the per-target table, ``extra`` lines."""
    a = df.attrs
    key = [c for c in ("representation", "weights", "step", "features", "dim") if c in df.columns]
    means = [c for c in df.columns if c.startswith("mean ") or c == "NME %"]
    per = [c for c in df.columns if c not in key and c not in means]
    lines = [f"# Linear probes: {a.get('task')}", "",
             f"- run: `{a.get('run')}` ({a.get('method')}, weights {a.get('weights')}, trained on "
             f"{a.get('run_align')}-aligned crops); data: `{a.get('data')}` ({a.get('data_align')}-aligned)",
             f"- targets: {a.get('targets')}",
             f"- {a.get('n_frames')} frames of {a.get('n_people')} people; folds: {a.get('folding')}",
             "- test people: " + "; ".join(", ".join(f) for f in a.get("folds", [])),
             "- linear models on frozen features (standardised on the training folds; ridge alpha / logistic C "
             "by person-level CV inside them); pixels: PCA fitted on the training folds",
             "- features relative to each person (minus the person's median feature, every representation): "
             + ("yes" if a.get("person_norm") else "no"),
             f"- baselines cache: {a.get('cache', 'off')}",
             "", "## Summary", ""]
    lines += _md_table(df[key + means])
    if per:
        lines += ["", "## Per target", ""]
        t = df[per].T
        several = "weights" in df.columns and int((df["representation"] == "trained").sum()) > \
            df["features"][df["representation"] == "trained"].nunique()
        labels = df["representation"] + " " + (df["weights"] + " " if several else "") + df["features"]
        t.columns = [s.replace("init init", "init").replace("  ", " ") for s in labels]
        t.insert(0, "target", t.index)
        lines += _md_table(t)
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"


def write_probe_report(df: pd.DataFrame, out: str | Path, name: str | None = None,
                       extra: Sequence[str] = ()) -> list[Path]:
    """Write ``probes_<task>.md`` and ``.csv`` into ``out`` atomically; returns their paths."""
    out = Path(out)
    stem = name or f"probes_{df.attrs.get('task', 'task')}"
    md, csv = out / f"{stem}.md", out / f"{stem}.csv"
    write_text(csv, df.to_csv(index=False, float_format="%.5g"))
    write_text(md, probe_markdown(df, extra))
    return [md, csv]


def _separation_lines(run: str | Path, device: str, n_people: int) -> tuple[list[str], pd.DataFrame]:
    """The TCAE separation check (:mod:`facedyn.tcae.separation`) of the trained and the initial network,
    on the same synthetic pairs."""
    from facedyn.api import load
    from facedyn.tcae.separation import separation_check, separation_pairs, separation_summary

    rows = []
    pairs = None
    for w in ("best", "init"):
        model = load(run, weights=w, device=device)
        if pairs is None:
            pairs = separation_pairs(model.data.size, model.data.align, bool(model.data.mask), n_people)
        table = separation_check(model, pairs=pairs)
        rows.append({"weights": w, "pairs_per_kind": int((table["kind"] == "pose").sum()),
                     **separation_summary(table)})
    sep = pd.DataFrame(rows)
    lines = ["## Separation check (TCAE)", "",
             "Synthetic pairs rendered twice with one factor changed (unseen synthetic people; "
             f"{rows[0]['pairs_per_kind']} pairs per kind): mean length of tau^A and tau^P over the crop, "
             "in pixels.", ""]
    lines += _md_table(sep[["weights", "pose_tau_au_px", "pose_tau_pose_px", "pose_ratio", "au_tau_au_px",
                            "au_tau_pose_px", "au_ratio"]].rename(columns={
                                "pose_tau_au_px": "pose pairs: tau^A px", "pose_tau_pose_px": "pose pairs: tau^P px",
                                "pose_ratio": "pose pairs: P/A", "au_tau_au_px": "AU pairs: tau^A px",
                                "au_tau_pose_px": "AU pairs: tau^P px", "au_ratio": "AU pairs: A/P"}))
    lines += ["", "The twins separate when both ratios exceed 1 (pose pairs moved by tau^P, AU pairs by tau^A)."]
    return lines, sep


def probe_report(run: str | Path, data: str | Path, task: str, out: str | Path,
                 features: Sequence[str] = ("encode",), folds: int | None = None,
                 weights: str | Sequence[str] = "best", max_frames_per_subject: int | None = 150,
                 device: str = "auto", seed: int = 0, separation_people: int = 8, cache: bool = True,
                 progress: Callable[[str], None] | None = None, test_split: str | None = None,
                 presence: float = 1.0, person_norm: bool | None = None,
                 au_columns: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`run_probes` written as a report into ``out`` (``probes_<task>.md``/``.csv``).

    ``weights`` as in :func:`run_probes` (several: one row per checkpoint, a learning curve). The run's figures
    (``RUN/figures/*.png``) are copied to ``out/figures/`` and shown; for a TCAE run the
    separation check of the trained and the initial network on ``separation_people`` synthetic people
    (4 pairs of each kind per person; 0 skips it) is added (``separation.csv`` and a section).
    Returns ``{"table": DataFrame, "files": [paths], "markdown": text}``.
    """
    import shutil

    from facedyn.atomic import atomic_path

    run = runs_mod.resolve_run(run)  # a shipped model's name, too

    df = run_probes(run, data, task, features=features, folds=folds, weights=weights,
                    max_frames_per_subject=max_frames_per_subject, device=device, seed=seed, cache=cache,
                    progress=progress, test_split=test_split, presence=presence,
                    person_norm=person_norm, au_columns=au_columns)
    out = Path(out)
    extra: list[str] = []
    files: list[Path] = []
    if separation_people > 0 and df.attrs.get("method") == "tcae":
        if progress:
            progress("separation check")
        lines, sep = _separation_lines(run, device, separation_people)
        extra += lines
        path = out / "separation.csv"
        write_text(path, sep.to_csv(index=False, float_format="%.5g"))
        files.append(path)
    figs = sorted((Path(run) / runs_mod.FIGURES).glob("*.png"))
    if figs:
        extra += ["", "## Figures of the run", ""]
        for f in figs:
            dst = out / "figures" / f.name
            with atomic_path(dst) as tmp:
                shutil.copyfile(f, tmp)
            files.append(dst)
            extra.append(f"![{f.stem}](figures/{f.name})")
    files = write_probe_report(df, out, extra=extra) + files
    return {"table": df, "files": files, "markdown": probe_markdown(df, extra)}
