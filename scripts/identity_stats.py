"""How far apart one person under two names and two different people are, on a folder of videos or a store.

    .venv/bin/python scripts/identity_stats.py ../shared/data/corpus [--out stats.json]

The numbers behind :data:`facedyn.data.identities.IDENTITY_THRESHOLD`: for every person with several clips,
every split of their clips into two groups (at most 64 per person, seeded) is one person filed under two names
(the distance of the two groups' mean descriptors, as the check computes it); every pair of subjects is a pair
of different people (the corpus holds no person twice). Descriptors are the check's own, cached per clip.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from facedyn.atomic import write_text
from facedyn.data.identities import IDENTITY_LOOK, IDENTITY_THRESHOLD, clip_descriptors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="a store, or a folder of videos with one folder per person")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    a = ap.parse_args()
    per: dict[str, list[np.ndarray]] = {}
    for c in clip_descriptors(a.source):
        if len(c.descriptors):
            per.setdefault(c.subject, []).append(c.descriptors.mean(0))
    subj = {s: np.mean(v, 0) for s, v in per.items()}
    diff = sorted((float(np.linalg.norm(subj[x] - subj[y])), x, y) for x, y in itertools.combinations(sorted(subj), 2))
    rng = np.random.default_rng(0)
    same = []
    for s, v in sorted(per.items()):
        masks = list(range(1, 2 ** (len(v) - 1)))  # the last clip always in the second group: each split once
        if len(masks) > 64:
            masks = [int(m) for m in rng.choice(masks, 64, replace=False)]
        for m in masks:
            g1 = [v[i] for i in range(len(v)) if (m >> i) & 1]
            g2 = [v[i] for i in range(len(v)) if not (m >> i) & 1]
            same.append((float(np.linalg.norm(np.mean(g1, 0) - np.mean(g2, 0))), s, len(g1), len(g2)))
    same.sort()
    d = np.array([x[0] for x in diff])
    sm = np.array([x[0] for x in same])
    res = {
        "people": len(subj), "people_with_several_clips": sum(len(v) > 1 for v in per.values()),
        "threshold": IDENTITY_THRESHOLD, "look": IDENTITY_LOOK,
        "same_person_splits": {"n": len(same), "median": float(np.median(sm)), "p99": float(np.percentile(sm, 99)),
                               "largest": same[-3:], "below_threshold": int((sm < IDENTITY_THRESHOLD).sum())},
        "different_pairs": {"n": len(diff), "p1": float(np.percentile(d, 1)), "closest": diff[:3],
                            "below_threshold": int((d < IDENTITY_THRESHOLD).sum()),
                            "below_look": int((d < IDENTITY_LOOK).sum())},
    }
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        write_text(a.out, text + "\n")


if __name__ == "__main__":
    main()
