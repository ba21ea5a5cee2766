"""Exception and warning classes of smile_ref.

The bottom layer of the package (it imports nothing of smile_ref), so that any
module may raise or warn with these classes.

* :class:`SmileRefWarning` -- base class of every warning smile_ref emits.
* :class:`RunHealthWarning` -- a finished run is unhealthy (many rejections, a
  chain frozen or at the step-size floor, non-finite values met); the message
  names the problem and the remedy.
* :class:`SmileRefError` -- base class of smile_ref's own exceptions.
* :class:`RunHealthError` -- raised instead of :class:`RunHealthWarning` when a
  run is made with ``strict=True``.
* :class:`CorruptFileError` -- a file smile_ref reads (checkpoint, golden
  trajectory, report, ensemble store) is damaged or foreign; the message names
  the file.
* :class:`ResumeMismatchError` -- a checkpoint or run folder was written by a
  different configuration; the message names the field that differs.
* :class:`VIDivergenceError` -- a variational fit diverged (its iterates grow
  geometrically or become non-finite); the message names the setting to change.

The error classes also derive from :class:`ValueError`, so code that caught
``ValueError`` before keeps working.
"""
from __future__ import annotations

__all__ = [
    "SmileRefWarning",
    "RunHealthWarning",
    "SmileRefError",
    "RunHealthError",
    "CorruptFileError",
    "ResumeMismatchError",
    "VIDivergenceError",
]


class SmileRefWarning(UserWarning):
    """Base class of the warnings emitted by smile_ref."""


class RunHealthWarning(SmileRefWarning, RuntimeWarning):
    """A finished run is unhealthy; the message says what went wrong and what to change."""


class SmileRefError(Exception):
    """Base class of smile_ref's exceptions."""


class RunHealthError(SmileRefError, RuntimeError):
    """An unhealthy run under ``strict=True``."""


class CorruptFileError(SmileRefError, ValueError):
    """A file read by smile_ref is damaged, truncated or not one smile_ref wrote."""


class ResumeMismatchError(SmileRefError, ValueError):
    """A checkpoint or run folder belongs to a different configuration."""


class VIDivergenceError(SmileRefError, FloatingPointError):
    """A variational fit diverged (e.g. ``score_vi`` with a ``beta`` below its convergence bound)."""
