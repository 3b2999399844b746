"""The loop under torchrun: DDP over gloo on CPU, rank 0 alone writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = '''
import sys, torch
sys.path.insert(0, {tests!r})
from test_loop import Lines, Toy
from facedyn.train.loop import LoopConfig, fit
torch.manual_seed(0)
m = Toy()
fit(m, Lines(), Lines(16, seed=1), LoopConfig(out={out!r}, epochs=2, batch_size=8, lr=0.05, device="cpu"),
    {{"method": "toy"}})
'''


def test_torchrun_two_processes(tmp_path: Path) -> None:
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
    assert (out / "checkpoints" / "best.safetensors").exists()
