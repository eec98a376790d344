"""The package version, recorded in every settings and training-state file."""

__version__ = "0.1.0"
