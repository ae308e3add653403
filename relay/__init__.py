"""Obscura-compatible relay for end-to-end encrypted messaging, and a push gateway, on trio."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("obscura-relay")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
