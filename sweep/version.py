"""The package version (one place; `sweep.__version__` and the outputs' `source` attribute read it)."""

__version__ = "0.1.0"
