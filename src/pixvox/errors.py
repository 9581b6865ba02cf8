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
    "EmptyBatchError",
    "NonFiniteTrainingError",
    "EmptyBatchesError",
    "TooManySkippedSamplesError",
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


class EmptyBatchError(ValueError):
    """A batch with nothing to learn from (fewer than 2 contrastive pairs, no valid voxels).

    Not a user error: the trainer skips the step and counts it (``skipped_batches``). A step
    function must raise it on every process alike (decide after the collective that counts the
    global batch, as :func:`pixvox.losses.info_nce` does), or the processes would wait on each other.
    """


class NonFiniteTrainingError(UserError, RuntimeError):
    """The loss or the gradients were NaN/inf for ``train.max_nonfinite_steps`` consecutive steps."""


class EmptyBatchesError(UserError, RuntimeError):
    """``train.max_nonfinite_steps`` consecutive batches had nothing to learn from."""


class TooManySkippedSamplesError(UserError, RuntimeError):
    """More than ``data.max_skipped_fraction`` of the prepared samples could not be read."""
