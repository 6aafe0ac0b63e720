"""Score restored videos against ground truth: PSNR/SSIM per frame, per video and overall (official protocol).

    python scripts/evaluate.py data/DVD/test --restored outputs/ --blurred --json scores.json
    python scripts/evaluate.py sharp.mp4 --restored restored.mp4 --blurred blurred.mp4 --csv frames.csv
    python scripts/evaluate.py data/DVD/test --checkpoint CDVD_TSP_DVD_Convergent.pt --blurred --json dvd.json

GROUND_TRUTH is either an evaluation root, ``<root>/{blur,gt}/<video>/`` or
``<root>/<video>/{blur,gt|sharp}/`` (see ``pipeline/framesource.py``), or one sequence (a video file or a
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
import collections
import csv
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from model import load_checkpoint
from pipeline import metrics
from pipeline.config import checkpoint_model_config, load_config, weights_to_load
from pipeline.deblur import restore_frames
from pipeline.framesource import (BLUR_NAME, VideoPair, discover, find_sequence, is_sequence, read_frames,
                                  zip_frames)
from pipeline.metrics import FrameScore, Scores, Summary

RestoreFn = Callable[[VideoPair], tuple[str, Iterable[np.ndarray]]]
"""Supplies the restored frames of one video: ``pair -> (label, frames)``, frames uint8 ``(H, W, 3)`` in
order, the label naming their source in error messages. Reading existing outputs is one such function;
running a model over ``pair.blurred`` is another."""


def outputs_restore_fn(restored: Path, *, single: bool) -> RestoreFn:
    """Read existing outputs: ``restored`` itself when ``single``, else ``restored/<video>[.<ext>]``."""
    def restore(pair: VideoPair) -> tuple[str, Iterable[np.ndarray]]:
        path = restored if single else find_sequence(restored, pair.name)
        if path is None:
            raise ValueError(f"{restored}: no restored output for video {pair.name!r} "
                             f"(expected {restored / pair.name}/ or {restored / pair.name}.<ext>)")
        return str(path), read_frames(path)
    return restore


def score(pairs: Sequence[VideoPair], restore_fn: RestoreFn, *, crop: int = 4, baseline: bool = False,
          skip_ends: int = 0, on_frame: Callable[[str], None] = lambda video: None) -> tuple[Scores, Scores | None]:
    """Score each video's restored frames, and with ``baseline`` its blurred input, against its ground truth.

    ``skip_ends`` frames at each end of every video are not scored (2 is the official test protocol,
    whose ``inference.py`` restores frames 2 .. N-3 only).

    Returns ``(restored scores, input scores or None)``; ``on_frame(video)`` is called after every frame.
    Raises ValueError on a missing blurred input or a frame count/size mismatch (naming the paths).
    """
    if skip_ends < 0:
        raise ValueError(f"skip_ends must be >= 0, got {skip_ends}")
    if baseline:
        missing = [pair.name for pair in pairs if pair.blurred is None]
        if missing:
            raise ValueError(f"no blurred input for video(s) {', '.join(missing)} (no '{BLUR_NAME}' folder)")
    restored_scores, input_scores = Scores(crop), Scores(crop) if baseline else None
    for pair in pairs:
        streams = [(str(pair.gt), read_frames(pair.gt)), restore_fn(pair)]
        if baseline:
            streams.append((str(pair.blurred), read_frames(pair.blurred)))
        held = collections.deque()  # the last skip_ends frames seen, scored once a later one arrives
        for index, (gt, restored, *blurred) in enumerate(zip_frames(*streams)):
            on_frame(pair.name)
            if index < skip_ends:
                continue
            held.append((gt, restored, blurred))
            if len(held) > skip_ends:
                gt, restored, blurred = held.popleft()
                restored_scores.add(pair.name, restored, gt)
                if baseline:
                    input_scores.add(pair.name, blurred[0], gt)
    return restored_scores, input_scores


Row = tuple[str, Summary, Summary | None]


def _summaries(restored: Scores, inputs: Scores | None) -> tuple[list[Row], Row]:
    """``(video, restored summary, input summary or None)`` per video, and the same for the average."""
    input_videos = inputs.per_video() if inputs else {}
    videos = [(name, summary, input_videos.get(name)) for name, summary in restored.per_video().items()]
    return videos, ("average", restored.overall(), inputs.overall() if inputs else None)


def _frame_pairs(restored: Scores, inputs: Scores | None) -> list[tuple[FrameScore, FrameScore | None]]:
    return list(zip(restored.frames, inputs.frames if inputs else [None] * len(restored.frames)))


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

    videos, average = _summaries(restored, inputs)
    for row in videos:
        table.add_row(*cells(*row))
    table.add_section()
    table.add_row(*cells(*average))
    return table


def _figures(item: Summary | FrameScore) -> dict:
    """``{"psnr": dB, or None when infinite, "ssim": ...}``."""
    return {"psnr": item.psnr if math.isfinite(item.psnr) else None, "ssim": item.ssim}


def _entry(out: Summary | FrameScore, inp: Summary | FrameScore | None) -> dict:
    return {"restored": _figures(out)} | ({"input": _figures(inp)} if inp else {})


def report(restored: Scores, inputs: Scores | None, sources: dict[str, str]) -> dict:
    """The JSON document: sources, protocol, per-video and average summaries, per-frame figures.

    Figures are ``{"psnr": dB or null when infinite, "ssim": ...}`` under ``"restored"`` and, with a
    baseline, ``"input"``.
    """
    videos, (_, average, average_input) = _summaries(restored, inputs)
    return {
        "sources": sources,
        "protocol": {"crop": restored.crop, "psnr_peak": metrics.PEAK,
                     "ssim": f"{metrics.WINDOW_SIZE}x{metrics.WINDOW_SIZE} Gaussian window, sigma "
                             f"{metrics.WINDOW_SIGMA}, per channel, valid region, C1=(0.01*255)^2, "
                             f"C2=(0.03*255)^2",
                     "average": "mean over all frames"},
        "videos": [{"video": name, "frames": out.frames, **_entry(out, inp)} for name, out, inp in videos],
        "average": {"frames": average.frames, **_entry(average, average_input)},
        "frames": [{"video": out.video, "frame": out.index, **_entry(out, inp)}
                   for out, inp in _frame_pairs(restored, inputs)],
    }


def write_csv(path: Path, restored: Scores, inputs: Scores | None) -> None:
    """One row per frame: video, frame, restored_psnr, restored_ssim[, input_psnr, input_ssim]."""
    header = ["video", "frame", "restored_psnr", "restored_ssim"]
    header += ["input_psnr", "input_ssim"] if inputs else []
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for out, inp in _frame_pairs(restored, inputs):
            figures = [out.psnr, out.ssim] + ([inp.psnr, inp.ssim] if inp else [])
            writer.writerow([out.video, out.index, *figures])


def model_restore_fn(checkpoint: Path, config_path: Path | None, overrides: list[str], device: str | None) -> RestoreFn:
    """Restore each video's blurred input with the model in ``checkpoint`` (see ``pipeline.deblur``)."""
    config = load_config(config_path, overrides)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load_checkpoint(checkpoint, config=checkpoint_model_config(config, config_path, overrides)).to(device).eval()

    def restore(pair: VideoPair) -> tuple[str, Iterable[np.ndarray]]:
        if pair.blurred is None:
            raise ValueError(f"{pair.gt}: --checkpoint needs the blurred input (--blurred PATH for one sequence)")
        return f"{checkpoint.name} on {pair.blurred}", restore_frames(model, read_frames(pair.blurred), config.deblur, device)
    return restore


