"""Expected failures. The CLI shows each as one line (no traceback) and exits with its code."""


class FasegError(Exception):
    """A failure the user can act on; the message names what went wrong and what to do."""

    exit_code = 1


class UsageError(FasegError):
    """The command line or an argument value is wrong."""

    exit_code = 2


class InputError(FasegError):
    """One input (an image, a list file) cannot be used; other inputs may still be processed."""


class WeightsError(FasegError):
    """Model weights are missing, incomplete or cannot be downloaded."""


class OutputError(FasegError):
    """Results cannot be written where asked."""


class DiskFull(OutputError):
    """The disk or quota is full: no later output could be written, so the whole run stops."""
