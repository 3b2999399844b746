"""Tiny datasets in each dataset's own on-disk layout, drawn from synthetic faces (known landmarks, pose, AUs).

Every builder writes real files (H.264 videos through facedyn's encoder, JPEG/PNG images, the annotation files
with their quirks: 1-based frame numbers and the code 9 for "not coded" in BP4D, DISFA's headerless rows,
SEMAINE's separate annotator files, RECOLA's ARFF gold standards, 300-W's ``.pts`` headers and 1-based points,
CelebA's count and header lines, AFLW's SQLite tables with radians, EmotioNet's 999) and returns the root.
The helpers at the end write the other published forms of the label files byte for byte (RECOLA's per-rater
CSVs, SEMAINE's ``TU_VA.csv``, EmotioNet's FACS table as CSV / TSV / XLSX, DISFA's two line forms).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facedyn.data.datasets.stills import five_points
from facedyn.data.synthetic import synthesize_clip
from facedyn.data.video import write_video

SIZE = 96


def video(path: Path, seed: int, seconds: float = 1.2, fps: float = 25.0) -> pd.DataFrame:
    """One synthetic face video at ``path``; returns its ground-truth labels."""
    clip = synthesize_clip(seed, seconds, fps=fps, size=SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, clip.frames(), clip.fps)
    return clip.labels


def still(seed: int, frame: int = 0) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """A synthetic face image (RGB), its 68 landmarks and its labels."""
    clip = synthesize_clip(seed, 0.2, fps=25.0, size=SIZE)
    return clip.frame(frame), clip.landmarks[frame], clip.labels.iloc[frame]


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def arff(path: Path, name: str, times: np.ndarray, values: np.ndarray) -> Path:
    rows = "\n".join(f"'{name}',{t:.6f},{v:.5f}" for t, v in zip(times, values, strict=True))
    return write(path, "@relation GoldStandard\n\n@attribute Instance_name string\n@attribute frameTime numeric\n"
                       f"@attribute GoldStandard numeric\n\n@data\n{rows}\n")


def recola(root: Path, people: tuple[str, ...] = ("P16", "P17", "P34")) -> Path:
    """AVEC 2016 RECOLA: recordings_video/P16.mp4, ratings_gold_standard/{arousal,valence}/P16.arff."""
    for k, p in enumerate(people):
        lab = video(root / "recordings_video" / f"{p}.mp4", seed=100 + k)
        t = lab["timestamp"].to_numpy()
        for dim in ("arousal", "valence"):
            arff(root / "ratings_gold_standard" / dim / f"{p}.arff", p, t, lab[dim].to_numpy())
    return root


def semaine(root: Path, sessions: tuple[tuple[str, str], ...] = (("train", "s01"), ("devel", "s02"),
                                                                  ("test", "s03"))) -> Path:
    """AVEC 2012 SEMAINE at ~50 fps: <split>/<session>.avi and one trace file per annotator and dimension."""
    for k, (part, s) in enumerate(sessions):
        lab = video(root / part / f"{s}.avi", seed=200 + k, fps=50.0)
        t = lab["timestamp"].to_numpy()
        for dim in ("valence", "arousal"):
            for r, noise in (("R1", -0.05), ("R2", 0.05)):  # separate annotators, averaged by the adapter
                rows = "\n".join(f"{a:.3f} {v + noise:.4f}" for a, v in zip(t, lab[dim], strict=True))
                write(root / part / f"{s}_{dim}_{r}.txt", rows + "\n")
    return root


#: AUs the BP4D release codes 0/1 in the fixtures' AU_OCC files (every other AU of the header is 9 throughout).
BP4D_OCC_CODED = (1, 2, 4, 6, 7, 10, 11, 12, 14, 15, 17, 23, 24)


def bp4d_occ(path: Path, frames: list[int] | range, codes: dict[int, list[int]], crlf: bool = False) -> Path:
    """A BP4D ``AUCoding/AU_OCC/<seq>.csv`` byte for byte as the release lays it out: a header row ``0,1,...,99``
    (cell 0 heads the frame column, cell k is AU k), then ``frame,code,...`` per coded frame; AUs not in ``codes``
    are 9 (not coded); CRLF line ends when ``crlf``."""
    frames = list(frames)
    rows = [",".join(str(k) for k in range(100))]
    for i, f in enumerate(frames):
        rows.append(",".join([str(f), *(str(codes[a][i]) if a in codes else "9" for a in range(1, 100))]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n" if crlf else "\n").join(rows).encode() + (b"\r\n" if crlf else b"\n"))
    return path


def bp4d(root: Path, subjects: tuple[str, ...] = ("F001", "F002", "F003")) -> Path:
    """BP4D: <seq>.mp4, AUCoding/AU_OCC/<seq>.csv (the release's occurrence codes of the frames 2..N-1, 1-based;
    the second subject's file with CRLF) and the FERA 2015 AUCoding/AU_INT/AU06/<seq>_AU06.csv (1-based frames,
    9 = not coded). Occurrence: the generator's intensity >= 1 where it has the AU, else absent; one 9."""
    for k, subj in enumerate(subjects):
        seq = f"{subj}_T1"
        lab = video(root / "videos" / f"{seq}.mp4", seed=300 + k)
        for au in ("AU06", "AU10", "AU12", "AU14", "AU17"):
            vals = [round(v) for v in lab[au]]
            vals[0] = 9  # the first frame not coded
            write(root / "AUCoding" / "AU_INT" / au / f"{seq}_{au}.csv",
                  "\n".join(f"{i + 1},{v}" for i, v in enumerate(vals)) + "\n")
        frames = range(2, len(lab))  # AU coding frame f = decoded frame f - 1; the first and last not coded
        codes = {a: [int(round(lab[f"AU{a:02d}"].iloc[f - 1]) >= 1) if f"AU{a:02d}" in lab else 0 for f in frames]
                 for a in BP4D_OCC_CODED}
        codes[12][1] = 9  # one frame whose AU12 was not coded
        bp4d_occ(root / "AUCoding" / "AU_OCC" / f"{seq}.csv", frames, codes, crlf=k == 1)
    return root


