"""The project's own error types: problems the user can fix, reported by the CLI in one line.

Every error that means "your input, parameters, output path or machine cannot be used as
given" derives from `UserError`; its message names the file (or key) and the fix. The `mmif`
command prints such an error as one line and exits with status 1. Any other exception is a bug
(or an unexpected environment failure): the command shows it with its traceback instead of
disguising it as a user error.

The concrete types also derive from the built-in exception a caller would expect (`ValueError`,
`FileNotFoundError`, `RuntimeError`), so library code that catches those keeps working.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says which file or setting, and how."""


class InputError(UserError, ValueError):
    """An input file, folder or command-line argument cannot be used as given."""


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
