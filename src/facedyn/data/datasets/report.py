"""Say what labels a dataset gave: which columns, how many frames labelled of how many, per kind of label;
which clips have none; the notes the adapters leave (frame alignment, raters, the form of file read).

The same counts come from two places:

* :func:`store_report`: the clips ``facedyn prepare`` wrote (their ``labels.csv`` and ``meta.json``); the CLI
  prints it at the end of ``prepare``;
* :func:`check_dataset`: nothing prepared: each clip's label loader run on its frame count and rate read from the
  video's header (``facedyn reproduce --dry-run``), so a layout problem shows in seconds.

Kinds of label (by column name): ``AU01_occ`` ... AU occurrence; ``AU01`` ... AU (intensity, or presence for a
still); ``point0_x`` ... points; ``pose_yaw`` ... head pose; any other column is its own kind (``valence``).
Notes are a clip's ``extra`` / ``meta.json`` entries whose key starts with ``label_``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn.errors import FacedynError

#: Datasets whose every clip should come with labels (a clip without is named in a warning). The others
#: (``folder``, ``voxceleb``) may have none; a folder clip without labels is named only when others have some.
LABELLED: frozenset[str] = frozenset({"bp4d", "disfa", "semaine", "recola", "300w", "mafl", "aflw", "emotionet"})
#: How many names a line lists before "and N more".
SHOWN = 8

_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^AU\d+_occ$"), "AU occurrence"),
    (re.compile(r"^AU\d+$"), "AU"),
    (re.compile(r"^point\d+_[xy]$"), "points"),
    (re.compile(r"^pose_"), "head pose"),
)


def label_kind(column: str) -> str:
    """The kind of a label column (see the module docstring)."""
    return next((kind for pat, kind in _KINDS if pat.search(column)), column)


def listed(names: Sequence[str], shown: int = SHOWN) -> str:
    """``a, b, c`` or ``a, b, ... and 12 more``."""
    names = list(names)
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


@dataclass
class KindCount:
    """One kind of label: its columns (in order of appearance), frames with any of them known, per-column counts."""

    columns: list[str] = field(default_factory=list)
    labelled: int = 0
    per_column: dict[str, int] = field(default_factory=dict)
    clips: int = 0


@dataclass
class LabelReport:
    """What labels the clips of one dataset gave (fill with :meth:`add`)."""

    dataset: str
    n_clips: int = 0
    n_frames: int = 0
    kinds: dict[str, KindCount] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> value -> clips
    required: list[str] = field(default_factory=list)
    problem: str | None = None  # the dataset could not be read at all (not found, no clips)
    root: Path | None = None  # where it was read from (said in the summary's first line)

    def add(self, clip_id: str, n_frames: int, labels: pd.DataFrame | None, notes: Mapping[str, Any] | None = None,
            error: str | None = None) -> None:
        """Count one clip: its frame count, its labels (None: it has none), its ``label_*`` notes, or the one-line
        error its labels gave."""
        self.n_clips += 1
        self.n_frames += int(n_frames)
        if error is not None:
            self.errors[clip_id] = error
            return
        cols = [c for c in labels.columns if c != "frame"] if labels is not None else []
        if not cols:
            self.unlabelled.append(clip_id)
            return
        for key, value in (notes or {}).items():
            if str(key).startswith("label_") and value:
                per = self.notes.setdefault(str(key), {})
                per[str(value)] = per.get(str(value), 0) + 1
        known = labels[cols].notna().to_numpy()  # type: ignore[index]
        by_kind: dict[str, list[int]] = {}
        for k, c in enumerate(cols):
            by_kind.setdefault(label_kind(c), []).append(k)
        for kind, idx in by_kind.items():
            kc = self.kinds.setdefault(kind, KindCount())
            kc.clips += 1
            kc.labelled += int(known[:, idx].any(axis=1).sum())
            for k in idx:
                c = cols[k]
                if c not in kc.per_column:
                    kc.columns.append(c)
                    kc.per_column[c] = 0
                kc.per_column[c] += int(known[:, k].sum())

    @property
    def columns(self) -> list[str]:
        return [c for kc in self.kinds.values() for c in kc.columns]

    def missing_required(self) -> list[str]:
        """Required columns no clip has, or that no frame has a value of."""
        have = {c: n for kc in self.kinds.values() for c, n in kc.per_column.items()}
        return [c for c in self.required if not have.get(c)]

    def lines(self) -> list[str]:
        """The summary, one line per kind and per note (plain text)."""
        where = f" ({self.root})" if self.root is not None else ""
        head = f"labels of {self.dataset}{where}: {self.n_clips} clip(s), {self.n_frames} frame(s)"
        if self.problem:
            return [f"labels of {self.dataset}: {self.problem}"]
        if not self.kinds:
            return [f"{head}: no label columns"]
        out = [f"{head}; per kind: columns, frames labelled / all frames"]
        for kind, kc in self.kinds.items():
            pct = f" ({100 * kc.labelled / self.n_frames:.0f} %)" if self.n_frames else ""
            cols = ("" if kc.columns == [kind] else f"{listed(kc.columns)}: " if len(kc.columns) == 1
                    else f"{len(kc.columns)} columns {listed(kc.columns)}: ")
            out.append(f"  {kind}: {cols}{kc.labelled} / {self.n_frames} frames{pct}, "
                       f"in {kc.clips} of {self.n_clips} clips")
        for key, values in self.notes.items():
            name = key.removeprefix("label_").replace("_", " ")
            common = sorted(values.items(), key=lambda kv: -kv[1])
            for value, n in common[:SHOWN]:
                out.append(f"  {name}: {value}" + (f" ({n} clips)" if len(values) > 1 else ""))
            if len(common) > SHOWN:
                out.append(f"  {name}: {len(common) - SHOWN} other value(s) in "
                           f"{sum(n for _, n in common[SHOWN:])} clips (each clip's meta.json has its own)")
        return out

    def warnings(self) -> list[str]:
        """One line each: clips with no labels (never silent), clips whose labels failed, required columns absent."""
        out = []
        if self.unlabelled and (self.dataset in LABELLED or self.kinds):
            out.append(f"{len(self.unlabelled)} of {self.n_clips} {self.dataset} clip(s) have no labels: "
                       f"{listed(self.unlabelled)}; they are kept but give no label to learn or test on "
                       "(the accepted layouts: README, 'Where the files go')")
        if self.errors:
            first = next(iter(self.errors))
            out.append(f"{len(self.errors)} of {self.n_clips} {self.dataset} clip(s) have labels that cannot be read: "
                       f"{listed(list(self.errors))}; {first}: {self.errors[first]}")
        if missing := self.missing_required():
            out.append(f"{self.dataset}: no labelled frame of {listed(missing)}, which the recipe needs")
        return out

    def markdown(self) -> list[str]:
        """The dry run's section for this dataset: the summary lines, then what is missing (or that nothing is)."""
        lines = [f"- {ln.strip()}" if i else f"**{ln}**" for i, ln in enumerate(self.lines())]
        missing = ([f"- missing: {w}" for w in self.warnings()]
                   if self.problem is None else [f"- missing: {self.problem}"])
        return [*lines, *(missing or ["- missing: nothing"])]

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "clips": self.n_clips, "frames": self.n_frames,
                "kinds": {k: {"columns": kc.columns, "labelled": kc.labelled, "per_column": kc.per_column,
                              "clips": kc.clips} for k, kc in self.kinds.items()},
                "unlabelled": self.unlabelled, "errors": self.errors, "notes": self.notes,
                "missing": self.missing_required(), "problem": self.problem}


