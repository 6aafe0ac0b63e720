"""Training ingestion, one run on the same data: the DALI paired-video loader vs the PNG-folder loader.

    python benchmarks/ingest.py --json benchmarks/results/ingest_cpu.json

Data: ``--clips`` stretches of ``--source`` (default: the 1280x720 cockatoo footage, DVD's frame size)
blurred with ``pipeline/synth.py`` and stored three ways: PNG frame folders (``<root>/{blur,gt}/<clip>/``,
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
import dataclasses
import datetime
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import nvidia.dali
import torch
from PIL import Image
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.datasets import Manifest, ManifestVideo, PngWindowDataset, discover_frame_pairs
from pipeline.framesource import read_frames
from pipeline.pairs import EncodeSettings, VideoEncoder, stack_pair
from pipeline.probe import probe
from pipeline.synth import SynthConfig, synthesize
from pipeline.train_loader import LoaderConfig, PairedVideoLoader, default_device_id

ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = ROOT.parent / "shared" / "data" / "footage" / "cockatoo.mp4"
FRAMES, CROP = 5, 256


def make_data(source: Path, work: Path, *, clips: int, clip_frames: int, codecs: list[str],
              config: SynthConfig) -> dict:
    """Synthesise ``clips`` clips from evenly spaced stretches of ``source`` and store each as PNG folders
    and as one paired video per codec; returns where everything went and how big it is."""
    info = probe(source)
    fps, total = info.fps, info.num_frames
    span = clip_frames + config.window - 1
    starts = [round(i * (total - span) / max(clips - 1, 1)) for i in range(clips)]
    settings = {codec: EncodeSettings(codec=codec, keyint=8) for codec in codecs}
    for codec in codecs:
        (work / codec).mkdir(parents=True)
    videos = {codec: [] for codec in codecs}
    for clip, start in enumerate(starts):
        name = f"clip{clip}"
        folders = [work / "png" / kind / name for kind in ("blur", "gt")]
        for folder in folders:
            folder.mkdir(parents=True)
        encoders = {codec: VideoEncoder(work / codec / f"{name}{s.suffix}", fps=fps, settings=s)
                    for codec, s in settings.items()}
        for pair in synthesize(itertools.islice(read_frames(source), start, start + span), config):
            Image.fromarray(pair.blurred).save(folders[0] / f"{pair.index:05d}.png")
            Image.fromarray(pair.sharp).save(folders[1] / f"{pair.index:05d}.png")
            for encoder in encoders.values():
                encoder.write(stack_pair(pair.blurred, pair.sharp))
        for codec, encoder in encoders.items():
            encoder.close()
            videos[codec].append(ManifestVideo(
                name=name, path=encoder.path.name, split="train", frames=encoder.frames,
                width=encoder.width // 2, height=encoder.height, fps=float(fps), codec=codec, keyint=8))
    for codec in codecs:
        Manifest(videos[codec]).save(work / codec / "manifest.json")
    sizes = {kind: sum(p.stat().st_size for p in (work / kind).rglob("*") if p.suffix != ".json") / 1e6
             for kind in ["png", *codecs]}
    return {"source": str(source), "clip_starts": starts, "clips": clips, "frames_per_clip": clip_frames,
            "frame_size": f"{encoder.width // 2}x{encoder.height}", "synth": dataclasses.asdict(config),
            "megabytes": {k: round(v, 1) for k, v in sizes.items()}}


def _children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's live child processes (DataLoader workers), from /proc."""
    ticks, total, me = os.sysconf("SC_CLK_TCK"), 0, os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == me:  # fields[0] is the state: the ppid is field 4 of stat, here index 1
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def cpu_seconds() -> float:
    return time.process_time() + _children_cpu_seconds()


