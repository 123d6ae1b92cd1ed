import argparse

import pytest

from mmif.config import from_dict, section
from mmif.errors import ConfigError
from mmif.layout import Manifest, list_pairs
from preparation.prepare import DatasetConfig, prepare_dataset
from preparation.validate import DatasetError


def test_dataset_config_from_params():
    cfg = section(
        {
            "dataset": {
                "name": "msrs",
                "root": "/d",
                "det_classes": ["a", "b"],
                "seg_classes": "c.txt",
            }
        },
        "dataset",
        DatasetConfig,
    )
    assert cfg.det_classes == ["a", "b"] and cfg.seg_classes == "c.txt" and cfg.val_fraction == 0.1
    assert section({}, "dataset", DatasetConfig).name == "synthetic"
    with pytest.raises(ConfigError, match=r"dataset.val_fractoin: unknown key"):
        from_dict(DatasetConfig, {"val_fractoin": 0.2}, "dataset")
    with pytest.raises(ConfigError, match=r"dataset.resplit: expected true or false"):
        from_dict(DatasetConfig, {"resplit": "yes"}, "dataset")
    with pytest.raises(
        ConfigError, match=r"unknown dataset 'msrs2'; choose one of synthetic, msrs"
    ):
        from_dict(DatasetConfig, {"name": "msrs2"}, "dataset")
    with pytest.raises(ConfigError, match=r"must not exceed 1"):
        from_dict(DatasetConfig, {"val_fraction": 0.5, "test_fraction": 0.6}, "dataset")
    with pytest.raises(ConfigError, match=r"unknown_classes: 'skip' is not one of"):
        from_dict(DatasetConfig, {"unknown_classes": "skip"}, "dataset")


def test_config_object_and_out_dir_as_the_pipeline_calls_it(folders_root, tmp_path):
    cfg = DatasetConfig(
        name="folders", root=str(folders_root), test_fraction=0.5, val_fraction=0.0, split_seed=3
    )
    m = prepare_dataset(cfg, tmp_path / "out", progress=False)
    assert m.splits == {"train": 3, "test": 3}
    assert m.extra["options"]["split_seed"] == 3 and m.extra["root"] == str(folders_root.resolve())
    assert m.provenance.startswith("preparation.adapters.folders on ")
    assert Manifest.load(tmp_path / "out") == m


def test_val_is_carved_from_train_and_test_kept(fmb_root, tmp_path):
    m = prepare_dataset(
        "fmb", tmp_path / "out", root=fmb_root, val_fraction=0.5, test_fraction=0.5, progress=False
    )
    assert m.splits == {
        "train": 2,
        "val": 2,
        "test": 2,
    }  # test_fraction applies only to unsplit data
    assert {p.stem for p in list_pairs(tmp_path / "out", "test")} == {"b1", "b2"}
    assert "val = 0.5 of train" in m.extra["split_rule"]
    m = prepare_dataset("fmb", tmp_path / "out", root=fmb_root, val_fraction=0.0, progress=False)
    assert m.splits == {"train": 4, "test": 2} and m.extra["split_rule"] == "upstream test/train"


def test_max_pairs_per_split(fmb_root, tmp_path):
    m = prepare_dataset(
        "fmb",
        tmp_path / "out",
        root=fmb_root,
        max_pairs_per_split=1,
        val_fraction=0.0,
        progress=False,
    )
    assert m.splits == {"train": 1, "test": 1}


def test_root_must_be_given(tmp_path):
    with pytest.raises(
        DatasetError, match=r"dataset.root: not set; give the tno folder with --root DIR"
    ):
        prepare_dataset("tno", tmp_path / "out", progress=False)


def test_pipeline_stage_runs_an_adapter(folders_root, tmp_path):
    from pipelines import prepare as stage

    args = argparse.Namespace(
        dataset="folders",
        root=folders_root,
        det_labels=None,
        out=tmp_path / "out",
        check=False,
        overwrite=False,
        params=str(tmp_path / "none.yaml"),
    )
    assert stage.run(args) == 0
    assert Manifest.load(tmp_path / "out").name == "folders"
    (folders_root / "vis" / "p00.png").unlink()
    args.check, args.out = True, tmp_path / "checked"
    assert stage.run(args) == 1
    assert not args.out.exists()


def test_synthetic_hook(tmp_path):
    from preparation.synthetic import SyntheticConfig

    syn = SyntheticConfig(width=64, height=48, n_train=1, n_val=0, n_test=1)
    m = prepare_dataset("synthetic", tmp_path / "out", synthetic=syn, progress=False)
    assert m.name == "synthetic" and m.splits == {"train": 1, "test": 1}
    assert prepare_dataset("synthetic", None, check=True) == []
