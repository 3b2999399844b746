"""AFLW (Köstinger et al. 2011): Flickr images with face boxes and head pose, from the release's SQLite file.

Layout (the AFLW release)::

    root/
      aflw/data/aflw.sqlite                  the annotation database (or root/aflw.sqlite, root/data/aflw.sqlite)
      aflw/data/flickr/0/image00002.jpg ...  the images; FaceImages.filepath ("0/image00002.jpg") is
                                             relative to the flickr/ folder beside the database
      aflw_test.txt                          optional: the test faces, one face_id (or filepath) per line

Annotation: one row per face of the query used by the AFLW tools::

    SELECT Faces.face_id, FaceImages.filepath, FaceRect.x, FaceRect.y, FaceRect.w, FaceRect.h,
           FacePose.roll, FacePose.pitch, FacePose.yaw
    FROM Faces JOIN FaceImages ON Faces.file_id = FaceImages.file_id
               JOIN FaceRect ON Faces.face_id = FaceRect.face_id
               JOIN FacePose ON Faces.face_id = FacePose.face_id

``FacePose`` angles are radians; the labels are ``pose_yaw``, ``pose_pitch``, ``pose_roll`` in degrees.
The crop is placed by the face's ``FaceRect`` box (:func:`~facedyn.data.datasets.stills.template_in_box`).
One clip per face (``face<id>``; an image with two faces gives two clips); each face is its own subject.

Split: FAb-Net's Table 2 uses the AFLW test set of KEPLER (Kumar et al. 2017), whose list is not in
the release. Put it in ``aflw_test.txt`` (or pass ``test_list``): those faces are the test split, the
others train. Without a list every face's split is left to ``prepare``'s seeded person-level share,
which is **not** the paper's split (the recipe's table says so).
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from facedyn.data.datasets.base import ClipSource
from facedyn.data.datasets.folder import require_root
from facedyn.data.datasets.stills import POSE_COLUMNS, first_file, require_file, still_source, template_in_box
from facedyn.errors import DatasetError, LabelFormatError

LAYOUT = ("AFLW: aflw/data/aflw.sqlite (tables Faces, FaceImages, FaceRect, FacePose) and the images under "
          "aflw/data/flickr/ (FaceImages.filepath), optional aflw_test.txt of test face ids")

QUERY = ("SELECT Faces.face_id, FaceImages.filepath, FaceRect.x, FaceRect.y, FaceRect.w, FaceRect.h, "
         "FacePose.roll, FacePose.pitch, FacePose.yaw FROM Faces "
         "JOIN FaceImages ON Faces.file_id = FaceImages.file_id "
         "JOIN FaceRect ON Faces.face_id = FaceRect.face_id "
         "JOIN FacePose ON Faces.face_id = FacePose.face_id ORDER BY Faces.face_id")

_DB = ("aflw/data/aflw.sqlite", "data/aflw.sqlite", "aflw.sqlite")


def read_faces(db: Path) -> list[tuple[int, str, tuple[float, float, float, float], tuple[float, float, float]]]:
    """``(face_id, filepath, (x, y, w, h), (yaw, pitch, roll) degrees)`` per face of ``db``.

    Raises:
        LabelFormatError: not an SQLite file, or without the AFLW tables/columns.
    """
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute(QUERY).fetchall()
    except sqlite3.DatabaseError as e:
        raise LabelFormatError(f"{db}: not AFLW's annotation database ({e}); expected tables Faces, FaceImages, "
                               "FaceRect, FacePose") from None
    out = []
    for fid, path, x, y, w, h, roll, pitch, yaw in rows:
        deg = tuple(math.degrees(float(a)) for a in (yaw, pitch, roll))
        out.append((int(fid), str(path), (float(x), float(y), float(w), float(h)), deg))
    return out  # type: ignore[return-value]


def discover(root: Path, test_list: Path | None = None) -> list[ClipSource]:
    """AFLW faces with their box and pose (layout and split in the module docstring).

    Raises:
        DatasetError: no annotation database, or none of its images found (the message names them).
    """
    root = require_root(root)
    db = first_file(root, _DB)
    if db is None:
        require_file(root / _DB[0], "AFLW's annotation database", LAYOUT)
    assert db is not None
    images = db.parent / "flickr"
    lst = Path(test_list) if test_list is not None else root / "aflw_test.txt"
    if test_list is not None:
        require_file(lst, "the list of AFLW test faces", LAYOUT)
    test = ({ln.strip() for ln in lst.read_text().splitlines() if ln.strip()} if lst.is_file() else None)
    out = []
    missing = None
    for fid, path, box, (yaw, pitch, roll) in read_faces(db):
        img = images / path
        if not img.is_file():
            missing = missing or img
            continue
        split = None if test is None else ("test" if str(fid) in test or path in test else "train")
        labels = dict(zip(POSE_COLUMNS, (yaw, pitch, roll), strict=True))
        out.append(still_source(f"face{fid}", img, split, labels, template_in_box(box)))
    if not out:
        where = missing or images / "0" / "image00002.jpg"
        raise DatasetError(f"{where}: not found; expected the AFLW images under {images} at FaceImages.filepath "
                           f"({LAYOUT})")
    return out
