"""VoxCeleb1 / VoxCeleb2 face tracks (Nagrani et al. 2017; Chung et al. 2018), the videos TCAE and FAb-Net train on.

Layout: one clip per face track, three levels deep (identity / YouTube video / track)::

    root/[dev|test/][mp4/]id00012/21Uxsk56VDQ/00001.mp4      the video release (VoxCeleb2; VoxCeleb1 mp4)
    root/[unzippedFaces/]id10001/1zcIwhmdeo4/00001/0001.jpg  the frame-folder layout: one folder of frames
                                                            per track (numbered images)

Any video file or image-sequence folder whose path below ``root`` has at least three parts is a
track: the last three parts are ``identity / video / track`` (identity folders are ``id`` + digits in
both releases; other names, e.g. celebrity names, are accepted as identities too). Clips at shallower
depth are not VoxCeleb tracks and are left out.

Clip id ``<identity>_<video>_<track>``; subject = the identity (splits are by identity). Split: a track
under a ``test`` folder, or of a VoxCeleb1 test identity (``id10270`` .. ``id10309``), is ``test``;
the others are left to ``prepare``'s seeded person-level share (the self-supervised models need only
train and val people). Frame folders are read at ``fps`` (VoxCeleb's videos are 25 fps).
The tracks are loose crops around the face: prepare them with ``--align box`` for TCAE and FAb-Net.
"""

from __future__ import annotations

from pathlib import Path

from facedyn.data.datasets.base import ClipSource
from facedyn.data.datasets.folder import iter_clips, require_root, safe_id, split_from_parts
from facedyn.errors import DatasetError

LAYOUT = ("VoxCeleb: face tracks id00012/21Uxsk56VDQ/00001.mp4 (identity/video/track, optionally under dev/mp4 "
          "or test/mp4) or frame folders id10001/1zcIwhmdeo4/00001/0001.jpg")

#: VoxCeleb1's test identities (its identification/verification test split).
VOX1_TEST: tuple[str, ...] = tuple(f"id{i}" for i in range(10270, 10310))
FPS = 25.0


def discover(root: Path, fps: float = FPS) -> list[ClipSource]:
    """VoxCeleb face tracks (layout and split in the module docstring).

    Raises:
        DatasetError: no track three levels below ``root`` (the message names the path expected).
    """
    root = require_root(root)
    out = []
    for path, is_folder in iter_clips(root):
        rel = path.relative_to(root)
        parts = (rel if is_folder else rel.with_suffix("")).parts
        if len(parts) < 3:
            continue
        ident, video, track = parts[-3:]
        split = "test" if ident.lower() in VOX1_TEST or split_from_parts(parts[:-3]) == "test" else None
        out.append(ClipSource(clip_id=safe_id(f"{ident}_{video}_{track}"), video=path, subject=ident,
                              split=split, fps=float(fps) if is_folder else None))
    if not out:
        raise DatasetError(f"{root}: no VoxCeleb face track found; expected e.g. "
                           f"{root / 'id00012' / '21Uxsk56VDQ' / '00001.mp4'} ({LAYOUT})")
    return out
