"""The wheel works outside the repository (issue 16, item 4): built from this tree, installed into a fresh virtual
environment in a temporary folder, it runs ``facedyn infer`` on an image and loads a shipped model."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import facedyn

ROOT = Path(__file__).resolve().parents[1]


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path, synth_videos: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = dist.glob("facedyn-*.whl")
    assert wheel.name.startswith(f"facedyn-{facedyn.__version__}-")
    env_dir = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    # the dependencies (torch, dlib, ...) come from this environment's site-packages, behind the fresh one's: a path
    # entry, so this environment's editable install of facedyn is not seen there
    (site_packages(python) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    import cv2

    from facedyn.data.video import iter_frames

    frame = next(f for f, _ in iter_frames(next(synth_videos.rglob("*.mp4"))))
    cv2.imwrite(str(work / "photo.jpg"), np.ascontiguousarray(frame[..., ::-1]))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run([str(env_dir / "bin" / "facedyn"), "infer", "photo.jpg", "--out", "out"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (work / "out" / "faces.csv").is_file()
    code = ("import facedyn, torch; m = facedyn.load('fabnet', device='cpu'); "
            "print(facedyn.__file__); print('x'.join(map(str, m.encode(torch.rand(2, 3, 64, 64)).shape))); "
            "print(facedyn.__version__)")
    res = subprocess.run([str(python), "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    where, shape, version = res.stdout.split()[-3:]
    assert Path(where).is_relative_to(env_dir) and not Path(where).is_relative_to(ROOT)  # the wheel, not this tree
    assert shape == "2x256"
    assert version == facedyn.__version__
    res = subprocess.run([str(env_dir / "bin" / "facedyn"), "--version"], env=env, capture_output=True, text=True)
    assert facedyn.__version__ in res.stdout


def test_changelog_names_this_version_as_the_latest_release() -> None:
    import re

    releases = re.findall(r"^## (\d+\.\d+\.\d+) ", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert releases and releases[0] == facedyn.__version__
