"""The profiler behind ``scripts/profiler.py``: where the time goes, mode by mode, as JSON-ready dicts.

Modes (each returns a result, see `check_result` for the schema):

* ``model``: the streaming engine on synthetic frames already in device memory, per precision, and the
  official schedule (naive windows) on the same frames; output difference of each precision from fp32
  in PSNR; FLOPs counted on the meta device for exactly this run, achieved against the device's peak.
  `profile_groups`: the engine per group size (``deblur.group``) and weight layout, the same frames
  (`benchmarks/group.py`).
* ``decode``: every reader that can decode the clip here, and a VP9 copy of it so that DALI's CPU decoder
  is compared with PyAV on the same pictures.
* ``end-to-end``: ``deblur_video`` on the clip: decode, upload, model, download, encode.
* ``ingest``: training batches from the DALI paired-video loader vs the PNG DataLoader, same data.
* ``train``: training steps fed from one batch in memory vs from the DALI loader.

Every timing has a warm-up, synchronises the device before the clock stops, and repeats; configurations
take turns within each repetition so that background load hits all alike; results are medians with their
spread. Stage breakdowns come from one further run that listens to the ranges the code marks
(`model.ranges`) with `timing.Sections` (stage boundaries synchronise the stream), kept apart from the
timed runs. A stage belongs to the thread that runs it:
``compute`` (the stages there add up to the run's wall time), ``decode`` or ``encode`` (which overlap it).
"""
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from model import CDVDTSP
from model.ranges import listen, timed
from pipeline.config import Config, DeblurConfig
from pipeline.data.dali_loader import LoaderConfig, PairedVideoLoader
from pipeline.data.datasets import Manifest, PngWindowDataset, discover_frame_pairs
from pipeline.data.pairs import EncodeSettings, VideoEncoder, resize
from pipeline.data.synth import SynthConfig
from pipeline.measure.flop_count import datasheet_tflops, measured_matmul_tflops, meta_copy
from pipeline.measure.ingest import compare_loaders, dali_codecs, make_data
from pipeline.measure.timing import (
    PeakMemory,
    Sections,
    gpu_busy_share,
    paired_ratio,
    spread,
    synchronize,
    time_interleaved,
)
from pipeline.memory_format import with_memory_format
from pipeline.metrics import mean_psnr
from pipeline.precision import precision_context
from pipeline.stream import deblur_video
from pipeline.stream.engine import StreamingEngine, naive_windows
from pipeline.training.steps import TrainForward, build_optimizer, train_step
from pipeline.video import dali
from pipeline.video.frames import to_uint8
from pipeline.video.probe import probe
from pipeline.video.readers import make_reader, readers_for
from pipeline.video.sequences import read_frames

MODES = ("model", "decode", "end-to-end", "ingest", "train")
THREADS = ("compute", "decode", "encode")
THREAD_OF = {"decode": "decode", "encode": "encode"}  # the ranges off the compute thread (`model.ranges`)


def check_result(result: dict) -> dict:
    """Raise ValueError unless ``result`` has the shape every mode returns; returns it.

    ``{"mode", "unit": "frame"|"sample", "configurations": [{"name", "items", "rate": spread (items/s),
    "ms_per_item": spread, "stages": {stage: {"ms_per_item", "thread"}}, "memory": {"host_mb", "gpu_mb"}},
    ...], "ratios": {name: float}, "notes": [str]}``, a spread being ``{"median", "min", "max"}``.
    """
    def need(mapping, keys, where):
        if not isinstance(mapping, dict) or set(keys) - set(mapping):
            raise ValueError(f"{where}: expected keys {sorted(keys)}, "
                             f"got {sorted(mapping) if isinstance(mapping, dict) else mapping!r}")

    need(result, ("mode", "unit", "configurations", "ratios", "notes"), "result")
    if result["mode"] not in MODES or result["unit"] not in ("frame", "sample"):
        raise ValueError(f"result: unknown mode {result['mode']!r} or unit {result['unit']!r}")
    if not result["configurations"]:
        raise ValueError(f"{result['mode']}: no configurations")
    for config in result["configurations"]:
        where = f"{result['mode']}/{config.get('name')}"
        need(config, ("name", "items", "rate", "ms_per_item", "stages", "memory"), where)
        for key in ("rate", "ms_per_item"):
            need(config[key], ("median", "min", "max"), f"{where}/{key}")
            if not 0 < config[key]["min"] <= config[key]["median"] <= config[key]["max"]:
                raise ValueError(f"{where}/{key}: not a positive spread: {config[key]}")
        for stage, value in config["stages"].items():
            need(value, ("ms_per_item", "thread"), f"{where}/stages/{stage}")
            if value["thread"] not in THREADS or value["ms_per_item"] < 0:
                raise ValueError(f"{where}/stages/{stage}: bad entry {value}")
        need(config["memory"], ("host_mb", "gpu_mb"), f"{where}/memory")
    if not all(isinstance(v, (int, float)) for v in result["ratios"].values()):
        raise ValueError(f"{result['mode']}: ratios must be numbers")
    return result


