"""Training: the one loop (:mod:`facedyn.train.loop`) and the API that trains any registered method."""

from facedyn.train.runner import TrainResult, configure, sweep, train

__all__ = ["TrainResult", "configure", "sweep", "train"]
