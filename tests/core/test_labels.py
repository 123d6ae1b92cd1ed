"""The one box-to-pixels rule (`mmif.labels.box_pixels`) behind every box mask."""

from __future__ import annotations

import numpy as np

from mmif.labels import box_pixels, salient_from_boxes


def test_box_pixels_keeps_the_pixels_whose_centres_lie_in_the_box():
    # 10 px wide: the box spans x in [3.75, 6.25] px; centres 4.5 and 5.5 lie inside, 3.5 and
    # 6.5 do not
    assert box_pixels((0, 0.5, 0.5, 0.25, 0.25), (10, 20)) == (4, 8, 6, 12)
    # clipped to the image; a box wholly outside gives an empty range
    assert box_pixels((0, 0.0, 1.0, 0.5, 0.5), (10, 10)) == (0, 8, 2, 10)
    x0, _, x1, _ = box_pixels((0, 1.5, 0.5, 0.2, 0.2), (10, 10))
    assert x1 <= x0


def test_whole_box_mask_is_the_pixel_rectangle():
    rows = [(0, 0.5, 0.5, 0.25, 0.25), (1, 0.1, 0.1, 0.2, 0.2)]
    mask = salient_from_boxes(rows, [0], (10, 20), mode="whole")
    expected = np.zeros((20, 10), np.uint8)
    expected[8:12, 4:6] = 255
    assert np.array_equal(mask, expected)


def test_label_error_is_a_dataset_error_and_survives_pickling():
    import pickle

    from mmif.errors import DatasetError, LabelError

    err = pickle.loads(pickle.dumps(LabelError("a.txt", 3, "bad row", "fix it")))
    assert isinstance(err, DatasetError) and isinstance(err, ValueError)
    assert (str(err), err.line, err.reason) == ("a.txt:3: bad row; fix it", 3, "bad row")
