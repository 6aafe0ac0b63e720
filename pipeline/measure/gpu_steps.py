"""The GPU check's steps: what the project measures on a GPU, in order of value (`STEPS`).

Each step is a function ``(Check) -> dict`` of JSON-ready figures (the profiler's results, by mode,
under ``"results"``); `run_steps` runs them in order within a time budget, skipping a step whose estimate no
longer fits, stopping one that runs past the budget, recording a failed step and going on, and calling
``on_step`` before each (status ``running``) and after it (so that the caller can save what a run cut short
has measured, and which step it was in). Every step needs torch and PyAV only; the DALI step is skipped
where DALI is not usable, and the decode steps add DALI's readers where it is. ``Check.tiny`` runs every
step at a toy size, on any device: what CI runs on the CPU so that the check cannot rot.
"""
import contextlib
import copy
import itertools
import signal
import subprocess
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from model import CDVDTSP
from model.pwc import PWCNet
from pipeline.checkout import FOOTAGE, ROOT
from pipeline.compiling import compile_model
from pipeline.config import Config
from pipeline.data.pairs import resize
from pipeline.measure import profiling
from pipeline.measure.clips import looped_clip
from pipeline.measure.flop_count import datasheet_tflops, measured_matmul_tflops
from pipeline.measure.timing import synchronize
from pipeline.memory_format import with_memory_format
from pipeline.precision import precision_context
from pipeline.stream.engine import StreamingEngine
from pipeline.video import dali
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.probe import probe
from pipeline.video.readers import make_reader, readers_for
from pipeline.video.sequences import read_frames

CLIP = FOOTAGE / "cockatoo.mp4"  # real 1280x720 footage (samples/footage/sources.yaml)
TESTS = ROOT / "tests"
FIRST_FRAME = 60  # past the clip's fade-in