def configuration(name: str, items: int, runs: list[tuple[float, float]], *, stages: dict | None = None,
                  memory: dict | None = None, **extra) -> dict:
    """A result row: ``items`` per run, the runs' (wall, CPU) seconds, the stage breakdown and memory."""
    walls = [wall for wall, _ in runs]
    return {"name": name, "items": items, "rate": spread([items / w for w in walls]),
            "ms_per_item": spread([1000 * w / items for w in walls]),
            "cpu_cores": statistics.median(cpu / wall for wall, cpu in runs),
            "stages": stages or {}, "memory": memory or {"host_mb": None, "gpu_mb": None}, **extra}


def breakdown(run: Callable[[], object], device: torch.device, items: int) -> tuple[dict, float]:
    """One run of ``run()`` with its named ranges (`model.ranges`) timed as `timing.Sections`; ranges on
    the compute thread synchronise the stream at their boundaries.

    Returns ``{stage: {"ms_per_item", "thread"}}`` and the run's wall seconds.
    """
    sections = Sections(device)

    def section(name: str):
        return sections.section(name, sync=THREAD_OF.get(name, "compute") == "compute")

    synchronize(device)
    start = time.perf_counter()
    with listen(section):
        run()
        synchronize(device)
    wall = time.perf_counter() - start
    return {stage: {"ms_per_item": ms, "thread": THREAD_OF.get(stage, "compute")}
            for stage, ms in sections.per_item(items).items()}, wall


def _measured(fn: Callable[[], object], device: torch.device) -> tuple[object, dict]:
    """Run ``fn()`` once and return its result and the peak host and GPU memory during it."""
    memory = PeakMemory(device)
    memory.reset()
    result = fn()
    synchronize(device)
    return result, memory.read()


def engine_flops(model: CDVDTSP, frames: int, height: int, width: int,
                  deblur: DeblurConfig) -> dict[str, float]:
    """FLOPs of the engine and the naive windows over a ``frames``-frame video, counted on the meta device."""
    meta = meta_copy(model).eval()
    video = torch.empty(frames, 3, height, width, device="meta")
    counts = {}
    for name, fn in (("engine", lambda: list(StreamingEngine(meta, border=deblur.border, group=deblur.group)
                                              .run(video.split(deblur.chunk)))),
                     ("naive", lambda: naive_windows(meta, video, border=deblur.border))):
        with FlopCounterMode(display=False) as counter:
            fn()
        counts[name] = float(counter.get_total_flops())
    return counts


