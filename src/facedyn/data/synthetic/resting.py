"""Resting morphology: AU-like shapes of a person's *neutral* face, which a still image confuses with activity.

Real resting faces differ: low or knitted brows, down- or up-turned mouth corners, deep nasolabial
folds, heavy lids, a slightly open mouth. Each synthetic identity gets such a resting face: a vector
``rest (12,)`` of AU-like intensities (order of :data:`~facedyn.data.synthetic.labels.AU_NAMES`),
drawn once per identity. A clip shows ``rest + activity`` (landmarks deform linearly, so a resting
shape moves the same landmarks the AU does; the appearance cues saturate at intensity 5), while its
AU labels stay the *activity* alone, and valence/arousal follow the activity alone. So a still image
cannot tell a person's resting brow-lowering from a frown without knowing that person; seeing the
face move can.

Per AU: the probability that an identity has that resting shape, and the range of its intensity
(uniform) when it does; all other AUs rest at 0. Mean resting intensity over identities ≈ 0.3 per
AU, against activity peaks of 1–5.

=====  ====================================  ===========  ============
AU     resting shape                         probability  intensity
=====  ====================================  ===========  ============
AU01   raised inner brows ("worried")        0.20         U(0.5, 1.5)
AU02   high-arched brows                     0.20         U(0.5, 1.5)
AU04   low, knitted brows                    0.35         U(0.5, 2.0)
AU06   full cheeks, narrowed lower lids      0.25         U(0.5, 1.5)
AU10   deep nasolabial folds, raised lip     0.30         U(0.5, 1.5)
AU12   up-turned mouth corners               0.25         U(0.5, 1.5)
AU14   tight mouth corners (dimples)         0.15         U(0.5, 1.5)
AU15   down-turned mouth corners             0.40         U(0.5, 2.0)
AU17   raised chin, pouting lower lip        0.20         U(0.5, 1.5)
AU25   slightly parted lips                  0.30         U(0.5, 1.5)
AU26   –                                     0            –
AU45   heavy upper lids                      0.25         U(0.5, 1.5)
=====  ====================================  ===========  ============

The draw uses its own random stream (``default_rng([identity_seed, RESTING_STREAM])``), so every
other property of an identity and its clips is exactly what the same seed gave before this existed.
"""

from __future__ import annotations

import numpy as np

from facedyn.data.synthetic.labels import AU_INDEX, AU_NAMES

__all__ = ["RESTING_RANGES", "RESTING_STREAM", "sample_resting"]

#: AU → (probability that an identity has this resting shape, (low, high) of its uniform intensity).
RESTING_RANGES: dict[str, tuple[float, tuple[float, float]]] = {
    "AU01": (0.20, (0.5, 1.5)),
    "AU02": (0.20, (0.5, 1.5)),
    "AU04": (0.35, (0.5, 2.0)),
    "AU06": (0.25, (0.5, 1.5)),
    "AU10": (0.30, (0.5, 1.5)),
    "AU12": (0.25, (0.5, 1.5)),
    "AU14": (0.15, (0.5, 1.5)),
    "AU15": (0.40, (0.5, 2.0)),
    "AU17": (0.20, (0.5, 1.5)),
    "AU25": (0.30, (0.5, 1.5)),
    "AU45": (0.25, (0.5, 1.5)),
}
#: Second seed word of the resting-morphology stream.
RESTING_STREAM = 0x5E57


def sample_resting(identity_seed: int) -> np.ndarray:
    """The resting AU-like intensities ``(12,)`` of the identity drawn from ``identity_seed``."""
    rng = np.random.default_rng([int(identity_seed), RESTING_STREAM])
    rest = np.zeros(len(AU_NAMES))
    for name in AU_NAMES:  # fixed order: one (probability, intensity) pair of draws per AU
        p, (lo, hi) = RESTING_RANGES.get(name, (0.0, (0.0, 0.0)))
        has, value = rng.random(), rng.uniform(lo, hi) if hi > lo else 0.0
        if has < p:
            rest[AU_INDEX[name]] = value
    return rest
