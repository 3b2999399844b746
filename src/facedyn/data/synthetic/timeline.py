"""Time in a synthetic clip: AU episodes, expressions, talking, blinks, head motion, gaze, affect.

AU curves are FACS-style onset–apex–offset episodes, co-occurring in expressions (smiles,
surprise, sadness, anger, disgust, talking), plus blinks and slow head motion; valence and arousal
follow from the AUs (:func:`affect_from_aus`).

Temporal statistics were tuned so that the "still image floor" (``d = I_t`` minus its per-channel
mean, scored by ``<d, I_a>``) ranks the Eq. 2 pairs of (T=5, S=2) windows about as well as on real
talking-face clips (~0.8 here and there), i.e. well above chance yet far from perfect.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d

from facedyn.data.synthetic.face3d import Identity
from facedyn.data.synthetic.labels import AU_INDEX, AU_NAMES, POSE_LIMITS

__all__ = ["affect_from_aus", "sample_timeline"]


# expressions: (rate per minute, {AU: (probability, relative peak)})
_EXPRESSIONS: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {
    "smile": (4.0, {"AU12": (1.0, 1.0), "AU06": (0.75, 0.75), "AU25": (0.4, 0.6), "AU26": (0.15, 0.4)}),
    "laugh": (1.0, {"AU12": (1.0, 1.0), "AU06": (1.0, 0.95), "AU25": (1.0, 0.9), "AU26": (0.8, 0.8),
                    "AU45": (0.3, 0.6)}),
    "surprise": (1.5, {"AU01": (1.0, 1.0), "AU02": (0.9, 0.9), "AU25": (0.7, 0.7), "AU26": (0.55, 0.8)}),
    "sad": (1.5, {"AU01": (0.8, 0.7), "AU04": (0.7, 0.7), "AU15": (1.0, 1.0), "AU17": (0.6, 0.7)}),
    "anger": (1.3, {"AU04": (1.0, 1.0), "AU17": (0.6, 0.7), "AU14": (0.35, 0.6), "AU10": (0.3, 0.6),
                    "AU06": (0.2, 0.4)}),
    "disgust": (1.0, {"AU10": (1.0, 1.0), "AU04": (0.6, 0.6), "AU17": (0.4, 0.6), "AU15": (0.3, 0.5),
                      "AU06": (0.3, 0.4)}),
    "doubt": (0.8, {"AU14": (1.0, 1.0), "AU17": (0.5, 0.6), "AU02": (0.3, 0.6)}),
}


_EXPRESSION_RATE = 1.5  # multiplier of the expression rates above
_SINGLE_RATE = 1.5  # episodes per minute of each AU on its own
_TALK_RATE = 6.0  # talking bursts (1-4 s of syllables) per minute
_HEAD_SLOW = (6.0, 4.0, 3.0)  # std (degrees) of the slow yaw/pitch/roll drift
_HEAD_FAST = (1.0, 1.2, 0.6)  # std of the faster nods and turns
_FAST_SIGMA = (0.12, 0.25)  # their time scale (s)
_SLOW_SIGMA = (2.0, 4.0)  # time scale of the slow drift (s)
_TRANS_SLOW = (0.008, 0.006, 0.015, 4.0)  # std of x, y drift, log-scale drift; time scale (s)
_TRANS_FAST = 0.004  # std of the fast translation jitter (fraction of the frame)


def _episode(t: np.ndarray, start: float, onset: float, apex: float, offset: float, peak: float) -> np.ndarray:
    """Onset (smoothstep up) - apex (hold) - offset (smoothstep down) curve sampled at times ``t``."""
    up = np.clip((t - start) / onset, 0, 1)
    down = np.clip((t - (start + onset + apex)) / offset, 0, 1)
    ss = lambda x: x * x * (3 - 2 * x)  # noqa: E731
    return peak * ss(up) * (1 - ss(down))


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Band-limited noise ``(n,)`` with unit standard deviation (Gaussian-filtered white noise)."""
    pad = int(4 * sigma) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma, mode="wrap")[pad:pad + n]
    return x * math.sqrt(2 * math.sqrt(math.pi) * max(sigma, 1e-3))


