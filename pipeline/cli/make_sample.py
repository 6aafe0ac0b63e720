"""Make the bundled demo sample: a short real clip, blurred the DVD/GOPRO way, and its sharp frames.

    python scripts/make_sample.py --source samples/footage/tree.avi --out samples/

Takes frames ``--start`` .. ``--start + --frames + --window - 2`` of the source (by default the handheld
320x240 15 fps ``tree.avi``, a clip held out of the default checkpoint's training), downscales them to
``--width`` x ``--height`` (area averaging) when they are larger, blurs them with ``pipeline/synth.py``
(each blurred frame the linear-light mean of ``--window`` consecutive frames) and writes
``<name>_blurred.mp4`` and ``<name>_sharp.mp4``: ``--frames`` frames each, H.264 yuv420p as
`pipeline.data.pairs.SAMPLE_ENCODE` says (CRF ``--crf``, a keyframe every 8 frames). Frame i of the sharp
video is the middle frame of the exposure that made frame i of the blurred one.
"""
import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path

import av
from rich.console import Console
from rich.table import Table

from pipeline import metrics
from pipeline.checkout import FOOTAGE
from pipeline.cli import fail
from pipeline.data.pairs import SAMPLE_ENCODE, VideoEncoder, resize
from pipeline.data.synth import SynthConfig, synthesize
from pipeline.video.probe import probe
from pipeline.video.sequences import read_frames

TREE = FOOTAGE / "tree.avi"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=TREE, help=f"sharp video (default {TREE})")
    parser.add_argument("--out", type=Path, default=Path("samples"), help="output folder (default samples/)")
    parser.add_argument("--name", default="tree", help="file names: NAME_blurred.mp4, NAME_sharp.mp4")
    parser.add_argument("--start", type=int, default=22, help="first source frame used (default 22)")
    parser.add_argument("--frames", type=int, default=40, help="frames in the sample (default 40)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--window", type=int, default=7, help="frames averaged per blurred frame (default 7)")
    parser.add_argument("--upsample", type=int, default=1,
                        help="interpolation before averaging (default 1: none)")
    parser.add_argument("--crf", type=int, default=SAMPLE_ENCODE.quality,
                        help=f"x264 CRF (default {SAMPLE_ENCODE.quality})")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    console = Console()
    try:
        config = SynthConfig(window=args.window, upsample=args.upsample, linear_light=True)
        settings = replace(SAMPLE_ENCODE, quality=args.crf)
        end = args.start + args.frames + args.window - 1
        frames = itertools.islice(read_frames(args.source), args.start, end)
        args.out.mkdir(parents=True, exist_ok=True)
        fps = probe(args.source).fps
        with (VideoEncoder(args.out / f"{args.name}_blurred.mp4", fps=fps, settings=settings) as blurred,
              VideoEncoder(args.out / f"{args.name}_sharp.mp4", fps=fps, settings=settings) as sharp):
            psnrs = []
            sized = (f if f.shape[:2] == (args.height, args.width) else resize(f, args.width, args.height)
                     for f in frames)
            for pair in synthesize(sized, config):
                blurred.write(pair.blurred)
                sharp.write(pair.sharp)
                psnrs.append(metrics.psnr(pair.blurred, pair.sharp))
            if blurred.frames != args.frames:
                raise ValueError(f"{args.source} has fewer than {end} frames")
    except (ValueError, OSError, av.FFmpegError) as error:
        return fail(console, error)
    table = Table(title=f"sample from {args.source.name}, frames {args.start}.., window {config.window}, "
                        f"upsample {config.upsample}, linear light")
    for column in ("file", "frames", "size", "KB"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for encoder in (blurred, sharp):
        table.add_row(str(encoder.path), str(encoder.frames), f"{encoder.width}x{encoder.height}",
                      f"{encoder.path.stat().st_size / 1024:.0f}")
    console.print(table)
    console.print(f"blurred vs sharp PSNR (crop 4), mean over frames: {sum(psnrs) / len(psnrs):.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
