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
