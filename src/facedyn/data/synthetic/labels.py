"""What a synthetic clip is labelled with: the animated Action Units, the label columns, pose bounds."""

from __future__ import annotations

__all__ = ["AU_INDEX", "AU_NAMES", "LABEL_COLUMNS", "POSE_LIMITS"]

#: Action Units animated and labelled, in column order. ``AU45`` is the blink.
AU_NAMES: list[str] = ["AU01", "AU02", "AU04", "AU06", "AU10", "AU12", "AU14", "AU15", "AU17", "AU25",
                       "AU26", "AU45"]
#: Column of each AU of :data:`AU_NAMES` in an ``(n, 12)`` AU array.
AU_INDEX: dict[str, int] = {name: i for i, name in enumerate(AU_NAMES)}
#: Columns of :attr:`SyntheticClip.labels` and of the ``.csv`` sidecars, in order.
LABEL_COLUMNS: list[str] = ["frame", "timestamp", *AU_NAMES, "pose_yaw", "pose_pitch", "pose_roll",
                            "valence", "arousal"]
POSE_LIMITS = (15.0, 10.0, 8.0)  # |yaw|, |pitch|, |roll| bounds in degrees
