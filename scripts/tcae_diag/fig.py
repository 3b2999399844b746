"""A TCAE checkpoint on validation pairs, as a figure: remakes the figures of docs/results/tcae/diagnosis.md
(``diagnosis/base_1200.png``, ``diagnosis/fixed_1200.png``).

Draws :meth:`facedyn.tcae.model.TCAENet.reconstruct` of ``--rows`` pairs, picked evenly from the pairs
``diag_state.py`` measures (same store, split, count and seed), with the run's own figure code
(:func:`facedyn.tcae.figures.write_pair_figure`: source, target, AU-changed, pose-changed, reconstruction,
tau^A and tau^P in flow colours with one brightness scale, the 99th percentile inside the crop, and alpha^A),
in eval mode, into ``--out``.

    .venv/bin/python scripts/tcae_diag/fig.py RUN --out PNG [--weights last] [--data models_work/real64box]
        [--rows 6] [--title TEXT]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import add_pair_options, validation_pairs, weights_label


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Remakes the figures of docs/results/tcae/diagnosis.md.")
    ap.add_argument("run", metavar="RUN", help="a TCAE run directory")
    ap.add_argument("--out", type=Path, required=True, help="the PNG to write")
    ap.add_argument("--weights", default="last", help="init, best, last or step<N> (default last)")
    add_pair_options(ap)
    ap.add_argument("--rows", type=int, default=6, help="pairs drawn, picked evenly from --pairs (default 6)")
    ap.add_argument("--title", default=None, help="figure title (default: run, weights, validation pairs)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)

    import numpy as np

    import facedyn
    from facedyn.tcae.figures import FIGURE_NAME, write_pair_figure

    model = facedyn.load(a.run, weights=a.weights, device=a.device)
    if model.name != "tcae":
        ap.error(f"{a.run}: a {model.name} run; give a TCAE run")
    pairs = validation_pairs(model.method, a.data, a.pairs, a.split, a.pair_seed, getattr(model.cfg, "fold", None))
    pick = sorted({int(i) for i in np.linspace(0, len(pairs) - 1, min(a.rows, len(pairs))).round()})
    rec = model.reconstruct(pairs.source[pick], pairs.target[pick])
    title = a.title or f"{Path(a.run).name}, {weights_label(a.run, a.weights)}: TCAE on {a.split} pairs"
    # write_pair_figure draws into a run's figures/ folder: draw into a scratch one, then move the file to --out
    with tempfile.TemporaryDirectory() as tmp:
        path = write_pair_figure(rec, tmp, FIGURE_NAME, title=title)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
