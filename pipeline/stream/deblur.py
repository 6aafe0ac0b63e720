"""Deblur one video end to end: probe, decode ahead, stream through the engine, encode on a thread.

    reader (DALI / PyAV, runs ahead) -> engine (its own CUDA stream, autocast) -> uint8 on device
        -> async copy into pinned host memory -> writer thread (waits on the copy's event, encodes)

On a CPU the same structure runs with threads: the reader and the writer work while the model computes.
Every queue is bounded, so memory does not grow with the video's length.
"""
import contextlib
import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from model import CDVDTSP
from model.ranges import timed
from pipeline.config import DeblurConfig
from pipeline.errors import DaliDecodeError
from pipeline.precision import precision_context
from pipeline.stream.engine import StreamingEngine
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.probe import VideoInfo, probe
from pipeline.video.readers import open_reader
from pipeline.video.writer import VideoWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeblurResult:
    """What one video's run did."""

    source: Path
    output: Path
    frames: int  # frames written by this run (fewer than the video's when it resumed)
    seconds: float
    reader: str
    resumed_from: int


class _Pending:
    """Input frames (pts, and pixels when comparing) waiting for their restored frame, oldest first."""

    def __init__(self, keep_pixels: bool) -> None:
        self.keep_pixels = keep_pixels
        self.chunks: deque = deque()

    def add(self, pts: list[int], frames: torch.Tensor) -> None:
        self.chunks.append((list(pts), frames if self.keep_pixels else None))

    def take(self, count: int) -> tuple[list[int], torch.Tensor | None]:
        """The next ``count`` frames' pts and (F, H, W, 3) pixels (None unless comparing)."""
        pts, pixels = [], []
        while count:
            chunk_pts, frames = self.chunks.popleft()
            used = min(count, len(chunk_pts))
            pts += chunk_pts[:used]
            if frames is not None:
                pixels.append(frames[:used])
            if used < len(chunk_pts):
                self.chunks.appendleft((chunk_pts[used:], None if frames is None else frames[used:]))
            count -= used
        return pts, torch.cat(pixels) if pixels else None


def _to_host(
    tensors: list[torch.Tensor | None], stream: torch.cuda.Stream | None
) -> tuple[list[torch.Tensor | None], object]:
    """Start copying (F, H, W, 3) uint8 device frames to pinned host memory; one event says when all are
    done."""
    if stream is None:
        return [None if t is None else t.cpu() for t in tensors], None
    hosts = []
    for tensor in tensors:
        host = None if tensor is None else torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        if host is not None:
            host.copy_(tensor, non_blocking=True)
        hosts.append(host)
    done = torch.cuda.Event()
    done.record(stream)  # after every copy above
    return hosts, done


def restore_frames(
    model: CDVDTSP, frames: Iterable[np.ndarray], config: DeblurConfig, device: torch.device | str = "cpu"
) -> Iterator[np.ndarray]:
    """Deblur frames from any source (a frame folder, a decoder), in order, without files or threads.

    Args:
        frames: (H, W, 3) uint8 RGB images.

    Yields:
        (H, W, 3) uint8 restored images, one per input image.
    """
    device = torch.device(device)

    def chunks() -> Iterator[torch.Tensor]:
        batch = []
        for image in frames:
            batch.append(torch.from_numpy(np.array(image)))  # a writable copy of a possibly read-only frame
            if len(batch) == config.chunk:
                yield to_model(torch.stack(batch).to(device))
                batch = []
        if batch:
            yield to_model(torch.stack(batch).to(device))

    engine = StreamingEngine(model, border=config.border, batch=config.batch)
    with precision_context(device, config.precision):
        for restored in engine.run(chunks()):
            yield from to_uint8(restored.float()).cpu().numpy()


