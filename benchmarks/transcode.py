"""What storing training pairs as video costs: PSNR of each transcoded half against its PNG, and disk size.

    python benchmarks/transcode.py --json benchmarks/results/transcode_cpu.json

Data: ``--clips`` stretches of ``--frames`` frames of ``--source`` (default: the 1280x720 cockatoo footage)
blurred with `pipeline.data.synth` (DVD's 7-frame exposures), stored as PNG frame folders and as one
side-by-side pair video per codec at the project's default quality, a keyframe every 8 frames
(`pipeline.data.pairs`), exactly as ``prepare_data.py`` stores them. Each pair video is decoded and each
half scored against the PNG it was made from (`pipeline.data.prepare.transcode_psnr`: mean per-frame PSNR,
no border crop); sizes are the files on disk.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pipeline.checkout import FOOTAGE
from pipeline.data.datasets import Manifest, discover_frame_pairs
from pipeline.data.pairs import CODECS, stack_pair
from pipeline.data.prepare import transcode_psnr
from pipeline.data.synth import SynthConfig
from pipeline.measure.ingest import make_data
from pipeline.measure.runinfo import write_document
from pipeline.runtime import compute_device
from pipeline.video.sequences import read_image


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", type=Path, default=FOOTAGE / "cockatoo.mp4", help="sharp footage")
    parser.add_argument("--clips", type=int, default=3, help="clips (default 3)")
    parser.add_argument("--frames", type=int, default=30, help="frames per clip (default 30)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    codecs = list(CODECS)
    with tempfile.TemporaryDirectory(prefix="transcode_") as scratch:
        work = Path(scratch)
        data = make_data(args.source, work, clips=args.clips, clip_frames=args.frames, codecs=codecs,
                         config=SynthConfig())
        pairs = {pair.name: pair for pair in discover_frame_pairs(work / "png")}
        rows = {}
        for codec in codecs:
            manifest = Manifest.load(work / codec / "manifest.json")
            scores = []
            for video in manifest.videos:
                pair = pairs[video.name]
                originals = (stack_pair(read_image(blurred), read_image(sharp))
                             for blurred, sharp in zip(pair.blurred, pair.sharp))
                scores.append(transcode_psnr(manifest.video_path(video), originals))
            rows[codec] = {"encoder": CODECS[codec].encoder, "pix_fmt": CODECS[codec].pix_fmt,
                           "quality": CODECS[codec].default_quality,
                           "blurred_psnr_db": float(np.mean([s["blurred"] for s in scores])),
                           "sharp_psnr_db": float(np.mean([s["sharp"] for s in scores])),
                           "megabytes": data["megabytes"][codec]}
    table = Table(title=f"{args.clips} clips x {args.frames} frames at {data['frame_size']}; PNG: "
                        f"{data['megabytes']['png']} MB")
    for column in ("codec", "quality", "blurred half vs PNG", "sharp half vs PNG", "on disk"):
        table.add_column(column, justify="left" if column == "codec" else "right")
    for codec, row in rows.items():
        table.add_row(f"{codec} {row['pix_fmt']}", str(row["quality"]), f"{row['blurred_psnr_db']:.1f} dB",
                      f"{row['sharp_psnr_db']:.1f} dB", f"{row['megabytes']:.1f} MB")
    Console().print(table)
    write_document(args.json, "transcode", compute_device("cpu"), argv, {"data": data, "codecs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
