"""The one error type for bad user input."""

try:  # the catalog modules define the shared class; re-export it
    from sweep._catalog_io import SweepInputError
except ImportError:  # pragma: no cover - during bootstrap only

    class SweepInputError(ValueError):
        """Bad user input: one-line message naming the file, key and allowed values."""
