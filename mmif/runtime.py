"""Process-wide runtime settings shared by every stage: the offline environment, denormals, the
one device check, code fingerprints of resumable training, and the description of the machine
(CPU or GPU) that benchmarks print and metrics.json records.

Importing this module does not import torch (the functions that need it import it), so light
commands and packages can call `offline_environment` first thing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mmif.errors import DeviceError, InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_flush_denormal_global = False

#: environment of every process that may import a library with a model hub: nothing downloads
#: at run time (smp/timm encoders are built with encoder_weights=None and local weights are
#: read from disk). ultralytics needs more; `detection.offline.configure_environment` adds it.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1"}


def offline_environment() -> None:
    """Set `OFFLINE_ENVIRONMENT` in this process (and the processes it starts). Idempotent.

    The one offline setup: call it before importing huggingface_hub, timm or
    segmentation_models_pytorch (they read the variables when first imported). The values are
    enforced, not defaults: a run never reaches the network, whatever the shell exported.
    """
    for name, value in OFFLINE_ENVIRONMENT.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def enable_flush_denormal() -> bool:
    """Treat subnormal floats as zero on the CPU for the whole process.

    Training on real or synthetic images produces subnormal activations and gradients (values
    below 1.2e-38) that x86 CPUs process many times slower; flushing them to zero, as most
    deep-learning runtimes do on the CPU, changes no result measurably. Returns False where the
    CPU does not support it.
    """
    import torch

    global _flush_denormal_global
    _flush_denormal_global = bool(torch.set_flush_denormal(True))
    return _flush_denormal_global


def flush_denormal_is_global() -> bool:
    """Whether `enable_flush_denormal` switched flushing on for the whole process."""
    return _flush_denormal_global


def resolve_device(device: str | torch.device | None, where: str = "device") -> torch.device:
    """The one device check of every command: "auto" (or None) -> CUDA when available, else CPU.

    An explicit CUDA device this machine does not have (no CUDA at all, or an index beyond the
    devices present) raises DeviceError naming the setting `where` (e.g. "--device",
    "detect.device") and the fix; a string that is no device raises InputError.
    """
    import torch

    text = "auto" if device is None else str(device).strip()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"{where}: '{device}' is not a device; use cpu, cuda, cuda:N or auto"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{where} is '{device}' but CUDA is not available on this machine; "
                "use cpu (or auto, which picks CUDA only where it exists)"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(
                f"{where} is '{device}' but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{where} is '{device}' but Apple MPS is not available; use cpu or auto")
    return dev


def code_fingerprint(*packages: str) -> str:
    """A digest of the Python source of `packages` (e.g. "fusion.coconet").

    Trainers store it in their checkpoints and continue from a checkpoint only when it matches,
    so weights half-trained by other code (a changed loss, say) are never mixed into a run.
    """
    h = hashlib.sha256()
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ValueError(f"code_fingerprint: no module named {name!r}")
        if spec.submodule_search_locations:
            files = sorted(
                f for loc in spec.submodule_search_locations for f in Path(loc).glob("*.py")
            )
        else:
            files = [Path(spec.origin)]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU a timing was taken on, for benchmark output: model name, family and model
    numbers, whether it has AVX-512, and the cores this process may use, e.g.
    "AMD EPYC (cpu family 26, model 2, AVX-512), 2 cores". Outside Linux: platform.processor()."""
    import platform

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            if not line.strip():
                break  # the first processor's block describes the model
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    details = [f"cpu family {fields['cpu family']}"] if "cpu family" in fields else []
    if "model" in fields:
        details.append(f"model {fields['model']}")
    if "flags" in fields:
        details.append("AVX-512" if "avx512f" in fields["flags"].split() else "no AVX-512")
    return f"{name} ({', '.join(details)}), {cores} cores" if details else f"{name}, {cores} cores"


def machine_description(device: str | torch.device) -> str:
    """What a model was trained or run on, for its metrics.json and the report's run facts: the
    GPU's name on CUDA, else `cpu_description()`, with torch's version. Float kernels differ
    between CPU kinds (AVX-512 or not) and GPUs, and so do the trained networks, to the last bit."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        name = f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})"
    elif dev.type == "cpu":
        name = cpu_description()
    else:
        name = dev.type
    return f"{name}, torch {torch.__version__}"
