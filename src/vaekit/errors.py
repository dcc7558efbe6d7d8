"""The one exception type for problems a user can fix."""


class VaekitError(ValueError):
    """Bad input or a bad run folder: the message names the problem and the fix.

    The command line prints it as one line on stderr and exits with status 2;
    the Python API lets it propagate (it is a ``ValueError``).
    """
