"""simreal: synthetic data, sim-to-real refinement and domain adaptation for computer vision."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("simreal")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
