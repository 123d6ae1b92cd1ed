"""Class-share calibration (segmentation.calibration): the offsets bring every class's predicted
share of the val pixels to its labelled share, and every later prediction uses them."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmif.layout import IGNORE_INDEX
from segmentation.calibration import (
    Calibrated,
    collect_scores,
    fit_class_offsets,
    predicted_shares,
)
from segmentation.data import Batch
from segmentation.model import Ensemble


def _scores(n: int = 20000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy scores of 4 classes (class 3 never labelled) whose network calls too much
    'class 1' and too little 'class 2'."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(torch.tensor([0.7, 0.1, 0.2]), n, replacement=True, generator=g)
    scores = torch.randn(n, 4, generator=g) * 1.5
    scores[torch.arange(n), labels] += 2.0
    scores[:, 1] += 1.0
    scores[:, 2] -= 1.0
    scores[:, 3] -= 3.0
    return scores, labels


def test_offsets_bring_each_predicted_share_to_the_labelled_share():
    scores, labels = _scores()
    target = torch.bincount(labels, minlength=4).double() / len(labels)
    before = predicted_shares(scores, torch.zeros(4), 4)
    assert before[1] / target[1] > 1.3 and before[2] / target[2] < 0.7  # miscalibrated

    offsets, ratio = fit_class_offsets(scores, labels, 4)
    after = predicted_shares(scores, offsets, 4)
    for c in (1, 2):
        assert after[c] / target[c] == pytest.approx(1.0, abs=0.01)
        assert float(ratio[c]) == pytest.approx(float(after[c] / target[c]))
    # the anchor takes the rest (less what the never-labelled class 3 still gets)
    assert after[0] / target[0] == pytest.approx(1.0, abs=0.02)
    assert offsets[1] < 0 < offsets[2]
    # the largest class is the anchor; a class no pixel is labelled with is left alone
    assert offsets[0] == 0 and offsets[3] == 0 and math.isnan(ratio[3])


def test_a_class_predicted_nowhere_is_brought_up_too():
    scores, labels = _scores()
    scores[:, 2] -= 50.0  # never the arg-max before calibration
    assert predicted_shares(scores, torch.zeros(4), 4)[2] == 0
    offsets, ratio = fit_class_offsets(scores, labels, 4, steps=1000)
    assert float(ratio[2]) == pytest.approx(1.0, abs=0.01)


def test_the_fit_is_deterministic_and_leaves_a_calibrated_network_alone():
    scores, labels = _scores()
    a, _ = fit_class_offsets(scores, labels, 4)
    b, _ = fit_class_offsets(scores.clone(), labels.clone(), 4)
    assert torch.equal(a, b)
    perfect = torch.nn.functional.one_hot(labels, 4).float() * 10
    offsets, _ = fit_class_offsets(perfect, labels, 4)
    assert torch.equal(offsets, torch.zeros(4, dtype=torch.float64))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="P x 3"):
        fit_class_offsets(torch.zeros(5, 4), torch.zeros(5, dtype=torch.long), 3)


class _Fixed(nn.Module):
    """A 'network' that returns the same logits (1 x C x H x W) for any input batch."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(images.shape[0], -1, -1, -1)


def test_calibrated_adds_the_offsets_to_logits_and_to_the_log_of_ensemble_probabilities():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 3, 4, 5, generator=g), torch.randn(1, 3, 4, 5, generator=g)
    offsets = torch.tensor([0.0, 0.7, -0.4])
    images = torch.zeros(2, 3, 4, 5)

    one = Calibrated(_Fixed(a), offsets)(images)
    assert torch.allclose(one, (a + offsets.view(1, 3, 1, 1)).expand(2, -1, -1, -1))

    pair = Calibrated(Ensemble([_Fixed(a), _Fixed(b)]), offsets)(images)
    mean_prob = (a.softmax(1) + b.softmax(1)) / 2
    expected = mean_prob.log() + offsets.view(1, 3, 1, 1)
    assert torch.allclose(pair, expected.expand(2, -1, -1, -1), atol=1e-6)
    # zero offsets keep every decision of the uncalibrated model
    plain = Calibrated(Ensemble([_Fixed(a), _Fixed(b)]), torch.zeros(3))(images)
    assert torch.equal(plain.argmax(1), mean_prob.expand(2, -1, -1, -1).argmax(1))


def test_collect_scores_keeps_labelled_unpadded_pixels_and_subsamples_reproducibly():
    logits = torch.arange(2 * 6 * 8, dtype=torch.float32).view(1, 2, 6, 8)
    masks = torch.zeros(1, 6, 8, dtype=torch.long)
    masks[0, 0, :] = IGNORE_INDEX  # 8 ignored pixels
    masks[0, 1, :] = 1
    # the image is 5 x 7 before padding: row 5 and column 7 are padding
    batch = Batch(images=torch.zeros(1, 3, 6, 8), masks=masks, stems=["a"], sizes=[(5, 7)])
    scores, labels = collect_scores(_Fixed(logits), [batch], torch.device("cpu"))
    assert scores.shape == (4 * 7, 2) and labels.tolist() == [1] * 7 + [0] * 21
    assert scores[0].tolist() == [8.0, 56.0]  # pixel (1, 0) of both channels

    few, few_labels = collect_scores(_Fixed(logits), [batch], torch.device("cpu"), max_pixels=10)
    again, _ = collect_scores(_Fixed(logits), [batch], torch.device("cpu"), max_pixels=10)
    assert few.shape == (10, 2) and len(few_labels) == 10 and torch.equal(few, again)