def deblur_video(
    model: CDVDTSP, source: str | Path, output: str | Path, config: DeblurConfig, *,
    device: torch.device | str = "cpu", overwrite: bool = False, resume: bool = False,
    on_start: Callable[[VideoInfo, str, int], None] | None = None,
    on_frames: Callable[[int], None] | None = None, settings: dict | None = None,
) -> DeblurResult:
    """Deblur ``source`` into ``output`` (a video file, or a PNG folder with ``config.format == "png"``).

    Args:
        model: the cascade, already on ``device`` and in eval mode.
        config: border, chunking, precision, reader and output options.
        overwrite: replace an existing output (otherwise it is an error).
        resume: continue an interrupted run's finished segments; the result equals an uninterrupted run.
        on_start: called with (video info, reader name, first frame) before decoding starts.
        on_frames: called with the number of frames just handed to the writer.
        settings: extra values that must match for a resume (e.g. the checkpoint).

    A file that DALI fails to decode with ``config.reader == "auto"`` is done again from its first frame
    with PyAV (a warning says so), so one output never mixes two decoders' colour conversions.

    Raises:
        VideoError: unreadable or corrupt input, an unusable output path, or an encoder failure.
    """
    run = functools.partial(_deblur_video, model, source, output, device=torch.device(device),
                            on_start=on_start, on_frames=on_frames, settings=settings)
    try:
        return run(config, overwrite=overwrite, resume=resume)
    except DaliDecodeError as error:
        if config.reader != "auto":
            raise
        log.warning("%s; decoding it again with PyAV", error)
        return run(dataclasses.replace(config, reader="pyav"), overwrite=overwrite, resume=False)


def _deblur_video(
    model: CDVDTSP, source: str | Path, output: str | Path, config: DeblurConfig, *, device: torch.device,
    overwrite: bool, resume: bool, on_start: Callable[[VideoInfo, str, int], None] | None,
    on_frames: Callable[[int], None] | None, settings: dict | None,
) -> DeblurResult:
    """`deblur_video` with one reader."""
    with timed("probe"):
        info = probe(source)
    stages = model.config.stages
    started = time.perf_counter()
    fingerprint = {"model": asdict(model.config), "border": config.border, "precision": config.precision,
                   **(settings or {})}
    with VideoWriter(
        output, info, format=config.format, codec=config.codec, crf=config.crf, compare=config.compare,
        overwrite=overwrite, resume=resume, segment_frames=config.segment, queue_depth=config.queue,
        settings=fingerprint,
    ) as writer:
        start = writer.resume_frame
        if start >= info.num_frames:
            return DeblurResult(info.path, Path(output), 0, 0.0, "none", start)
        # Resuming at frame s > T: the T frames before s are context only (see StreamingEngine.run).
        first = start - stages if start > stages else 0
        context = start - first if first else 0  # decoded frames that get no output of their own
        skip = 0 if first else start  # restored frames to drop before frame `start`
        reader = open_reader(info, config.reader, device, config.chunk, start_frame=first)
        log.info("%s: reader %s (%s)", info.path, reader.name, reader.reason)
        if on_start:
            on_start(info, reader.name, start)
        pending = _Pending(keep_pixels=config.compare)
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None

        def model_input() -> Iterator[torch.Tensor]:
            for chunk in reader:
                pending.add(chunk.pts, chunk.frames)
                with timed("to float"):
                    frames = to_model(chunk.frames)
                yield frames

        written = 0
        with torch.cuda.stream(stream) if stream else contextlib.nullcontext(), \
                precision_context(device, config.precision):
            for restored in StreamingEngine(model, border=config.border, batch=config.batch).run(
                model_input(), first_frame=first
            ):
                with timed("to uint8 + download"):
                    frames = to_uint8(restored.float())  # (F, H, W, 3) on the device
                if context:
                    pending.take(context)
                    context = 0
                pts, pixels = pending.take(len(frames))
                if skip:
                    dropped = min(skip, len(frames))
                    frames, pts = frames[dropped:], pts[dropped:]
                    pixels = None if pixels is None else pixels[dropped:]
                    skip -= dropped
                    if not len(frames):
                        continue
                with timed("to uint8 + download"):
                    (host, source_host), ready = _to_host([frames, pixels], stream)
                writer.write(host, pts, source=source_host, ready=ready)
                written += len(frames)
                if on_frames:
                    on_frames(len(frames))
    return DeblurResult(info.path, Path(output), written, time.perf_counter() - started, reader.name, start)
