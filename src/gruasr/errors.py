"""The error hierarchy: every failure the project reports on purpose is a GruAsrError.

The CLI turns these into one clear line and a non-zero exit; the server into a JSON error.
ShapeError also derives from ValueError so code that catches ValueError keeps working.
"""

from __future__ import annotations


class GruAsrError(Exception):
    """Base class of every error gruasr raises on purpose."""


class ConfigError(GruAsrError, ValueError):
    """A configuration value or constructor argument is invalid."""


class ShapeError(GruAsrError, ValueError):
    """A tensor has the wrong shape, dtype or device for the call."""


class AudioFormatError(GruAsrError, ValueError):
    """Audio cannot be read or decoded (corrupt, truncated, unsupported)."""


class CheckpointError(GruAsrError):
    """A model checkpoint is missing, corrupt or incompatible."""
