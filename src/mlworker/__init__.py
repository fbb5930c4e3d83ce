"""ML Worker: one self-hosted service for a product platform's machine learning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlworker")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
