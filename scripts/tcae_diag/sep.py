"""Do a run's twins separate head pose from AUs? Remakes the separation table of docs/results/tcae/diagnosis.md
(section "Probes on the 10 unseen test people", "Separation check").

For each run and checkpoint, :func:`facedyn.tcae.separation.separation_check` on synthetic pairs that differ only
in head pose or only in AUs (``--people`` people x ``--pairs-per-person`` pairs per kind, rendered once for the
crop size and alignment of the runs' data, so every network sees the same pairs), summarised by
:func:`facedyn.tcae.separation.separation_summary`: mean |tau^A| and |tau^P| (px, whole crop) on each kind and
the two ratios, |tau^P| / |tau^A| on pose pairs (P/A) and |tau^A| / |tau^P| on AU pairs (A/P); both above 1 when
the twins separate. ``--out`` writes the summary rows to a CSV.

    .venv/bin/python scripts/tcae_diag/sep.py RUN [RUN ...] [--weights init,last] [--people 8]
        [--pairs-per-person 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import print_table, weights_label, weights_list

COLUMNS = [
    ("run", "run", ""),
    ("weights", "weights", ""),
    ("pose_tau_au_px", "pose pairs: τ^A", ".2f"),
    ("pose_tau_pose_px", "pose pairs: τ^P", ".2f"),
    ("pose_ratio", "P/A", ".2f"),
    ("au_tau_au_px", "AU pairs: τ^A", ".2f"),
    ("au_tau_pose_px", "AU pairs: τ^P", ".2f"),
    ("au_ratio", "A/P", ".2f"),
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Remakes the separation table of docs/results/tcae/diagnosis.md.")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="TCAE run directories")
    ap.add_argument("--weights", default="init,last",
                    help="checkpoints, comma-separated: init, best, last, step<N>, all (default init,last)")
    ap.add_argument("--people", type=int, default=8, help="synthetic people (default 8)")
    ap.add_argument("--pairs-per-person", type=int, default=4, help="pairs per person and kind (default 4)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic people (default 0)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this CSV")
    a = ap.parse_args(argv)

    import pandas as pd

    import facedyn
    from facedyn.tcae.separation import separation_check, separation_pairs, separation_summary

    rendered: dict[tuple[int, str, bool], dict] = {}
    rows = []
    for run in a.runs:
        for w in weights_list(run, a.weights):
            model = facedyn.load(run, weights=w, device=a.device)
            if model.name != "tcae":
                ap.error(f"{run}: a {model.name} run; give TCAE runs")
            key = (model.data.size, model.data.align, bool(model.data.mask))
            if key not in rendered:
                rendered[key] = separation_pairs(*key, n_people=a.people, pairs_per_person=a.pairs_per_person,
                                                 seed=a.seed)
            df = separation_check(model, pairs=rendered[key])
            rows.append({"run": Path(run).name, "weights": weights_label(run, w), **separation_summary(df)})
    print_table(pd.DataFrame(rows), COLUMNS, a.out)


if __name__ == "__main__":
    main()
