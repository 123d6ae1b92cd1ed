import numpy as np

from mmif.io import read_image
from mmif.layout import list_pairs
from preparation.prepare import prepare_dataset


def test_real_tno_pairs_of_mixed_sizes(shared_data, tmp_path):
    root = shared_data("tno37")
    m = prepare_dataset(
        "tno", tmp_path / "out", root=root, test_fraction=1.0, val_fraction=0.0, progress=False
    )
    assert m.splits == {"test": 37}
    assert len(m.image_sizes) > 10 and sum(m.image_sizes.values()) == 37
    assert not m.has_task_labels and m.salient_source is None and not m.colour_visible
    pair = {p.stem: p for p in list_pairs(tmp_path / "out", "test")}["TNO_011"]
    assert read_image(pair.ir).shape == read_image(root / "ir" / "TNO_011.png").shape == (678, 916)
    assert np.array_equal(read_image(pair.vis), read_image(root / "vis" / "TNO_011.png"))


def test_roadscene_names_and_jpeg(tmp_path, mk):
    root = tmp_path / "RoadScene"
    mk.write_pairs(
        root / "cropinfrared",
        root / "crop_HR_visible",
        ["FLIR_00006", "FLIR_00018"],
        ir_ext=".jpg",
        vis_ext=".jpg",
    )
    mk.write_pairs(root / "crop_LR_visible", root / "unused", ["FLIR_00006"], h=12, w=16)
    m = prepare_dataset(
        "roadscene",
        tmp_path / "out",
        root=root,
        test_fraction=0.5,
        val_fraction=0.0,
        progress=False,
    )
    assert m.splits == {"train": 1, "test": 1}
    assert m.extra["layout"]["folders"]["none"] == {"ir": "cropinfrared", "vis": "crop_HR_visible"}
    assert m.image_sizes == {"32x24": 2}


def test_uppercase_folders_split_subfolders_and_explicit_names(tmp_path, mk):
    root = tmp_path / "tno"
    mk.write_pairs(root / "IR", root / "VIS", ["a", "b"])
    assert (
        prepare_dataset("tno", tmp_path / "o1", root=root, progress=False).extra["layout"][
            "folders"
        ]["none"]["ir"]
        == "IR"
    )
    split_root = tmp_path / "split"
    mk.write_pairs(split_root / "train" / "ir", split_root / "train" / "vis", ["a", "b", "c"])
    mk.write_pairs(split_root / "test" / "ir", split_root / "test" / "vis", ["d"])
    m = prepare_dataset(
        "folders", tmp_path / "o2", root=split_root, val_fraction=0.0, progress=False
    )
    assert m.splits == {"train": 3, "test": 1}
    named = tmp_path / "named"
    mk.write_pairs(named / "thermal_8bit", named / "colour", ["x"])
    m = prepare_dataset(
        "folders",
        tmp_path / "o3",
        root=named,
        ir_dir="thermal_8bit",
        vis_dir="colour",
        test_fraction=1.0,
        val_fraction=0.0,
        progress=False,
    )
    assert m.splits == {"test": 1}
