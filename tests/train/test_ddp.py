"""The loop under torchrun: DDP over gloo on CPU with BatchNorm buffers; rank 0 alone validates and writes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

SCRIPT = '''
import sys, torch
sys.path.insert(0, {tests!r})
from test_loop import LineConfig, LineFit, Lines
from facedyn.train.loop import Runtime, fit
torch.manual_seed(0)
# fp32 and NCHW given: with `auto` each rank would time the settings on its own (and could choose apart)
m = LineFit(LineConfig(epochs={epochs}, bn=True, precision="fp32"))
fit(m, Lines(), Lines(16, seed=1), {out!r}, Runtime(device="cpu", resume={resume}, channels_last="off"))
'''


def _free_port() -> int:
    """A port no process listens on now (a fixed one fails where another test session runs torchrun too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(tmp_path: Path, out: Path, nproc: int, epochs: int, resume: bool = False) -> None:
    script = tmp_path / f"ddp_fit_{nproc}_{epochs}.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), epochs=epochs, resume=resume))
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                        "--master_port", str(_free_port()), str(script)], capture_output=True, text=True, timeout=180,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-2000:]


def test_torchrun_two_processes_with_batchnorm(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _torchrun(tmp_path, out, nproc=2, epochs=2)
    m = pd.read_csv(out / "metrics.csv")
    assert m["epoch"].tolist() == [0, 1, 2]
    assert m["val_err"].iloc[-1] < m["val_err"].iloc[0]
    assert (m["val_n"] == 16).all()  # rank 0 validated on the whole set
    last = load_file(str(out / "checkpoints" / "last.safetensors"))
    assert "net.bn.running_mean" in last and float(last["net.bn.num_batches_tracked"]) > 0


def test_resume_across_world_sizes(tmp_path: Path) -> None:
    """Two processes train 2 epochs; one process resumes the same run to 4 (and the reverse direction works)."""
    out = tmp_path / "run"
    _torchrun(tmp_path, out, nproc=2, epochs=2)
    two = load_file(str(out / "checkpoints" / "last.safetensors"))
    _torchrun(tmp_path, out, nproc=1, epochs=4, resume=True)
    m = pd.read_csv(out / "metrics.csv")
    assert m["epoch"].tolist() == [0, 1, 2, 3, 4]  # epochs 1-2 kept from the 2-process run, 3-4 appended
    assert m["val_err"].iloc[-1] < m["val_err"].iloc[2]
    last = load_file(str(out / "checkpoints" / "last.safetensors"))
    assert not torch.equal(two["net.lin.weight"], last["net.lin.weight"])
    _torchrun(tmp_path, out, nproc=2, epochs=5, resume=True)  # 1 -> 2 processes
    assert pd.read_csv(out / "metrics.csv")["epoch"].tolist() == [0, 1, 2, 3, 4, 5]