def disfa(root: Path, subjects: tuple[str, ...] = ("SN001", "SN002", "SN003")) -> Path:
    """DISFA: Videos_LeftCamera/LeftVideoSN001_comp.avi and ActionUnit_Labels/SN001/SN001_au12.txt (1-based)."""
    for k, subj in enumerate(subjects):
        lab = video(root / "Videos_LeftCamera" / f"LeftVideo{subj}_comp.avi", seed=400 + k)
        for au in (1, 2, 4, 6, 12, 25):
            vals = lab.get(f"AU{au:02d}", pd.Series(np.zeros(len(lab))))
            write(root / "ActionUnit_Labels" / subj / f"{subj}_au{au}.txt",
                  "\n".join(f"{i + 1},{round(v)}" for i, v in enumerate(vals)) + "\n")
    return root


def voxceleb(root: Path, ids: tuple[str, ...] = ("id00012", "id00015", "id00017", "id00019")) -> Path:
    """VoxCeleb2 tracks dev/mp4/<id>/<video>/00001.mp4, and one VoxCeleb1-style frame folder."""
    for k, ident in enumerate(ids):
        video(root / "dev" / "mp4" / ident / f"vid{k}xYz" / "00001.mp4", seed=500 + k, seconds=1.6)
    clip = synthesize_clip(599, 0.8, fps=25.0, size=SIZE)
    for i, frame in enumerate(clip.frames()):
        write_image(root / "dev" / "mp4" / ids[0] / "frames0" / "00002" / f"{i + 1:04d}.jpg", frame)
    return root


def pts_text(points: np.ndarray) -> str:
    """A 300-W ``.pts`` file of 0-based ``points`` (written 1-based, as the release)."""
    body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in points)
    return f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n"