def store_report(store: str | Path, clip_ids: Iterable[str], dataset: str) -> LabelReport:
    """The labels the prepared clips ``clip_ids`` of ``store`` hold (their ``labels.csv`` and ``meta.json``)."""
    from facedyn.data.store import Clip, is_complete_clip

    rep = LabelReport(dataset)
    for cid in clip_ids:
        path = Path(store) / cid
        if not is_complete_clip(path):
            continue
        clip = Clip(path)
        rep.add(cid, len(clip), clip.labels, clip.meta)
    return rep


def _frame_times(video: Path, fps: float | None) -> np.ndarray:
    """The decoded frames' timestamps of a clip, from its packets (no decoding): a still image is one frame.

    Where the packets cannot tell (:func:`~facedyn.data.video.frame_times`), the packets' count (else the
    header's estimate) at the header's frame rate.
    """
    from facedyn.data import video as vid

    if video.is_file() and video.suffix.lower() in vid.IMAGE_EXTS:
        return np.zeros(1)
    info = vid.probe(video)
    rate = float(fps or info.fps) if info.is_image_folder else float(info.fps)
    times = vid.frame_times(video, rate)
    if times is not None:
        return times
    return np.arange(int(vid.frame_count(video) or info.n_frames)) / (rate or 25.0)


def check_sources(sources: Sequence[Any], dataset: str, required: Sequence[str] = ()) -> LabelReport:
    """Run every clip's label loader on its frame times (from the video header) and count what it gives."""
    rep = LabelReport(dataset, required=list(required))
    for s in sources:
        try:
            ts = _frame_times(Path(s.video), s.fps)
        except FacedynError as e:
            rep.add(s.clip_id, 0, None, error=f"cannot count its frames: {e}")
            continue
        try:
            rep.add(s.clip_id, len(ts), s.labels(ts) if s.labels is not None else None, s.extra)
        except FacedynError as e:
            rep.add(s.clip_id, len(ts), None, error=str(e))
    return rep


def check_dataset(dataset: str, root: str | Path, required: Sequence[str] = ()) -> LabelReport:
    """:func:`check_sources` on the clips the adapter ``dataset`` finds under ``root`` (nothing is prepared); a
    dataset that is absent or has no clips gives a report whose ``problem`` says so."""
    import warnings

    from facedyn.data.datasets import LAYOUTS, discover

    root = Path(root)
    if not root.is_dir():
        return LabelReport(dataset, required=list(required), problem=f"{root}: not found; expected {LAYOUTS[dataset]}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # adapters' own notes: the report says the same
            sources = discover(dataset, root)
    except FacedynError as e:
        return LabelReport(dataset, required=list(required), problem=str(e))
    rep = check_sources(sources, dataset, required)
    rep.root = root
    return rep
