"""Denoise data with a run trained with --noise; with --clean, report PSNR and SSIM of the
noisy input and of the output."""
from __future__ import annotations

import argparse
import sys

from ._common import add_data, add_run, check_output, print_json, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy array, .png grid or .csv rows")
    p.add_argument("--clean", metavar="SPEC", help="the clean data, row for row, to measure the gain")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..errors import VaekitError
    from ..evaluation import denoising_metrics
    from ..run import load

    out = check_output(args.out)
    r = load(args.run)
    schema = r.config.data.table_schema()
    if schema is not None:  # noise is added to numbers; its PSNR and SSIM measure pictures
        raise VaekitError(f"denoise takes images and tables of numbers; {args.run}'s table has categorical or binary "
                          f"columns ({', '.join(c.name for c in schema.columns if c.kind != 'continuous')}); use "
                          "vaekit reconstruct, or vaekit impute for its empty cells")
    noisy = r.dataset(args.data)
    clean = r.dataset(args.clean) if args.clean else None
    if clean is not None and len(clean) != len(noisy):
        raise VaekitError(f"--clean has {len(clean)} samples but --data has {len(noisy)}; give the same rows")
    if r.config.train.noise is None:
        print(f"note: {args.run} was not trained with --noise; its output is a plain reconstruction",
              file=sys.stderr)
    denoised = r.denoise(noisy)
    write_array(out, denoised, r.config.data.layout, r.config.data.columns)
    if clean is None:
        if not args.json:
            print(out)
        else:
            print_json({"n": len(denoised)})
        return 0
    metrics = denoising_metrics(r.to_data_units(clean.batch()), r.to_data_units(noisy.batch()), denoised)
    if args.json:
        print_json(metrics)
        return 0
    print(out)
    print(f"PSNR  noisy {metrics['psnr_noisy']:.2f} dB -> denoised {metrics['psnr_denoised']:.2f} dB "
          f"({metrics['psnr_gain']:+.2f} dB)")
    if metrics["ssim_noisy"] is not None:
        print(f"SSIM  noisy {metrics['ssim_noisy']:.3f} -> denoised {metrics['ssim_denoised']:.3f}")
    return 0
