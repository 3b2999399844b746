"""Face boxes found ahead of a tracker, in another thread: :class:`DetectAhead`.

A :class:`~facedyn.data.faces.track.MultiFaceTracker` that fits between detections runs dlib's HOG detector
(10-50 ms a frame) on a predictable schedule: every ``redetect_every`` frames, and on every frame while no face
is seen. The detector depends on the frame alone, so the thread that decodes the frames can run it on the
frames the tracker is expected to detect, before the tracker gets there; the tracker then takes those boxes
instead of scanning again. The boxes are the ones the tracker would have found (the same scan of the same
frame), so the tracking is unchanged; where the expectation was wrong (a fit degraded and the tracker
detected early), the tracker scans itself and the boxes found ahead go unused.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

from facedyn.data.faces.detect import FaceLandmarker

__all__ = ["DetectAhead"]

_Boxes = list[tuple[float, float, float, float, float]]
#: :meth:`DetectAhead.find` scans a frame once the tracker is at most this many frames before it (a scan takes
#: about as long as tracking 4 frames: 21 ms against ~5 ms for one face at 512 px): scanning earlier would waste
#: the scans of frames the tracker then does not detect (a fit degraded in between and it detected early) ...
LEAD = 4
#: ... waiting at most this long (seconds) for the tracker to get there.
WAIT_S = 0.25


class _OneAtATime:
    """A detector whose ``run`` is called by one thread at a time."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.lock = threading.Lock()

    def run(self, *args: Any) -> Any:
        with self.lock:
            return self.detector.run(*args)


@functools.cache
def _second_hog() -> _OneAtATime:
    """A second instance of dlib's HOG detector (loading one takes ~0.3 s), for scans beside the tracker's: one
    instance is not safe to run from two threads at once."""
    import dlib

    return _OneAtATime(dlib.get_frontal_face_detector())


class _AheadScanner(FaceLandmarker):
    """:meth:`FaceLandmarker.boxes` on :func:`_second_hog`."""

    def _hog(self) -> Any:
        return _second_hog()


class DetectAhead(FaceLandmarker):
    """A :class:`FaceLandmarker` for a :class:`~facedyn.data.faces.track.MultiFaceTracker` whose face boxes are
    found ahead, in another thread, on the frames the tracker is expected to detect.

    Frames are numbered by the order the tracker sees them (0, 1, 2, ...). The producing thread calls
    :meth:`find` on each frame as it comes (decoding); the tracking thread calls :meth:`track` instead of the
    tracker. A tracker that fits between detections (``redetect_every`` N > 1) is expected to detect its first
    frame, then the frame N after its last detection, or the next frame when that detection found no face;
    every frame with N = 1. While every frame is expected, the boxes of every other frame are found ahead, so
    that the two threads share the scans.

    A frame is scanned when the tracker is at most ``lead`` frames before it (:data:`LEAD`).
    ``hits``: detections the tracker took from ahead; ``misses``: scans it made itself; ``unused``: boxes found
    ahead that it did not take.
    """

    def __init__(self, landmarker: FaceLandmarker | None = None, redetect_every: int = 1, quick: bool = True,
                 lead: int = LEAD) -> None:
        base = landmarker or FaceLandmarker()
        super().__init__(base.detector, base.upsample, base.max_side)
        self.redetect_every = max(1, int(redetect_every))
        self.quick = bool(quick)
        self.lead = int(lead)
        self._scanner = _AheadScanner(base.detector, base.upsample, base.max_side)
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)  # the tracker moved on to another frame
        # frames next, next + step, next + 2 step, ... are expected to be detected
        self._next, self._step = 0, self.redetect_every
        self._found: dict[int, tuple[np.ndarray, _Boxes]] = {}  # frame number -> (frame, its boxes)
        self._frame = -1  # the frame the tracker is on
        self._scanned: _Boxes | None = None  # the boxes of the tracker's scan of that frame, if it scanned
        self.hits = self.misses = self.unused = 0

    def load(self) -> DetectAhead:
        """Load the models now, the second HOG detector included; returns self."""
        super().load()
        if self.detector == "hog":
            _second_hog()
        return self

    def expected(self, n: int) -> bool:
        """Whether the tracker is expected to detect frame ``n``, as far as is known now."""
        with self._lock:
            return self._expected(n)

    def _expected(self, n: int) -> bool:
        """:meth:`expected`, the lock held."""
        return n >= self._next and (n - self._next) % self._step == 0

    def _ahead(self, n: int) -> bool:
        """Whether to scan frame ``n`` ahead (the lock held): expected, and even while every frame is."""
        return self._expected(n) and not (self._step == 1 and n % 2)

    def find(self, n: int, frame: np.ndarray) -> None:
        """Producing thread: the boxes of frame ``n`` (RGB ``uint8 (H, W, 3)``, the very array the tracker will be
        given), when it is expected to be detected (and, while every frame is, when ``n`` is even: the tracker
        scans the others itself meanwhile), once the tracker is at most ``lead`` frames before it."""
        if self.detector != "hog":
            return
        with self._moved:
            if not self._ahead(n):
                return
            self._moved.wait_for(lambda: self._frame >= n - self.lead, timeout=WAIT_S)
            if not self._ahead(n):  # the tracker detected early meanwhile
                return
        boxes = self._scanner.boxes(frame, quick=self.quick)
        with self._lock:
            if n > self._frame:
                self._found[n] = (frame, boxes)

    def track(self, tracker: Any, n: int, frame: np.ndarray) -> Any:
        """Tracking thread: ``tracker(frame)`` of frame ``n``, with the boxes found ahead where it detects."""
        with self._moved:
            self._frame, self._scanned = n, None
            self._moved.notify_all()
        out = tracker(frame)
        with self._lock:
            if self._scanned is not None:  # it detected: the next detection is expected N frames on
                self._next, self._step = (n + 1, 1) if not self._scanned else (n + self.redetect_every,
                                                                                self.redetect_every)
            stale = [k for k in self._found if k <= n]
            for k in stale:
                del self._found[k]
            self.unused += len(stale)
        return out

    def boxes(self, image: np.ndarray, quick: bool = False) -> _Boxes:
        """The boxes found ahead for the tracker's current frame when there are (and ``quick`` is as they were
        found), else :meth:`FaceLandmarker.boxes`."""
        with self._lock:
            got = self._found.pop(self._frame, None)
        if got is not None and got[0] is image and quick == self.quick:
            self.hits += 1
            out = got[1]
        else:
            self.misses += 1
            self.unused += got is not None
            out = super().boxes(image, quick=quick)
        self._scanned = out
        return list(out)
