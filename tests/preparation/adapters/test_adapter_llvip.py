import numpy as np
import pytest

from mmif.io import read_image
from mmif.layout import list_pairs
from preparation.prepare import prepare_dataset
from preparation.validate import DatasetError


def test_llvip_layout(llvip_root, tmp_path):
    out = tmp_path / "out"
    m = prepare_dataset("llvip", out, root=llvip_root, val_fraction=0.34, progress=False)
    assert m.splits == {"train": 2, "val": 1, "test": 1}
    assert (
        m.det_classes == ["person"]
        and m.salient_source == "warm part of the boxes of classes: person"
    )
    assert m.extra["warnings"] == {}  # JPEG infrared stored as RGB is grey: no colour warning
    pair = list_pairs(out, "test")[0]
    assert pair.stem == "190001"
    assert read_image(pair.ir).shape == (32, 40)
    assert read_image(pair.vis).shape == (32, 40, 3)
    rows = [float(v) for v in pair.labels.read_text().split()]
    assert np.allclose(rows, [0, 14 / 40 / 2 + 4 / 40 / 2, 0.5 * (4 + 30) / 32, 10 / 40, 26 / 32])


def test_llvip_split_folders_must_match(llvip_root, tmp_path, mk):
    import shutil

    shutil.rmtree(llvip_root / "visible" / "test")
    with pytest.raises(
        DatasetError, match=r"infrared/ has splits \['test', 'train'\] but visible/ has \['train'\]"
    ):
        prepare_dataset("llvip", tmp_path / "out", root=llvip_root, progress=False)
    assert mk.leftovers(tmp_path / "out") == []
