"""The segmentation network: an smp model behind a [0, 1] tensor interface. Nothing is downloaded."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mmif.errors import ConfigError, InputError
from mmif.runtime import offline_environment
from segmentation.config import SegmentConfig, check_network_names

log = logging.getLogger(__name__)

# ImageNet statistics: the usual input normalisation for smp encoders, pretrained or not.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmentationNet(nn.Module):
    """Wraps an smp model: forward takes B x 3 x H x W in [0, 1] of any size, returns logits B x C x H x W.

    Inputs are normalised with ImageNet statistics and zero-padded to a multiple of `multiple`
    (the encoder's output stride) inside forward; the logits are cropped back to H x W. The
    network runs in channels-last memory format: the same results, about 10 to 35 % less CPU
    time per training step than channels-first on the 2-core test machine (mobilenet_v2 Unet).
    """

    def __init__(self, net: nn.Module, multiple: int = 32):
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)
        self.multiple = multiple
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        x = (images - self.mean) / self.std
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return self.net(x.contiguous(memory_format=torch.channels_last))[..., :h, :w]


class Ensemble(nn.Module):
    """Several trained networks as one model: forward returns the mean of their class
    probabilities (softmax), B x C x H x W, whose argmax is the ensemble's prediction."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("Ensemble: no member networks")
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        total = self.members[0](images).float().softmax(dim=1)
        for member in self.members[1:]:
            total = total + member(images).float().softmax(dim=1)
        return total / len(self.members)


def as_one_model(members: list[nn.Module]) -> nn.Module:
    """The network itself for one member, else their Ensemble."""
    return members[0] if len(members) == 1 else Ensemble(members)


def build_model(
    cfg: SegmentConfig, n_classes: int, quiet: bool = False
) -> tuple[SegmentationNet, bool]:
    """Build `cfg.arch` with `cfg.encoder` for n_classes classes; returns (model, pretrained).

    The encoder is randomly initialised (smp `encoder_weights=None`) and then, when
    `cfg.encoder_weights` names a file on disk, loaded from it; otherwise it stays random and
    `pretrained` is False. Nothing is downloaded (HF_HUB_OFFLINE=1, no smp/timm pretrained weights).
    quiet: the caller loads a whole trained model next (a shared segmenter): the encoder
    weights are neither loaded nor logged.
    """
    import segmentation_models_pytorch as smp

    offline_environment()  # in case segmentation/__init__ was bypassed
    try:
        check_network_names(cfg.arch, cfg.encoder)
    except ValueError as exc:
        raise ConfigError(f"segment.{exc}") from exc
    extra = {}
    if cfg.decoder_channels is not None:
        extra["decoder_channels"] = [int(c) for c in cfg.decoder_channels]
    try:
        net = smp.create_model(
            cfg.arch,
            encoder_name=cfg.encoder,
            encoder_depth=cfg.encoder_depth,
            encoder_weights=None,
            in_channels=3,
            classes=n_classes,
            **extra,
        )
    except TypeError as exc:
        raise ConfigError(
            f"segment.decoder_channels: {cfg.arch} does not take decoder_channels as a list of "
            f"widths ({exc}); set it to null"
        ) from exc
    drop_unused_stages(net.encoder)
    pretrained = False
    if quiet:
        return SegmentationNet(net), pretrained
    if cfg.encoder_weights:
        path = Path(cfg.encoder_weights)
        if path.is_file():
            load_encoder_weights(net.encoder, path)
            pretrained = True
        else:
            log.warning(
                "!!! segment.encoder_weights: %s not found; the %s encoder is trained FROM SCRATCH "
                "(pretrained=false in metrics.json). Put the weights file there to use them.",
                path,
                cfg.encoder,
            )
    else:
        log.info("segment.encoder_weights is null: %s encoder trained from scratch", cfg.encoder)
    return SegmentationNet(net), pretrained


#: smp encoders whose forward runs `features` layer by layer, keeps the outputs after the layers
#: in `_out_indexes` (preceded by the input itself), and stops only once it holds one output
#: more than `encoder_depth` asks for, which it then throws away
_RUNS_ONE_STAGE_TOO_FAR = frozenset({"MobileNetV2Encoder", "InceptionV4Encoder"})


def drop_unused_stages(encoder: nn.Module) -> int:
    """Remove the layers of an smp encoder that run below `encoder_depth` without being used.

    smp 0.6's mobilenet_v2 (and inceptionv4) encoder computes the whole next stage after the
    deepest one the decoder takes, then discards it: at depth 3, mobilenet_v2's stride-16 layers
    (features 7 to 13, 384 and 576 channels). Cutting them off leaves every used layer, its
    random initialisation (drawn before the cut) and the outputs exactly as they were. On a CPU
    it saves 14 % of a lone training step and 5 % of `segment_base`, where three seeds share two
    cores (docs/MEASUREMENTS.md). The other encoders stop at their depth already and are left
    alone. Returns the number of layers removed.
    """
    if type(encoder).__name__ not in _RUNS_ONE_STAGE_TOO_FAR:
        return 0
    features, indexes, depth = encoder.features, encoder._out_indexes, encoder._depth
    if depth >= len(indexes):
        return 0
    keep = indexes[depth - 1] + 1
    removed = len(features) - keep
    encoder.features = features[:keep]

    def forget_removed_layers(module: nn.Module, state: dict, prefix: str, *_: object) -> None:
        # a checkpoint written before the cut (project code before 2026-12-07) still holds the
        # removed layers' tensors; they were never used, so they are dropped, not reported
        for key in [k for k in state if k.startswith(f"{prefix}features.")]:
            index = key[len(f"{prefix}features.") :].split(".", 1)[0]
            if index.isdigit() and int(index) >= keep:
                del state[key]

    encoder.register_load_state_dict_pre_hook(forget_removed_layers)
    log.debug("%s: %d unused layers below depth %d removed", type(encoder).__name__, removed, depth)
    return removed


def load_encoder_weights(encoder: nn.Module, path: Path) -> None:
    """Load a local state dict into an smp encoder.

    Accepts a plain state dict, one nested under "state_dict" or "model", and keys prefixed with
    "encoder." (from a whole smp model); classifier keys are dropped. At least half of the
    encoder's tensors must be found, else the file is for another network and it is an error.
    """
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged file, pickle with code, another format
        raise InputError(
            f"{path}: not a readable weights file ({type(exc).__name__}: {exc}); "
            "segment.encoder_weights needs a state dict saved with torch.save or safetensors"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputError(
            f"{path}: not a state dict; save the encoder with torch.save(model.state_dict(), path)"
        )
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    own = encoder.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(usable) < 0.5 * len(own):
        raise InputError(
            f"{path}: only {len(usable)} of {len(own)} encoder tensors match by name and shape; "
            "it holds weights for another network than segment.encoder"
        )
    encoder.load_state_dict(usable, strict=False)
    log.info("encoder weights loaded from %s (%d of %d tensors)", path, len(usable), len(own))
