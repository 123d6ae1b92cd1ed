"""Make ultralytics offline and project-local; call `configure_environment` before importing it.

ultralytics reads its environment and its settings file once, when it is first imported, and
keeps the results in module constants (config dir, weights dir, runs dir, online flag). Left
alone it would write settings to ~/.config, look for fonts online, send analytics, start the
DVCLive callback (which writes DVC experiments into this repository) and, on CUDA, download a
model for its mixed-precision self-check. `import_ultralytics` prevents all of that:

- environment: YOLO_OFFLINE=1 (no online checks, so no update checks), YOLO_AUTOINSTALL=false
  (no pip installs at run time), HF_HUB_OFFLINE=1, YOLO_CONFIG_DIR=<project>/.cache/ultralytics;
- Ultralytics Platform (the former HUB): api_key blanked and ULTRALYTICS_API_KEY dropped from
  this process, so its training callbacks do nothing;
- settings (written before the import, re-applied after it): sync, hub-style integrations
  (clearml, comet, dvc, mlflow, raytune, tensorboard, wandb) off; weights, runs and datasets
  directories inside the project cache;
- fonts: matplotlib's DejaVuSans.ttf copied as Arial.ttf and Arial.Unicode.ttf into the config
  dir, where ultralytics looks before it would download them;
- AMP: ultralytics' self-check (which loads a downloaded yolo26n.pt) is replaced by one that
  trusts mixed precision on CUDA and logs that it skipped the check (`patch_amp_check`);
- safe loading: ULTRALYTICS_SAFE_LOAD=1 (unless set otherwise), so a local `detect.model` .pt
  is read with torch.load(weights_only=True) against ultralytics' allow-list of model classes
  instead of being unpickled in full;
- PIL: ultralytics' `Image.open` replacement (which tries to pip-install pi-heif when a file
  is not an image) is undone, so an unreadable image stays a clear one-line error;
- console: when stdout is not a terminal (a seed worker's log file, CI, `> log`), ultralytics'
  progress bars print their final state once, without carriage returns, and its messages carry
  no colour codes (`plain_console`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

from mmif.io import atomic_path, write_json
from mmif.logging_utils import stream_is_terminal
from mmif.runtime import offline_environment

log = logging.getLogger(__name__)

#: settings that keep ultralytics from talking to the network or writing outside the project
_SETTINGS_OFF = ("sync", "clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
_SETTINGS_QUIET = ("vscode_msg", "openvino_msg")
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def project_root() -> Path:
    """The repository root (the folder holding pyproject.toml above this package), else the cwd."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() else Path.cwd().resolve()


def cache_root() -> Path:
    """<project>/.cache: git- and DVC-ignored scratch space for tools."""
    return project_root() / ".cache"


def yolo_config_dir() -> Path:
    """The value given to YOLO_CONFIG_DIR: <project>/.cache/ultralytics."""
    return cache_root() / "ultralytics"


def user_config_dir() -> Path:
    """Where ultralytics keeps settings.json and fonts: YOLO_CONFIG_DIR/Ultralytics."""
    return Path(os.environ.get("YOLO_CONFIG_DIR") or yolo_config_dir()) / "Ultralytics"


def offline_settings(config_dir: Path) -> dict[str, object]:
    """The ultralytics settings this project enforces (keys of settings.json)."""
    values: dict[str, object] = {k: False for k in _SETTINGS_OFF + _SETTINGS_QUIET}
    values.update(
        api_key="",
        weights_dir=str(config_dir / "weights"),
        runs_dir=str(config_dir / "runs"),
        datasets_dir=str(config_dir / "datasets"),
    )
    return values


def configure_environment() -> Path:
    """Set the environment and prepare the config dir so a later `import ultralytics` stays offline.

    Idempotent. Returns the ultralytics user config dir (YOLO_CONFIG_DIR/Ultralytics). If
    ultralytics was imported earlier in this process, its constants cannot change any more: a
    warning says so (settings are still corrected by `import_ultralytics`).
    """
    target = yolo_config_dir()
    current = os.environ.get("YOLO_CONFIG_DIR")
    if current and Path(current).resolve() != target:
        log.debug("YOLO_CONFIG_DIR was %s; using the project-local %s", current, target)
    os.environ["YOLO_CONFIG_DIR"] = str(target)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    offline_environment()  # HF_HUB_OFFLINE=1
    # read when ultralytics is imported: a .pt model is then loaded with weights_only=True
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    os.environ.setdefault("MPLCONFIGDIR", str(cache_root() / "matplotlib"))
    if os.environ.pop("ULTRALYTICS_API_KEY", None):
        log.warning(
            "ULTRALYTICS_API_KEY removed from this process: training must not log to the Ultralytics Platform"
        )

    config_dir = target / "Ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    _install_fonts(config_dir)
    _write_settings(config_dir)
    if "ultralytics" in sys.modules:
        from ultralytics.utils import USER_CONFIG_DIR

        if Path(USER_CONFIG_DIR).resolve() != config_dir.resolve():
            log.warning(
                "ultralytics was imported before detection.offline configured it; its config dir is %s, "
                "not %s. Import detection modules before ultralytics.",
                USER_CONFIG_DIR,
                config_dir,
            )
    return config_dir