def w300(root: Path) -> Path:
    """300-W: lfpw/trainset, helen/trainset, afw (train); lfpw/testset, ibug (test): images beside .pts."""
    folders = ["lfpw/trainset", "helen/trainset", "afw", "lfpw/testset", "ibug", "lfpw/trainset"]
    for k, folder in enumerate(folders):
        img, lm, _ = still(600 + k)
        name = f"image_{k:04d}"
        write_image(root / folder / f"{name}.png", img)
        write(root / folder / f"{name}.pts", pts_text(lm))
    return root


def mafl(root: Path, n: int = 6, n_test: int = 2) -> Path:
    """CelebA + MAFL: Img/img_align_celeba/00000k.jpg, Anno/list_landmarks_align_celeba.txt, MAFL/*.txt lists."""
    rows = []
    names = []
    for k in range(n):
        img, lm, _ = still(700 + k)
        name = f"{k + 1:06d}.jpg"
        write_image(root / "Img" / "img_align_celeba" / name, img)
        pts = np.rint(five_points(lm)).astype(int)
        rows.append(f"{name} " + " ".join(f"{v:d}" for v in pts.reshape(-1)))
        names.append(name)
    header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    write(root / "Anno" / "list_landmarks_align_celeba.txt", f"{n}\n{header}\n" + "\n".join(rows) + "\n")
    write(root / "MAFL" / "training.txt", "\n".join(names[:-n_test]) + "\n")
    write(root / "MAFL" / "testing.txt", "\n".join(names[-n_test:]) + "\n")
    return root


def aflw(root: Path, n: int = 6, n_test: int = 2) -> Path:
    """AFLW: aflw/data/aflw.sqlite (Faces, FaceImages, FaceRect, FacePose in radians), images under flickr/."""
    data = root / "aflw" / "data"
    data.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(data / "aflw.sqlite")
    con.executescript("""
        CREATE TABLE Faces (face_id INTEGER PRIMARY KEY, file_id TEXT, db_id INTEGER);
        CREATE TABLE FaceImages (image_id INTEGER PRIMARY KEY, db_id INTEGER, file_id TEXT, filepath TEXT,
                                 bw INTEGER, width INTEGER, height INTEGER);
        CREATE TABLE FaceRect (face_id INTEGER, x INTEGER, y INTEGER, w INTEGER, h INTEGER, annot_type_id INTEGER);
        CREATE TABLE FacePose (face_id INTEGER, roll REAL, pitch REAL, yaw REAL, annot_type_id INTEGER);
    """)
    for k in range(n):
        img, lm, lab = still(800 + k)
        path = f"{k % 3}/image{k + 2:05d}.jpg"
        write_image(data / "flickr" / path, img)
        lo, hi = lm.min(0), lm.max(0)
        fid = 39341 + k
        con.execute("INSERT INTO FaceImages VALUES (?, 0, ?, ?, 0, ?, ?)", (k, f"image{k + 2:05d}.jpg", path, SIZE,
                                                                          SIZE))
        con.execute("INSERT INTO Faces VALUES (?, ?, 0)", (fid, f"image{k + 2:05d}.jpg"))
        con.execute("INSERT INTO FaceRect VALUES (?, ?, ?, ?, ?, 1)",
                    (fid, int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])))
        con.execute("INSERT INTO FacePose VALUES (?, ?, ?, ?, 1)", (fid, np.radians(lab["pose_roll"]),
                                                                   np.radians(lab["pose_pitch"]),
                                                                   np.radians(lab["pose_yaw"])))
    con.commit()
    con.close()
    write(root / "aflw_test.txt", "\n".join(str(39341 + k) for k in range(n - n_test, n)) + "\n")
    return root


