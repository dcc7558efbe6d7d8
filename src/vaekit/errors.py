"""The one exception type for problems a user can fix, and how its messages name options.

A message names an option through :func:`option`, so that each reader sees the name they
typed: Python code reads ``latent_dim`` (or ``label=7``), the command line prints
``--latent-dim`` (or ``--label 7``).
"""
from __future__ import annotations

import os
import re

_OPEN, _SEP, _CLOSE = "\x02", "\x1f", "\x03"
_NAMED = re.compile(f"{_OPEN}([^{_SEP}{_CLOSE}]+)(?:{_SEP}([^{_SEP}{_CLOSE}]*){_SEP}([^{_CLOSE}]*))?{_CLOSE}")
_UNSET = object()
# Parameters whose command-line flag is not the parameter's own name with dashes.
FLAGS = {"i": "--from", "j": "--to", "random_state": "--seed", "queue_size": "--queue", "anomaly_score": "--score"}


def option(name: str, value=_UNSET) -> str:
    """``name`` (an API parameter, with the ``value`` given if any) as a message names it."""
    if value is _UNSET:
        return f"{_OPEN}{name}{_CLOSE}"
    value = os.fspath(value) if isinstance(value, os.PathLike) else value
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{_OPEN}{name}{_SEP}{text}{_SEP}{text if isinstance(value, (int, float)) else repr(value)}{_CLOSE}"


def flag(name: str) -> str:
    """The command-line flag of API parameter ``name``."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def render(message: str, command_line: bool = False) -> str:
    """``message`` with its options named for Python (``latent_dim``, ``label=7``) or for the
    command line (``--latent-dim``, ``--label 7``)."""
    def named(m: re.Match) -> str:
        name, text, api = m.groups()
        if command_line:
            if api in ("True", "False"):  # a switch: --report, --no-report
                return flag(name) if api == "True" else "--no-" + flag(name)[2:]
            return flag(name) if text is None else f"{flag(name)} {text}"
        return name if text is None else f"{name}={api}"

    return _NAMED.sub(named, message)


class _Named:
    """A message whose options are named for whoever reads it (see :func:`option`)."""

    def __str__(self) -> str:
        return render(super().__str__())

    def for_command_line(self) -> str:
        """The message with options named as command-line flags."""
        return render(super().__str__(), command_line=True)


class VaekitError(_Named, ValueError):
    """Bad input or a bad run folder: the message names the problem and the fix.

    The command line prints it as one line on stderr and exits with status 2;
    the Python API lets it propagate (it is a ``ValueError``).
    """


class VaekitWarning(_Named, UserWarning):
    """Something vaekit worked around and the user should know of (a fit that diverged and was
    done again at a lower rate). The command line prints it as one line on stderr."""


class NotNumericError(VaekitError, TypeError):
    """Input that is not numbers where numbers are needed: a ``ValueError`` like every
    VaekitError, and a ``TypeError`` as scikit-learn and NumPy raise for it."""


class TrainingDiverged(VaekitError):
    """Training whose loss stopped being a number or grew far past its start. The command line
    stops with the message; the anomaly detector fits again at a lower learning rate instead.
    ``what`` says what the loss did."""

    def __init__(self, message: str, what: str = ""):
        super().__init__(message)
        self.what = what