def _install_fonts(config_dir: Path) -> None:
    """Copy matplotlib's DejaVu Sans under the names ultralytics would otherwise download."""
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in _FONT_NAMES:
        dest = config_dir / name
        if dest.is_file() and dest.stat().st_size > 0:
            continue
        if not source.is_file():
            log.warning(
                "%s not found: ultralytics may try to download %s (offline, it will fail)",
                source,
                name,
            )
            return
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)


def _write_settings(config_dir: Path) -> None:
    """Merge the enforced values into settings.json before ultralytics reads it."""
    path = config_dir / "settings.json"
    try:
        current = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        current = {}
    if not isinstance(current, dict):
        current = {}
    wanted = {**current, **offline_settings(config_dir.parent)}
    if wanted != current:
        write_json(path, wanted)


def import_ultralytics() -> ModuleType:
    """Configure the environment, import ultralytics, enforce its settings and patch the AMP check."""
    config_dir = configure_environment()
    import ultralytics
    from ultralytics.utils import SETTINGS

    enforced = offline_settings(config_dir.parent)
    changes = {k: v for k, v in enforced.items() if k in SETTINGS.defaults and SETTINGS.get(k) != v}
    if changes:
        SETTINGS.update(changes)
    patch_amp_check()
    _limit_threads()
    _restore_pil_open()
    if not stream_is_terminal(sys.stdout):
        plain_console()
    return ultralytics


def _restore_pil_open() -> None:
    """Undo ultralytics' replacement of PIL's `Image.open`, which answers an unreadable image by
    trying to install pi-heif at run time (offline: ModuleNotFoundError instead of PIL's own
    UnidentifiedImageError, which `mmif.io.read_image` turns into a clear message)."""
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain_colorstr(*parts: object) -> str:
    """ultralytics' `colorstr` without the colour: its last argument, as a string."""
    return f"{parts[-1]}" if parts else ""


class _StripAnsi(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\x1b" in message:
            record.msg, record.args = _ANSI.sub("", message), ()
        return True


def plain_console() -> None:
    """Make ultralytics write log-file friendly output (idempotent; call after importing it).

    Its TQDM bars switch to the mode ultralytics uses on CI (final state only, no carriage
    return); `colorstr` (bound by name in every ultralytics module) returns plain text; a filter
    on its logger strips any colour code left.
    """
    import ultralytics.utils as uutils
    import ultralytics.utils.tqdm as utqdm

    utqdm.is_noninteractive_console = lambda: True
    original = uutils.colorstr
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "ultralytics" and getattr(module, "colorstr", None) is original:
            module.colorstr = _plain_colorstr
    if not any(isinstance(f, _StripAnsi) for f in uutils.LOGGER.filters):
        uutils.LOGGER.addFilter(_StripAnsi())


#: set by `mmif detect` for its seed worker processes: torch threads each may use
THREADS_ENV = "MMIF_TORCH_THREADS"


def _limit_threads() -> None:
    """Make ultralytics' CPU training keep to a worker process's share of the cores.

    ultralytics resets torch's thread count to (cores - 1) when it selects a CPU device, which
    would oversubscribe the machine when several seeds train side by side.
    """
    value = os.environ.get(THREADS_ENV)
    if not value:
        return
    from ultralytics.utils import torch_utils

    torch_utils.NUM_THREADS = max(1, int(value))


def offline_check_amp(model) -> bool:  # noqa: ANN001 (an ultralytics model)
    """Stand-in for ultralytics' AMP self-check that needs no download.

    The original compares FP32 and FP16 predictions of a downloaded yolo26n.pt; offline that
    file cannot be fetched. Mixed precision is kept on CUDA (as ultralytics does when its check
    passes or cannot run) and never used on CPU/MPS.
    """
    import torch

    device = next(model.parameters()).device
    if device.type in {"cpu", "mps"}:
        return False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    log.info(
        "AMP self-check skipped (it would download yolo26n.pt); mixed precision on for %s", name
    )
    return True


def patch_amp_check() -> None:
    """Replace ultralytics' AMP self-check in the trainer module (idempotent)."""
    import ultralytics.engine.trainer as trainer_module

    trainer_module.check_amp = offline_check_amp