def _videos(ground_truth: Path, blurred: str | bool | None) -> list[VideoPair]:
    """The videos to score; ``blurred`` is None, True (bare ``--blurred``) or a path."""
    if is_sequence(ground_truth):
        if blurred is True:
            raise ValueError(f"--blurred needs a PATH when GROUND_TRUTH is one sequence ({ground_truth})")
        return [VideoPair(ground_truth.stem, ground_truth, Path(blurred) if blurred else None)]
    if isinstance(blurred, str):
        raise ValueError(f"--blurred takes no PATH when GROUND_TRUTH is an evaluation root ({ground_truth}): "
                         f"its blur folders are used")
    return discover(ground_truth)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ground_truth", type=Path, help="evaluation root, or one video file / frame folder")
    source = parser.add_mutually_exclusive_group()  # where restored frames come from (default: the default model)
    source.add_argument("--restored", type=Path,
                        help="existing outputs: a folder with one per video, or one sequence")
    source.add_argument("--checkpoint", type=Path, help="run this model (project or official .pt) on the blurred input (default, without --restored: "
                             "the bundled default checkpoint)")
    parser.add_argument("--config", type=Path, help="YAML config for --checkpoint runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--blurred", nargs="?", const=True, metavar="PATH",
                        help="also score the blurred input (bare with an evaluation root; PATH otherwise)")
    parser.add_argument("--crop", type=int, default=4, help="pixels cut from every side (default 4)")
    parser.add_argument("--skip-ends", type=int, default=0, metavar="N",
                        help="frames not scored at each end of every video (2: the paper's tables; default 0)")
    parser.add_argument("--json", type=Path, help="write per-video, average and per-frame figures as JSON")
    parser.add_argument("--csv", type=Path, help="write one row per frame as CSV")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        pairs = _videos(args.ground_truth, args.blurred)
        if not args.restored and not args.checkpoint:
            args.checkpoint = weights_to_load(None, load_config(args.config, args.set), args.config, args.set)
            if args.checkpoint is None:
                raise ValueError("give --restored or --checkpoint (the default checkpoint is not installed)")
        if args.checkpoint:
            restore_fn = model_restore_fn(args.checkpoint, args.config, args.set, args.device)
        else:
            restore_fn = outputs_restore_fn(args.restored, single=is_sequence(args.ground_truth))
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} frames"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("scoring", total=None)
            restored, inputs = score(
                pairs, restore_fn, crop=args.crop, baseline=args.blurred is not None, skip_ends=args.skip_ends,
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
        console.print(f"error: {error}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
