# SPDX-License-Identifier: MIT
"""The package version, read from the installed distribution's metadata (its one source is
pyproject.toml)."""
from importlib import metadata

try:
    __version__ = metadata.version("openmm-mrl")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"
