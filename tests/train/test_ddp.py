"""The loop under torchrun: DDP over gloo on CPU with BatchNorm buffers; rank 0 alone validates and writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from safetensors.torch import load_file

SCRIPT = '''
import sys, torch
sys.path.insert(0, {tests!r})
from test_loop import LineConfig, LineFit, Lines
from facedyn.train.loop import Runtime, fit
torch.manual_seed(0)
m = LineFit(LineConfig(epochs=2, bn=True))
fit(m, Lines(), Lines(16, seed=1), {out!r}, Runtime(device="cpu"))
'''


def test_torchrun_two_processes_with_batchnorm(tmp_path: Path) -> None:
    script = tmp_path / "ddp_fit.py"
    out = tmp_path / "run"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29531", str(script)], capture_output=True, text=True, timeout=180,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-2000:]
    m = pd.read_csv(out / "metrics.csv")
    assert m["epoch"].tolist() == [0, 1, 2]
    assert m["val_err"].iloc[-1] < m["val_err"].iloc[0]
    assert (m["val_n"] == 16).all()  # rank 0 validated on the whole set
    last = load_file(str(out / "checkpoints" / "last.safetensors"))
    assert "net.bn.running_mean" in last and float(last["net.bn.num_batches_tracked"]) > 0
