from mmif.io import read_image
from mmif.layout import list_pairs
from preparation.prepare import prepare_dataset


def test_real_medical_all_pairs(shared_data, tmp_path):
    root = shared_data("medical")
    m = prepare_dataset("medical", tmp_path / "out", root=root, progress=False)
    assert sum(m.splits.values()) == 42 + 73 + 21
    assert m.image_sizes == {"256x256": 136} and m.colour_visible and not m.has_task_labels
    assert m.extra["layout"]["modalities"]["mri_pet"] == {"ir": "mri", "vis": "pet"}
    stems = [p.stem for s in m.splits for p in list_pairs(tmp_path / "out", s)]
    assert {s.split("_")[1] for s in stems} == {"pet", "spect", "ct"}


def test_real_medical_one_pair_folder(shared_data, tmp_path):
    root = shared_data("medical", "mri_pet")
    m = prepare_dataset(
        "medical", tmp_path / "out", root=root, test_fraction=1.0, val_fraction=0.0, progress=False
    )
    assert m.splits == {"test": 42} and m.colour_visible
    pair = list_pairs(tmp_path / "out", "test")[0]
    assert read_image(pair.ir).ndim == 2  # MRI: first source, grey
    assert read_image(pair.vis).shape == (256, 256, 3)  # PET kept in colour
    assert (root / "mri" / f"{pair.stem}.png").exists()  # stems unprefixed for one folder
    ct = prepare_dataset(
        "medical", tmp_path / "ct", root=shared_data("medical", "mri_ct"), progress=False
    )
    assert not ct.colour_visible
