"""Output difference of reduced precision from fp32 on real 720p frames, with trained weights.

    python benchmarks/precision.py --clip samples/footage/cockatoo.mp4 \
        --json benchmarks/results/precision_cpu.json

Frames ``--start`` .. ``--start + --frames - 1`` of a real clip (1280x720 cockatoo by default) go through
the streaming engine (`pipeline.stream.restore_frames`) once in fp32 and once per ``--precision`` under
autocast, with ``--checkpoint``, else the default checkpoint, else seeded untrained weights (said in the
results). Reported per precision: PSNR of its uint8 output against the fp32 output, the largest per-pixel
difference in levels, the share of differing pixels, and seconds per frame. Real 720p frames matter: the
warps' sampling positions reach x = 1279 there, where a reduced-precision grid would be off by pixels.
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pipeline.checkout import FOOTAGE
from pipeline.cli import add_device_option
from pipeline.config import DeblurConfig, load_config
from pipeline.measure.runinfo import write_document
from pipeline.metrics import mean_psnr
from pipeline.runtime import build_model, compute_device
from pipeline.stream import restore_frames
from pipeline.video.sequences import read_frames

CLIP = FOOTAGE / "cockatoo.mp4"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clip", type=Path, default=CLIP, help=f"real video (default {CLIP})")
    parser.add_argument("--checkpoint", type=Path, help="weights (default: the bundled default checkpoint)")
    parser.add_argument("--start", type=int, default=60, help="first frame (default 60)")
    parser.add_argument("--frames", type=int, default=5, help="frames restored (default 5)")
    parser.add_argument("--precision", nargs="+", default=["bf16"], choices=["bf16", "fp16"])
    add_device_option(parser)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = compute_device(args.device)
    model, weights = build_model(load_config(), args.checkpoint)
    model = model.to(device).eval()
    frames = list(itertools.islice(read_frames(args.clip), args.start, args.start + args.frames))
    outputs, seconds = {}, {}
    for precision in ["fp32", *args.precision]:
        begin = time.perf_counter()
        outputs[precision] = np.stack(
            list(restore_frames(model, frames, DeblurConfig(precision=precision), device))
        )
        seconds[precision] = (time.perf_counter() - begin) / len(frames)
    reference = outputs["fp32"].astype(np.int16)
    results = {}
    for precision in args.precision:
        difference = np.abs(outputs[precision].astype(np.int16) - reference)
        results[precision] = {
            "psnr_vs_fp32_db": mean_psnr(outputs[precision], outputs["fp32"]),
            "max_levels": int(difference.max()),
            "differing_share": float((difference > 0).mean()),
            "seconds_per_frame": seconds[precision],
            "fp32_seconds_per_frame": seconds["fp32"],
        }
    height, width = frames[0].shape[:2]
    document = {
        "clip": str(args.clip),
        "size": f"{width}x{height}",
        "frames": len(frames),
        "weights": str(weights),
        "results": results,
    }
    table = Table(
        title=f"{args.clip.name}, {width}x{height}, {len(frames)} frames, weights {Path(weights).name}"
    )
    for column in ("precision", "PSNR vs fp32", "max diff (levels)", "pixels differing", "s/frame (fp32)"):
        table.add_column(column, justify="right")
    for precision, row in results.items():
        table.add_row(
            precision,
            f"{row['psnr_vs_fp32_db']:.1f} dB",
            str(row["max_levels"]),
            f"{100 * row['differing_share']:.1f}%",
            f"{row['seconds_per_frame']:.1f} ({row['fp32_seconds_per_frame']:.1f})",
        )
    Console().print(table)
    write_document(args.json, "precision", device, argv, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
