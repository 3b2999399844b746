"""Clip sources of a prepare call's inputs: video files, folders of videos, image-sequence folders (the
dataset registry names clips and subjects). Shared by :mod:`facedyn.data.prepare` and
:mod:`facedyn.data.identities`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facedyn.data import video as video_io
from facedyn.data.datasets.base import ClipSource
from facedyn.errors import ConfigError, InputNotFoundError, VideoDecodeError


def collect_sources(inputs: Sequence[str | Path], kind: str = "folder",
                    landmarks: Path | None = None, **adapter_options: Any) -> list[ClipSource]:
    """Clip sources of every input (video files, folders of videos, image-sequence folders).

    Clip ids are made unique across inputs. ``landmarks`` (one ``(N, 68, 2)`` .npy) is only
    allowed with a single video input.
    """
    from facedyn.data.datasets import discover

    sources: list[ClipSource] = []
    for inp in inputs:
        p = Path(inp)
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such file or folder; check the path")
        if p.is_file() and p.suffix.lower() in video_io.IMAGE_EXTS:
            sources.append(ClipSource(clip_id=p.stem, video=p, subject=p.stem))
            continue
        if p.is_file() and p.suffix.lower() not in video_io.VIDEO_EXTS:
            raise VideoDecodeError(
                f"{p}: not a video or image ({p.suffix or 'no extension'}); give video files or image folders"
            )
        sources.extend(discover(kind, p, **adapter_options))
    if landmarks is not None:
        if len(sources) != 1:
            raise ConfigError(f"--landmarks needs exactly one video input, got {len(sources)} clips")
        if not Path(landmarks).is_file():
            raise InputNotFoundError(f"{landmarks}: no such landmarks file")
        sources[0].landmarks = Path(landmarks)
    seen: dict[str, int] = {}
    for s in sources:
        base = s.clip_id.replace("/", "_")
        if base in seen:
            seen[base] += 1
            s.clip_id = f"{base}_{seen[base]}"
        else:
            seen[base] = 0
            s.clip_id = base
    return sources
