import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tiny_dataset, tmp_path):
    data_root, fused_root = tiny_dataset
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += [str(worker), str(data_root), str(fused_root), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "seed_0").iterdir()) == [
        "confusion.npz",
        "curves.csv",
        "metrics.json",
    ]
    rank0 = json.loads((tmp_path / "rank_0.json").read_text())
    rank1 = json.loads((tmp_path / "rank_1.json").read_text())
    assert rank0 == rank1 == json.loads((tmp_path / "seed_0" / "metrics.json").read_text())
    assert rank0["n_test_images"] == 3
