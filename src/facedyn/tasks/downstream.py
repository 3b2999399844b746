"""The downstream benchmark: what each representation buys for AU intensity when few people are labelled.

``run_downstream(data, out, cfg)`` (``facedyn eval downstream``) trains and scores, on the *same* unseen
people, every representation kind of :data:`KINDS` with ``b`` labelled people for each budget ``b``:

* **trained networks** (dr-paper Table 1's models, from scratch on the labelled frames, the losses of
  ``facedyn train au``): ``si`` (the still image, CNN regressor), ``si-hg`` (the still image, HG-HMR
  heatmap regression), ``sdr`` (the DR of the first ``--dr`` model, CNN), ``mdr`` (the image stacked with the
  DR of every ``--dr`` model, CNN: several T give a multi-level DR), ``mdr-ft`` (the image and the first DR with
  the DR network trained along at a tenth of the learning rate, not frozen; not among the defaults);
* **heads on frozen features**: ``fabnet`` (FAb-Net's embedding), ``tcae`` (TCAE's AU embedding φ), ``dr``
  (the DR, average-pooled to 16 x 16), ``fabnet-init`` / ``tcae-init`` (the same networks at initialisation) and
  ``pixels`` (the crop, reduced by PCA), each with every head of ``--heads``: ``linear`` (standardised ridge,
  alpha by person-level inner CV) and ``mlp`` (one hidden layer, scikit-learn). Head features are taken
  relative to each person's median feature (``person_norm``, as the AU probes do: it needs no labels); the
  trained networks see the raw input, as in the paper.

Test people are the store's ``test_split`` people (default ``test``), or with ``folds`` every fold of the
store's person-level folds in turn (``facedyn split --folds K``); the labelled people are drawn from everyone
else. Each budget below the pool's size is drawn ``repeats`` times (which few people are labelled matters
more than anything else at 3–5 people); every kind of one draw trains on the same people and frames and is
scored on the same test frames. A representation network that was trained or validated on a test person is
refused (``allow_seen`` admits one that learnt from the test people's frames without their labels, a
transductive setting that the tables then name): every number is on people no network of the pipeline has
seen.

Scores: the AU intensity columns' average ICC(3,1) and MSE, and presence (label at or above the presence
threshold: ``presence`` for a store's labels, :func:`~facedyn.tasks.proxies.presence_threshold` for the
proxies) as F1 (prediction at or above the same threshold) and AUC (the prediction as score). A budget's
value is the mean over its draws; its interval is a 95 % percentile bootstrap over test people (each replicate
resamples the people once and scores every draw on them), and ``Δ vs SI`` is the paired difference to ``si``
(same draws, same resampled people). ``sd`` is the standard deviation over draws.

Outputs in ``out``: ``downstream.csv`` (one row per kind and budget), ``downstream.md`` (a table per metric,
the paired differences, the draws), ``figures/downstream.png`` (each metric against labelled people, one line
per kind, bands), ``run.json`` (settings, data, people of every draw). Each (kind, draw) keeps its test
predictions in ``cells/`` and each representation its features in ``features/``: an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facedyn.atomic import atomic_path, write_text
from facedyn.data.store import ClipDataset
from facedyn.dr.representations import IMAGE
from facedyn.errors import ConfigError, DatasetError
from facedyn.eval.metrics import auc as auc_metric
from facedyn.method import DataSpec
from facedyn.reports.tables import markdown_table
from facedyn.tasks.downstream_config import FEATURE_KINDS, KINDS, NET_KINDS, REFERENCE, DownstreamConfig
from facedyn.tasks.evaluation import MIN_INTERVAL_SUBJECTS, interval_cell
from facedyn.tasks.inputs import TaskFrames, au_columns, columns
from facedyn.tasks.probes import ALPHAS, fit_ridge, person_centred, seen_people
from facedyn.tasks.proxies import PROXY_COLUMNS, presence_threshold

__all__ = ["KINDS", "DownstreamConfig", "budget_draws", "downstream_markdown", "icc31_moments",
           "run_downstream"]

#: Scores of every kind and budget.
METRICS = ("icc", "mse", "f1", "auc")
_HIGHER = {"icc": True, "mse": False, "f1": True, "auc": True}


# -- people ---------------------------------------------------------------------------------------------

def budget_draws(pool: Sequence[str], budget: int, repeats: int, seed: int) -> list[list[str]]:
    """Labelled people of each draw of one budget: ``repeats`` different draws of ``budget`` people from
    ``pool`` (sorted names), or one draw of everyone when ``budget`` is 0 or at least the pool's size.

    Draw ``r`` of budget ``b`` depends only on ``(seed, b, r)`` and the pool, so adding a budget or a
    repeat leaves the others' people unchanged."""
    pool = sorted(pool)
    if budget == 0 or budget >= len(pool):
        return [pool]
    out = []
    for r in range(repeats):
        g = np.random.default_rng([seed, budget, r])
        out.append(sorted(str(p) for p in g.choice(pool, size=budget, replace=False)))
    return out


