"""The ``vaekit`` command line: a table of commands, each in its own module.

Command modules import torch only inside ``run``, so ``vaekit --help`` and every
command's ``--help`` stay fast. Under torchrun every process runs the same command; the
library decides what each rank does, and rank 0 alone prints results.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings

from . import __version__, distributed
from .distributed import PeerError, ignore_sigterm, launched, leave, stop_on_sigterm
from .errors import VaekitError, VaekitWarning, render

# name -> (module in vaekit.commands, one-line summary); aliases point at the same module.
COMMANDS = {
    "train": ("train", "train a model and write a run folder"),
    "evaluate": ("evaluate", "metrics of a run on held-out data"),
    "sample": ("sample", "new samples from the prior (alias: generate)"),
    "generate": ("sample", "alias of sample"),
    "reconstruct": ("reconstruct", "reconstructions of data through a run's model"),
    "denoise": ("denoise", "denoised copies of noisy inputs"),
    "impute": ("impute", "a table with its missing cells filled by a run's model"),
    "encode": ("encode", "latent codes (posterior means) of data"),
    "interpolate": ("interpolate", "decode the path between two inputs' codes"),
    "latent": ("latent", "2-D map of the latent space, coloured by label"),
    "detect": ("detect", "anomaly detection: detect fit / detect score"),
    "export": ("export", "ONNX files of a run or detector, for use without PyTorch"),
    "report": ("report", "(re)write the run's HTML report"),
    "info": ("info", "what a run holds: config, data, metrics"),
    "serve": ("serve", "serve a run or detector over HTTP (needs vaekit[serve])"),
}
# Commands whose work is shared by the processes torchrun starts; the others run on rank 0 alone.
DISTRIBUTED = ("train", "detect", "encode", "reconstruct", "impute")


class _Parser(argparse.ArgumentParser):
    """argparse with vaekit's one-line errors: what is wrong and where to read more, exit
    status 2, instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but options no parser knows are blamed on the command they were given
        to (``vaekit train: error: unrecognized arguments``), not on ``vaekit``."""
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self
            for name in ("command", "action"):  # the deepest subcommand the arguments reached
                choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                                and a.dest == name), None)
                if choices is None or getattr(args, name, None) not in choices:
                    break
                parser = choices[getattr(args, name)]
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return args


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vaekit", description="Train and use autoencoders and variational autoencoders.")
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(f"vaekit.commands.{module_name}")
        p = sub.add_parser(name, help=summary, description=module.__doc__.strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def _one_line_warnings(command: str, show):
    """``warnings.showwarning`` that prints vaekit's own warnings as one line, options named as
    flags (``vaekit detect: warning: ...``), and leaves the others to ``show``."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if isinstance(message, VaekitWarning):
            print(f"vaekit {command}: warning: {message.for_command_line()}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help and --version (0), or bad arguments, already said in one line (2)
        return e.code
    if launched() and args.command not in DISTRIBUTED and os.environ.get("RANK", "0") != "0":
        return 0  # started by torchrun but not a command that shares work: rank 0 runs it alone
    stop_on_sigterm(args.command)
    distributed.resume_hint = ""  # set by training once it has a run folder to continue
    status, message = 2, None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args.command, warnings.showwarning)
            status = args.handler(args) or 0
    except PeerError:  # under torchrun: another rank failed and printed why
        pass
    except VaekitError as e:
        message = f"error: {e.for_command_line()}"  # options named as flags, not as API parameters
    except OSError as e:  # a path the user gave cannot be read or written (permissions, disk full...)
        where = f" ({e.filename})" if e.filename else ""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):  # every file written so far is whole (atomic writes)
            message = (f"error: no space left on the device{where}; free some space"
                       f"{render(distributed.resume_hint, command_line=True) or ' and run the command again'}")
        else:
            message = f"error: {e.strerror or e}{where}; check the path and its permissions"
    except KeyboardInterrupt:  # during training, also where the run stands and how to go on
        status, message = 130, "interrupted" + render(distributed.resume_hint, command_line=True)
    finally:
        ignore_sigterm()  # the process is ending anyway: nothing left to interrupt
    if message is not None:
        print(f"vaekit {args.command}: {message}", file=sys.stderr)
    leave()
    return status


def console() -> None:
    """The ``vaekit`` command (and ``python -m vaekit``): :func:`main`, then the exit.

    A torchrun worker skips the interpreter's teardown: torch's communication threads can
    still abort the process there (SIGABRT, "terminate called without an active exception",
    about one job in a hundred on a busy machine) after a run that succeeded, and torchrun then
    calls the whole job failed. Every file vaekit wrote is closed by then."""
    status = main()
    if launched():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    console()
