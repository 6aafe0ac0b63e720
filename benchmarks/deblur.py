r"""Streaming benchmark of the `deblur` path, printed as ratios measured in one run on one clip.

1. engine / naive: seconds per frame of the cached streaming engine vs the official schedule (every
   output frame runs its whole 2T+1 window), same frames, same weights. The arithmetic says 0.5 at T=2.
2. end-to-end / engine-only: fps of `deblur_video` (decode, model, encode, files) vs the engine alone on
   frames already in memory.
3. memory: peak RSS of a fresh process deblurring a 50-frame and a 500-frame video (same size): flat
   memory means the two are within 10%.

The clip is the bundled sample (samples/cockatoo_blurred.mp4), resized to --size and looped to length.

    python benchmarks/deblur.py                       # published model, 96x96
    python benchmarks/deblur.py --set model.features=8 --frames 50 500 \
        --json benchmarks/results/deblur_cpu.json
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP
from pipeline.cli import frame_size
from pipeline.config import load_config
from pipeline.measure.clips import looped_clip
from pipeline.measure.runinfo import add_result_options, write_result
from pipeline.measure.timing import PeakMemory, paired_ratio, time_interleaved
from pipeline.stream import deblur_video
from pipeline.stream.engine import StreamingEngine, naive_windows
from pipeline.video.frames import to_model
from pipeline.video.sequences import read_frames


def paired_seconds(first, second, repeats: int) -> tuple[float, float, float]:
    """``first()`` and ``second()`` timed in turns (`pipeline.measure.timing.time_interleaved`), so that load
    from other processes hits both alike: their median seconds and the median of the per-repetition ratios."""
    runs = time_interleaved({"first": first, "second": second}, repeats, torch.device("cpu"))
    a, b = ([wall for wall, _ in runs[name]] for name in ("first", "second"))
    return statistics.median(a), statistics.median(b), paired_ratio(runs["first"], runs["second"])


def child(args) -> None:
    """Deblur one clip in this (fresh) process and print its peak RSS as JSON.

    The peak is this process's own (``VmHWM``, `PeakMemory`): ``getrusage``'s ``ru_maxrss`` would not do,
    since Linux carries the high-water mark across ``exec`` and a forked child starts at its parent's RSS
    (the parent here holds the model, the frames and the naive run's results: 1.2 GB)."""
    config = load_config(args.config, args.set)
    torch.manual_seed(0)
    model = CDVDTSP(config.model).eval()
    result = deblur_video(model, args.child, Path(args.child).with_suffix(".out.mp4"), config.deblur,
                          overwrite=True)
    print(json.dumps({"frames": result.frames,
                      "peak_rss_mb": PeakMemory(torch.device("cpu")).read()["host_mb"]}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=frame_size, default="96x96", help="WxH of the benchmark clip")
    parser.add_argument("--frames", type=int, nargs=2, default=[50, 500],
                        help="clip lengths for the memory check")
    parser.add_argument("--speed-frames", type=int, default=24, help="frames timed for the speed ratios")
    parser.add_argument("--repeats", type=int, default=5)
    add_result_options(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    width, height = args.size
    config = load_config(args.config, args.set)
    torch.manual_seed(0)
    model = CDVDTSP(config.model).eval()
    with tempfile.TemporaryDirectory() as folder:
        clip = looped_clip(Path(folder) / "speed.mp4", args.speed_frames, width, height)
        frames = to_model(torch.from_numpy(np.stack(list(read_frames(clip)))))  # (F, 3, H, W)
        engine = StreamingEngine(model, border=config.deblur.border, group=config.deblur.group)
        chunk = config.deblur.chunk
        out = Path(folder) / "out.mp4"

        def run_engine():
            return list(engine.run(frames.split(chunk)))

        t_engine, t_naive, engine_over_naive = paired_seconds(
            run_engine,
            lambda: naive_windows(model, frames, border=config.deblur.border),
            args.repeats)
        t_e2e, t_engine2, e2e_over_engine = paired_seconds(
            lambda: deblur_video(model, clip, out, config.deblur, overwrite=True), run_engine, args.repeats)
        memory = {}
        for count in args.frames:
            long_clip = looped_clip(Path(folder) / f"long{count}.mp4", count, width, height)
            run = subprocess.run([sys.executable, __file__, "--child", str(long_clip),
                                  *sum((["--set", s] for s in args.set), []),
                                  *(["--config", args.config] if args.config else [])],
                                 capture_output=True, text=True, check=True)
            memory[count] = json.loads(run.stdout.strip().splitlines()[-1])
    n = len(frames)
    short, long = (memory[c]["peak_rss_mb"] for c in args.frames)
    results = {
        "engine_s_per_frame": t_engine / n, "naive_s_per_frame": t_naive / n,
        "engine_over_naive": engine_over_naive,
        "end_to_end_fps": n / t_e2e, "engine_fps": n / t_engine2,
        "end_to_end_over_engine_fps": 1 / e2e_over_engine,
        "peak_rss_mb": {str(c): memory[c]["peak_rss_mb"] for c in args.frames},
        "rss_long_over_short": long / short,
    }
    table = Table(title=f"deblur benchmark: {args.size}, {n} frames timed, "
                        f"median of {args.repeats} interleaved pairs, "
                        f"model {config.model}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("engine s/frame", f"{results['engine_s_per_frame']:.3f}")
    table.add_row("naive windows s/frame", f"{results['naive_s_per_frame']:.3f}")
    table.add_row("engine / naive", f"{results['engine_over_naive']:.3f}")
    table.add_row("end-to-end fps", f"{results['end_to_end_fps']:.2f}")
    table.add_row("engine-only fps", f"{results['engine_fps']:.2f}")
    table.add_row("end-to-end / engine-only fps", f"{results['end_to_end_over_engine_fps']:.3f}")
    for count in args.frames:
        table.add_row(f"peak RSS, {count} frames", f"{memory[count]['peak_rss_mb']:.0f} MB")
    table.add_row(f"peak RSS {args.frames[1]} / {args.frames[0]} frames",
                  f"{results['rss_long_over_short']:.3f}")
    Console().print(table)
    write_result(args.json, "deblur", torch.device("cpu"), argv,
                 {"size": str(args.size), "frames": args.frames, "speed_frames": args.speed_frames,
                  "repeats": args.repeats, "model": asdict(config.model)}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
