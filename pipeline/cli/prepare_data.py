"""Prepare training data: paired short-GOP videos (blurred | sharp side by side) and a manifest.json.

    python scripts/prepare_data.py import data/DVD/train data/dvd_train --split train --codec h264
    python scripts/prepare_data.py import data/GOPRO/test data/gopro_test --split test --codec vp9
    python scripts/prepare_data.py synth footage/*.mp4 --out data/synth --upsample 4 --max-width 640

``import`` reads a DVD/GOPRO frame-folder dataset (``<root>/{blur,gt}/<video>/`` or
``<root>/<video>/{blur,gt|sharp}/``), writes one paired video per video and prints the PSNR of each
transcoded half against the original frames, which are left untouched (evaluate on them). ``synth`` blurs
sharp videos by averaging consecutive frames (``pipeline/synth.py``), one paired video per shot between
scene cuts, and holds out whole source videos for validation.

Codecs: ``h264`` (NVDEC: DALI on a GPU), ``vp9`` or ``mjpeg`` (also decodable by DALI on the CPU).
"""
import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli import fail
from pipeline.data.datasets import Manifest, discover_frame_pairs
from pipeline.data.pairs import CODECS, EncodeSettings
from pipeline.data.prepare import holdout, import_frame_pair, synth_footage
from pipeline.data.synth import SynthConfig


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--codec", choices=list(CODECS), default="vp9", help="default vp9 (CPU and GPU DALI)")
    common.add_argument("--keyint", type=int, default=8,
                        help="frames between keyframes (default 8; 4-10 suits DALI)")
    common.add_argument("--quality", type=int, help="CRF for h264/vp9, q-scale for mjpeg (default 16/20/2)")
    common.add_argument("--max-frames", type=int, help="use only the first frames of each video")
    common.add_argument("--overwrite", action="store_true", help="replace an existing manifest and videos")

    imports = modes.add_parser("import", parents=[common], help="frame-folder dataset -> paired videos")
    imports.add_argument("root", type=Path, help="dataset root (DVD or GOPRO layout)")
    imports.add_argument("out", type=Path, help="output folder (videos and manifest.json)")
    imports.add_argument("--split", default="train", help="split name of every video (default train)")
    imports.add_argument("--fps", type=Fraction, default=Fraction(30), help="frame rate (default 30)")

    synth = modes.add_parser("synth", parents=[common], help="sharp videos -> synthetic blurred/sharp pairs")
    synth.add_argument("videos", type=Path, nargs="+", help="sharp source videos (any format FFmpeg reads)")
    synth.add_argument("--out", type=Path, required=True, help="output folder (videos and manifest.json)")
    synth.add_argument("--window", type=int, default=7, help="sharp frames averaged per blurred frame (odd)")
    synth.add_argument("--stride", type=int, default=1, help="source frames between output frames")
    synth.add_argument("--upsample", type=int, default=1, help="linear interpolation factor before averaging")
    synth.add_argument("--gamma-space", action="store_true", help="average sRGB values, not linear light")
    synth.add_argument("--max-width", type=int, help="downscale wider videos to this width (aspect kept)")
    synth.add_argument("--min-frames", type=int, default=5, help="drop shots with fewer output frames")
    synth.add_argument("--val", action="append", default=[], metavar="NAME",
                       help="source video (file stem) held out for validation; repeatable")
    synth.add_argument("--val-fraction", type=float, default=0.2, help="else hold out this fraction (seeded)")
    synth.add_argument("--seed", type=int, default=0)
    return parser


def _progress(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               TimeElapsedColumn())
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


def _import(args, settings: EncodeSettings, console: Console) -> Manifest:
    pairs = discover_frame_pairs(args.root)
    args.out.mkdir(parents=True, exist_ok=True)
    videos = []
    with _progress(console) as progress:
        total = sum(min(p.frames, args.max_frames or p.frames) for p in pairs)
        task = progress.add_task("importing", total=total)
        for pair in pairs:
            progress.update(task, description=pair.name)
            videos.append(import_frame_pair(
                pair, args.out / f"{pair.name}{settings.suffix}", settings=settings, split=args.split,
                fps=args.fps, max_frames=args.max_frames, on_frame=lambda: progress.advance(task)))
    table = Table(title=f"transcode cost ({settings.codec}, keyint {settings.keyint}): "
                        "PSNR vs the original frames")
    for column in ("video", "frames", "size", "MB", "blurred dB", "sharp dB"):
        table.add_column(column, justify="left" if column == "video" else "right")
    for video in videos:
        megabytes = (args.out / video.path).stat().st_size / 1e6
        table.add_row(video.name, str(video.frames), f"{video.width}x{video.height}", f"{megabytes:.1f}",
                      _db(video.psnr["blurred"]), _db(video.psnr["sharp"]))
    table.add_section()
    table.add_row("mean", str(sum(v.frames for v in videos)), "", "",
                  *(_db(_mean([v.psnr[k] for v in videos])) for k in ("blurred", "sharp")))
    console.print(table)
    return Manifest(videos)


def _mean(values: list[float | None]) -> float | None:
    return None if None in values else sum(values) / len(values)


def _db(value: float | None) -> str:
    return "lossless" if value is None else f"{value:.2f}"


def _synth(args, settings: EncodeSettings, console: Console) -> Manifest:
    config = SynthConfig(window=args.window, stride=args.stride, linear_light=not args.gamma_space,
                         upsample=args.upsample)
    names = [video.stem for video in args.videos]
    if len(set(names)) != len(names):
        raise ValueError(f"source videos need distinct file names, got {names}")
    held_out = holdout(names, fraction=args.val_fraction, seed=args.seed, chosen=args.val)
    args.out.mkdir(parents=True, exist_ok=True)
    videos = []
    with _progress(console) as progress:
        task = progress.add_task("synthesising", total=None)
        for video in args.videos:
            progress.update(task, description=video.name)
            videos += synth_footage(video, args.out, config=config, settings=settings,
                                    split="val" if video.stem in held_out else "train",
                                    max_width=args.max_width, min_frames=args.min_frames,
                                    max_frames=args.max_frames, on_frame=lambda: progress.advance(task))
    table = Table(title=f"synthetic pairs (window {config.window}, stride {config.stride}, upsample "
                        f"{config.upsample}, {'linear light' if config.linear_light else 'sRGB'})")
    for column in ("video", "split", "frames", "size", "MB"):
        table.add_column(column, justify="left" if column == "video" else "right")
    for video in videos:
        table.add_row(video.name, video.split, str(video.frames), f"{video.width}x{video.height}",
                      f"{(args.out / video.path).stat().st_size / 1e6:.2f}")
    console.print(table)
    if not videos:
        raise ValueError(f"no shot had {args.min_frames} output frames")
    return Manifest(videos)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    console = Console()
    manifest_path = args.out / "manifest.json"
    try:
        if manifest_path.exists() and not args.overwrite:
            raise ValueError(f"{manifest_path} exists (use --overwrite to replace it)")
        settings = EncodeSettings(codec=args.codec, keyint=args.keyint, quality=args.quality)
        manifest = (_import if args.mode == "import" else _synth)(args, settings, console)
    except (ValueError, OSError, av.FFmpegError) as error:
        return fail(console, error)
    manifest.save(manifest_path)
    console.print(f"{len(manifest.videos)} paired videos, {sum(v.frames for v in manifest.videos)} frames -> "
                  f"{manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
