"""How far the synthetic resting morphology caps any still-image AU model: the ICC(3,1) of an oracle that reads
each AU's *shown* intensity (rest + activity, clipped at 5) exactly and maps it to the activity label by the
best monotone map (isotonic regression fitted on half of the people, scored on the other half). Without
resting morphology the shown intensity is the label and the ceiling is 1. No frames are rendered.

    .venv/bin/python scripts/resting_ceiling.py [--people 200] [--seconds 8] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.isotonic import IsotonicRegression

from facedyn.data.synthetic.clip import subject_seed, synthesize_clip
from facedyn.data.synthetic.labels import AU_NAMES
from facedyn.eval.metrics import icc31


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    clips = [synthesize_clip(subject_seed(a.seed, i), a.seconds, 25.0, 64, resting=True) for i in range(a.people)]
    half = a.people // 2
    fit_a, fit_s = (np.concatenate([getattr(c, k) for c in clips[:half]]) for k in ("au", "shown"))
    test_a, test_s = (np.concatenate([getattr(c, k) for c in clips[half:]]) for k in ("au", "shown"))
    iccs = []
    for k, name in enumerate(AU_NAMES):
        g = IsotonicRegression(out_of_bounds="clip").fit(fit_s[:, k], fit_a[:, k])
        iccs.append(icc31(test_a[:, k], g.predict(test_s[:, k])))
        print(f"{name}: {iccs[-1]:.3f}")
    print(f"average still-image ceiling ICC(3,1): {np.mean(iccs):.3f} ({a.people - half} people scored)")


if __name__ == "__main__":
    main()
