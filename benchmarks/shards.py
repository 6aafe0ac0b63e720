r"""Time-sharded deblurring on this machine: workers against threads, and the balance of a mixed folder.

1. workers vs threads: one clip, one process with W threads against torchrun with W processes of one
   thread each (time shards of the same clip: 4 parts of 24 frames), in turns, ``--repeats`` times; the
   median fps ratio. The two outputs are checked to be the same bytes.
2. balance: a folder of one long clip and the three bundled samples on W workers, shared out by files
   (each worker deblurs every W-th file in turn: how ``torchrun scripts/deblur.py`` shared work before time
   shards) and by frames (torchrun, time shards): the busiest worker's busy time over the idlest's, and
   the wall time. The folder is small (248 frames) for a CPU, so it runs with 16-frame segments (parts
   start on segment boundaries); on a GPU, hours of video make thousands of 64-frame segments.

Seconds are the commands' own (``deblur --summary``: from the first part's start to the last join),
so process start-up (the same for both ways) is left out. The long clip is the cockatoo sample at
320x180, looped.

    python benchmarks/shards.py --json benchmarks/results/shards_cpu.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from pipeline.checkout import ROOT, SAMPLES
from pipeline.measure.clips import looped_clip
from pipeline.measure.runinfo import write_result

DEBLUR = str(ROOT / "scripts" / "deblur.py")
SHORT = ("bikes_blurred.mp4", "cockatoo_blurred.mp4", "tree_blurred.mp4")


def deblur(inputs: list[Path], output: Path, summary: Path, *, workers: int, threads: int,
           extra: list[str]) -> subprocess.Popen:
    """Start ``deblur`` on ``inputs``: one process, or torchrun with ``workers`` processes."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(workers),
                 "--master-port", "29620"] if workers > 1 else [sys.executable])
    return subprocess.Popen([*launcher, DEBLUR, *map(str, inputs), "-o", str(output), "--overwrite",
                             "--summary", str(summary), *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def wait(run: subprocess.Popen, summary: Path) -> dict:
    _, err = run.communicate()
    if run.returncode != 0:
        raise SystemExit(f"deblur failed:\n{err[-3000:]}")
    return json.loads(summary.read_text())


def workers_vs_threads(clip: Path, folder: Path, workers: int, repeats: int, extra: list[str]) -> dict:
    """fps of 1 process x ``workers`` threads and of ``workers`` processes x 1 thread on ``clip``, in
    turns."""
    frames, runs = None, {"threads": [], "workers": []}
    for _ in range(repeats):
        for name, (processes, threads) in {"threads": (1, workers), "workers": (workers, 1)}.items():
            summary = wait(deblur([clip], folder / f"{name}.mp4", folder / f"{name}.json", workers=processes,
                                  threads=threads, extra=extra), folder / f"{name}.json")
            frames = summary["videos"][0]["frames"]
            runs[name].append(summary["videos"][0]["seconds"])
    same = (folder / "threads.mp4").read_bytes() == (folder / "workers.mp4").read_bytes()
    ratios = [t / w for t, w in zip(runs["threads"], runs["workers"])]
    return {"frames": frames, "threads_seconds": runs["threads"], "workers_seconds": runs["workers"],
            "threads_fps": frames / statistics.median(runs["threads"]),
            "workers_fps": frames / statistics.median(runs["workers"]),
            "workers_over_threads_fps": statistics.median(ratios), "outputs_identical": same}


def balance(clips: list[Path], folder: Path, workers: int, extra: list[str]) -> dict:
    """Busy time per worker and wall time for the folder, shared out by files and by frames."""
    runs = [deblur(clips[rank::workers], folder / f"files{rank}", folder / f"files{rank}.json", workers=1,
                   threads=1, extra=extra) for rank in range(workers)]
    by_files = [wait(run, folder / f"files{rank}.json") for rank, run in enumerate(runs)]
    busy = [summary["ranks"][0]["busy_seconds"] for summary in by_files]
    by_frames = wait(deblur(clips, folder / "frames", folder / "frames.json", workers=workers, threads=1,
                            extra=extra), folder / "frames.json")
    return {
        "clips": {v["input"].rsplit("/", 1)[-1]: v["frames"] for v in by_frames["videos"]},
        "by_files": {"busy_seconds": busy, "busiest_over_idlest": max(busy) / min(busy),
                     "wall_seconds": max(summary["seconds"] for summary in by_files)},
        "by_frames": {"busy_seconds": [rank["busy_seconds"] for rank in by_frames["ranks"]],
                      "busiest_over_idlest": by_frames["balance"],
                      "parts": [rank["parts"] for rank in by_frames["ranks"]],
                      "wall_seconds": by_frames["seconds"]},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=120, help="frames of the long clip")
    parser.add_argument("--speed-frames", type=int, default=96, help="frames of the workers-vs-threads clip")
    parser.add_argument("--speed-segment", type=int, default=24,
                        help="segment (and part) frames for it: 4 parts of the 96 frames")
    parser.add_argument("--repeats", type=int, default=2, help="workers-vs-threads pairs")
    parser.add_argument("--segment", type=int, default=16, help="segment frames for the folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="deblur config")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    extra = [item for value in args.set for item in ("--set", value)]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        speed = looped_clip(folder / "speed.mp4", args.speed_frames, 320, 180)
        long = looped_clip(folder / "long.mp4", args.frames, 320, 180)
        segment = ["--set", f"deblur.segment={args.speed_segment}"]
        results = {"workers_vs_threads": workers_vs_threads(speed, folder, args.workers, args.repeats,
                                                            extra + segment),
                   "balance": balance(sorted([long, *(SAMPLES / n for n in SHORT)]), folder, args.workers,
                                      extra + ["--set", f"deblur.segment={args.segment}"])}
    speed, mixed = results["workers_vs_threads"], results["balance"]
    table = Table(title=f"time shards: {args.workers} workers, 320x180 H.264, default checkpoint")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"1 process x {args.workers} threads, fps", f"{speed['threads_fps']:.3f}")
    table.add_row(f"{args.workers} workers x 1 thread, fps", f"{speed['workers_fps']:.3f}")
    table.add_row("workers / threads", f"{speed['workers_over_threads_fps']:.2f}")
    table.add_row("outputs identical", str(speed["outputs_identical"]))
    for way in ("by_files", "by_frames"):
        label = f"folder {way.replace('_', ' ')}"
        table.add_row(f"{label}: busiest / idlest", f"{mixed[way]['busiest_over_idlest']:.2f}")
        table.add_row(f"{label}: wall s", f"{mixed[way]['wall_seconds']:.1f}")
    Console().print(table)
    write_result(args.json, "shards", torch.device("cpu"), argv,
                 {"workers": args.workers, "frames": args.frames, "speed_frames": args.speed_frames,
                  "speed_segment": args.speed_segment, "segment": args.segment, "repeats": args.repeats,
                  "set": args.set},
                 results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
