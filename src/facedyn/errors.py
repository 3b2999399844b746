"""Errors a user can act on.

Every error facedyn raises for a user mistake is a :class:`FacedynError`; its message is one line
that says what is wrong and what to do. The CLI prints it and exits with status 2, no traceback.
"""

from __future__ import annotations


class FacedynError(Exception):
    """Base class: a one-line, actionable message for the user."""

    exit_code: int = 2


class InputNotFoundError(FacedynError):
    """A path the user gave does not exist."""


class VideoDecodeError(FacedynError):
    """A file could not be decoded as video or image (not a video, truncated, unsupported)."""


class NoFaceError(FacedynError):
    """No face was found where one was required."""


class OutputError(FacedynError):
    """An output location cannot be written."""


class LabelFormatError(FacedynError):
    """A label file does not have the columns or layout expected."""


class DatasetError(FacedynError):
    """A dataset directory is missing, empty or malformed."""


class ConfigError(FacedynError):
    """An option or configuration value is invalid."""


class CheckpointError(FacedynError):
    """A run directory or checkpoint is missing or does not match the model."""


class BusyError(FacedynError):
    """Another facedyn process is writing the same store or run directory (see :mod:`facedyn.lock`)."""
