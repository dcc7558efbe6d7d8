"""Export a run or detector as ONNX files (encoder, decoder, and a detector's scorer) that
run without PyTorch, e.g. in ONNX Runtime."""
from __future__ import annotations

import argparse

from ._common import add_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    p.add_argument("--format", choices=("onnx",), default="onnx", help="file format (onnx)")
    p.add_argument("--out", metavar="DIR", help="folder for the files (default: RUN/onnx)")


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..runfolder import RunFolder

    RunFolder.open(args.run)
    for path in export_onnx(args.run, args.out):
        print(path)
    return 0
