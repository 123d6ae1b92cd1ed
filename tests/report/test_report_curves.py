"""Training-curve figure: epochs without a value (val mIoU under `segment.*.val_every` > 1)."""

import numpy as np

from report import plots
from report.loading import SeedRun


def _run(tmp_path, seed, text):
    folder = tmp_path / f"seed_{seed}"
    folder.mkdir()
    (folder / "curves.csv").write_text(text)
    return SeedRun("segment", "vis", seed, folder, {})


def test_unscored_epochs_are_left_out_of_the_mean_curve(tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, folder, name, caption, **kwargs):
        drawn["fig"] = fig

    monkeypatch.setattr(plots, "save_figure", keep)
    header = "epoch,train_loss,val_mIoU\n"
    runs = {
        "vis": {
            0: _run(tmp_path, 0, header + "1,1.0,nan\n2,0.8,0.30\n3,0.6,0.40\n"),
            1: _run(tmp_path, 1, header + "1,1.2,nan\n2,0.9,0.50\n3,0.7,0.60\n"),
        }
    }
    plots.plot_task_curves("segment", runs, ["vis"], ["vis"], tmp_path / "figs")
    axes = {ax.get_title(): ax for ax in drawn["fig"].axes}
    (val,) = axes["val_mIoU"].get_lines()
    assert val.get_xdata().tolist() == [2, 3]  # epoch 1 had no val score in either seed
    assert np.allclose(val.get_ydata(), [0.40, 0.50])
    (loss,) = axes["train_loss"].get_lines()
    assert loss.get_xdata().tolist() == [1, 2, 3]
    assert np.allclose(loss.get_ydata(), [1.1, 0.85, 0.65])
