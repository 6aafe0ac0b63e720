"""Profile CDVD-TSP: where the time goes, end to end and per stage, with the comparisons that matter.

    python scripts/profiler.py                                   # every mode on the bundled sample
    python scripts/profiler.py model --size 1280x720 --precision fp32 bf16 --trace model.json
    python scripts/profiler.py decode end-to-end --clip footage.mp4 --frames 300
    python scripts/profiler.py ingest train --set train.batch=4 --json profile.json --chart profile.png

Modes: ``model`` (the engine per precision vs the official schedule, synthetic frames), ``decode`` (each
reader, same clip), ``end-to-end`` (file to file), ``ingest`` (DALI loader vs PNG loader), ``train``
(training step from memory vs from the loader). See `pipeline.measure.profiling` for what each measures.
The model runs with ``--checkpoint``'s weights, else the bundled default checkpoint's, else seeded untrained
ones (speed does not depend on them; the precision figures, output PSNR against fp32, do).
"""
import argparse
import itertools
import json
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from model import CheckpointError
from pipeline.checkout import SAMPLES
from pipeline.cli import FrameSize, add_device_option, command_parser, fail, frame_size
from pipeline.config import ConfigError, load_config
from pipeline.errors import VideoError
from pipeline.measure import profiling
from pipeline.measure.chart import draw
from pipeline.measure.runinfo import command_line, describe, stamp
from pipeline.precision import PRECISIONS
from pipeline.runtime import build_model, compute_device
from pipeline.video.probe import probe
from pipeline.video.sequences import read_frames

