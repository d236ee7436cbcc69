"""The one error type for bad user input."""


class SweepInputError(ValueError):
    """Bad user input: a one-line message naming the file, key and allowed values.

    The CLI prints it and exits with status 2; the Python API raises it (a `ValueError`).
    """


class SweepWarning(UserWarning):
    """A one-line notice about something sweep did or skipped (the CLI prints `sweep: warning: ...`)."""
