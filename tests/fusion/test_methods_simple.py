"""Pixel-wise baselines on inputs whose fused result is known exactly."""

from __future__ import annotations

import torch

from fusion.registry import create_method


def _complementary_steps(h: int = 12, w: int = 17) -> tuple[torch.Tensor, torch.Tensor]:
    """Infrared bright on the left, visible bright on the right, both 0 elsewhere."""
    ir = torch.zeros(1, 1, h, w)
    vis = torch.zeros(1, 1, h, w)
    ir[..., : w // 2] = 0.8
    vis[..., w // 2 :] = 0.6
    return ir, vis


def test_max_of_complementary_steps_is_their_union():
    ir, vis = _complementary_steps()
    fused = create_method("max").fuse(ir, vis)
    expected = ir + vis  # disjoint supports: the union is the sum
    torch.testing.assert_close(fused, expected)


def test_weighted_with_weight_one_or_zero_returns_one_source():
    ir, vis = torch.rand(2, 1, 9, 11), torch.rand(2, 1, 9, 11)
    torch.testing.assert_close(create_method("weighted", {"weight_ir": 1.0}).fuse(ir, vis), ir)
    torch.testing.assert_close(create_method("weighted", {"weight_ir": 0.0}).fuse(ir, vis), vis)


def test_simple_methods_batch_equals_per_image():
    ir, vis = torch.rand(3, 1, 7, 5), torch.rand(3, 1, 7, 5)
    for name in ("mean", "max", "weighted"):
        method = create_method(name)
        batch = method.fuse(ir, vis)
        single = torch.cat([method.fuse(ir[i : i + 1], vis[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(batch, single)