SAMPLE = SAMPLES / "cockatoo_blurred.mp4"
SHARP_SAMPLE = SAMPLES / "cockatoo_sharp.mp4"
console = Console(width=None if sys.stdout.isatty() else 160)  # full tables in logs and files


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    # checked in main: argparse rejects list defaults
    parser.add_argument("modes", nargs="*", default=["all"], metavar="MODE",
                        help=f"any of {', '.join(profiling.MODES)}, or all (default)")
    parser.add_argument("--clip", type=Path, default=SAMPLE,
                        help="video for decode and end-to-end (default: the sample)")
    parser.add_argument("--size", type=frame_size,
                        help="WxH: resize the clip (and the model's synthetic frames) to this")
    parser.add_argument("--frames", type=int, default=24,
                        help="frames of the clip used / synthesised (default 24)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repetitions after one warm-up (default 3)")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS,
                        help="model and end-to-end precisions (default fp32, plus bf16 on a GPU)")
    add_device_option(parser)
    parser.add_argument("--checkpoint", type=Path, help="weights (project or official .pt)")
    parser.add_argument("--config", type=Path, help="YAML config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--source", type=Path, default=SHARP_SAMPLE,
                        help="sharp footage for ingest/train data")
    parser.add_argument("--clips", type=int, default=3,
                        help="training clips synthesised from --source (default 3)")
    parser.add_argument("--clip-frames", type=int, default=24, help="frames per training clip (default 24)")
    parser.add_argument("--crop", type=int,
                        help="training crop (default: train.crop, or less to fit the data)")
    parser.add_argument("--batch-size", type=int, default=4, help="ingest batch size (default 4)")
    parser.add_argument("--batches", type=int, default=10,
                        help="timed ingest batches per epoch, more than the loaders read ahead (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="PNG DataLoader workers (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="DALI threads (default 2)")
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed run (default 2)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--chart", type=Path, help="write the PNG chart here")
    parser.add_argument("--trace", type=Path, help="torch.profiler Chrome trace of one model-mode run")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _size(size: FrameSize) -> FrameSize:
    if size.width < 8 or size.height < 8 or size.width % 2 or size.height % 2:
        raise ValueError(f"--size must be even and at least 8x8, got {size}")
    return size


def _spread(values: dict, digits: str = ".2f") -> str:
    return f"{values['median']:{digits}} [{values['min']:{digits}}-{values['max']:{digits}}]"


def _megabytes(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def show(result: dict, title: str) -> None:
    """Rich tables of one mode: configurations, stage breakdown, ratios."""
    unit = result["unit"]
    table = Table(title=title, title_justify="left")
    for column in ("configuration", f"{unit}s/s", f"ms/{unit}", "CPU cores", "host peak MB", "GPU peak MB",
                   "notes"):
        table.add_column(column, justify="left" if column in ("configuration", "notes") else "right")
    for config in result["configurations"]:
        extra = []
        if "achieved_tflops" in config:
            peak = config["matmul_peak_tflops"]
            extra.append(f"{config['achieved_tflops']:.3g} TFLOP/s "
                         f"({100 * config['achieved_tflops'] / peak:.0f}% of matmul {peak:.3g})")
            if config["datasheet_peak_tflops"]:
                extra.append(f"{100 * config['achieved_tflops'] / config['datasheet_peak_tflops']:.1f}"
                             "% of datasheet")
        if config.get("psnr_vs_fp32_db") is not None:
            extra.append(f"vs fp32 {config['psnr_vs_fp32_db']:.1f} dB")
        if "reader" in config and result["mode"] == "end-to-end":
            extra.append(f"reader {config['reader']}")
        table.add_row(config["name"], _spread(config["rate"]), _spread(config["ms_per_item"], ".1f"),
                      f"{config['cpu_cores']:.2f}", _megabytes(config["memory"]["host_mb"]),
                      _megabytes(config["memory"]["gpu_mb"]), "; ".join(extra))
    console.print(table)
    with_stages = [c for c in result["configurations"] if c["stages"]]
    if with_stages:
        stages = Table(title=f"{result['mode']}: stage breakdown, ms per {unit}", title_justify="left")
        stages.add_column("stage")
        stages.add_column("thread")
        for config in with_stages:
            stages.add_column(config["name"], justify="right")
        names = list(dict.fromkeys(s for c in with_stages for s in c["stages"]))
        for name in names:
            thread = next(c["stages"][name]["thread"] for c in with_stages if name in c["stages"])
            stages.add_row(name, thread, *(f"{c['stages'][name]['ms_per_item']:.2f}" if name in c["stages"]
                                           else "-" for c in with_stages))
        console.print(stages)
    for name, value in result["ratios"].items():
        console.print(f"  {name}: [bold]{value:.3f}[/]")
    for note in result["notes"]:
        console.print(f"  [dim]{note}[/]")


def run(args, work: Path) -> dict:
    config = load_config(args.config, args.set)
    device = compute_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: no CUDA device here")
    modes = list(profiling.MODES) if "all" in args.modes else list(dict.fromkeys(args.modes))
    precisions = args.precision or (["fp32", "bf16"] if device.type == "cuda" else ["fp32"])
    model, weights = build_model(config, args.checkpoint)
    model = model.to(device).eval()
    info = probe(args.clip)
    size = _size(args.size) if args.size else (info.width - info.width % 2, info.height - info.height % 2)
    frames = min(args.frames, info.num_frames)
    # the profiled clip: the first --frames frames at --size, H.264 (or the clip itself when already that)
    clip = args.clip
    if (frames, size) != (info.num_frames, (info.width, info.height)):
        clip = profiling.encode_clip(itertools.islice(read_frames(args.clip), frames), work / "clip", "h264",
                                     info.fps, size)
    deblur = config.deblur
    results, data = {}, None
    title = describe(device)
    for mode in modes:
        console.print(f"[bold]profiling {mode}[/] on {title} ...")
        if mode == "model":
            result = profiling.profile_model(model, deblur, device, frames=frames, height=size[1],
                                             width=size[0], repeats=args.repeats, precisions=precisions,
                                             trace=args.trace)
        elif mode == "decode":
            result = profiling.profile_decode(clip, device, chunk=deblur.chunk, repeats=args.repeats,
                                              work=work)
        elif mode == "end-to-end":
            result = profiling.profile_end_to_end(model, clip, deblur, device, precisions=precisions,
                                                  repeats=args.repeats, work=work)
        else:
            if data is None:
                with console.status("synthesising training data"):
                    data = profiling.training_data(args.source, work / "train", device, clips=args.clips,
                                                   clip_frames=args.clip_frames)
            width, height = frame_size(data["frame_size"])
            crop = args.crop or min(config.train.crop, (min(width, height) // 4) * 4)
            if mode == "ingest":
                result = profiling.profile_ingest(data, device, crop=crop, batch_size=args.batch_size,
                                                  batches=args.batches, repeats=args.repeats,
                                                  workers=args.workers, threads=args.threads)
            else:
                result = profiling.profile_train(replace(config, train=replace(config.train, crop=crop)),
                                                 data, device, steps=args.steps, repeats=args.repeats)
        results[mode] = result
        show(result, f"{mode} on {title}, medians of {args.repeats} [min-max]")
    return {"profile": 1, **stamp(device, command_line(None if args.argv is None else args.argv)),
            "settings": {"modes": modes, "clip": str(args.clip), "size": f"{size[0]}x{size[1]}",
                         "frames": frames, "repeats": args.repeats, "precisions": precisions,
                         "weights": weights, "model": vars(config.model), "deblur": vars(deblur)},
            "results": results}


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    unknown = [mode for mode in args.modes if mode not in (*profiling.MODES, "all")]
    if unknown:
        parser.error(f"unknown mode {unknown[0]!r}: choose from {', '.join(profiling.MODES)} or all")
    args.argv = argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    try:
        if args.repeats < 1 or args.frames < 1 or args.steps < 1 or args.batches < 1:
            raise ValueError("--repeats, --frames, --steps and --batches must be >= 1")
        with tempfile.TemporaryDirectory(prefix="profile_") as work:
            document = run(args, Path(work))
    except (ConfigError, CheckpointError, VideoError, ValueError, OSError) as error:
        return fail(console, error)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")
        console.print(f"wrote {args.json}")
    if args.chart:
        console.print(f"wrote {draw(document, args.chart)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
