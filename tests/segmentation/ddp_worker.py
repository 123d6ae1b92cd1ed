"""Run by test_segment_ddp under torchrun: train_and_evaluate in each process, save its metrics."""

import json
import os
import sys
from pathlib import Path

from segmentation.config import SegmentConfig
from segmentation.train import train_and_evaluate

if __name__ == "__main__":
    data_root, fused_root, out = (Path(a) for a in sys.argv[1:4])
    cfg = SegmentConfig(epochs=2, batch_size=2, device="cpu")
    metrics = train_and_evaluate(fused_root, data_root, out / "seed_0", cfg, seed=0)
    (out / f"rank_{os.environ['RANK']}.json").write_text(json.dumps(metrics))