# -- metrics from per-person moments ------------------------------------------------------------------

def icc31_moments(S: np.ndarray) -> np.ndarray:
    """ICC(3,1) of two raters (truth, prediction) from summed moments ``S`` ``(..., 6)``:
    ``n, Σt, Σp, Σt², Σp², Σtp``. With centred sums ``Stt, Spp, Stp``, ICC(3,1) = ``2 Stp / (Stt + Spp)``
    (the two-way mixed, consistency, single-rater ICC of Shrout & Fleiss for k = 2; equal to
    :func:`facedyn.eval.metrics.icc31`)."""
    n, st, sp, stt, spp, stp = np.moveaxis(S, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ctt = stt - st * st / n
        cpp = spp - sp * sp / n
        ctp = stp - st * sp / n
        return np.where((n > 1) & (ctt + cpp > 0), 2.0 * ctp / (ctt + cpp), np.nan)


def _moments(yt: np.ndarray, yp: np.ndarray, thr: np.ndarray, groups: np.ndarray,
             people: Sequence[str]) -> np.ndarray:
    """Per person ``(P, ..., K, 9)``: ``n, Σt, Σp, Σt², Σp², Σtp, tp, fp, fn`` of truth ``(M, K)`` and predictions
    ``(M, ..., K)`` (NaN truth left out per column; presence: value >= ``thr`` ``(K,)``)."""
    out = np.zeros((len(people), *yp.shape[1:], 9))
    for i, p in enumerate(people):
        rows = groups == p
        t = yt[rows]
        t = t.reshape(t.shape[0], *([1] * (yp.ndim - 2)), t.shape[1])
        q = yp[rows]
        ok = np.isfinite(t) & np.isfinite(q)
        tz, pz = np.where(ok, t, 0.0), np.where(ok, q, 0.0)
        pt, pp = (tz >= thr) & ok, (pz >= thr) & ok
        out[i] = np.stack([ok.sum(0), tz.sum(0), pz.sum(0), (tz * tz).sum(0), (pz * pz).sum(0), (tz * pz).sum(0),
                           (pt & pp).sum(0), (~pt & pp & ok).sum(0), (pt & ~pp).sum(0)], axis=-1)
    return out


def _from_moments(S: np.ndarray) -> dict[str, np.ndarray]:
    """ICC, MSE and F1 per column ``(..., K)`` from summed moments ``(..., K, 9)``."""
    n = S[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = (S[..., 3] + S[..., 4] - 2 * S[..., 5]) / n
        tp, fp, fn = S[..., 6], S[..., 7], S[..., 8]
        den = 2 * tp + fp + fn
        f1 = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
        f1 = np.where(tp + fn > 0, f1, np.nan)  # no present frame among the people: F1 undefined
    return {"icc": icc31_moments(S[..., :6]), "mse": mse, "f1": f1}


def _auc_columns(yt: np.ndarray, yp: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """AUC per draw and column ``(R, K)`` of predictions ``(M, R, K)``."""
    R, K = yp.shape[1], yp.shape[2]
    out = np.full((R, K), np.nan)
    for k in range(K):
        ok = np.isfinite(yt[:, k])
        y = (yt[ok, k] >= thr[k]).astype(float)
        for r in range(R):
            out[r, k] = auc_metric(y, yp[ok, r, k])
    return out


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(a)
        return np.where(ok.any(axis), np.nansum(np.where(ok, a, 0.0), axis) / np.maximum(ok.sum(axis), 1), np.nan)


def _scores(yt: np.ndarray, preds: dict[str, np.ndarray], thr: np.ndarray, groups: np.ndarray, n_boot: int,
            seed: int, level: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per kind: each metric's value (mean over draws of the column average), its bootstrap interval over people,
    the sd over draws, and the paired difference to :data:`REFERENCE` with its interval (no intervals, NaN, with
    fewer than :data:`~facedyn.tasks.evaluation.MIN_INTERVAL_SUBJECTS` test people).

    ``preds``: kind -> ``(M, R, K)`` (the same draws in the same order for every kind)."""
    people = sorted(set(groups))
    intervals = len(people) >= MIN_INTERVAL_SUBJECTS  # fewer people: values without intervals
    rng = np.random.default_rng(seed)
    W = rng.multinomial(len(people), np.full(len(people), 1.0 / len(people)), size=n_boot).astype(float)  # (B, P)
    n_auc = max(10, n_boot // 5)
    picks = [rng.integers(0, len(people), size=len(people)) for _ in range(n_auc)]
    rows_of = [np.flatnonzero(groups == p) for p in people]
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    per_kind: dict[str, dict[str, np.ndarray]] = {}  # kind -> metric -> (value per draw (R,), replicates (B, R))
    for kind, P in preds.items():
        S = _moments(yt, P, thr, groups, people)  # (people, R, K, 9)
        whole = _from_moments(S.sum(0))  # (R, K)
        boot = _from_moments(np.einsum("bp,prkm->brkm", W, S))  # (B, R, K)
        vals = {m: _nanmean(whole[m], -1) for m in ("icc", "mse", "f1")}
        reps = {m: _nanmean(boot[m], -1) for m in ("icc", "mse", "f1")}
        vals["auc"] = _nanmean(_auc_columns(yt, P, thr), -1)
        reps["auc"] = np.stack([_nanmean(_auc_columns(yt[np.concatenate([rows_of[i] for i in pk])],
                                                      P[np.concatenate([rows_of[i] for i in pk])], thr), -1)
                                for pk in picks])
        per_kind[kind] = {f"{m}{s}": v for m in METRICS for s, v in (("", vals[m]), ("_reps", reps[m]))}
    out: dict[str, dict[str, Any]] = {}
    ref = per_kind.get(REFERENCE)
    for kind, d in per_kind.items():
        row: dict[str, Any] = {}
        for m in METRICS:
            v, reps = d[m], d[f"{m}_reps"]
            row[m] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            lo, hi = (np.nanquantile(_nanmean(reps, -1), q) if intervals and np.isfinite(reps).any()
                      else (np.nan, np.nan))
            row[f"{m}_lo"], row[f"{m}_hi"] = float(lo), float(hi)
            row[f"{m}_sd"] = float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else float("nan")
            if ref is not None and kind != REFERENCE:
                dv = _nanmean(v - ref[m], -1)
                dr = _nanmean(reps - ref[f"{m}_reps"], -1)
                row[f"{m}_vs_si"] = float(dv)
                lo, hi = np.nanquantile(dr, q) if intervals and np.isfinite(dr).any() else (np.nan, np.nan)
                row[f"{m}_vs_si_lo"], row[f"{m}_vs_si_hi"] = float(lo), float(hi)
        out[kind] = row
    return out


# -- fitting ----------------------------------------------------------------------------------------------

class _TunedMDR(torch.nn.Module):
    """The MDR with its DR trained along: faces ``(B, 3, H, W)`` → the CNN regressor of ``(image, DR(image))``."""

    def __init__(self, dr: torch.nn.Module, cnn: torch.nn.Module) -> None:
        super().__init__()
        self.dr, self.cnn = dr, cnn

    def rep(self, x: torch.Tensor) -> torch.Tensor:
        """The MDR ``(B, 6, H, W)`` of faces ``x``."""
        return torch.cat([x, self.dr(x)], 1)

    def predict_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn.predict_rep(self.rep(x))


def _train_net(model: str, x_tr: torch.Tensor, y_tr: torch.Tensor, lm_tr: torch.Tensor, x_te: torch.Tensor,
               cols: Sequence[str], cfg: DownstreamConfig, seed: int, dr: torch.nn.Module | None = None
               ) -> np.ndarray:
    """Train a task network of ``facedyn train au`` (``cnn`` or ``hg``) on ``x_tr`` ``(N, C, H, W)`` →
    ``y_tr`` ``(N, K)`` for ``cfg.steps`` Adam steps (flips as in training) and predict ``x_te`` → ``(M, K)``.

    With ``dr`` (a DR network, trained along at a tenth of the learning rate), ``x`` are faces and the CNN sees
    the image stacked with their DR (``mdr-ft``)."""
    from facedyn.tasks.au_intensity import AUConfig, AUMethod

    channels = x_tr.shape[1] + (3 if dr is not None else 0)
    acfg = AUConfig(model=model, width=cfg.width if model == "cnn" else 2 * cfg.width, label_columns=",".join(cols),
                    seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        method = AUMethod(acfg, DataSpec(size=int(x_tr.shape[-1])))
        method.net = method.make_net([IMAGE] * (channels // 3), list(cols))
        g = np.random.default_rng(seed)
        idx = g.choice(len(x_tr), size=min(len(x_tr), 256), replace=False)
        groups: list[dict[str, Any]] = [{"params": list(method.net.parameters()), "lr": cfg.lr}]
        if dr is not None:
            tuned = _TunedMDR(dr, method.net)
            with torch.no_grad():
                dr.eval()
                method.net.norm.fit(tuned.rep(x_tr[idx].float()))
            groups.append({"params": list(dr.parameters()), "lr": cfg.lr / 10})
            method.net = tuned  # type: ignore[assignment]  # what the loss calls: predict_rep
        else:
            method.net.norm.fit(x_tr[idx].float())
        net = method.net
        opt = torch.optim.Adam(groups)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
        net.train()
        for _ in range(cfg.steps):
            b = torch.from_numpy(g.integers(0, len(x_tr), size=min(cfg.batch_size, len(x_tr))))
            losses = method.losses({"x": x_tr[b].float(), "labels": y_tr[b], "landmarks": lm_tr[b]})
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            return np.concatenate([net.predict_rep(x_te[i:i + 256].float()).numpy()
                                   for i in range(0, len(x_te), 256)]).astype(np.float32)


#: L2 penalties of the MLP head, chosen by person-level inner CV (as the ridge's alphas).
MLP_ALPHAS = (0.1, 1.0, 10.0, 100.0)


def _mlp(alpha: float, seed: int) -> Any:
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(128,), alpha=alpha, max_iter=200,
                                                        random_state=seed))


def _fit_head(head: str, X_tr: np.ndarray, Y_tr: np.ndarray, g_tr: np.ndarray, X_te: np.ndarray,
              seed: int) -> np.ndarray:
    """A head on frozen features ``X_tr`` ``(N, D)`` → labels ``(N, K)``, predicting ``X_te`` → ``(M, K)``:

    * ``linear``: standardised ridge, alpha from :data:`~facedyn.tasks.probes.ALPHAS` by person-level inner CV;
    * ``mlp``: standardised, one hidden layer of 128 ReLUs (scikit-learn's MLPRegressor, Adam, 200 epochs), its
      L2 penalty from :data:`MLP_ALPHAS` by the same person-level inner CV (lowest validation MSE).

    Rows with a NaN label are left out of the fit."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    from facedyn.tasks.linear import inner_splits

    ok = np.isfinite(Y_tr).all(1)
    X_tr, Y_tr, g_tr = X_tr[ok], Y_tr[ok], g_tr[ok]
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if head == "linear":
            return fit_ridge(X_tr, Y_tr, g_tr, ALPHAS).predict(X_te).reshape(len(X_te), -1).astype(np.float32)
        best, best_err = MLP_ALPHAS[len(MLP_ALPHAS) // 2], np.inf
        for a in MLP_ALPHAS:
            err = 0.0
            for tr, va in inner_splits(g_tr):
                err += float(np.mean((_mlp(a, seed).fit(X_tr[tr], Y_tr[tr]).predict(X_tr[va]).reshape(len(va), -1)
                                      - Y_tr[va]) ** 2))
            if err < best_err:
                best, best_err = a, err
        return _mlp(best, seed).fit(X_tr, Y_tr).predict(X_te).reshape(len(X_te), -1).astype(np.float32)


def _pca(X: np.ndarray, train_rows: np.ndarray, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = min(dim, int(train_rows.sum()) - 1, X.shape[1])
    return PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(X[train_rows]).transform(X)


# -- the benchmark ------------------------------------------------------------------------------------------

@dataclass
class _Frames:
    images: np.ndarray  # uint8 (M, H, W, 3)
    labels: np.ndarray  # float32 (M, K)
    landmarks: np.ndarray  # float32 (M, 68, 2)
    subjects: np.ndarray  # (M,) str
    clips: list[str]
    frames: np.ndarray  # (M,) int


def _select(store: ClipDataset, cols: Sequence[str], cfg: DownstreamConfig) -> _Frames:
    ds = TaskFrames(store, None, [IMAGE], cols, cfg.labels, frames_per_subject=cfg.frames_per_person)
    ims, lms = [], []
    for ci in np.unique(ds.index[:, 0]):
        t = ds.index[ds.index[:, 0] == ci, 1]
        clip = ds.clips[int(ci)]
        ims.append(np.asarray(clip.frames[t]))
        lms.append(np.asarray(clip.landmarks[t], np.float32))
    order = np.argsort(ds.index[:, 0], kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    images = np.concatenate(ims)[inv]
    return _Frames(images, ds.labels_array().astype(np.float32), np.concatenate(lms)[inv],
                   np.asarray(ds.subjects, dtype=str), [ds.clips[int(ci)].clip_id for ci in ds.index[:, 0]],
                   ds.index[:, 1].copy())


def _box_images(box: ClipDataset, fr: _Frames) -> np.ndarray:
    """The same frames' crops in another store of the same footage (box-aligned, for FAb-Net and TCAE)."""
    out = np.zeros_like(fr.images)
    clips = np.asarray(fr.clips)
    for cid in dict.fromkeys(fr.clips):
        rows = np.flatnonzero(clips == cid)
        try:
            c = box.clip(cid)
        except Exception:
            raise DatasetError(f"{box.path}: has no clip {cid!r}; --box-data must be the same footage prepared with "
                               "another alignment") from None
        if len(c.valid) <= fr.frames[rows].max():
            raise DatasetError(f"{box.path}: clip {cid!r} has {len(c.valid)} frames, fewer than the store's; "
                               "--box-data must be the same footage prepared with another alignment")
        out[rows] = np.asarray(c.frames[fr.frames[rows]])
    return out


class _Cache:
    """Arrays kept in ``out/<folder>/`` under a key (atomic writes; what is there is reused)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, folder: str, key: str) -> Path:
        return self.root / folder / f"{key}.npy"

    def get(self, folder: str, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        p = self.path(folder, key)
        if p.is_file():
            return np.load(p)
        arr = np.asarray(make())
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(p) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
        return arr


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _models(cfg: DownstreamConfig, kinds: Sequence[str]) -> dict[str, str]:
    """Representation runs the kinds need: ``dr0``, ``dr1``... , ``fabnet``, ``tcae``."""
    bases = {k.split("/")[0] for k in kinds}
    need: dict[str, str] = {}
    if bases & {"sdr", "mdr", "mdr-ft", "dr"}:
        drs = columns(cfg.dr)
        for i, r in enumerate(drs if "mdr" in bases else drs[:1]):
            need[f"dr{i}"] = r
    for b in bases:
        if b in FEATURE_KINDS and FEATURE_KINDS[b][0] in ("fabnet", "tcae"):
            need[FEATURE_KINDS[b][0]] = getattr(cfg, FEATURE_KINDS[b][0])
    return need


def _cell_settings(cfg: DownstreamConfig, kind: str) -> dict[str, Any]:
    """The settings one kind's predictions depend on (besides its labelled and test people and seed): a cell
    made with the same ones is reused, whatever the budgets, repeats, other kinds or bootstrap; changing the DR
    runs does not redo the still image's cells."""
    base = kind.split("/")[0]
    keys = ["labels", "label_columns", "presence", "frames_per_person"]
    if base in NET_KINDS:
        keys += ["steps", "batch_size", "width", "lr"]
        keys += ["dr"] if base in ("sdr", "mdr", "mdr-ft") else []
    else:
        keys += ["person_norm"] + (["pca_dim"] if FEATURE_KINDS[base][2] else [])
        which = FEATURE_KINDS[base][0]
        keys += {"dr": ["dr"], "fabnet": ["fabnet", "box_data"], "tcae": ["tcae", "box_data"]}.get(which, [])
    d = asdict(cfg)
    out = {k: d[k] for k in keys}
    if base in ("sdr", "mdr-ft", "dr"):
        out["dr"] = columns(cfg.dr)[:1]  # the first DR only
    return out


def run_downstream(data: str | Path, out: str | Path, cfg: DownstreamConfig | None = None, device: str = "cpu",
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark (module docstring) on the clip store ``data`` into ``out``; resumable.

    Returns:
        ``table`` (DataFrame, one row per kind and budget), ``markdown``, ``files`` written.
    Raises:
        ConfigError: a bad setting; a representation that saw a test person.
        DatasetError: no test people, too few people to label, no labelled frame.
    """
    from facedyn.api import load
    from facedyn.reports.plots import plot_budget_curves

    cfg = cfg or DownstreamConfig()
    cfg.check()
    say = progress or (lambda s: None)
    kinds = cfg.kind_list()
    budgets = cfg.budget_list()
    store = ClipDataset(data)
    out = Path(out)
    # labels
    if cfg.labels == "proxies":
        cols = columns(cfg.label_columns) or list(PROXY_COLUMNS)
        thr = np.array([presence_threshold(c) for c in cols])
    else:
        cols = columns(cfg.label_columns) or au_columns(store, store.clips())
        thr = np.full(len(cols), cfg.presence)
    # people
    if cfg.folds:
        folds = store.folds
        if not folds:
            raise DatasetError(f"{store.path}: has no person-level folds; make them with `facedyn split "
                               f"{store.path} --folds 5` or test on a split (--test-split)")
        tests = [list(f) for f in folds]
    else:
        sp = store.splits
        names = columns(cfg.test_split)
        bad = [n for n in names if n not in sp]
        if bad or not names:
            raise ConfigError(f"--test-split: {', '.join(bad) or '(none)'} is not a split of {store.path} "
                              f"(it has {', '.join(sp)})")
        tests = [sorted({p for n in names for p in sp[n]})]
    t0 = time.perf_counter()
    fr = _select(store, cols, cfg)
    say(f"{len(fr.subjects)} labelled frames of {len(set(fr.subjects))} people ({time.perf_counter() - t0:.0f} s)")
    people = set(fr.subjects)
    tests = [[p for p in t if p in people] for t in tests]
    if not any(tests):
        raise DatasetError(f"{store.path}: none of the test people has a labelled frame with a face")
    models = _models(cfg, kinds)
    all_test = {p for t in tests for p in t}
    seen_by: dict[str, int] = {}
    for key, run in models.items():
        seen = seen_people(run) & all_test
        seen_by[run] = len(seen)
        if seen and not cfg.allow_seen:
            raise ConfigError(f"the representation {run!r} ({key}) was trained or validated on {len(seen)} of the test "
                              f"people ({', '.join(sorted(seen)[:3])}...); test on people it never saw, or give "
                              "--allow-seen if it learnt from their frames without labels (a transductive setting)")
    cache = _Cache(out)
    from facedyn.runs import data_identity

    data_key = _digest([data_identity(data, [])["index_sha256"], cols, cfg.labels, cfg.frames_per_person,
                        len(fr.subjects)])
    # features
    box_images = None
    if cfg.box_data and any(k in models for k in ("fabnet", "tcae")):
        box_images = _box_images(ClipDataset(cfg.box_data), fr)
    x_img = torch.from_numpy(fr.images).permute(0, 3, 1, 2).float().div_(255.0)  # (M, 3, H, W) in [0, 1]
    feats: dict[str, np.ndarray] = {}
    maps: dict[str, torch.Tensor] = {}

    for key, run in models.items():
        if key.startswith("dr"):
            say(f"DR maps of {run}")
            m = cache.get("features", f"{data_key}-{_digest([key, run])}-map",
                          lambda run=run: load(run, device=device)(fr.images, aligned=True).numpy().astype(np.float16))
            maps[key] = torch.from_numpy(m)
    for k in {k.split("/")[0] for k in kinds} & set(FEATURE_KINDS):
        which, weights, _ = FEATURE_KINDS[k]
        if k == "pixels":
            feats[k] = fr.images.reshape(len(fr.images), -1).astype(np.float32) / 255.0
        elif k == "dr":  # average-pooled to 16 x 16 (see FEATURE_KINDS)
            pooled = torch.nn.functional.avg_pool2d(maps["dr0"].float(), max(1, maps["dr0"].shape[-1] // 16))
            feats[k] = pooled.reshape(len(fr.images), -1).numpy()
        else:
            run = models[which]
            ims = box_images if box_images is not None else fr.images
            say(f"features of {run} ({weights})")
            feats[k] = cache.get("features", f"{data_key}-{_digest([k, run, weights, cfg.box_data])}",
                                 lambda run=run, weights=weights, ims=ims:
                                 load(run, weights=weights, device=device).encode(ims, aligned=True).numpy())
        if cfg.person_norm:
            feats[k] = person_centred(feats[k], fr.subjects).astype(np.float32)
    x_in = {"image": x_img, "dr": maps.get("dr0"),
            "image+dr": torch.cat([x_img, *[maps[k].float() for k in sorted(maps)]], 1) if maps else None}
    y_all = torch.from_numpy(fr.labels)
    lm_all = torch.from_numpy(fr.landmarks)
    # draws and cells
    record: dict[str, Any] = {"config": asdict(cfg), "data": str(data), "columns": cols, "thresholds": thr.tolist(),
                              "frames": len(fr.subjects), "people": len(people), "tests": tests, "draws": {},
                              "test_people_seen_by": seen_by}
    test_rows = np.isin(fr.subjects, sorted(all_test))
    n_cells = 0
    preds: dict[tuple[str, int], np.ndarray] = {}  # (kind, budget) -> test rows' predictions (M, R, K)
    for b in budgets:
        per_draw: dict[str, list[np.ndarray]] = {}
        for f, test_people in enumerate(tests):
            pool = sorted(people - set(test_people))
            if len(pool) < 2:
                raise DatasetError(f"{store.path}: {len(pool)} people outside the test people; labelled training "
                                   "needs at least 2")
            if b and b > len(pool):
                say(f"budget {b}: only {len(pool)} people to label; using all of them")
            draws = budget_draws(pool, b, cfg.repeats, cfg.seed)
            record["draws"][f"{b or 'all'}/fold{f}"] = draws
            te = np.isin(fr.subjects, test_people)
            for r, labelled in enumerate(draws):
                tr = np.isin(fr.subjects, labelled)
                seed = int(np.random.default_rng([cfg.seed, b, r, f]).integers(2**31))
                for kind in kinds:
                    key = (f"{kind.replace('/', '-')}_b{b or 'all'}_f{f}_r{r}_"
                           f"{_digest([data_key, _cell_settings(cfg, kind), labelled, test_people, seed])}")

                    def make(kind: str = kind, tr: np.ndarray = tr, te: np.ndarray = te, seed: int = seed,
                             labelled: list[str] = labelled, r: int = r, n: int = len(draws)) -> np.ndarray:
                        t1 = time.perf_counter()
                        if kind in NET_KINDS:
                            model, part = NET_KINDS[kind]
                            tuned = None
                            if part == "image+dr-ft":  # a fresh copy of the first DR network, trained along
                                part, tuned = "image", load(models["dr0"], device="cpu").net
                                for q in tuned.parameters():
                                    q.requires_grad_(True)
                            x = x_in[part]
                            assert x is not None
                            p = _train_net(model, x[tr], y_all[tr], lm_all[tr], x[te], cols, cfg, seed, tuned)
                        else:
                            base, head = kind.split("/")
                            X = feats[base]
                            if FEATURE_KINDS[base][2]:
                                X = _pca(X, tr, cfg.pca_dim, seed)
                            p = _fit_head(head, X[tr], fr.labels[tr], fr.subjects[tr], X[te], seed)
                        say(f"{kind}: {len(labelled)} labelled people, draw {r + 1}/{n}: "
                            f"{time.perf_counter() - t1:.1f} s")
                        return p

                    p = cache.get("cells", key, make)
                    n_cells += 1
                    full = np.full((len(fr.subjects), len(cols)), np.nan, np.float32)
                    full[te] = p
                    per_draw.setdefault(f"{kind}|{f}", []).append(full)
        # one (M, R, K) per kind: draw r of every fold fills its own fold's test rows
        for kind in kinds:
            stacks = [np.stack(per_draw[f"{kind}|{f}"], 1) for f in range(len(tests))]
            R = max(s.shape[1] for s in stacks)
            P = np.full((len(fr.subjects), R, len(cols)), np.nan, np.float32)
            for s in stacks:
                filled = np.isfinite(s[:, 0]).any(1)
                P[filled, : s.shape[1]] = s[filled]
                P[filled, s.shape[1]:] = s[filled, -1:]
            preds[kind, b] = P[test_rows]
    # scores
    rows = []
    yt = fr.labels[test_rows].astype(np.float64)
    g = fr.subjects[test_rows]
    n_test = len(all_test)
    for b in budgets:
        sc = _scores(yt, {k: preds[k, b].astype(np.float64) for k in kinds}, thr, g, cfg.n_boot, cfg.seed)
        draws = record["draws"][f"{b or 'all'}/fold0"]
        for kind in kinds:
            rows.append({"kind": kind, "budget": b or "all", "labelled": len(draws[0]), "draws": len(draws),
                         "test_people": n_test, **sc[kind]})
    table = pd.DataFrame(rows)
    md = downstream_markdown(table, record)
    files = []
    for name, text in (("downstream.csv", table.to_csv(index=False, float_format="%.4f")), ("downstream.md", md),
                       ("run.json", json.dumps(record, indent=1, default=str))):
        write_text(out / name, text)
        files.append(out / name)
    files.append(plot_budget_curves(table, out / "figures" / "downstream.png", list(METRICS), _HIGHER))
    say(f"{n_cells} cells, {time.perf_counter() - t0:.0f} s")
    return {"table": table, "markdown": md, "files": files, "record": record}


def downstream_markdown(table: pd.DataFrame, record: dict[str, Any]) -> str:
    """The tables of ``downstream.md``: per metric, kinds × budgets (value [95 % interval over test people]),
    then the paired ICC difference to SI, then how many draws each budget had."""
    budgets = list(dict.fromkeys(table["budget"]))
    kinds = list(dict.fromkeys(table["kind"]))
    head = {b: f"{int(table.loc[table['budget'] == b, 'labelled'].iloc[0])} people"
            + (" (all)" if b == "all" else "") for b in budgets}
    seen = {r: n for r, n in record.get("test_people_seen_by", {}).items() if n}
    unseen = ("never seen by a representation" if not seen else "seen, without labels, by " +
              ", ".join(f"{r} ({n} of them)" for r, n in seen.items()))
    out = [f"Test people: {int(table['test_people'].iloc[0])} (never labelled, {unseen}); "
           f"labels: {record['config']['labels']} ({', '.join(record['columns'])}); "
           f"{record['frames']} frames of {record['people']} people. Each cell: mean over the draws of labelled "
           "people, [95 % bootstrap interval over test people].", ""]
    for m in METRICS:
        arrow = "higher is better" if _HIGHER[m] else "lower is better"
        cells = {head[b]: [interval_cell(*table.loc[(table["kind"] == k) & (table["budget"] == b),
                                            [m, f"{m}_lo", f"{m}_hi"]].to_numpy()[0]) for k in kinds]
                 for b in budgets}
        out += [f"**{m.upper()}** ({arrow})", "", markdown_table(pd.DataFrame({"representation": kinds, **cells}),
                                                                  fmt=str).rstrip("\n"), ""]
    if "icc_vs_si" in table:
        rest = [k for k in kinds if k != REFERENCE]
        for m in ("icc", "mse"):
            cells = {head[b]: [interval_cell(*table.loc[(table["kind"] == k) & (table["budget"] == b),
                                                [f"{m}_vs_si", f"{m}_vs_si_lo", f"{m}_vs_si_hi"]].to_numpy()[0],
                                     signed=True) for k in rest] for b in budgets}
            out += [f"**Paired Δ {m.upper()} vs SI** (representation − SI on the same draws and frames; "
                    "[95 % interval over the same resampled test people])", "",
                    markdown_table(pd.DataFrame({"representation": rest, **cells}), fmt=str).rstrip("\n"), ""]
    sds = {head[b]: [f"{v:.3f}" if np.isfinite(v) else "–" for v in
                     table.loc[table["budget"] == b, "icc_sd"].to_numpy()] for b in budgets}
    out += ["**ICC standard deviation over the draws** (which people are labelled)", "",
            markdown_table(pd.DataFrame({"representation": kinds, **sds}), fmt=str).rstrip("\n"), "",
            "Draws per budget: " + ", ".join(f"{head[b]}: {int(table.loc[table['budget'] == b, 'draws'].iloc[0])}"
                                             for b in budgets), ""]
    return "\n".join(out)
