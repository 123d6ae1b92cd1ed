"""CoCoNet losses: adaptive weights, entropy, SSIM, fidelity and the coupled contrastive loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusion.coconet.losses import (
    adaptive_weights,
    contrastive_loss,
    entropy,
    fidelity_loss,
    mean_gradient,
)
from fusion.coconet.vgg import N_RELU_CONVS, VGG19Relu, seeded_vgg19_grey

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors (tests/conftest.py)


@pytest.fixture(scope="module")
def features() -> VGG19Relu:
    return VGG19Relu(seeded_vgg19_grey(N_RELU_CONVS, seed=0)).to(memory_format=torch.channels_last)


def test_adaptive_weights_hand_computed():
    # sample 0: infrared is a vertical step edge (columns 0 0 1 1), visible is flat grey;
    # sample 1: the same two images swapped
    step = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).repeat(4, 1).view(1, 1, 4, 4)
    flat = torch.full((1, 1, 4, 4), 0.5)
    w_ssim, w_mse = adaptive_weights(
        torch.cat([step, flat]), torch.cat([flat, step]), c1=0.5, c2=0.75
    )
    # Sobel on the 2 x 2 interior: |Gx| = (1 - 0) * (1 + 2 + 1) = 4 at every interior pixel, Gy = 0,
    # so g_ir = 4, g_vis = 0 and the logits are [4 / (0.5 * 4), 0] = [2, 0]
    p_grad = math.exp(2) / (math.exp(2) + 1)
    # entropy: half the pixels 0, half 255 -> 1 bit; flat -> 0 bits; logits [1 / 0.75, 0]
    p_ent = math.exp(4 / 3) / (math.exp(4 / 3) + 1)
    expected_ssim = torch.tensor([[p_grad, 1 - p_grad], [1 - p_grad, p_grad]])
    expected_mse = torch.tensor([[p_ent, 1 - p_ent], [1 - p_ent, p_ent]])
    torch.testing.assert_close(w_ssim, expected_ssim)
    torch.testing.assert_close(w_mse, expected_mse)


def test_adaptive_weights_flat_sources_are_equal_and_no_grad():
    ir = torch.zeros(3, 1, 8, 8, requires_grad=True)
    w_ssim, w_mse = adaptive_weights(ir, torch.full((3, 1, 8, 8), 0.3))
    assert torch.equal(w_ssim, torch.full((3, 2), 0.5)) and torch.equal(
        w_mse, torch.full((3, 2), 0.5)
    )
    assert not w_ssim.requires_grad


def test_mean_gradient_of_a_ramp():
    ramp = torch.arange(6.0).view(1, 1, 1, 6).repeat(1, 1, 5, 1)  # +1 per column
    # Sobel x on a unit ramp: (1 + 2 + 1) * 2 = 8 everywhere inside; Gy = 0
    assert mean_gradient(ramp).item() == pytest.approx(8.0)
    assert mean_gradient(torch.ones(2, 1, 5, 5)).tolist() == [0.0, 0.0]


def test_entropy_matches_numpy_per_sample():
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (20, 30)),
        rng.integers(0, 4, (20, 30)) * 60,
        np.full((20, 30), 77),
    ]
    x = torch.from_numpy(np.stack(images)[:, None].astype(np.float32) / 255.0)
    expected = []
    for img in images:
        p = np.bincount(img.ravel(), minlength=256) / img.size
        p = p[p > 0]
        expected.append(float(-(p * np.log2(p)).sum()))
    # the last sample is flat: its entropy is 0 whatever came before (one histogram per sample)
    torch.testing.assert_close(entropy(x), torch.tensor(expected), atol=1e-5, rtol=0)
    four_levels = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]).repeat(4).view(1, 1, 4, 4)
    assert entropy(four_levels).item() == pytest.approx(2.0)


def test_fidelity_loss_terms():
    torch.manual_seed(0)
    ir, vis = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    only_ir = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    total, l_ssim, l_mse = fidelity_loss(ir, ir, vis, only_ir, only_ir)
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    total, l_ssim, l_mse = fidelity_loss(
        torch.zeros(1, 1, 16, 16),
        torch.ones(1, 1, 16, 16),
        torch.zeros(1, 1, 16, 16),
        torch.tensor([[0.0, 1.0]]),
        torch.tensor([[1.0, 0.0]]),
        ssim_weight=20.0,
    )
    # MSE is measured on the network's [-1, 1] scale: (1 - (-1))^2 = 4; SSIM to the identical visible is 1
    assert l_mse.item() == pytest.approx(4.0)
    assert l_ssim.item() == pytest.approx(0.0, abs=1e-6)
    assert total.item() == pytest.approx(4.0)


def _scene(b: int = 3, size: int = 32):
    torch.manual_seed(1)
    ir, vis = torch.rand(b, 1, size, size), torch.rand(b, 1, size, size)
    mask = torch.zeros(b, 1, size, size)
    mask[..., 8:20, 10:24] = 1.0
    return ir, vis, mask


def test_contrastive_lower_for_positive_than_negative(features: VGG19Relu):
    ir, vis, mask = _scene()
    ideal = ir * mask + vis * (1 - mask)  # infrared targets on the visible background
    with torch.no_grad():
        at_positive = contrastive_loss(ideal, ir, vis, mask, features)
        at_visible = contrastive_loss(vis, ir, vis, mask, features)
        at_infrared = contrastive_loss(ir, ir, vis, mask, features)
    assert at_positive.item() == pytest.approx(0.0, abs=1e-6)  # both numerators vanish
    assert at_visible > at_positive and at_infrared > at_positive
    assert at_visible > 0.1 and at_infrared > 0.1


class _Counting:
    def __init__(self, features: VGG19Relu):
        self.features, self.calls, self.batch = features, 0, []

    def __call__(self, x: torch.Tensor):
        self.calls += 1
        self.batch.append(x.shape[0])
        return self.features(x)


@pytest.mark.parametrize(
    ("b", "n_negatives", "passes"), [(4, 3, 2 + 3), (4, 1, 2 + 1), (1, 3, 2 + 1), (2, 3, 2 + 2)]
)
def test_contrastive_any_batch_and_negatives(
    features: VGG19Relu, b: int, n_negatives: int, passes: int
):
    ir, vis, mask = _scene(b, 32)
    fused = torch.rand(b, 1, 32, 32, requires_grad=True)
    counting = _Counting(features)
    loss = contrastive_loss(fused, ir, vis, mask, counting, n_negatives=n_negatives)
    loss.backward()
    assert torch.isfinite(loss) and fused.grad is not None and fused.grad.abs().sum() > 0
    # anchors, positives, then one pass per negative, each with foreground and background stacked
    assert counting.calls == passes and set(counting.batch) == {2 * b}


def test_contrastive_keeps_scale_when_batch_is_small(features: VGG19Relu):
    ir, vis, mask = _scene(1, 32)
    fused = ir * 0.5 + vis * 0.5
    with torch.no_grad():
        one = contrastive_loss(fused, ir, vis, mask, features, n_negatives=1)
        three = contrastive_loss(fused, ir, vis, mask, features, n_negatives=3)
    # one pair only: the single negative's distance stands for all three (3x the denominator)
    assert three.item() == pytest.approx(one.item() / 3, rel=1e-5)


def test_contrastive_without_salient_pixels_has_only_background(features: VGG19Relu):
    ir, vis, _ = _scene(2, 32)
    empty = torch.zeros(2, 1, 32, 32)
    with torch.no_grad():
        loss = contrastive_loss(vis, ir, vis, empty, features)
        assert loss.item() == pytest.approx(0.0, abs=1e-6)  # background == visible: nothing to pull
        loss = contrastive_loss(ir, ir, vis, empty, features)
    assert torch.isfinite(loss) and loss > 0


def _straightforward_contrastive(fused, ir, vis, mask, features, n_negatives=3):
    """The loss as written (COCONET.md, and the published code's structure): every anchor,
    positive and negative image through the extractor on its own, one sample at a time."""
    weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    b = fused.shape[0]
    n_used = 1 + min(n_negatives - 1, b - 1)
    terms = {"fg": [], "bg": []}
    for i in range(b):
        for region, m in (("fg", mask[i : i + 1]), ("bg", 1 - mask[i : i + 1])):
            if m.sum() == 0:
                continue
            pos_src, neg_src = (ir, vis) if region == "fg" else (vis, ir)
            anchor = features((fused[i : i + 1] * 2 - 1) * m)
            positive = features((pos_src[i : i + 1] * 2 - 1) * m)
            negatives = [
                features((neg_src[(i - j) % b : (i - j) % b + 1] * 2 - 1) * m)
                for j in range(n_used)
            ]
            total = 0.0
            for k, w in enumerate(weights):
                num = (anchor[k] - positive[k].detach()).abs().mean()
                den = sum((anchor[k] - n[k].detach()).abs().mean() for n in negatives)
                total = total + w * num / (den * n_negatives / n_used + 1e-8)
            terms[region].append(total)
    return sum(sum(t) / len(t) for t in terms.values() if t)


def test_contrastive_fast_path_equals_the_straightforward_loss(features: VGG19Relu):
    torch.manual_seed(3)
    b, size = 4, 32
    ir, vis = torch.rand(b, 1, size, size), torch.rand(b, 1, size, size)
    mask = (torch.rand(b, 1, size, size) > 0.7).float()
    mask[1] = 0.0  # no target: background term only
    mask[2] = 1.0  # all target: foreground term only
    base = torch.rand(b, 1, size, size)
    grads, values = [], []
    for fn in (contrastive_loss, _straightforward_contrastive):
        fused = base.clone().requires_grad_(True)
        loss = fn(fused, ir, vis, mask, features, 3)
        loss.backward()
        values.append(loss.item())
        grads.append(fused.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)
    assert grads[0].abs().sum() > 0

    # bfloat16 VGG passes (contrastive_precision auto on hardware with native bfloat16):
    # the value stays within 1%, the gradient keeps its direction
    fused = base.clone().requires_grad_(True)
    loss = contrastive_loss(fused, ir, vis, mask, features, 3, dtype=torch.bfloat16)
    loss.backward()
    assert loss.item() == pytest.approx(values[0], rel=1e-2)
    cosine = torch.nn.functional.cosine_similarity(fused.grad.flatten(), grads[0].flatten(), dim=0)
    assert cosine > 0.9
