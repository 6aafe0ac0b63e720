"""Training ingestion, one run on the same data: the DALI paired-video loader vs the PNG-folder loader.

    python benchmarks/ingest.py --json benchmarks/results/ingest_cpu.json

Data: ``--clips`` stretches of ``--source`` (default: the 1280x720 cockatoo footage, DVD's frame size)
blurred with `pipeline.data.synth` and stored three ways: PNG frame folders (``<root>/{blur,gt}/<clip>/``,
as DVD/GOPRO are used), and side-by-side paired videos in each codec the device's DALI decodes (CPU:
VP9 keyint 8 and MJPEG; GPU: also H.264 keyint 8). Each loader yields batches of 5-frame 256x256 blurred and
sharp windows, shuffled, with random flips and rotations.

Per repeat (a new epoch): the first batch is taken untimed (pipeline build, worker start-up, decoder
warm-up; its latency is reported), then ``--batches`` batches are timed. Reported: samples/s and CPU cores
used (CPU seconds of this process and its worker processes / wall seconds) over the timed batches, medians
over ``--repeats`` repeats after one warm-up repeat. The loaders take turns epoch by epoch, so load from
other processes affects all of them alike; the 1-minute load average after each run is recorded too. GPU
work is synchronised before the clock stops.
"""
import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.checkout import FOOTAGE
from pipeline.data.synth import SynthConfig
from pipeline.measure.ingest import CROP, FRAMES, compare_loaders, dali_codecs, make_data, summarise
from pipeline.measure.runinfo import write_document
from pipeline.runtime import compute_device

CLIP = FOOTAGE / "cockatoo.mp4"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CLIP, help="sharp footage to synthesise data from")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--clip-frames", type=int, default=30, help="blurred frames per clip (default 30)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=8,
                        help="timed batches per repeat (default 8; many more than the loaders run ahead)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="PNG DataLoader workers (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="DALI pipeline threads (default 2)")
    parser.add_argument("--work", type=Path, help="folder for the generated data (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    device = compute_device()
    codecs = dali_codecs(device)
    with tempfile.TemporaryDirectory(prefix="ingest_") as scratch:
        work = args.work or Path(scratch)
        with console.status("synthesising the data set"):
            data = make_data(args.source, work, clips=args.clips, clip_frames=args.clip_frames, codecs=codecs,
                             config=SynthConfig(window=7))
        loaders = len(codecs) + len({0, args.workers})
        with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("epochs", total=(args.repeats + 1) * loaders)
            runs = compare_loaders(work, codecs, device, batch_size=args.batch_size, threads=args.threads,
                                   workers=args.workers, batches=args.batches, repeats=args.repeats,
                                   on_epoch=lambda: progress.advance(task))
        results = {name: summarise(loader_runs) for name, loader_runs in runs.items()}
    baseline = results[f"PNG DataLoader ({args.workers} workers)"]["samples_per_s"]
    table = Table(title=f"{FRAMES}-frame {CROP}x{CROP} blurred+sharp samples, {data['frame_size']} frames, "
                        f"batch {args.batch_size}; medians of {args.repeats} repeats")
    for column in ("loader", "samples/s", f"vs PNG ({args.workers} workers)", "CPU cores used",
                   "first batch s (epoch 0 / later)"):
        table.add_column(column, justify="left" if column == "loader" else "right")
    for name, result in results.items():
        table.add_row(name, f"{result['samples_per_s']:.2f}", f"{result['samples_per_s'] / baseline:.2f}x",
                      f"{result['cpu_cores']:.2f}",
                      f"{result['first_batch_s_epoch0']:.2f} / {result['first_batch_s']:.2f}")
    console.print(table)
    console.print(f"on disk (MB): {data['megabytes']}")
    if args.json:
        write_document(args.json, "ingest", device, argv,
                       {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                        "data": data, "results": results})
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
