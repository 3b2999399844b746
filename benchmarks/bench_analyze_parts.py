"""Where ``analyze``'s time per frame goes, and which parts threads can overlap (issue 15, item 5: 2x the speed).

For the first ``--frames`` frames of a one-face 512 px real clip, fit-tracked, one thread:

* CPU ms per frame of each stage of the serial path: decode (PyAV, RGB), tracking (HOG re-detection every 10th
  frame, the 68-point predictor, the pose fit and shape checks), the AU proxies and pose columns, the aligned
  crop, the shipped dr-t5 network in batches of 32;
* the GIL: the same work in two threads at once against one thread doing it once (ratio 1.0: the threads ran in
  parallel, 2.0: one waited for the other), for dlib's HOG scan and its 68-point predictor;
* the HOG scan's cost at 240 and 360 px against 480 px (the tracker's default copy), with the face it finds, and
  that of a window around the face (the detections between whole-frame scans).

    .venv/bin/python benchmarks/bench_analyze_parts.py [--frames 300]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import numpy as np
import torch

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _stages(frames: int) -> dict[str, float]:
    from facedyn.analysis import _face_values, load_models
    from facedyn.data import video as video_io
    from facedyn.data.faces import MultiFaceTracker, align_face
    from facedyn.data.faces.track import REDETECT_EVERY
    from facedyn.tasks.proxies import StreamProxies

    cpu: dict[str, float] = {}

    def add(key: str, t0: float) -> None:
        cpu[key] = cpu.get(key, 0.0) + time.process_time() - t0

    tracker = MultiFaceTracker(None, quick=True, redetect_every=REDETECT_EVERY)
    model = next(iter(load_models((), "cpu", "torch").values()))
    streams: dict[int, StreamProxies] = {}
    crops = []
    it = video_io.iter_frames(REAL / "talking_d10.mp4")
    n = 0
    for _ in range(frames):
        t0 = time.process_time()
        got = next(it, None)
        add("decode", t0)
        if got is None:
            break
        frame = got[0]
        t0 = time.process_time()
        found = tracker(frame)
        add("track", t0)
        for f in found:
            t0 = time.process_time()
            _face_values(f, streams.setdefault(f.face_id, StreamProxies()))
            add("proxies, pose columns", t0)
            t0 = time.process_time()
            crops.append(align_face(frame, np.asarray(f.landmarks, np.float32), size=64, mask=True).image)
            add("crop", t0)
        n += 1
    t0 = time.process_time()
    for k in range(0, len(crops), 32):
        model.outputs(np.stack(crops[k:k + 32]), aligned=True)
    add("network (dr-t5)", t0)
    out = {k: 1e3 * v / max(n, 1) for k, v in cpu.items()}
    out["detections"] = float(tracker.detections)
    return out


def _overlap(fn: Callable[[], None]) -> float:
    """Wall time of ``fn`` in two threads at once over the wall time of one call (1: parallel, 2: serial)."""
    fn()  # warm
    t = time.perf_counter()
    fn()
    one = time.perf_counter() - t
    threads = [threading.Thread(target=fn) for _ in range(2)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return (time.perf_counter() - t) / one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args()
    torch.set_num_threads(1)
    import dlib

    from facedyn.data import video as video_io
    from facedyn.data.faces.detect import NEAR_FACE_PX, NEAR_MARGIN, FaceLandmarker, _downscale, _shape_predictor

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}")
    st = _stages(a.frames)
    print(f"\nCPU ms per frame, one face fit-tracked ({int(st.pop('detections'))} detections), serial, one thread:\n")
    print("| stage | CPU ms/frame |\n|---|---:|")
    for k, v in st.items():
        print(f"| {k} | {v:.2f} |")
    print(f"| all | {sum(st.values()):.2f} |")

    raw = [f for f, _ in islice(video_io.iter_frames(REAL / "talking_d10.mp4"), 10)]
    small = [_downscale(f, 480)[0] for f in raw]
    dets = [dlib.get_frontal_face_detector() for _ in range(2)]
    lock = threading.Lock()
    pool = list(dets)

    def hog() -> None:
        with lock:
            d = pool.pop()  # one detector per thread: one instance is not safe in two threads
        try:
            for f in small:
                d.run(f, 0, 0.0)
        finally:
            with lock:
                pool.append(d)

    sp = _shape_predictor()

    def shape() -> None:
        for _ in range(10):
            for f in raw:
                sp(f, dlib.rectangle(150, 100, 350, 300))

    print("\nTwo threads doing the work at once, wall time over one thread doing it once (1.0: in parallel, 2.0: "
          "serialised by the GIL):\n")
    print("| call | ratio |\n|---|---:|")
    print(f"| dlib HOG scan (480 px copy) | {_overlap(hog):.2f} |")
    print(f"| dlib 68-point shape predictor | {_overlap(shape):.2f} |")

    print("\nHOG scan cost by the side of the scanned copy, against 480 px (the tracker's default), and of a window "
          "around the face (FaceLandmarker.boxes_near, the detections between whole-frame scans):\n")
    print("| scan | ms per scan | ratio to 480 | face width found (px, full frame) |\n|---|---:|---:|---|")
    base = None
    for side in (480, 360, 240):
        t = time.process_time()
        for f in raw:
            img, s = _downscale(f, side)
            rects, _, _ = dets[0].run(img, 0, 0.0)
        ms = 1e3 * (time.process_time() - t) / len(raw)
        base = base or ms
        print(f"| whole frame, {side} px copy | {ms:.1f} | {ms / base:.2f} | {[round(r.width() / s) for r in rects]} |")
    lmk = FaceLandmarker()
    box = lmk.boxes(raw[0], quick=True)[0]
    lmk.boxes_near(raw[0], [box])
    t = time.process_time()
    for f in raw:
        near = lmk.boxes_near(f, [box])
    ms = 1e3 * (time.process_time() - t) / len(raw)
    print(f"| window around the face (margin {NEAR_MARGIN} box sides, face scaled to {NEAR_FACE_PX:.0f} px) | {ms:.1f} "
          f"| {ms / base:.2f} | {[round(b[2] - b[0]) for b in near]} |")


if __name__ == "__main__":
    main()