@dataclass
class Check:
    """What every step needs: the model (on ``device``), the config, sizes, and a scratch folder."""

    model: CDVDTSP
    config: Config
    device: torch.device
    work: Path
    tiny: bool
    deadline: float = float("inf")  # time.perf_counter() at which the budget ends (set by `run_steps`)
    _data: dict | None = field(default=None, init=False, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames measured."""
        return (64, 48) if self.tiny else (1280, 720)

    @property
    def frames(self) -> int:
        return 6 if self.tiny else 24

    @property
    def repeats(self) -> int:
        return 1 if self.tiny else 3

    @property
    def precision(self) -> str:
        """What the single-precision steps run: bf16 on CUDA, fp32 elsewhere."""
        return "bf16" if self.device.type == "cuda" else "fp32"

    @property
    def precisions(self) -> list[str]:
        """What the device runs fast: every precision on CUDA, fp32 and bf16 on a CPU."""
        return ["fp32", "tf32", "bf16", "fp16"] if self.device.type == "cuda" else ["fp32", "bf16"]

    def clip_frames(self, count: int) -> list[np.ndarray]:
        """``count`` real frames of `CLIP` at `size`, (H, W, 3) uint8."""
        frames = itertools.islice(read_frames(CLIP), FIRST_FRAME, FIRST_FRAME + count)
        return [resize(frame, *self.size) for frame in frames]

    def training_data(self) -> dict:
        """Blurred/sharp training clips from `CLIP` as PNG folders and paired videos (made once)."""
        if self._data is None:
            self._data = profiling.training_data(CLIP, self.work / "train", self.device, clips=2,
                                                 clip_frames=12 if self.tiny else 24)
        return self._data

    def h264_clip(self) -> Path:
        """`frames` frames of `CLIP` at `size` as short-GOP H.264 (made once)."""
        path = self.work / "clip.mp4"
        if not path.is_file():
            profiling.encode_clip(self.clip_frames(self.frames), path, "h264", probe(CLIP).fps)
        return path


def cuda_tests(check: Check) -> dict:
    """``pytest -m "cuda or torch_api"`` (every CUDA test, which skips elsewhere, and the tests of how the
    installed torch behaves), within what is left of the budget, as counts from its JUnit XML. The step
    fails when pytest does (a failed test, a collection error) or runs out of time."""
    report = check.work / "cuda_tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda or torch_api", f"--junitxml={report}", "-p",
               "no:cacheprovider", str(TESTS)]
    seconds = max(1.0, min(CUDA_TESTS_TIMEOUT, check.deadline - time.perf_counter()))
    try:
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or b""  # bytes, even with text=True
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        return {"status": "timeout", "error": f"pytest ran past {seconds:.0f} s",
                "tail": output.strip().splitlines()[-5:]}
    tail = completed.stdout.strip().splitlines()[-5:]
    if not report.is_file():
        return {"status": "failed", "error": f"pytest exited {completed.returncode} without a report",
                "exit_code": completed.returncode, "tail": tail}
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = [case.get("name") for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    record = {**counts, "failed": failed, "exit_code": completed.returncode, "tail": tail}
    if completed.returncode != 0:
        record |= {"status": "failed", "error": f"pytest exited {completed.returncode}: {tail[-1:]}"}
    return record


def peak(check: Check) -> dict:
    """The matmul peak per precision, measured (`flops.measured_matmul_tflops`: 8192**3 products on CUDA,
    timed by CUDA events), beside the datasheet's dense peak: what "% of peak" in the other steps means."""
    size = 256 if check.tiny else None
    measured = {p: measured_matmul_tflops(check.device, p, size=size) for p in check.precisions}
    datasheet = {p: datasheet_tflops(check.device, p) for p in check.precisions}
    return {"size": size or (8192 if check.device.type == "cuda" else 2048), "measured_tflops": measured,
            "datasheet_tflops": datasheet,
            "measured_share_of_datasheet": {p: measured[p] / datasheet[p] if datasheet[p] else None
                                            for p in measured}}


def _restored(check: Check, frames: list[np.ndarray], device: torch.device, precision: str) -> torch.Tensor:
    """(F, 3, H, W) float32 restored frames on the CPU: the engine on ``device`` in ``precision``."""
    model = check.model.to(device)
    chunks = [to_model(torch.from_numpy(np.stack(frames[i:i + 4])).to(device))
              for i in range(0, len(frames), 4)]
    with precision_context(device, precision):
        out = [chunk.float().cpu() for chunk in StreamingEngine(model).run(chunks)]
    check.model.to(check.device)
    return torch.cat(out)


def fidelity(check: Check) -> dict:
    """fp32 on the device (TF32 off) against fp32 on the CPU; each other precision against fp32 on the
    device: PSNR (dB, peak 1) of the difference and the largest difference in 8-bit levels."""
    frames = check.clip_frames(3 if check.tiny else 6)
    reference = _restored(check, frames, torch.device("cpu"), "fp32")
    on_device = {p: _restored(check, frames, check.device, p) for p in check.precisions}

    def compare(a: torch.Tensor, b: torch.Tensor) -> dict:
        levels = (to_uint8(a).int() - to_uint8(b).int()).abs().max().item()
        mse = torch.mean((a - b) ** 2).item()
        return {"max_abs": (a - b).abs().max().item(), "psnr_db": 10 * np.log10(1 / mse) if mse else None,
                "max_levels": levels}

    figures = {"frames": len(frames), "size": "x".join(map(str, check.size)),
               "fp32_vs_cpu": compare(on_device["fp32"], reference)}
    for precision in check.precisions[1:]:
        figures[f"{precision}_vs_fp32"] = compare(on_device[precision], on_device["fp32"])
    return figures


def engine(check: Check) -> dict:
    """The profiler's model mode at `Check.size`: frames/s per precision, counted TFLOP/s and their share
    of the device's bf16 dense datasheet peak and of the measured peak of their precision, peak memory, and
    the official schedule on the same frames."""
    width, height = check.size
    result = profiling.profile_model(check.model, check.config.deblur, check.device, frames=check.frames,
                                     height=height, width=width, repeats=check.repeats,
                                     precisions=check.precisions)
    peak = datasheet_tflops(check.device, "bf16")
    fps = {c["name"]: c["rate"]["median"] for c in result["configurations"]}
    shares = {c["name"]: c["achieved_tflops"] / peak for c in result["configurations"]} if peak else None
    measured = {c["name"]: c["achieved_tflops"] / c["matmul_peak_tflops"] for c in result["configurations"]}
    return {"fps": fps, "share_of_bf16_peak": shares, "bf16_peak_tflops": peak,
            "share_of_measured_peak": measured, "results": {"model": result}}


def flow(check: Check) -> dict:
    """The flow net's path, which the default checkpoint skips (its flow heads are zero): the engine at
    `Check.size` with a randomly initialised PWC-Net (seeded), eager against ``--compile correlation``
    (PWC-Net's 81 multiply-mean pairs per level as one kernel), in `Check.precision`: frames/s, counted
    TFLOP/s, the one compile's seconds and the largest difference. At the tiny size the correlation is
    only traced (eager backend)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        weights = PWCNet().state_dict()
    model = copy.deepcopy(check.model)
    model.flow.load_state_dict(weights)
    model = model.to(check.device).eval()
    frames = check.clip_frames(check.frames)
    eager, eager_fps = _timed_runs(check, model, frames, check.precision)
    fused = compile_model(copy.deepcopy(model), "correlation", backend="eager" if check.tiny else "inductor")
    began = time.perf_counter()
    _restored(replace(check, model=fused), frames, check.device, check.precision)
    first = time.perf_counter() - began
    restored, fused_fps = _timed_runs(check, fused, frames, check.precision)
    width, height = check.size
    tflops = profiling.engine_flops(model, check.frames, height, width, check.config.deblur)["engine"] / 1e12
    return {"precision": check.precision, "eager_fps": eager_fps, "correlation_fps": fused_fps,
            "speedup": fused_fps / eager_fps, "first_run_seconds": first,
            "tflop_per_frame": tflops / check.frames,
            "achieved_tflops": {"eager": tflops / check.frames * eager_fps,
                                "correlation": tflops / check.frames * fused_fps},
            "max_abs_vs_eager": float((restored - eager).abs().max())}


def end_to_end(check: Check) -> dict:
    """720p H.264 in -> H.264 out, PyAV on the host (the profiler's end-to-end mode), and its frames/s as a
    share of the engine-only frames/s at the same precision and size (the model mode, measured here)."""
    precision = check.precision
    clip = check.h264_clip()
    result = profiling.profile_end_to_end(check.model, clip, check.config.deblur, check.device,
                                          precisions=[precision], repeats=check.repeats, work=check.work)
    width, height = check.size
    alone = profiling.profile_model(check.model, check.config.deblur, check.device, frames=check.frames,
                                    height=height, width=width, repeats=check.repeats, precisions=[precision])
    file_fps = result["configurations"][0]["rate"]["median"]
    engine_fps = alone["configurations"][0]["rate"]["median"]
    return {"precision": precision, "fps": file_fps, "engine_fps": engine_fps,
            "share_of_engine_fps": file_fps / engine_fps, "results": {"end-to-end": result}}


def train(check: Check) -> dict:
    """A short training run: samples/s and the step breakdown, fed from memory (and from the DALI loader
    where DALI is installed)."""
    data = check.training_data()
    crop = 32 if check.tiny else 256
    config = replace(check.config, train=replace(check.config.train, crop=crop, batch=1 if check.tiny else 8))
    result = profiling.profile_train(config, data, check.device, steps=1 if check.tiny else 4,
                                     repeats=check.repeats)
    return {"samples_per_s": {c["name"]: c["rate"]["median"] for c in result["configurations"]},
            "results": {"train": result}}


def long_decode(check: Check) -> dict:
    """Decoding a long file (3 minutes of 720p H.264 at 20 frames/s, the default GOP): every reader that
    decodes it here (PyAV; DALI on NVDEC too on a GPU with DALI) reads it whole, and its frames/s over the
    first minute is held against its frames/s over the last (DALI's video reader slowed down along long
    files in its issue #5672). The tiny size reads 40 frames and calls 10 of them a minute."""
    minute = 10 if check.tiny else 1200
    clip = check.work / "long.mp4"
    looped_clip(clip, 4 * minute if check.tiny else 3 * minute, *check.size,
                options={"crf": "18", "preset": "veryfast"})
    info = probe(clip)
    figures = {"frames": info.num_frames, "minute_frames": minute}
    for name in readers_for(info, check.device):
        stamps = [(0, time.perf_counter())]  # (frames done, when)
        for chunk in make_reader(info, name, check.device, check.config.deblur.chunk):
            synchronize(check.device)
            stamps.append((stamps[-1][0] + len(chunk.pts), time.perf_counter()))
        frames = info.num_frames
        first, last = _span_fps(stamps, 0, minute), _span_fps(stamps, frames - minute, frames)
        figures[name] = {"first_minute_fps": first, "last_minute_fps": last, "last_over_first": last / first,
                         "whole_fps": _span_fps(stamps, 0, frames)}
    return figures


def _span_fps(stamps: list[tuple[int, float]], first: int, last: int) -> float:
    """Frames/s between the (frames done, time) stamp at or before frame ``first`` and the one at or after
    frame ``last``."""
    begin = max(stamp for stamp in stamps if stamp[0] <= first)
    end = min(stamp for stamp in stamps if stamp[0] >= last)
    return (end[0] - begin[0]) / (end[1] - begin[1])


def dali_readers(check: Check) -> dict:
    """Every reader on the H.264 clip and on a VP9 copy (NVDEC among them on a GPU, DALI's CPU decoder on
    the copy): frames/s (the profiler's decode mode) and each reader's frames against PyAV's in 8-bit
    levels; then the DALI training loader against the PNG loader (the ingest mode)."""
    if dali.unavailable():
        raise ModuleNotFoundError(dali.unavailable())
    clip = check.h264_clip()
    decode = profiling.profile_decode(clip, check.device, chunk=check.config.deblur.chunk,
                                      repeats=check.repeats, work=check.work)
    vp9 = profiling.encode_clip(read_frames(clip), check.work / "clip_vp9", "vp9", probe(clip).fps)
    levels = {}
    for info in (probe(clip), probe(vp9)):
        decoded = {name: torch.cat([chunk.frames.cpu() for chunk in make_reader(info, name, check.device)])
                   for name in readers_for(info, check.device)}
        levels |= {f"{name} ({info.codec})": (frames.int() - decoded["pyav"].int()).abs().max().item()
                   for name, frames in decoded.items() if name != "pyav"}
    ingest = profiling.profile_ingest(check.training_data(), check.device, crop=32 if check.tiny else 256,
                                      batch_size=2 if check.tiny else 8, batches=2 if check.tiny else 10,
                                      repeats=check.repeats, workers=1 if check.tiny else 4,
                                      threads=1 if check.tiny else 4)
    return {"max_levels_vs_pyav": levels,
            "ingest_samples_per_s": {c["name"]: c["rate"]["median"] for c in ingest["configurations"]},
            "results": {"decode": decode, "ingest": ingest}}


def _timed_runs(check: Check, model: CDVDTSP, frames: list[np.ndarray],
                precision: str) -> tuple[torch.Tensor, float]:
    """The engine's restored frames with ``model`` and its frames/s (median of `Check.repeats` runs,
    frames back on the host)."""
    runs = []
    for _ in range(check.repeats):
        began = time.perf_counter()
        restored = _restored(replace(check, model=model), frames, check.device, precision)
        runs.append(time.perf_counter() - began)
    return restored, len(frames) / sorted(runs)[len(runs) // 2]


def compiled(check: Check) -> dict:
    """The engine at `Check.size` compiled (`pipeline.compiling`, reduce-overhead: inductor kernels as CUDA
    graphs) against eager, in bf16 on CUDA (fp32 elsewhere), on real frames: frames/s of both, the first
    compiled run's seconds (compiling), and the largest difference of the compiled frames from the eager
    ones. At the tiny size the pieces are only traced (eager backend), so that CI runs the step without
    code generation."""
    precision = check.precision
    frames = check.clip_frames(check.frames)
    eager, eager_fps = _timed_runs(check, check.model, frames, precision)
    model = compile_model(copy.deepcopy(check.model), "reduce-overhead",
                          backend="eager" if check.tiny else "inductor")
    began = time.perf_counter()
    _restored(replace(check, model=model), frames, check.device, precision)
    first = time.perf_counter() - began
    restored, compiled_fps = _timed_runs(check, model, frames, precision)
    return {"precision": precision, "mode": "reduce-overhead", "eager_fps": eager_fps,
            "compiled_fps": compiled_fps, "speedup": compiled_fps / eager_fps, "first_run_seconds": first,
            "max_abs_vs_eager": float((restored - eager).abs().max())}


def channels_last(check: Check) -> dict:
    """The engine at `Check.size` with channels-last weights (`pipeline.memory_format`) against contiguous
    ones, in bf16 on CUDA (fp32 elsewhere), on real frames: frames/s of both, in turns, and the largest
    difference of the frames."""
    precision = check.precision
    frames = check.clip_frames(check.frames)
    models = {"contiguous": check.model,
              "channels_last": with_memory_format(copy.deepcopy(check.model), "channels_last")}
    _timed_runs(check, models["channels_last"], frames, precision)  # first call: kernel choice, caches
    runs = {name: _timed_runs(check, model, frames, precision) for name, model in models.items()}
    difference = (runs["channels_last"][0] - runs["contiguous"][0]).abs().max()
    return {"precision": precision, **{f"{name}_fps": fps for name, (_, fps) in runs.items()},
            "speedup": runs["channels_last"][1] / runs["contiguous"][1],
            "max_abs_vs_contiguous": float(difference)}


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Check], dict]
    seconds: float  # what it takes on an H100/H200 at full size (a CPU at the tiny size takes less)


CUDA_TESTS_TIMEOUT = 600  # seconds pytest may take at most, within the budget
STEPS = (Step("cuda_tests", cuda_tests, 120), Step("peak", peak, 15), Step("fidelity", fidelity, 60),
         Step("engine", engine, 90), Step("flow", flow, 90), Step("end_to_end", end_to_end, 60),
         Step("long_decode", long_decode, 45), Step("train", train, 60), Step("dali", dali_readers, 60),
         Step("channels_last", channels_last, 30), Step("compiled", compiled, 120))


class OutOfBudget(Exception):
    """A step ran past the end of the budget."""


@contextlib.contextmanager
def deadline_alarm(seconds: float):
    """Raise `OutOfBudget` in the block after ``seconds`` (a SIGALRM timer; where there is none, or off
    the main thread, nothing: a step then runs to its end). Work inside one CUDA call is not cut short."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise OutOfBudget(f"ran past the budget ({seconds:.0f} s were left)")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_steps(check: Check, budget: float, on_step: Callable[[str, dict], None],
              steps: tuple[Step, ...] = STEPS) -> None:
    """Run ``steps`` in order; ``on_step(name, record)`` before each (``record["status"]`` ``running``) and
    after it, with the status ``ok``, ``failed`` (with the error), ``timeout`` (stopped at the end of the
    budget), ``skipped`` (DALI missing) or ``budget`` (not started: it would not fit). At the tiny size
    the budget stops nothing: CI runs every step."""
    start = time.perf_counter()
    check.deadline = start + budget if not check.tiny else float("inf")
    for step in steps:
        left = budget - (time.perf_counter() - start)
        if step.seconds > left and not check.tiny:
            on_step(step.name, {"status": "budget", "seconds_left": left})
            continue
        on_step(step.name, {"status": "running", "seconds_left": left})
        began = time.perf_counter()
        try:
            with deadline_alarm(left) if not check.tiny else contextlib.nullcontext():
                record = {"status": "ok", **step.run(check)}
        except OutOfBudget as error:
            record = {"status": "timeout", "error": str(error)}
        except ModuleNotFoundError as error:
            record = {"status": "skipped", "error": str(error)}
        except Exception as error:  # a rare GPU: record what broke and measure the rest
            record = {"status": "failed", "error": f"{type(error).__name__}: {error}",
                      "traceback": traceback.format_exc(limit=8)}
        record["seconds"] = time.perf_counter() - began
        on_step(step.name, record)
