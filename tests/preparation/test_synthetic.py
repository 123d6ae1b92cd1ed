import numpy as np
from scipy.ndimage import binary_dilation

from mmif.io import read_image
from mmif.layout import Manifest, list_pairs
from preparation.synthetic import DET_CLASSES, SEG_CLASSES, SEG_ID, SyntheticConfig, generate


def _scenes(**kw):
    return list(generate(SyntheticConfig(**{"n_train": 6, "n_val": 0, "n_test": 0, **kw})))


def test_deterministic_and_independent_of_count():
    a = _scenes()
    b = _scenes(n_train=3)
    for x, y in zip(a[:3], b, strict=True):
        assert x.stem == y.stem
        assert np.array_equal(x.ir, y.ir) and np.array_equal(x.vis, y.vis) and x.boxes == y.boxes
    c = _scenes(seed=1)
    assert not np.array_equal(a[0].vis, c[0].vis)


def test_day_night_split_and_names():
    scenes = _scenes()
    assert sum(s.night for s in scenes) == 3
    assert all(s.stem.endswith("N") == s.night for s in scenes)


def test_labels_are_consistent():
    for s in _scenes():
        assert s.mask.shape == s.ir.shape == s.vis.shape[:2]
        assert set(np.unique(s.mask)) <= set(range(len(SEG_CLASSES)))
        for cls, cx, _cy, w, h in s.boxes:
            assert 0 <= cls < len(DET_CLASSES)
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 <= 1 + 1e-6


def _contrast(image: np.ndarray, region: np.ndarray, background: np.ndarray) -> float:
    # against the background right around the region
    ring = binary_dilation(region, iterations=3) & ~region & background
    return abs(float(image[region].mean()) - float(image[ring].mean()))


def test_modalities_see_complementary_things():
    """Lane markings show in visible but not in infrared; people are hot in infrared and nearly
    invisible in visible at night."""
    scenes = list(generate(SyntheticConfig(n_train=40, n_val=0, n_test=0)))
    lane_ir, lane_vis, person_ir, person_vis_night, person_vis_day = [], [], [], [], []
    for s in scenes:
        grey = s.vis.astype(np.float64).mean(axis=2)
        road = s.mask == 0
        lane = s.mask == SEG_ID["lane_marking"]
        if lane.sum() > 20:
            lane_ir.append(_contrast(s.ir.astype(float), lane, road))
            lane_vis.append(_contrast(grey, lane, road))
        person = s.mask == SEG_ID["person"]
        if person.sum() > 30:
            person_ir.append(_contrast(s.ir.astype(float), person, road))
            (person_vis_night if s.night else person_vis_day).append(_contrast(grey, person, road))
    assert np.mean(lane_vis) > 4 * np.mean(lane_ir)
    assert np.mean(person_ir) > 3 * np.mean(person_vis_night)
    assert np.mean(person_vis_day) > 2 * np.mean(person_vis_night)


def test_write_synthetic_layout(tiny_synthetic):
    manifest = Manifest.load(tiny_synthetic)
    assert manifest.det_classes == DET_CLASSES and manifest.seg_classes == SEG_CLASSES
    assert manifest.splits == {"train": 6, "val": 2, "test": 4}
    assert manifest.modality_visibility["bicycle"]["ir"] is False
    pairs = list_pairs(tiny_synthetic, "train")
    assert len(pairs) == 6
    p = pairs[0]
    assert p.labels is not None and p.mask is not None and p.salient is not None
    assert read_image(p.ir).shape == (48, 64)
    assert read_image(p.vis).shape == (48, 64, 3)
    assert not list(tiny_synthetic.parent.glob(".*tmp*"))
