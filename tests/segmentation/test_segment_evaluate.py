import math

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

from mmif.iou import iou_from_confusion, mean_iou
from segmentation.evaluate import confusion_matrix


def test_confusion_matches_torchmetrics_per_image():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (3, 9, 11), generator=g)
    target[0, :2] = 255
    pred = torch.randint(0, 4, (3, 9, 11), generator=g)
    conf = confusion_matrix(pred, target, 4)
    assert conf.shape == (3, 4, 4) and conf.dtype == torch.int64
    for i in range(3):
        ref = multiclass_confusion_matrix(pred[i], target[i], 4, ignore_index=255)
        assert torch.equal(conf[i], ref)
    assert int(conf[0].sum()) == 9 * 11 - 2 * 11


def test_iou_by_hand_and_absent_class_is_nan():
    # rows truth, cols prediction; class 2 never in the truth but predicted once
    conf = np.array([[5, 1, 1], [2, 3, 0], [0, 0, 0]])
    iou = iou_from_confusion(conf)
    assert math.isclose(iou[0], 5 / (7 + 7 - 5))
    assert math.isclose(iou[1], 3 / (5 + 4 - 3))
    assert math.isnan(iou[2])
    assert math.isclose(mean_iou(iou), (iou[0] + iou[1]) / 2)
    assert math.isnan(mean_iou(np.array([math.nan])))


class _FixedPredictor(torch.nn.Module):
    """Predicts class 1 on the left half of the (padded) input and class 2 on the right half."""

    def forward(self, images):
        b, _, h, w = images.shape
        logits = torch.zeros(b, 3, h, w)
        logits[:, 1, :, : w // 2] = 1.0
        logits[:, 2, :, w // 2 :] = 1.0
        return logits


def test_evaluate_crops_padding_and_reports_absent_class_as_nan():
    from segmentation.data import collate
    from segmentation.evaluate import evaluate

    # truth: class 1 everywhere (class 0 absent, class 2 absent); one pixel ignored
    items = []
    for stem, (h, w) in (("a", (20, 40)), ("b", (33, 10))):
        mask = torch.ones(h, w, dtype=torch.long)
        mask[0, 0] = 255
        items.append((torch.rand(3, h, w), mask, stem))
    result = evaluate(_FixedPredictor(), [collate(items)], 3, torch.device("cpu"))
    assert result.stems == ["a", "b"]
    # the batch is padded to 64 x 64, so the model's left half is x < 32: image a is split at 32,
    # image b (width 10) is all left half; padded pixels never count
    assert result.confusion[0].sum() == 20 * 40 - 1 and result.confusion[1].sum() == 33 * 10 - 1
    assert result.confusion[0, 1, 1] == 20 * 32 - 1 and result.confusion[0, 1, 2] == 20 * 8
    assert result.confusion[1, 1, 1] == 33 * 10 - 1
    assert math.isnan(result.iou[0]) and math.isnan(result.iou[2])
    tp = 20 * 32 - 1 + 33 * 10 - 1
    assert math.isclose(result.iou[1], tp / (20 * 40 - 1 + 33 * 10 - 1), rel_tol=1e-6)
    assert math.isclose(result.miou, result.iou[1])
    assert math.isclose(result.pixel_accuracy, result.iou[1], rel_tol=1e-6)


def test_evaluate_scores_an_unpadded_batch_as_its_images_one_by_one():
    """Batches without padding are scored at once: the same counts as one image per batch."""
    from segmentation.data import collate
    from segmentation.evaluate import evaluate

    g = torch.Generator().manual_seed(3)
    items = []
    for stem in "abcde":
        mask = torch.randint(0, 3, (32, 64), generator=g)
        mask[0, :5] = 255
        items.append((torch.rand(3, 32, 64, generator=g), mask, stem))

    class Noisy(torch.nn.Module):  # a prediction that depends on the image
        def forward(self, images):
            return torch.cat([images, images[:, :1] * 0.5], dim=1)

    together = evaluate(Noisy(), [collate(items[:4]), collate(items[4:])], 3, torch.device("cpu"))
    alone = evaluate(Noisy(), [collate([it]) for it in items], 3, torch.device("cpu"))
    assert together.stems == alone.stems == list("abcde")
    assert together.confusion.shape == (5, 3, 3)
    assert np.array_equal(together.confusion, alone.confusion)
    assert np.array_equal(together.iou, alone.iou)
    assert together.miou == alone.miou and together.pixel_accuracy == alone.pixel_accuracy
    assert together.confusion[0].sum() == 32 * 64 - 5
