"""Errors and warnings: `SweepInputError` for bad user input (exit status 2 on the command line), with
subclasses that say which kind, and `SweepWarning` for notices."""


class SweepInputError(ValueError):
    """Bad user input: a one-line message naming the file, key and allowed values.

    The CLI prints it and exits with status 2; the Python API raises it (a `ValueError`).
    """


class SweepWarning(UserWarning):
    """A one-line notice about something sweep did or skipped (the CLI prints `sweep: warning: ...`)."""


class InvalidValueError(SweepInputError):
    """A value outside its allowed set or range."""


class UnknownNameError(SweepInputError):
    """A GPU/model/key name that is not in the catalog (message suggests close names)."""


class MissingFieldError(SweepInputError):
    """A required field is absent from a catalog entry or an imported config file."""


class UnsupportedDtypeError(SweepInputError):
    """A dtype the GPU cannot run (fp8 weights on A100)."""


class InvalidParallelismError(SweepInputError):
    """A TP degree that does not divide the model's heads."""