def sample_timeline(identity: Identity, rng: np.random.Generator, n: int, fps: float,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AU curves ``(n, 12)``, pose ``(n, 3)`` deg, drift ``(n, 3)`` and gaze ``(n, 2)`` for ``n`` frames."""
    t = np.arange(n) / fps
    dur = n / fps
    au = np.zeros((n, len(AU_NAMES)))
    u = rng.uniform

    def add(name: str, start: float, onset: float, apex: float, offset: float, peak: float) -> None:
        k = AU_INDEX[name]
        lo = max(0, int((start - 0.1) * fps))
        hi = min(n, int((start + onset + apex + offset + 0.1) * fps) + 1)
        if hi > lo:
            au[lo:hi, k] = np.maximum(au[lo:hi, k], _episode(t[lo:hi], start, onset, apex, offset, peak))

    # expressions (co-occurring AUs with jittered timing)
    for rate, aus in _EXPRESSIONS.values():
        lam = _EXPRESSION_RATE * rate * identity.expressiveness / 60.0
        s = u(-2.0, 0.0)
        while True:
            s += rng.exponential(1 / lam)
            if s > dur:
                break
            onset, apex, offset = u(0.2, 1.5), u(0.0, 2.0), u(0.2, 1.5)
            peak = u(1.0, 5.0)
            for name, (p, rel) in aus.items():
                if u() < p:
                    add(name, s + u(-0.2, 0.25), max(0.2, onset * u(0.7, 1.3)), apex * u(0.7, 1.2),
                        max(0.2, offset * u(0.7, 1.3)), float(np.clip(peak * rel * u(0.8, 1.2), 0.5, 5.0)))
    # single AUs on their own
    for name in AU_NAMES[:-1]:
        lam = _SINGLE_RATE * identity.expressiveness / 60.0
        s = u(-2.0, 0.0)
        while True:
            s += rng.exponential(1 / lam)
            if s > dur:
                break
            add(name, s, u(0.2, 1.5), u(0.0, 2.0), u(0.2, 1.5), u(1.0, 5.0))
    # talking: bursts of syllable-like lip parting and small jaw drops
    s = u(-3.0, 0.0)
    while True:
        s += rng.exponential(60.0 / (_TALK_RATE * identity.expressiveness))
        if s > dur:
            break
        burst_end = s + u(1.0, 4.0)
        ts = s
        while ts < burst_end:
            d = u(0.2, 0.45)
            add("AU25", ts, d * 0.45, u(0.0, 0.1), d * 0.55, u(1.0, 3.5))
            if u() < 0.6:
                add("AU26", ts, d * 0.5, 0.0, d * 0.5, u(0.8, 2.5))
            ts += d + u(0.05, 0.3)
        s = burst_end
    # blinks: every blink_interval seconds, 0.1-0.4 s long, mostly complete
    k = AU_INDEX["AU45"]
    s = u(0.0, identity.blink_interval[1])
    while s < dur:
        d = u(0.1, 0.4)
        peak = 5.0 if u() < 0.85 else u(3.0, 5.0)
        close, reopen = 0.4 * d, 0.6 * d
        lo, hi = max(0, int((s - 0.1) * fps)), min(n, int((s + d + 0.1) * fps) + 1)
        au[lo:hi, k] = np.maximum(au[lo:hi, k], _episode(t[lo:hi], s, close, 0.0, reopen, peak))
        s += d + u(*identity.blink_interval)
    au = np.clip(au, 0.0, 5.0)

    # head motion: slow band-limited drift plus faster nods and jitter (talking heads reverse often),
    # each with a slowly varying amplitude, so some stretches are nearly still
    env = 0.3 + 0.7 / (1 + np.exp(-2.0 * _smooth_noise(rng, n, 2.0 * fps)))
    env_fast = 1.0 / (1 + np.exp(-2.0 * (_smooth_noise(rng, n, 1.5 * fps) - 0.3)))
    pose = np.zeros((n, 3))
    for j, (amp, amp_fast, lim) in enumerate(zip(_HEAD_SLOW, _HEAD_FAST, POSE_LIMITS, strict=True)):
        x = (identity.pose_offset[j]
             + identity.motion * amp * env * _smooth_noise(rng, n, u(*_SLOW_SIGMA) * fps)
             + identity.motion * amp_fast * env_fast * _smooth_noise(rng, n, u(*_FAST_SIGMA) * fps))
        pose[:, j] = lim * np.tanh(x / lim)
    # expressions move the head a little too (surprise/laugh: chin up)
    pose[:, 1] = np.clip(pose[:, 1] + 0.5 * (au[:, AU_INDEX["AU02"]] + au[:, AU_INDEX["AU26"]]) * 0.4, -10, 10)
    tx, ty, ts, tsig = _TRANS_SLOW
    jitter = _TRANS_FAST * env_fast
    drift = np.stack([tx * _smooth_noise(rng, n, tsig * fps) + jitter * _smooth_noise(rng, n, 0.2 * fps),
                      ty * _smooth_noise(rng, n, tsig * fps) + jitter * _smooth_noise(rng, n, 0.2 * fps),
                      ts * _smooth_noise(rng, n, 1.5 * tsig * fps)], 1)
    gaze = np.stack([np.clip(-0.5 * pose[:, 0] / 15 + 0.25 * _smooth_noise(rng, n, 0.3 * fps), -1, 1),
                     np.clip(-0.3 * pose[:, 1] / 10 + 0.15 * _smooth_noise(rng, n, 0.4 * fps), -1, 1)], 1)
    return au, pose, drift, gaze


def affect_from_aus(au: np.ndarray, fps: float, bias: tuple[float, float] = (0.0, 0.0),
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal ``(n,)`` in [-1, 1] from AU curves ``(n, 12)`` (smoothed over ~0.4 s).

    Valence rises with AU6/AU12 and falls with AU4/AU10/AU15/AU17; arousal rises with
    AU1/AU2/AU4/AU25/AU26 and the overall expression intensity.
    """
    g = {n: au[:, i] for i, n in enumerate(AU_NAMES)}
    v = (0.18 * g["AU12"] + 0.08 * g["AU06"] - 0.15 * g["AU04"] - 0.16 * g["AU15"] - 0.09 * g["AU17"]
         - 0.12 * g["AU10"] - 0.05 * g["AU14"] - 0.03 * g["AU01"] + bias[0])
    total = au[:, :-1].sum(1)
    ar = (0.10 * g["AU01"] + 0.12 * g["AU02"] + 0.08 * g["AU04"] + 0.06 * g["AU25"] + 0.12 * g["AU26"]
          + 0.04 * g["AU06"] + 0.02 * total - 0.3 + bias[1])
    sig = 0.4 * fps
    v = gaussian_filter1d(np.tanh(v), sig, mode="nearest")
    ar = gaussian_filter1d(np.tanh(ar), sig, mode="nearest")
    return np.clip(v, -1, 1), np.clip(ar, -1, 1)


