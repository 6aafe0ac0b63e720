"""Deblur one part of a video end to end: decode ahead, stream through the engine, encode on a thread.

    reader (DALI / PyAV, runs ahead) -> engine (its own CUDA stream, autocast) -> levels on device
        -> async copy into pinned host memory -> writer thread (waits on the copy's event, encodes)

On a CPU the same structure runs with threads: the reader and the writer work while the model computes.
Every queue is bounded, so memory does not grow with the video's length. A part is the whole video or a
time shard of it (`pipeline.stream.parts`); `pipeline.stream.workers` runs the parts of many videos;
`pipeline.stream.restore` streams frames without files or parts.
"""
from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from model import CDVDTSP
from model.ranges import timed
from pipeline.precision import precision_context
from pipeline.stream.engine import StreamingEngine
from pipeline.stream.parts import Part, decode_range
from pipeline.stream.windows import first_restored
from pipeline.video.frames import to_model, to_pixels
from pipeline.video.readers import open_reader
from pipeline.video.writer import Output

if TYPE_CHECKING:  # pipeline.config imports this package's vocabularies (`windows.BORDERS`)
    from pipeline.config import DeblurConfig

log = logging.getLogger(__name__)


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
    """Start copying (F, H, W, 3) device frames to pinned host memory; one event says when all are done."""
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


def deblur_part(
    model: CDVDTSP, output: Output, part: Part, config: DeblurConfig, *, device: torch.device,
    reader: str, on_frames: Callable[[int], None] | None = None,
) -> str:
    """Restore frames ``[part.start, part.stop)`` of ``output``'s video into its segments.

    Decodes the part plus its context (`parts.decode_range`), streams it through the engine and writes
    only the part's frames, with their pts; the segments equal those of a run over the whole video.

    Args:
        model: the cascade, already on ``device`` and in eval mode.
        reader: the reader kind (`readers.READERS`).
        on_frames: called with the number of frames just handed to the writer.

    Returns:
        The name of the reader that decoded it.

    Raises:
        VideoError: unreadable or corrupt input, or an encoder failure; DaliDecodeError: DALI failed.
    """
    info, radius = output.info, model.config.stages
    decode = decode_range(part, info.num_frames, radius, config.group)
    reader = open_reader(info, reader, device, config.chunk, start_frame=decode.first, stop_frame=decode.stop,
                         deep=output.bits > 8)
    log.info("%s frames %d-%s: reader %s (%s)", info.path, part.start, part.stop or "end", reader.name,
             reader.reason)
    emitted = first_restored(decode.first, radius, config.group)  # the engine's first restored frame
    context = emitted - decode.first  # decoded frames before it: context only
    skip = part.start - emitted  # restored frames before the part (decoded from the video's start)
    remaining = None if part.stop is None else part.stop - part.start
    pending = _Pending(keep_pixels=config.compare)
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    if stream is not None:  # the model's weights were copied on the default stream: wait for them
        stream.wait_stream(torch.cuda.current_stream(device))

    def model_input() -> Iterator[torch.Tensor]:
        for chunk in reader:
            pending.add(chunk.pts, chunk.frames)
            with timed("to float"):
                frames = to_model(chunk.frames)
            yield frames

    engine = StreamingEngine(model, border=config.border, group=config.group)
    with output.writer(part.start, last=part.stop is None, reader=reader.name,
                       queue_depth=config.queue) as writer, \
            torch.cuda.stream(stream) if stream else contextlib.nullcontext(), \
            precision_context(device, config.precision):
        for restored in engine.run(model_input(), first_frame=decode.first, ends_video=decode.ends_video):
            with timed("to levels + download"):
                frames = to_pixels(restored.float(), output.pixels)  # (F, H, W, 3) on the device
            if context:
                pending.take(context)
                context = 0
            pts, pixels = pending.take(len(frames))
            keep = slice(min(skip, len(frames)), len(frames) if remaining is None else skip + remaining)
            skip -= keep.start
            frames, pts, pixels = frames[keep], pts[keep], None if pixels is None else pixels[keep]
            if not len(frames):
                continue
            with timed("to levels + download"):
                (host, source_host), ready = _to_host([frames, pixels], stream)
            writer.write(host, pts, source=source_host, ready=ready)
            if on_frames:
                on_frames(len(frames))
            if remaining is not None:
                remaining -= len(frames)
                if not remaining:
                    break
    return reader.name
