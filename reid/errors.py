"""Errors a user can act on.

Every error raised for bad input derives from :class:`ReidError`, whose message names the
problem and the fix. The CLI prints such errors as one line and exits non-zero; library
callers can catch them by type.
"""

from __future__ import annotations


class ReidError(Exception):
    """Base class for errors caused by the user's input, data or environment."""


class DatasetError(ReidError, FileNotFoundError):
    """A dataset root is missing or does not have the expected layout."""


class ConfigError(ReidError, ValueError):
    """A recipe, parameter or command-line option is invalid."""


class WeightsError(ReidError, FileNotFoundError):
    """Pretrained weights were requested but are not available offline."""


class RunDirectoryError(ReidError):
    """A run directory cannot be used as asked: it holds results, is locked, or is not writable."""


class NonFiniteError(ReidError, FloatingPointError):
    """A NaN or infinite value reached a loss (or the loss itself became one) during training."""
