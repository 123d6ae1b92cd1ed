"""The project's own error types: problems the user can fix, reported by the CLI in one line.

Every error that means "your input, parameters, output path or machine cannot be used as
given" derives from `UserError`; its message names the file (or key) and the fix. The `mmif`
command prints such an error as one line and exits with status 1. Any other exception is a bug
(or an unexpected environment failure): the command shows it with its traceback instead of
disguising it as a user error.

The concrete types also derive from the built-in exception a caller would expect (`ValueError`,
`FileNotFoundError`, `RuntimeError`), so library code that catches those keeps working.

This module is the one home of the project's exception classes; the modules that raise them
import them from here.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says which file or setting, and how."""


class InputError(UserError, ValueError):
    """An input file, folder or command-line argument cannot be used as given."""


class ConfigError(InputError):
    """params.yaml (or a section of it) is invalid; the message names the key."""


class MissingInputError(UserError, FileNotFoundError):
    """An input the command needs does not exist (the message says which stage makes it)."""


class OutputError(UserError, ValueError):
    """The output path cannot be written without losing or mixing up files (see `mmif.io`)."""


class DeviceError(UserError, RuntimeError):
    """The requested compute device (e.g. CUDA) is not available on this machine."""


class BusyError(UserError, RuntimeError):
    """Another mmif process is writing the same output right now."""


class DownloadError(UserError, RuntimeError):
    """A file could not be downloaded (offline machine, server error); the message says how to
    provide it by hand."""


class ImageError(InputError):
    """An input image cannot be used; the message names the file and the fix."""


class DatasetError(InputError):
    """A dataset cannot be used as given: a raw dataset being prepared, a prepared one, or the
    fused images and labels of a task stage. The message names the file (or sample) and the fix."""


class LabelError(DatasetError):
    """A YOLO label file cannot be parsed or does not fit its dataset; the message is
    `<file>:<line>: <reason>; <fix>` (`mmif.labels.read_yolo_file`)."""

    def __init__(self, path: object, line: int | None, reason: str, fix: str) -> None:
        self.path, self.line, self.reason, self.fix = path, line, reason, fix
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}; {fix}")

    def __reduce__(self):  # pickles (worker processes) with the four fields, not the message
        return type(self), (self.path, self.line, self.reason, self.fix)


class ResultsError(InputError):
    """A result file exists but is unusable; the message names the file and the stage to re-run."""


class RegistrationError(InputError):
    """A results root (or the registration file) cannot be used; the message names the folder
    and the fix."""


class WorkerFailed(UserError, RuntimeError):
    """A seed worker exited with an error. The message holds its log's tail, which shows the
    worker's own one-line error or traceback; the parent's traceback would add nothing."""


class NoTaskLabels(Exception):
    """The dataset holds no labels for this task (e.g. medical pairs have no segmentation masks).

    Not an error of the run: the stage catches it and skips the task for that dataset. The
    message says which dataset and split lacks what.
    """
