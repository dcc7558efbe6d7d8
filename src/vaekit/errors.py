"""The one exception type for problems a user can fix."""


class VaekitError(ValueError):
    """Bad input or a bad run folder: the message names the problem and the fix.

    The command line prints it as one line on stderr and exits with status 2;
    the Python API lets it propagate (it is a ``ValueError``).
    """


class NotNumericError(VaekitError, TypeError):
    """Input that is not numbers where numbers are needed: a ``ValueError`` like every
    VaekitError, and a ``TypeError`` as scikit-learn and NumPy raise for it."""
