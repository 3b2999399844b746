"""Do a run's twins separate head pose from AUs? Remakes the separation table of docs/results/tcae/diagnosis.md
(section "Probes on the 10 unseen test people", "Separation check").

For each run and checkpoint, :func:`facedyn.tcae.separation.separation_check` on synthetic pairs that differ only
in head pose or only in AUs (``--people`` people x ``--pairs-per-person`` pairs per kind, rendered once for the
crop size and alignment of the runs' data, so every network sees the same pairs), summarised by
:func:`facedyn.tcae.separation.separation_summary`: mean |tau^A| and |tau^P| (px, whole crop) on each kind and
the two ratios, |tau^P| / |tau^A| on pose pairs (P/A) and |tau^A| / |tau^P| on AU pairs (A/P); both above 1 when
the twins separate; and on AU pairs the mean alpha^A and its concentration where the AUs act (the share of its mass
inside the region the generator's AUs moved over that region's share of the crop; 1: no concentration). ``--out``
writes the summary rows to a CSV; ``--figure`` draws the first run's AU pairs (fields and alpha^A).

    .venv/bin/python scripts/tcae_diag/sep.py RUN [RUN ...] [--weights init,last] [--people 8]
        [--pairs-per-person 4] [--figure PNG]
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
    ("alpha_au_au", "AU pairs: mean α^A", ".2f"),
    ("alpha_concentration", "AU pairs: α^A in AU region / area share", ".2f"),
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
    ap.add_argument("--figure", type=Path, default=None,
                    help="draw the first run's last listed weights on 6 AU pairs (fields, alpha^A) into this PNG")
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
            if a.figure is not None and run == a.runs[0]:
                figure_of = (model, rendered[key], rows[-1])
    print_table(pd.DataFrame(rows), COLUMNS, a.out)
    if a.figure is not None:
        import shutil
        import tempfile

        import torch

        from facedyn.tcae.figures import write_pair_figure

        model, pairs, row = figure_of
        src, tgt, _ = pairs["au"]
        pick = torch.linspace(0, len(src) - 1, min(6, len(src))).round().long()
        with torch.no_grad():
            rec = model.net.reconstruct(src[pick], tgt[pick])
        with tempfile.TemporaryDirectory() as tmp:
            made = write_pair_figure(rec, tmp, title=f"{row['run']} ({row['weights']}) on synthetic AU-only pairs: "
                                     f"A/P {row['au_ratio']:.2f}, alpha^A concentration "
                                     f"{row['alpha_concentration']:.2f}")
            a.figure.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, a.figure)
        print(f"wrote {a.figure}")


if __name__ == "__main__":
    main()