def emotionet(root: Path, n: int = 8) -> Path:
    """EmotioNet: EmotioNet_manual.csv (URL, then 0/1/999 per AU; header AU1, AU2, ...) and images/<name>.jpg."""
    aus = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)
    rows = ["URL," + ",".join(f"AU{a}" for a in aus)]
    for k in range(n):
        img, _, _ = still(900 + k)
        name = f"N_{k:07d}.jpg"
        write_image(root / "images" / name, img)
        vals = [(k + j) % 2 if k % 4 or a != 43 else 999 for j, a in enumerate(aus)]  # both classes in any split
        rows.append(f"http://farm{k}.static.example.org/photos/{name}," + ",".join(map(str, vals)))
    write(root / "EmotioNet_manual.csv", "\n".join(rows) + "\n")
    return root


BUILDERS = {"recola": recola, "semaine": semaine, "bp4d": bp4d, "disfa": disfa, "voxceleb": voxceleb, "300w": w300,
            "mafl": mafl, "aflw": aflw, "emotionet": emotionet}


# -- the published variants of the label files, byte for byte (the adapters tell them apart by their content) --


def recola_raters(path: Path, times: np.ndarray, raters: dict[str, list[float]], crlf: bool = False) -> Path:
    """An original-release RECOLA annotation file (``RECOLA-Annotation/emotional_behaviour/arousal/P16.csv``):
    ``;``-separated, a header ``time;FM1 ;FM2 ;...`` whose rater names are padded with a space (the last not),
    then ``time;value;...`` rows; an empty cell where a rater gave none (``nan`` in ``raters``)."""
    names = list(raters)
    head = ";".join(["time", *(f"{n} " if i < len(names) - 1 else n for i, n in enumerate(names))])
    rows = [head] + [";".join([f"{t:.2f}", *("" if np.isnan(raters[n][i]) else f"{raters[n][i]:.4f}" for n in names)])
                     for i, t in enumerate(times)]
    end = "\r\n" if crlf else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((end.join(rows) + end).encode())
    return path


def tu_va(path: Path, times: np.ndarray, arousal: np.ndarray, valence: np.ndarray) -> Path:
    """A SEMAINE session's ``TU_VA.csv``: header ``Time,Arousal,Valence``, one comma-separated row per sample."""
    rows = ["Time,Arousal,Valence", *(f"{t:.2f},{a:.4f},{v:.4f}" for t, a, v in zip(times, arousal, valence,
                                                                                     strict=True))]
    return write(path, "\n".join(rows) + "\n")


def emotionet_facs(path: Path, rows: list[tuple[str, str, dict[int, int]]], aus: tuple[int, ...]) -> Path:
    """EmotioNet's FACS release table: header ``URL,URL orig,'AU 1',...`` and URL cells wrapped in single quotes,
    as in ``EmotioNet_FACS_aws_2020_24600.csv``; ``.tsv``: tab-separated; ``.xlsx``: the same cells in one sheet
    (numbers as numbers)."""
    head = ["URL", "URL orig", *(f"'AU {a}'" for a in aus)]
    body = [[f"'{url}'", f"'{orig}'", *(codes.get(a, 999) for a in aus)] for url, orig, codes in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        for r in [head, *body]:
            sheet.append(r)
        book.save(path)
        return path
    sep = "\t" if path.suffix == ".tsv" else ","
    return write(path, "\n".join(sep.join(map(str, r)) for r in [head, *body]) + "\n")


def disfa_au(path: Path, values: list[int], form: str = "frame,intensity", crlf: bool = False, bom: bool = False,
             trailing: str = "") -> Path:
    """A DISFA ``SN001_au1.txt``: lines ``frame,intensity`` (1-based) or ``form="intensity"``: the intensity alone
    per line; CRLF line ends, a UTF-8 BOM and trailing spaces on each line when asked."""
    lines = [(f"{i + 1},{v}" if form == "frame,intensity" else f"{v}") + trailing for i, v in enumerate(values)]
    end = "\r\n" if crlf else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\ufeff" if bom else "").encode() + (end.join(lines) + end).encode())
    return path