def profile_model(model: CDVDTSP, deblur: DeblurConfig, device: torch.device, *, frames: int, height: int,
                  width: int, repeats: int, precisions: list[str], trace: Path | None = None) -> dict:
    """The streaming engine per precision and the official schedule (fp32) on synthetic frames."""
    video = torch.rand(frames, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    engine = StreamingEngine(model, border=deblur.border, group=deblur.group)

    def run_engine(precision: str) -> list[torch.Tensor]:
        with precision_context(device, precision):
            return [to_uint8(out.float()) for out in engine.run(video.split(deblur.chunk))]

    fns = {f"engine {p}": (lambda p=p: run_engine(p)) for p in precisions}
    fns["naive windows fp32"] = lambda: naive_windows(model, video, border=deblur.border)
    runs = time_interleaved(fns, repeats, device)
    flops = engine_flops(model, frames, height, width, deblur)
    reference = None
    configurations, notes = [], []
    matmul_peaks = {p: measured_matmul_tflops(device, p) for p in dict.fromkeys([*precisions, "fp32"])}
    for name in fns:
        precision = name.rsplit(" ", 1)[1]
        engine_run = name.startswith("engine")
        output, memory = _measured(fns[name], device)
        stages, _ = breakdown(fns[name], device, frames) if engine_run else ({}, 0.0)
        seconds = statistics.median(wall for wall, _ in runs[name])
        achieved = flops["engine" if engine_run else "naive"] / seconds / 1e12
        extra = {"precision": precision, "tflops_counted": flops["engine" if engine_run else "naive"] / 1e12,
                 "achieved_tflops": achieved, "matmul_peak_tflops": matmul_peaks[precision],
                 "datasheet_peak_tflops": datasheet_tflops(device, precision)}
        if engine_run:
            images = [frame.cpu().numpy() for chunk in output for frame in chunk]
            reference = reference or images
            extra["psnr_vs_fp32_db"] = mean_psnr(images, reference) if precision != "fp32" else None
        configurations.append(configuration(name, frames, runs[name], stages=stages, memory=memory, **extra))
    if "fp32" not in precisions:
        notes.append("psnr_vs_fp32_db is against the first precision listed")
    first = f"engine {precisions[0]}"
    ratios = {f"{first} / naive windows fp32 (time per frame)":
                  paired_ratio(runs[first], runs["naive windows fp32"]),
              "engine / naive FLOPs": flops["engine"] / flops["naive"]}
    for p in precisions[1:]:
        ratios[f"engine {p} / {first} (time per frame)"] = paired_ratio(runs[f"engine {p}"], runs[first])
    share = gpu_busy_share(fns[first], device, trace)
    if share is not None:
        ratios[f"GPU busy share ({first})"] = share
    if trace is not None:
        notes.append(f"torch.profiler trace of one {first} run: {trace}")
    return check_result({"mode": "model", "unit": "frame", "configurations": configurations, "ratios": ratios,
                         "notes": notes, "size": f"{width}x{height}", "frames": frames})


def profile_groups(model: CDVDTSP, deblur: DeblurConfig, device: torch.device, *, frames: int, height: int,
                   width: int, repeats: int, groups: list[int], precision: str = "fp32",
                   formats: tuple[str, ...] = ("contiguous",)) -> dict:
    """The streaming engine at each group size (``deblur.group``: positions per model call) and weight layout
    (`pipeline.memory_format`) on the same synthetic frames, in turns: frames/s, peak memory, and each
    configuration's time per frame over the first's."""
    video = torch.rand(frames, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    memory, peaks = PeakMemory(device), {}
    layouts = {name: model if name == "contiguous" else with_memory_format(copy.deepcopy(model), name)
               for name in formats}

    def runner(name: str, group: int, layout: str) -> Callable[[], None]:
        engine = StreamingEngine(layouts[layout], border=deblur.border, group=group)

        def run() -> None:
            memory.reset()
            with precision_context(device, precision):
                for _ in engine.run(video.split(deblur.chunk)):
                    pass
            synchronize(device)
            peaks[name] = memory.read()  # of the last run
        return run

    settings = {f"engine {precision} group {group}" + ("" if layout == "contiguous" else f" {layout}"):
                (group, layout) for layout in formats for group in groups}
    runs = time_interleaved({name: runner(name, *setting) for name, setting in settings.items()}, repeats,
                            device)
    configurations = [configuration(name, frames, runs[name], memory=peaks[name], group=group,
                                    memory_format=layout, precision=precision)
                      for name, (group, layout) in settings.items()]
    first, *others = settings
    ratios = {f"{name} / {first} (time per frame)": paired_ratio(runs[name], runs[first]) for name in others}
    fastest = min(configurations, key=lambda c: c["ms_per_item"]["median"])
    return check_result({"mode": "model", "unit": "frame", "configurations": configurations, "ratios": ratios,
                         "notes": [f"fastest: {fastest['name']}"], "size": f"{width}x{height}",
                         "frames": frames, "fastest_group": fastest["group"]})


def _drain(reader) -> int:
    """Decode the whole video; the number of frames."""
    return sum(len(chunk.pts) for chunk in reader)


def encode_clip(frames, path: Path, codec: str, fps, size: tuple[int, int] | None = None) -> Path:
    """Encode (H, W, 3) uint8 frames as a short-GOP ``codec`` video (``pipeline.data.pairs`` settings,
    visually lossless quality), resized to ``size`` = (W, H) when given."""
    settings = EncodeSettings(codec=codec, keyint=8, quality={"h264": 12, "vp9": 10, "mjpeg": 2}[codec])
    with VideoEncoder(path.with_suffix(settings.suffix), fps=fps, settings=settings) as encoder:
        for frame in frames:
            encoder.write(resize(frame, *size) if size else frame)
    return encoder.path


def profile_decode(clip: Path, device: torch.device, *, chunk: int, repeats: int, work: Path) -> dict:
    """Every reader that decodes ``clip`` here, and each one on a VP9 copy of it (DALI CPU's codec)."""
    videos = [probe(clip)]
    if videos[0].codec != "vp9":
        videos.append(probe(encode_clip(read_frames(clip), work / f"{clip.stem}_vp9", "vp9", videos[0].fps)))
    fns, names = {}, {}
    for info in videos:
        for reader in readers_for(info, device):
            name = f"{reader} ({info.codec} {info.width}x{info.height})"
            fns[name] = lambda info=info, reader=reader: _drain(make_reader(info, reader, device, chunk))
            names[name] = (info, reader)
    runs = time_interleaved(fns, repeats, device)
    configurations = []
    for name, fn in fns.items():
        info, reader = names[name]
        frames, memory = _measured(fn, device)
        if frames != info.num_frames:
            raise RuntimeError(f"{name} decoded {frames} of {info.num_frames} frames")
        configurations.append(configuration(name, frames, runs[name], memory=memory, reader=reader,
                                            codec=info.codec))
    ratios = {}
    for info in videos:
        here = [c for c in configurations if c["codec"] == info.codec]
        pyav = next(c for c in here if c["reader"] == "pyav")
        for c in here:
            if c is not pyav:
                ratios[f"{c['reader']} / pyav fps ({info.codec})"] = (
                    c["rate"]["median"] / pyav["rate"]["median"])
    notes = ["frames land on the compute device: host readers include the upload there"]
    return check_result({"mode": "decode", "unit": "frame", "configurations": configurations,
                         "ratios": ratios, "notes": notes})


def profile_end_to_end(model: CDVDTSP, clip: Path, deblur: DeblurConfig, device: torch.device, *,
                       precisions: list[str], repeats: int, work: Path) -> dict:
    """``deblur_video`` on the clip, file to file, per precision, with the stage breakdown of one more run."""
    info = probe(clip)
    output = work / f"{clip.stem}_deblurred.mp4"

    def runner(precision: str) -> Callable[[], object]:
        config = replace(deblur, precision=precision)
        return lambda: deblur_video(model, clip, output, config, device=device, overwrite=True)

    names = {p: f"deblur {p} ({info.codec} {info.width}x{info.height} -> {deblur.codec})" for p in precisions}
    fns = {names[p]: runner(p) for p in precisions}
    runs = time_interleaved(fns, repeats, device)
    configurations, ratios = [], {}
    for precision, name in names.items():
        result, memory = _measured(fns[name], device)
        stages, wall = breakdown(fns[name], device, info.num_frames)
        compute = sum(v["ms_per_item"] for v in stages.values() if v["thread"] == "compute")
        configurations.append(configuration(name, info.num_frames, runs[name], stages=stages, memory=memory,
                                            reader=result.reader, precision=precision,
                                            breakdown_wall_ms_per_item=1000 * wall / info.num_frames))
        ratios[f"compute-thread stages / breakdown wall ({precision})"] = (
            compute * info.num_frames / 1000 / wall)
    first, *others = precisions
    for precision in others:
        ratios[f"{precision} / {first} (time per frame)"] = paired_ratio(runs[names[precision]],
                                                                         runs[names[first]])
    share = gpu_busy_share(fns[names[first]], device)
    if share is not None:
        ratios[f"GPU busy share ({first})"] = share
    notes = ["the breakdown run synchronises at stage boundaries, so its wall time is above the timed runs'",
             "decode and encode run on their own threads, overlapping compute"]
    return check_result({"mode": "end-to-end", "unit": "frame", "configurations": configurations,
                         "ratios": ratios, "notes": notes})


def training_data(source: Path, work: Path, device: torch.device, *, clips: int, clip_frames: int) -> dict:
    """Blurred/sharp training clips synthesised from ``source``: PNG folders and one paired video set
    per codec the device's DALI decodes (`pipeline.measure.ingest.dali_codecs`)."""
    codecs = dali_codecs(device)
    data = make_data(source, work, clips=clips, clip_frames=clip_frames, codecs=codecs,
                     config=SynthConfig(window=5))
    return {"work": work, "codecs": codecs, **data}


def profile_ingest(data: dict, device: torch.device, *, crop: int, batch_size: int, batches: int,
                   repeats: int, workers: int, threads: int) -> dict:
    """Training batches (5-frame ``crop`` x ``crop`` blurred + sharp windows) from each loader, same data."""
    epochs = compare_loaders(data["work"], data["codecs"], device, batch_size=batch_size, threads=threads,
                             workers=workers, batches=batches, repeats=repeats, crop=crop)
    configurations = []
    for name, runs in epochs.items():
        timed = runs[1:]
        walls = [(r["samples"] / r["samples_per_s"], r["cpu_cores"] * r["samples"] / r["samples_per_s"])
                 for r in timed]
        configurations.append(configuration(name, timed[0]["samples"], walls,
                                            first_batch_s=statistics.median(r["first_batch_s"]
                                                                            for r in timed)))
    baseline = configurations[-1]
    ratios = {f"{c['name']} / {baseline['name']} samples/s": c["rate"]["median"] / baseline["rate"]["median"]
              for c in configurations[:-1]}
    notes = [f"{data['clips']} clips of {data['frames_per_clip']} frames at {data['frame_size']}, "
             f"crop {crop}, batch {batch_size}; {batches} timed batches per epoch after the first; "
             f"on disk (MB) {data['megabytes']}"]
    return check_result({"mode": "ingest", "unit": "sample", "configurations": configurations,
                         "ratios": ratios, "notes": notes})


def profile_train(config: Config, data: dict, device: torch.device, *, steps: int, repeats: int) -> dict:
    """Training steps fed from one batch held in memory vs from the DALI loader (first codec of ``data``;
    in memory only where DALI is not installed)."""
    train = config.train
    torch.manual_seed(train.seed)
    model = CDVDTSP(config.model).to(device).train()
    net = TrainForward(model)
    optimizer, _ = build_optimizer(model, train)
    generator = torch.Generator(device=device).manual_seed(train.seed)
    frames = config.model.window
    windows = PngWindowDataset(discover_frame_pairs(data["work"] / "png"), frames=frames, crop=train.crop,
                               seed=train.seed)
    held = tuple(torch.stack(part).to(device)
                 for part in zip(*(windows[i % len(windows)] for i in range(train.batch))))

    def steps_from(source: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(steps):
                train_step(net, optimizer, *source(), train, generator, device)
        return run

    fns = {"step, batch in memory": steps_from(lambda: held)}
    notes = [f"batch {train.batch} of {frames}-frame {train.crop}x{train.crop} crops, {steps} steps per run"]
    if dali.unavailable() or not data["codecs"]:
        notes.append(f"{dali.unavailable() or 'no paired videos'}: no loader-fed steps")
    else:
        loader_batches = _dali_batches(data, train, frames, device)
        codec = _train_codec(data, device)
        fns[f"step, DALI loader ({codec})"] = steps_from(lambda: _wait_for_batch(loader_batches))
    runs = time_interleaved(fns, repeats, device)
    samples = steps * train.batch
    configurations = []
    for name, fn in fns.items():
        _, memory = _measured(fn, device)
        stages, _ = breakdown(fn, device, samples)
        configurations.append(configuration(name, samples, runs[name], stages=stages, memory=memory,
                                            precision=train.precision))
    names = list(fns)
    ratios = ({"loader step time / in-memory step time": paired_ratio(runs[names[1]], runs[names[0]])}
              if len(names) > 1 else {})
    return check_result({"mode": "train", "unit": "sample", "configurations": configurations,
                         "ratios": ratios, "notes": notes})


def _train_codec(data: dict, device: torch.device) -> str:
    """The codec the DALI loader reads in the train mode: H.264 (NVDEC) on a GPU, else the first."""
    return data["codecs"][-1] if device.type == "cuda" else data["codecs"][0]


def _dali_batches(data: dict, train, frames: int, device: torch.device) -> Callable[[], tuple]:
    """A function giving the DALI loader's next (blurred, sharp) batch on ``device``, epoch after epoch."""
    manifest = Manifest.load(data["work"] / _train_codec(data, device) / "manifest.json")
    loader = PairedVideoLoader(manifest, "train", LoaderConfig.of(train, frames),
                               device_id=dali.device_id(device))
    epoch = 0
    loader.set_epoch(epoch)
    stream = iter(loader)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal stream, epoch
        batch = next(stream, None)
        if batch is None:
            epoch += 1
            loader.set_epoch(epoch)
            stream = iter(loader)
            batch = next(stream)
        return batch[0].to(device), batch[1].to(device)

    return next_batch


def _wait_for_batch(next_batch: Callable[[], tuple]) -> tuple:
    """A training step's wait for its batch (``data wait`` in the breakdown)."""
    with timed("data wait"):
        return next_batch()
