"""Score restored videos against ground truth: PSNR/SSIM per frame, per video and overall (official protocol).

    python scripts/evaluate.py data/DVD/test --restored outputs/ --blurred --json scores.json
    python scripts/evaluate.py sharp.mp4 --restored restored.mp4 --blurred blurred.mp4 --csv frames.csv
    python scripts/evaluate.py data/DVD/test --checkpoint CDVD_TSP_DVD_Convergent.pt --blurred --json dvd.json

GROUND_TRUTH is either an evaluation root, ``<root>/{blur,gt}/<video>/`` or
``<root>/<video>/{blur,gt|sharp}/`` (see `pipeline.data.datasets`), or one sequence (a video file or a
folder of PNG/JPG frames).

* With a root, ``--restored`` holds one sequence per video (``<restored>/<video>/`` or
  ``<restored>/<video>.<ext>``) and a bare ``--blurred`` also scores the layout's blurred input as a baseline.
* With one sequence, ``--restored`` and ``--blurred PATH`` are single sequences too.
* ``--checkpoint`` runs the model (streaming engine, ``--config``/``--set`` as in ``deblur``) on each
  video's blurred input instead of reading outputs; every frame is restored (border policy
  ``deblur.border``).
* ``--skip-ends 2`` scores frames 2 .. N-3 only, as the paper's tables do (the official ``inference.py``
  without ``--border`` restores only those); the default scores every frame.

Frames are paired by order. Protocol: RGB uint8, ``--crop`` (4) px cut from every side, PSNR with peak 255,
MATLAB-style SSIM (11x11 Gaussian, sigma 1.5, per channel, valid region); the average row is the mean over all
frames, not over videos. ``--json`` writes the protocol, per-video, average and per-frame figures; ``--csv``
one row per frame. Non-finite PSNR (identical frames) is ``inf`` in CSV and ``null`` in JSON.
"""
import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli import add_device_option, fail
from pipeline.config import load_config
from pipeline.data.datasets import VideoPaths, discover
from pipeline.data.scored import Video
from pipeline.evaluation import (
    model_restore_fn,
    outputs_restore_fn,
    report,
    score,
    summaries,
    write_csv,
)
from pipeline.metrics import Scores, Summary
from pipeline.runtime import build_model, compute_device, weights_to_load
from pipeline.video.sequences import is_sequence


def summary_table(restored: Scores, inputs: Scores | None) -> Table:
    """A table like the paper's: a row per video, then the average; input columns and gain with a baseline."""
    table = Table(title=f"PSNR (dB) / SSIM, official protocol (crop {restored.crop})",
                  caption="average: mean over all frames")
    columns = ["video", "frames"] + (["input PSNR", "input SSIM"] if inputs else [])
    columns += ["restored PSNR", "restored SSIM"] + (["gain (dB)"] if inputs else [])
    for column in columns:
        table.add_column(column, justify="left" if column == "video" else "right")

    def cells(name: str, out: Summary, inp: Summary | None) -> list[str]:
        figures = [f"{inp.psnr:.2f}", f"{inp.ssim:.4f}"] if inp else []
        figures += [f"{out.psnr:.2f}", f"{out.ssim:.4f}"] + ([f"{out.psnr - inp.psnr:+.2f}"] if inp else [])
        return [name, str(out.frames)] + figures

    videos, average = summaries(restored, inputs)
    for row in videos:
        table.add_row(*cells(*row))
    table.add_section()
    table.add_row(*cells(*average))
    return table


def _videos(ground_truth: Path, blurred: str | bool | None) -> list[Video]:
    """The videos to score; ``blurred`` is None, True (bare ``--blurred``) or a path."""
    if is_sequence(ground_truth):
        if blurred is True:
            raise ValueError(f"--blurred needs a PATH when GROUND_TRUTH is one sequence ({ground_truth})")
        return [Video.of(VideoPaths(ground_truth.stem, ground_truth, Path(blurred) if blurred else None))]
    if isinstance(blurred, str):
        raise ValueError(f"--blurred takes no PATH when GROUND_TRUTH is an evaluation root ({ground_truth}): "
                         f"its blur folders are used")
    return [Video.of(paths) for paths in discover(ground_truth)]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ground_truth", type=Path, help="evaluation root, or one video file / frame folder")
    # where restored frames come from (default: the default model)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--restored", type=Path,
                        help="existing outputs: a folder with one per video, or one sequence")
    source.add_argument("--checkpoint", type=Path,
                        help="run this model (project or official .pt) on the blurred input "
                             "(default, without --restored: the bundled default checkpoint)")
    parser.add_argument("--config", type=Path, help="YAML config for --checkpoint runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    add_device_option(parser)
    parser.add_argument("--blurred", nargs="?", const=True, metavar="PATH",
                        help="also score the blurred input (bare with an evaluation root; PATH otherwise)")
    parser.add_argument("--crop", type=int, default=4, help="pixels cut from every side (default 4)")
    parser.add_argument("--skip-ends", type=int, default=0, metavar="N",
                        help="frames not scored at each end of every video "
                             "(2: the paper's tables; default 0)")
    parser.add_argument("--json", type=Path, help="write per-video, average and per-frame figures as JSON")
    parser.add_argument("--csv", type=Path, help="write one row per frame as CSV")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    console = Console()
    try:
        videos = _videos(args.ground_truth, args.blurred)
        config = load_config(args.config, args.set)
        if not args.restored and not args.checkpoint:
            args.checkpoint = weights_to_load(None, config)
            if args.checkpoint is None:
                raise ValueError("give --restored or --checkpoint (the default checkpoint is not installed)")
        if args.checkpoint:
            device = compute_device(args.device)
            model = build_model(config, args.checkpoint)[0].to(device).eval()
            restore_fn = model_restore_fn(model, config.deblur, device, args.checkpoint.name)
        else:
            restore_fn = outputs_restore_fn(args.restored, single=is_sequence(args.ground_truth))
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} frames"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("scoring", total=None)
            restored, inputs = score(
                videos, restore_fn, crop=args.crop, baseline=args.blurred is not None,
                skip_ends=args.skip_ends,
                on_frame=lambda video: progress.update(task, advance=1, description=video))
        console.print(summary_table(restored, inputs))
        if args.json:
            sources = {"ground_truth": str(args.ground_truth),
                       "restored": str(args.restored or f"model {args.checkpoint}")}
            args.json.parent.mkdir(parents=True, exist_ok=True)
            document = report(restored, inputs, sources)
            args.json.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            write_csv(args.csv, restored, inputs)
    except (ValueError, OSError) as error:
        return fail(console, error)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
