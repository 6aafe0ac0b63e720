"""Timing training-data loaders on the same data: the DALI paired-video loader vs the PNG-folder loader.

`make_data` synthesises clips from sharp footage and stores them as PNG frame folders and as paired
videos per codec; `dali_batches` / `png_batches` make per-epoch batch streams; `run_epoch` times one
epoch (first batch apart: pipeline build, worker start-up, decoder warm-up) for samples/s and CPU cores.
Used by ``benchmarks/ingest.py`` and ``scripts/profiler.py ingest``.
"""
import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from PIL import Image

from pipeline.data.dali_loader import LoaderConfig, PairedVideoLoader
from pipeline.data.datasets import Manifest, ManifestVideo, PngWindowDataset, discover_frame_pairs
from pipeline.data.pairs import EncodeSettings, VideoEncoder, stack_pair
from pipeline.data.synth import SynthConfig, synthesize
from pipeline.measure.timing import cpu_seconds, synchronize
from pipeline.video import dali
from pipeline.video.probe import probe
from pipeline.video.sequences import read_frames

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
            height, width = pair.sharp.shape[:2]
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
            "frame_size": f"{width}x{height}", "synth": dataclasses.asdict(config),
            "megabytes": {k: round(v, 1) for k, v in sizes.items()}}


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
    sizes = list(itertools.islice(iterator, count))
    sync()
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    iterator.close()
    if len(sizes) < count:  # the loader's read-ahead would be timed, not its throughput
        raise ValueError(f"an epoch has {len(sizes) + 1} batches, fewer than the {count + 1} needed: "
                         "more data or fewer timed batches")
    samples = sum(sizes)
    return {"first_batch_s": first, "samples": samples, "samples_per_s": samples / wall,
            "cpu_cores": cpu / wall, "load_average_1min": os.getloadavg()[0]}


def summarise(runs: list[dict]) -> dict:
    """Medians over the runs after the first (the warm-up), and every run."""
    timed = runs[1:]
    return {"samples_per_s": statistics.median(r["samples_per_s"] for r in timed),
            "cpu_cores": statistics.median(r["cpu_cores"] for r in timed),
            "first_batch_s_epoch0": runs[0]["first_batch_s"],
            "first_batch_s": statistics.median(r["first_batch_s"] for r in timed), "runs": runs}


def dali_batches(manifest: Path, *, batch_size: int, threads: int, device_id: int | None,
                 crop: int = CROP) -> Callable:
    """Per-epoch batch-size streams of the DALI paired-video loader over ``manifest``'s train split."""
    config = LoaderConfig(frames=FRAMES, crop=crop, batch_size=batch_size, num_threads=threads)
    loader = PairedVideoLoader(Manifest.load(manifest), "train", config, device_id=device_id)

    def batches(epoch: int) -> Iterator[int]:
        loader.set_epoch(epoch)
        return (blurred.shape[0] for blurred, _ in loader)
    return batches


def png_batches(root: Path, *, batch_size: int, workers: int, device: torch.device,
                crop: int = CROP) -> Callable:
    """Per-epoch batch-size streams of the PNG DataLoader over the ``<root>/{blur,gt}/<clip>/`` folders."""
    dataset = PngWindowDataset(discover_frame_pairs(root), frames=FRAMES, crop=crop)

    def batches(epoch: int) -> Iterator[int]:
        dataset.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
            generator=torch.Generator().manual_seed(epoch), pin_memory=device.type == "cuda")
        return (blurred.to(device, non_blocking=True).shape[0] for blurred, _ in loader)
    return batches


def dali_codecs(device: torch.device) -> list[str]:
    """Codecs to store paired videos in for DALI on ``device``: VP9 and MJPEG decode on the CPU, NVDEC
    adds H.264; none where DALI is not usable."""
    if dali.unavailable():
        return []
    return ["vp9", "mjpeg"] + (["h264"] if device.type == "cuda" else [])


def compare_loaders(work: Path, codecs: list[str], device: torch.device, *, batch_size: int, threads: int,
                    workers: int, batches: int, repeats: int, crop: int = CROP,
                    on_epoch: Callable[[], None] = lambda: None) -> dict[str, list[dict]]:
    """Every loader over `make_data`'s output in ``work``: DALI per codec, the PNG DataLoader with 0 and
    ``workers`` workers (the last one listed). ``repeats + 1`` epochs each, the loaders taking turns so that
    background load hits all alike; the first epoch is the warm-up. Returns the `run_epoch` results per
    loader."""
    device_id = dali.device_id(device)
    loaders = {f"DALI {'GPU' if device_id is not None else 'CPU'} ({codec})":
               dali_batches(work / codec / "manifest.json", batch_size=batch_size, threads=threads,
                            device_id=device_id, crop=crop) for codec in codecs}
    loaders |= {f"PNG DataLoader ({w} workers)": png_batches(work / "png", batch_size=batch_size, workers=w,
                                                             device=device, crop=crop)
                for w in sorted({0, workers})}
    runs = {name: [] for name in loaders}
    for epoch in range(repeats + 1):
        for name, batches_of in loaders.items():
            runs[name].append(run_epoch(batches_of, epoch, count=batches, sync=lambda: synchronize(device)))
            on_epoch()
    return runs
