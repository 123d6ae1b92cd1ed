"""The CoCoNet fusion network: a U-Net whose decoder ensembles its own features with those of a
frozen VGG19 for each source, through channel-attention modules shared by the three streams.

Layout (widths; every "block" is Conv3x3 -> LeakyReLU(0.2) -> BatchNorm, as published):

    encoder on cat(ir, vis):  c1 = 2x block (32, 1/1), c2 = 2x block (64, 1/2),
                              c3 = 2x block (128, 1/4), x4 = block (256, 1/8)
    VGG19 on ir and on vis:   v1 (64, 1/2), v2 (128, 1/4), v3 (256, 1/8)    [frozen, vgg.py]
    1/8: d4 = block(conv(cat(att(x4), att(v3_vis), att(v3_ir))))          768 -> 256 -> 256
    1/4: d3 = 2x block(cat(conv(up d4), conv(cat(att(c3), att(v2_vis), att(v2_ir)))))
    1/2: d2 = 2x block(cat(conv(up d3), conv(cat(att(c2), att(v1_vis), att(v1_ir)))))
    1/1: d1 = block(cat(conv(up d2), c1)); out = tanh(conv1x1(lrelu(conv3x3 d1)))

`att` is one `ChannelAttention` per width, shared by the U-Net and both VGG streams.
The reference implementation also defines a 32-channel attention module and a 96 -> 32
convolution that its forward never uses (55,425 parameters, included in the published "6.85 M");
they are left out here, so the trainable count is exactly 6,789,764 (see `expected_parameter_counts`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fusion.coconet.vgg import N_PYRAMID_CONVS, VGG19Pyramid, load_vgg19_grey
from mmif.runtime import flush_denormal_is_global

#: the network downsamples three times and the VGG four times: sizes must divide by 16
SIZE_MULTIPLE = 16
_FLOAT32_TINY = torch.finfo(torch.float32).tiny


_ftz_depth = 0


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat subnormal floats as zero on the CPU (FTZ/DAZ) inside the block.

    On real images CoCoNet's activations and gradients contain subnormal values (below 1.2e-38,
    e.g. from the near one-hot channel attention), which x86 CPUs process many times slower: a
    training step on real patches took 7x longer than on noise. Flushing them, as most
    deep-learning runtimes do on CPU, changes nothing measurable. PyTorch's default (off) is
    restored when the outermost block exits.
    """
    global _ftz_depth
    if _ftz_depth == 0 and not torch.set_flush_denormal(True):
        yield  # not supported on this CPU
        return
    _ftz_depth += 1
    try:
        yield
    finally:
        _ftz_depth -= 1
        if _ftz_depth == 0 and not flush_denormal_is_global():
            torch.set_flush_denormal(False)


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Conv3x3 -> LeakyReLU(0.2) -> BatchNorm (normalisation after the activation, as published)."""
    return nn.Sequential(
        conv3x3(c_in, c_out), nn.LeakyReLU(0.2, inplace=True), nn.BatchNorm2d(c_out)
    )


class ChannelAttention(nn.Module):
    """Channel attention (DANet's CAM with 3x3 projections), as used by CoCoNet.

    q, k, v = three Conv3x3(C -> C) of x (computed as one C -> 3C convolution);
    energy = q_flat @ k_flat^T (B x C x C); A = softmax(rowmax(energy) - energy);
    out = gamma * (A @ v_flat) + v, gamma a learnable scalar starting at 0.
    The C x C products run in float32 even under autocast: the energy sums over every pixel and
    overflows half precision on large images.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.qkv = nn.Conv2d(channels, 3 * channels, 3, padding=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(x)
        # pixels x channels; a view (no copy) when qkv is channels_last, as in CoCoNet.forward
        flat = qkv.permute(0, 2, 3, 1).reshape(b, h * w, 3 * c)
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, k, v = flat.float().split(c, dim=2)
            energy = q.transpose(1, 2) @ k
            # softmax is shift-invariant per row, so softmax(rowmax - energy) == softmax(-energy)
            attention = torch.softmax(-energy, dim=-1)
            # the energies spread widely, so many weights underflow to subnormal floats, which
            # make the next product ~10x slower on x86; they are < 1e-38 and count for nothing
            attention = attention.masked_fill(attention < _FLOAT32_TINY, 0.0)
            # v + gamma * (A @ v) in one product: the scale goes on the small C x C matrix
            out = torch.baddbmm(v, v, attention.transpose(1, 2) * self.gamma.float())
        return out.to(qkv.dtype).view(b, h, w, c).permute(0, 3, 1, 2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class CoCoNet(nn.Module):
    """CoCoNet fusion network (Liu et al., IJCV 2024), one grey channel in and out.

    Args:
        vgg_weights: torchvision VGG19 weights file; None uses torchvision's local cache, or a
            seeded untrained VGG19 with a warning when it is absent (never downloads).
        vgg_seed: seed of that untrained VGG19.
        load_vgg: False skips reading VGG weights (use when a checkpoint is loaded right after).

    `forward(ir, vis)` takes B x 1 x H x W tensors in [0, 1] of any size and returns the fused
    B x 1 x H x W image in [0, 1]. The [-1, 1] scaling, the reflect padding to a multiple of 16 and
    the crop back happen inside. `forward_signed` is the [-1, 1] core for sizes divisible by 16.
    `vgg_pretrained` says whether the VGG19 holds ImageNet weights (it is saved with state_dict).
    """

    def __init__(
        self, vgg_weights: str | Path | None = None, vgg_seed: int = 0, load_vgg: bool = True
    ):
        super().__init__()
        self.enc1 = nn.Sequential(conv_block(2, 32), conv_block(32, 32))
        self.enc2 = nn.Sequential(conv_block(32, 64), conv_block(64, 64))
        self.enc3 = nn.Sequential(conv_block(64, 128), conv_block(128, 128))
        self.enc4 = conv_block(128, 256)

        state, pretrained = (
            load_vgg19_grey(N_PYRAMID_CONVS, vgg_weights, vgg_seed) if load_vgg else (None, False)
        )
        self.vgg = VGG19Pyramid(state)
        self.register_buffer("vgg_pretrained_flag", torch.tensor(bool(pretrained)))

        self.att64 = ChannelAttention(64)
        self.att128 = ChannelAttention(128)
        self.att256 = ChannelAttention(256)

        self.ensemble4 = conv3x3(3 * 256, 256)
        self.dec4 = conv_block(256, 256)
        self.up3 = conv3x3(256, 128)
        self.ensemble3 = conv3x3(3 * 128, 128)
        self.dec3 = nn.Sequential(conv_block(256, 128), conv_block(128, 128))
        self.up2 = conv3x3(128, 64)
        self.ensemble2 = conv3x3(3 * 64, 64)
        self.dec2 = nn.Sequential(conv_block(128, 64), conv_block(64, 64))
        self.up1 = conv3x3(64, 32)
        self.dec1 = conv_block(64, 32)
        self.head = nn.Sequential(
            conv3x3(32, 32), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(32, 1, 1), nn.Tanh()
        )
        # convolutions are fastest on CPU (oneDNN) and GPU (cuDNN) with channels-last tensors
        self.to(memory_format=torch.channels_last)

    @property
    def vgg_pretrained(self) -> bool:
        return bool(self.vgg_pretrained_flag)

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        if ir.ndim != 4 or ir.shape[1] != 1 or ir.shape != vis.shape:
            raise ValueError(
                f"CoCoNet takes two B x 1 x H x W tensors of the same shape, got ir {tuple(ir.shape)} and "
                f"vis {tuple(vis.shape)}; fuse luminance (see fusion.color) for colour images"
            )
        h, w = ir.shape[-2:]
        x = torch.cat([ir, vis], dim=1) * 2.0 - 1.0
        x, (top, left) = pad_to_multiple(x, SIZE_MULTIPLE)
        with flush_denormals():
            fused = self.forward_signed(x[:, :1], x[:, 1:])
        return fused[..., top : top + h, left : left + w] * 0.5 + 0.5

    def forward_signed(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        """B x 1 x H x W sources in [-1, 1], H and W multiples of 16 -> fused in [-1, 1]."""
        cl = torch.channels_last
        c1 = self.enc1(torch.cat([ir, vis], dim=1).contiguous(memory_format=cl))
        c2 = self.enc2(F.max_pool2d(c1, 2))
        c3 = self.enc3(F.max_pool2d(c2, 2))
        x4 = self.enc4(F.max_pool2d(c3, 2))
        # the VGG is frozen and its inputs are data: no graph, no backward through it
        with torch.no_grad():
            v1, v2, v3 = self.vgg(torch.cat([vis, ir], dim=0).contiguous(memory_format=cl))

        d4 = self.dec4(_ensemble(self.att256, self.ensemble4, x4, v3))
        d3 = self.dec3(
            torch.cat([self.up3(_up(d4)), _ensemble(self.att128, self.ensemble3, c3, v2)], dim=1)
        )
        d2 = self.dec2(
            torch.cat([self.up2(_up(d3)), _ensemble(self.att64, self.ensemble2, c2, v1)], dim=1)
        )
        d1 = self.dec1(torch.cat([self.up1(_up(d2)), c1], dim=1))
        return self.head(d1)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


def _ensemble(
    attention: Callable[[torch.Tensor], torch.Tensor],
    reduce: nn.Module,
    unet: torch.Tensor,
    vgg_vis_ir: torch.Tensor,
) -> torch.Tensor:
    """attention(U-Net), attention(VGG vis), attention(VGG ir), concatenated and reduced 3C -> C.

    The two VGG streams (stacked on the batch axis) go through the shared module in one call and
    apart from the U-Net stream, so training computes no input gradient for them.
    """
    att_vis, att_ir = attention(vgg_vis_ir).chunk(2, dim=0)
    return reduce(torch.cat([attention(unet), att_vis, att_ir], dim=1))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W up to multiples of `multiple`, split evenly between the two sides.

    Reflect padding where the image is large enough, replicate otherwise (a reflection needs the
    pad to be smaller than the side). Returns the padded tensor and (top, left) for the crop back.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (0, 0)
    top, left = ph // 2, pw // 2
    pads = (left, pw - left, top, ph - top)
    mode = "reflect" if max(pw - left, left) < w and max(ph - top, top) < h else "replicate"
    return F.pad(x, pads, mode=mode), (top, left)


def expected_parameter_counts() -> tuple[int, int]:
    """(trainable, frozen) parameter counts implied by the architecture in COCONET.md.

    Counted from the layer list, independently of the module code, so a test can compare them.
    """

    def conv(c_in: int, c_out: int, k: int = 3) -> int:
        return c_in * c_out * k * k + c_out

    def block(c_in: int, c_out: int) -> int:
        return conv(c_in, c_out) + 2 * c_out  # + BatchNorm scale and shift

    encoder = block(2, 32) + block(32, 32) + block(32, 64) + block(64, 64) + block(64, 128)
    encoder += block(128, 128) + block(128, 256)
    attention = sum(3 * conv(c, c) + 1 for c in (64, 128, 256))
    ensemble = conv(768, 256) + conv(384, 128) + conv(192, 64)
    decoder = block(256, 256) + conv(256, 128) + block(256, 128) + block(128, 128)
    decoder += conv(128, 64) + block(128, 64) + block(64, 64) + conv(64, 32) + block(64, 32)
    decoder += conv(32, 32) + conv(32, 1, k=1)
    vgg = (
        conv(1, 64)
        + conv(64, 64)
        + conv(64, 128)
        + conv(128, 128)
        + conv(128, 256)
        + 3 * conv(256, 256)
    )
    return encoder + attention + ensemble + decoder, vgg