def run_epoch(batches: Callable[[int], Iterator[int]], epoch: int, *, count: int,
              sync: Callable[[], None]) -> dict:
    """One epoch of ``batches(epoch)`` (which yields batch sizes): the first batch untimed, then ``count``
    batches timed for samples/s and CPU cores used."""
    started = time.perf_counter()
    iterator = batches(epoch)
    next(iterator)
    sync()
    first = time.perf_counter() - started
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    samples = sum(itertools.islice(iterator, count))
    sync()
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    iterator.close()
    return {"first_batch_s": first, "samples": samples, "samples_per_s": samples / wall,
            "cpu_cores": cpu / wall, "load_average_1min": os.getloadavg()[0]}


def summarise(runs: list[dict]) -> dict:
    """Medians over the runs after the first (the warm-up), and every run."""
    timed = runs[1:]
    return {"samples_per_s": statistics.median(r["samples_per_s"] for r in timed),
            "cpu_cores": statistics.median(r["cpu_cores"] for r in timed),
            "first_batch_s_epoch0": runs[0]["first_batch_s"],
            "first_batch_s": statistics.median(r["first_batch_s"] for r in timed), "runs": runs}


def dali_batches(manifest: Path, *, batch_size: int, threads: int, device_id: int | None) -> Callable:
    config = LoaderConfig(frames=FRAMES, crop=CROP, batch_size=batch_size, num_threads=threads)
    loader = PairedVideoLoader(Manifest.load(manifest), "train", config, device_id=device_id)

    def batches(epoch: int) -> Iterator[int]:
        loader.set_epoch(epoch)
        return (blurred.shape[0] for blurred, _ in loader)
    return batches


def png_batches(root: Path, *, batch_size: int, workers: int, device: torch.device) -> Callable:
    dataset = PngWindowDataset(discover_frame_pairs(root), frames=FRAMES, crop=CROP)

    def batches(epoch: int) -> Iterator[int]:
        dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
            generator=torch.Generator().manual_seed(epoch), pin_memory=device.type == "cuda")
        return (blurred.to(device, non_blocking=True).shape[0] for blurred, _ in loader)
    return batches


def _commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "uncommitted"
    return commit + ("-dirty" if git("status", "--porcelain") else "")


def _device(device_id: int | None) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cpu_cores": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(device_id) if device_id is not None else None,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "dali": nvidia.dali.__version__, "av": av.__version__}}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=FOOTAGE, help="sharp footage to synthesise data from")
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
    device_id = default_device_id()
    device = torch.device("cpu" if device_id is None else f"cuda:{device_id}")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    codecs = ["vp9", "mjpeg"] + (["h264"] if device.type == "cuda" else [])
    with tempfile.TemporaryDirectory(prefix="ingest_") as scratch:
        work = args.work or Path(scratch)
        with console.status("synthesising the data set"):
            data = make_data(args.source, work, clips=args.clips, clip_frames=args.clip_frames, codecs=codecs,
                             config=SynthConfig(window=7))
        loaders = {f"DALI {'GPU' if device_id is not None else 'CPU'} ({codec})":
                   dali_batches(work / codec / "manifest.json", batch_size=args.batch_size,
                                threads=args.threads, device_id=device_id) for codec in codecs}
        loaders |= {f"PNG DataLoader ({workers} workers)":
                    png_batches(work / "png", batch_size=args.batch_size, workers=workers, device=device)
                    for workers in sorted({0, args.workers})}
        runs = {name: [] for name in loaders}
        with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("epochs", total=(args.repeats + 1) * len(loaders))
            for epoch in range(args.repeats + 1):  # loaders interleaved: background load hits all alike
                for name, batches in loaders.items():
                    runs[name].append(run_epoch(batches, epoch, count=args.batches, sync=sync))
                    progress.advance(task)
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
        now = datetime.datetime.now(datetime.timezone.utc)
        document = {"benchmark": "ingest", "date": now.isoformat(timespec="seconds"),
                    "commit": _commit(), "device": _device(device_id),
                    "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(argv),
                    "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "data": data, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
