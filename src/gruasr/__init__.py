"""gruasr: speech recognition built around gated recurrent units, for telephone speech."""

from importlib.metadata import PackageNotFoundError, version

from gruasr.errors import AudioFormatError, CheckpointError, ConfigError, GruAsrError, ShapeError

try:
    __version__ = version("gruasr")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "AudioFormatError",
    "CheckpointError",
    "ConfigError",
    "GruAsrError",
    "ShapeError",
    "__version__",
]
