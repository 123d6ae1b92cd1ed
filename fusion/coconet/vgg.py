"""The frozen one-channel VGG19 that CoCoNet uses twice: as a second encoder inside the network and
as the feature space of the contrastive loss.

Weights are ImageNet VGG19 from torchvision's local cache
(`torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`) or from a file named in the configuration;
nothing is ever downloaded. The first convolution is collapsed to one input channel with the grey
weights 0.299 R + 0.587 G + 0.114 B. Without a weights file the layers are initialised from a seed
(deterministic), a warning is logged once per process, and callers record `pretrained=False`
(CoCoNet keeps it as `vgg_pretrained`, which travels into checkpoints and train metrics).

`install_vgg19_weights` (the `mmif weights vgg19` command) is the one place that fetches the file,
on a user's request: from torchvision's URL or a local copy, checked against the SHA-256 prefix in
its name, then moved into torchvision's cache.

Only the convolutions are built (no classifier), so loading costs a few megabytes, not the 550 MB of
a full torchvision VGG19. Inputs are used as CoCoNet feeds them, in [-1, 1] and without ImageNet
normalisation (as in the published model).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mmif.errors import DownloadError, InputError, MissingInputError
from mmif.io import atomic_path

log = logging.getLogger(__name__)

#: (name, index in torchvision's `vgg19().features`, in channels, out channels), up to conv5_1
VGG19_CONVS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 0, 1, 64),
    ("conv1_2", 2, 64, 64),
    ("conv2_1", 5, 64, 128),
    ("conv2_2", 7, 128, 128),
    ("conv3_1", 10, 128, 256),
    ("conv3_2", 12, 256, 256),
    ("conv3_3", 14, 256, 256),
    ("conv3_4", 16, 256, 256),
    ("conv4_1", 19, 256, 512),
    ("conv4_2", 21, 512, 512),
    ("conv4_3", 23, 512, 512),
    ("conv4_4", 25, 512, 512),
    ("conv5_1", 28, 512, 512),
)
GREY_WEIGHTS = (0.299, 0.587, 0.114)
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
#: torchvision names its weight files <arch>-<first 8 hex digits of the file's SHA-256>.pth
TORCHVISION_SHA256_PREFIX = "dcbb9e9d"
#: convolutions the network's encoder needs (conv1_1 .. conv3_4)
N_PYRAMID_CONVS = 8
#: convolutions the contrastive loss needs (conv1_1 .. conv5_1)
N_RELU_CONVS = 13

_warned_untrained = False


def default_weights_path() -> Path:
    """Where torchvision keeps its VGG19 ImageNet weights (read only; never downloaded)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def load_vgg19_grey(
    n_convs: int, weights: str | Path | None = None, seed: int = 0
) -> tuple[dict[str, torch.Tensor], bool]:
    """Weights of the first `n_convs` VGG19 convolutions with a one-channel first layer.

    weights: a torchvision VGG19 state dict (`features.<i>.weight` keys; the first convolution
    with 3 input channels, collapsed to grey here, or already with 1). None: torchvision's cache
    if present, else a seeded initialisation.
    Returns ({"conv1_1.weight": ..., "conv1_1.bias": ..., ...}, pretrained).
    """
    if not 1 <= n_convs <= len(VGG19_CONVS):
        raise ValueError(f"n_convs must be in 1..{len(VGG19_CONVS)}, got {n_convs}")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise MissingInputError(
                f"{path}: VGG19 weights file not found (fusion.coconet.vgg_weights); copy torchvision's "
                f"{TORCHVISION_FILE} there, or set vgg_weights: null to use {default_weights_path()}"
            )
    else:
        path = default_weights_path()
        if not path.is_file():
            _warn_untrained(path)
            return seeded_vgg19_grey(n_convs, seed), False
    return _read_torchvision_file(path, n_convs), True


def _warn_untrained(path: Path) -> None:
    global _warned_untrained
    if not _warned_untrained:
        log.warning(
            "VGG19 ImageNet weights not found at %s (and no vgg_weights configured): CoCoNet's VGG19 "
            "encoder and contrastive loss use a seeded untrained VGG19; results are recorded with "
            "vgg_pretrained=false. Put torchvision's %s there to use ImageNet weights.",
            path,
            TORCHVISION_FILE,
        )
        _warned_untrained = True


def _read_torchvision_file(path: Path, n_convs: int) -> dict[str, torch.Tensor]:
    try:
        # mmap: only the convolutions we take are read from the 550 MB file
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path}: not a readable PyTorch weights file ({exc}); re-copy it"
        ) from exc
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    out: dict[str, torch.Tensor] = {}
    for name, idx, c_in, c_out in VGG19_CONVS[:n_convs]:
        w_key, b_key = f"features.{idx}.weight", f"features.{idx}.bias"
        if w_key not in raw or b_key not in raw:
            raise InputError(
                f"{path}: no '{w_key}'; expected torchvision's VGG19 state dict ({TORCHVISION_FILE})"
            )
        w = raw[w_key].float()
        if name == "conv1_1" and w.shape[1] == 3:
            grey = torch.tensor(GREY_WEIGHTS, dtype=w.dtype).view(1, 3, 1, 1)
            w = (w * grey).sum(dim=1, keepdim=True)
        if tuple(w.shape) != (c_out, c_in, 3, 3):
            raise InputError(
                f"{path}: '{w_key}' has shape {tuple(w.shape)}, expected {(c_out, c_in, 3, 3)} (VGG19)"
            )
        out[f"{name}.weight"] = w.clone()
        out[f"{name}.bias"] = raw[b_key].float().clone()
    return out


