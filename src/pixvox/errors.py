"""User errors: problems the person running pixvox can fix (a config, a file, a path), as opposed to bugs.

Every error type whose message already says what is wrong and how to fix it derives from
:class:`UserError` (``ConfigError``, ``TeacherWeightsError``, ``FusionFormatError``,
``CloudFormatError``, the checkpoint errors below, ...). The ``pixvox`` command prints such an error
as one line and exits with status 2; ``--debug`` or ``PIXVOX_DEBUG=1`` adds the traceback. Anything
else is a crash and keeps its traceback.

Each class also derives from the built-in type callers caught before (``ValueError``,
``FileNotFoundError``, ``RuntimeError``), so existing ``except`` clauses keep working. This module
imports nothing, so the command line can use it before torch is loaded.
"""

from __future__ import annotations

__all__ = [
    "EXIT_USER_ERROR",
    "UserError",
    "MissingDataError",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointMismatchError",
    "ResumeMismatchError",
    "DeviceUnavailableError",
]

#: exit status of the ``pixvox`` command after a user error (argparse uses 2 for usage errors too)
EXIT_USER_ERROR = 2


class UserError(Exception):
    """Base of every error the user can fix; the message must name the file or key and the fix."""


class MissingDataError(UserError, FileNotFoundError):
    """Prepared data a job needs are not there, and the config does not say how to make them."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file that cannot be found or read (missing, truncated, not a torch file)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path (``--resume PATH``, ``init.checkpoint``) that holds no checkpoint."""


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint that does not fit the network or the job (other architecture, missing tensors)."""


class ResumeMismatchError(UserError, RuntimeError):
    """Resuming with a config or weight files that differ from the ones the checkpoint was made with;
    ``--resume force`` resumes anyway."""


class DeviceUnavailableError(UserError, RuntimeError):
    """The config asks for a device this machine does not have (``train.device=cuda`` without a GPU)."""