def seeded_vgg19_grey(n_convs: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic stand-in weights (He initialisation as torchvision's VGG, zero bias).

    Every layer has its own generator, so the first k layers are the same whatever `n_convs` is:
    the network's encoder and the loss see the same untrained VGG.
    """
    out: dict[str, torch.Tensor] = {}
    for i, (name, _, c_in, c_out) in enumerate(VGG19_CONVS[:n_convs]):
        gen = torch.Generator().manual_seed(int(seed) * 1009 + i)
        std = math.sqrt(2.0 / (c_out * 9))  # kaiming normal, fan_out, relu
        out[f"{name}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen) * std
        out[f"{name}.bias"] = torch.zeros(c_out)
    return out


class _FrozenVGG(nn.Module):
    """The first `n_convs` VGG19 convolutions as attributes named conv1_1, ..., never trained."""

    def __init__(self, n_convs: int, state: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.names = [name for name, *_ in VGG19_CONVS[:n_convs]]
        for name, _, c_in, c_out in VGG19_CONVS[:n_convs]:
            setattr(self, name, nn.Conv2d(c_in, c_out, 3, padding=1))
        if state is not None:
            self.load_state_dict(state)
        self.requires_grad_(False)

    def conv_relu(self, name: str, x: torch.Tensor) -> torch.Tensor:
        # in place is safe: a convolution's backward does not need its output
        return F.relu(getattr(self, name)(x), inplace=True)


class VGG19Pyramid(_FrozenVGG):
    """The network's second encoder: three levels aligned with the U-Net.

    forward(x): B x 1 x H x W in [-1, 1] (H, W multiples of 8) -> (v1, v2, v3) with
    v1 = relu(conv1_2(pool(relu(conv1_1 x))))       64 ch at 1/2
    v2 = relu(conv2_2(relu(conv2_1(pool v1))))      128 ch at 1/4
    v3 = relu(conv3_4(... relu(conv3_1(pool v2)))) 256 ch at 1/8
    """

    def __init__(self, state: dict[str, torch.Tensor] | None = None):
        super().__init__(N_PYRAMID_CONVS, state)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.conv_relu("conv1_1", x), 2)
        v1 = self.conv_relu("conv1_2", x)
        x = self.conv_relu("conv2_1", F.max_pool2d(v1, 2))
        v2 = self.conv_relu("conv2_2", x)
        x = F.max_pool2d(v2, 2)
        for name in ("conv3_1", "conv3_2", "conv3_3", "conv3_4"):
            x = self.conv_relu(name, x)
        return v1, v2, x


class VGG19Relu(_FrozenVGG):
    """The contrastive loss's feature space: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.

    forward(x): B x 1 x H x W in [-1, 1] -> list of the five feature maps (64, 128, 256, 512,
    512 channels at 1, 1/2, 1/4, 1/8, 1/16 of the input size).
    """

    # the convolutions leading to each returned feature (the last one of a group gives it)
    GROUPS = (
        ("conv1_1",),
        ("conv1_2", "conv2_1"),
        ("conv2_2", "conv3_1"),
        ("conv3_2", "conv3_3", "conv3_4", "conv4_1"),
        ("conv4_2", "conv4_3", "conv4_4", "conv5_1"),
    )

    def __init__(self, state: dict[str, torch.Tensor] | None = None):
        super().__init__(N_RELU_CONVS, state)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for g, names in enumerate(self.GROUPS):
            for name in names:
                if g > 0 and name == names[-1]:
                    x = F.max_pool2d(x, 2)  # each relu<k>_1 follows a pooling
                x = self.conv_relu(name, x)
            feats.append(x)
        return feats


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def install_vgg19_weights(
    source: str | Path | None = None,
    dest: str | Path | None = None,
    sha256_prefix: str = TORCHVISION_SHA256_PREFIX,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Put torchvision's VGG19 ImageNet weights where CoCoNet looks for them; returns the path.

    source: a local file, an http(s) URL, or None for torchvision's URL. dest: the target file
    (default `default_weights_path()`, torchvision's cache). The file is copied or downloaded to
    a temporary name next to dest, its SHA-256 must start with `sha256_prefix` and it must hold
    the VGG19 convolutions; only then is it renamed into place, so a failed or interrupted run
    leaves nothing behind. Raises DownloadError (offline or an HTTP error), MissingInputError or
    InputError (no such file; a checksum or content mismatch) with a one-line message that says
    what to do.
    progress: called with (bytes so far, total bytes or None) while downloading.
    """
    dest = Path(dest) if dest else default_weights_path()
    source = str(source) if source is not None else TORCHVISION_URL
    with atomic_path(dest) as tmp:
        if source.startswith(("http://", "https://")):
            _download(source, tmp, progress, timeout)
        else:
            src = Path(source)
            if not src.is_file():
                raise MissingInputError(
                    f"{src}: no such file; give torchvision's {TORCHVISION_FILE} (or omit --from to download it)"
                )
            shutil.copyfile(src, tmp)
        digest = sha256_of(tmp)
        if not digest.startswith(sha256_prefix):
            raise InputError(
                f"{source}: SHA-256 {digest[:16]}... does not start with {sha256_prefix} as "
                f"torchvision's {TORCHVISION_FILE} does; the file is damaged or another file, "
                "download it again"
            )
        _read_torchvision_file(tmp, N_RELU_CONVS)  # holds the VGG19 convolutions CoCoNet needs
    log.info("VGG19 ImageNet weights installed at %s (SHA-256 %s...)", dest, digest[:16])
    return dest


def _download(
    url: str, path: Path, progress: Callable[[int, int | None], None] | None, timeout: float
) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while block := response.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: the server answered HTTP {exc.code} ({exc.reason})") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot download {url} ({reason}): this machine seems to be offline; download "
            f"{TORCHVISION_FILE} on a machine with internet access and run "
            f"`mmif weights vgg19 --from FILE`"
        ) from exc
