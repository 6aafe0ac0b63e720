"""The output writer: encodes on a background thread, resumable, atomic, and shareable by workers.

An `Output` is one video's output: its hidden work folder next to it (`pipeline.video.workfolder`), where
frames go as fixed-size segments of ``segment_frames`` frames (separately encoded video files or PNG
frames, `pipeline.video.segments`), and the final join. A `PartWriter` writes one part of the video,
frames ``[start, stop)`` from a segment boundary: frames go through a bounded queue to an encoder thread
(`pipeline.video.encoder_thread`), so the compute thread blocks only when the queue is full. Parts may be
written by different processes (time-sharded deblurring); once every segment is finished, `Output.join`
remuxes them (no re-encoding) together with the source's audio and subtitle streams, metadata and chapters
(`pipeline.video.join`) into a temporary file in the work folder, which is renamed over the output; the
work folder is deleted. A failed or aborted run leaves no output file, only the work folder for
``--resume``. The launch that prepares an output holds its lock (`pipeline.video.lock`) until the job ends;
an output that is an input is refused, whatever the flags.
"""

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import av
import numpy as np
import torch

from model.ranges import timed
from pipeline.errors import VideoError, cannot_write
from pipeline.video.encoder import container_format
from pipeline.video.encoder_thread import EncoderThread
from pipeline.video.frames import PEAKS, pixel_type
from pipeline.video.hdr import CARRIERS as HDR_CARRIERS
from pipeline.video.hdr import hdr_options
from pipeline.video.join import join_segments
from pipeline.video.lock import OutputLock
from pipeline.video.probe import VideoInfo, probe
from pipeline.video.segments import (
    CHROMAS,
    PngFrames,
    Segments,
    Sink,
    VideoSegments,
    chroma_of,
    encodes_bits,
    pix_fmt,
)
from pipeline.video.workfolder import ResumeKey, WorkFolder

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("video", "png")
OUTPUT_BITS = (8, 10)  # output depths; "auto" picks one per input (`output_bits`)


class Output:
    """Where one video's deblurred frames go, and how they are encoded.

    Args:
        path: the output video (its suffix picks the container: one of `encoder.CONTAINERS`) or PNG folder.
        info: the source video: frame rate, time base and audio come from it.
        format: "video" or "png".
        codec, crf, options: the video encoder, its ``crf`` (for encoders that have one: libx264, libx265,
            libvpx-vp9) and further encoder options (e.g. ``{"preset": "veryfast"}``).
        bits: 8, 10, or "auto": 10 for a source deeper than 8 bits when the output can hold it (PNG, or a
            codec with 10-bit formats), else 8. Frames are then written as uint16 levels (``pixels``).
            Video is encoded as ``pix_fmt``: the input's chroma subsampling (``chroma``) at that depth
            (`segments.pix_fmt`); ``chroma_loss`` says why not, where the codec has no such format.
        compare: frames are input | output side by side.
        segment_frames: frames per resumable segment; parts start on multiples of it.
        settings: anything else that must match for a resume or between workers (e.g. the model and
            engine config); JSON-serialisable (other values compare by ``str``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        *,
        format: str = "video",
        codec: str = "libx264",
        crf: int = 18,
        options: Mapping[str, str] | None = None,
        compare: bool = False,
        segment_frames: int = 64,
        settings: Mapping[str, object] | None = None,
        bits: int | str = "auto",
    ) -> None:
        if format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {format!r}")
        self.path, self.info, self.format, self.compare = Path(path), info, format, compare
        self.segments, self.codec = Segments(segment_frames), codec
        self.encoder_options = hdr_options(codec, info.hdr, {"crf": str(crf), **(options or {})})
        if info.hdr and format == "video" and codec not in HDR_CARRIERS:
            log.warning("%s: HDR mastering metadata not written (%s cannot carry it; %s can)",
                        info.path, codec, ", ".join(HDR_CARRIERS))
        self.bits = output_bits(bits, info, format, codec)
        self.pixels = pixel_type(self.bits)  # the frames' type: uint8, or uint16 levels above 8 bits
        if info.bit_depth > self.bits:
            reason = ("as asked" if bits != "auto" else "outputs have 8 or 10 bits" if self.bits == 10
                      else f"{codec} has no 10-bit format here")
            log.warning("%s: %d-bit input, %d-bit output (%s)", info.path, info.bit_depth, self.bits, reason)
        self.chroma = chroma_of(info.pix_fmt)  # the input's chroma subsampling, which the output keeps
        self.pix_fmt = self.chroma_loss = None  # the encoded format (video); why it has less chroma, if so
        if format == "video":
            height, width = info.frame_size
            self.pix_fmt = pix_fmt(codec, height, 2 * width if compare else width, self.bits, self.chroma)
            written = chroma_of(self.pix_fmt)
            if CHROMAS.index(written) < CHROMAS.index(self.chroma):
                self.chroma_loss = (f"{self.chroma} input written as {written}: {codec} has no "
                                    f"{self.chroma} format")
                log.warning("%s: %s", info.path, self.chroma_loss)
        self.work = WorkFolder(self.path, self.segments, ResumeKey(
            source=str(info.path.resolve()), source_bytes=info.path.stat().st_size,
            num_frames=info.num_frames,
            format=format, codec=codec, crf=crf, options=dict(options or {}), compare=compare,
            bits=self.bits, pix_fmt=self.pix_fmt, segment_frames=segment_frames,
            settings=dict(settings or {})))
        self._container = container_format(self.path, codec) if format == "video" else None
        self.lock = OutputLock(self.path)

    def prepare(self, *, overwrite: bool = False, resume: bool = False, inputs: Sequence[Path] = ()) -> None:
        """Take the output's lock (`lock.OutputLock`, held until `release`) and make the work folder ready
        for writers, keeping an interrupted run's segments with ``resume``. Once per launch, before any part
        is written.

        Args:
            inputs: the job's inputs: the output may be none of them, nor its own source.

        Raises:
            VideoError: the output is an input, another launch holds its lock, it exists (without
                ``overwrite``), its folder cannot be written, or ``resume`` finds segments made with other
                settings.
        """
        self.work.make_folder([self.info.path, *inputs])
        self.lock.acquire()
        try:
            self.work.check_output(overwrite, folder=self.format == "png")
            self.work.prepare(resume)
        except BaseException:
            self.lock.release()
            raise

    def release(self) -> None:
        """End this launch's hold on the output (its lock), whether or not it was written."""
        self.lock.release()

    def sink(self) -> Sink:
        """A new sink for one part's frames."""
        if self.format == "png":
            return PngFrames(self.work.path)
        return VideoSegments(self.work.path, self.info, self.codec, self.encoder_options, self.segments,
                             self.pix_fmt)

    def writer(self, start: int, *, last: bool = False, reader: str = "",
               queue_depth: int = 4) -> "PartWriter":
        """A writer of frames ``start, start + 1, ...`` (``start`` a multiple of ``segment_frames``; ``last``:
        up to the video's end), whose segments record ``reader`` as the decoder of their input."""
        return PartWriter(self, start, last=last, reader=reader, queue_depth=queue_depth)

    def complete(self) -> bool:
        """Whether every segment is finished (the output can be joined)."""
        end = self.work.end()
        return end is not None and not self.work.missing(end)

    def join(self) -> Path:
        """Join the finished segments into the output and delete the work folder.

        Raises:
            VideoError: a part is missing or does not match the others (the message says which), or the
                output cannot be written.
        """
        frames = self._checked_frames()
        if self.format == "png":
            self.work.become_output()
            return self.path
        joined = self.work.joined()
        try:
            sink = self.sink()
            join_segments(sink.files(frames), self.info, joined, self._container)
            got = probe(joined).num_frames
            if got != frames:
                raise VideoError(self.path, f"joined segments hold {got} of {frames} frames")
            os.replace(joined, self.path)
        except (OSError, av.error.FFmpegError) as error:
            self.work.remove_joined()
            raise cannot_write(self.path, error) from error
        except BaseException:
            self.work.remove_joined()
            raise
        self.work.remove()
        log.info("wrote %s (%d frames)", self.path, frames)
        return self.path

    def _checked_frames(self) -> int:
        """The frame count of a complete set of matching segments; VideoError naming what is wrong."""
        self.work.check()
        end, segments = self.work.end(), self.segments
        if end is None:
            raise VideoError(self.work.path, "is incomplete: no part reached the end of the video "
                                             "(rerun with --resume)")
        done = self.work.finished()
        gaps = [k for k in range(segments.count(end)) if k not in done]
        if gaps:
            first, stop = segments.bounds(gaps[0], end)
            raise VideoError(self.work.path, f"is incomplete: frames {first}-{stop - 1} ({len(gaps)} "
                                             "segment(s)) are not finished (rerun with --resume)")
        readers = {record.reader for record in done.values()}
        if len(readers) > 1:
            raise VideoError(self.work.path, f"parts were decoded by different readers "
                                             f"({', '.join(sorted(readers))}); rerun with --resume")
        counted = sum(done[k].frames for k in range(segments.count(end)))
        if counted != end:
            raise VideoError(self.work.path, f"segments hold {counted} frames, the video {end}")
        if self.format == "video":
            absent = [path.name for path in self.sink().files(end) if not path.is_file()]
            if absent:
                raise VideoError(self.work.path, f"segment file {absent[0]} is missing (rerun with --resume)")
        return end


class PartWriter:
    """Writes frames ``start, start + 1, ...`` of an `Output` with their pts, as finished segments.

    Use as a context manager: leaving the block normally seals the last segment (`close`), leaving it with
    an exception `abort`s (finished segments stay for a resume). ``last``: the part runs to the video's end,
    which `close` records.
    """

    def __init__(self, output: Output, start: int, *, last: bool = False, reader: str = "",
                 queue_depth: int = 4) -> None:
        if start % output.segments.size:
            raise ValueError(f"a part starts on a segment boundary (a multiple of {output.segments.size}), "
                             f"got frame {start}")
        if queue_depth < 1:
            raise ValueError(f"queue_depth must be >= 1, got {queue_depth}")
        output.work.check()
        self.output, self.info, self.compare = output, output.info, output.compare
        self._next = start
        self.last, self._last_pts, self._shape = last, None, None
        self._sink = output.sink()
        self._state = "open"
        work = output.work
        self._thread = EncoderThread(
            self._sink, output=output.path, start=start, segments=output.segments,
            queue_depth=queue_depth, checkpoint=lambda segment, frames: work.seal(segment, frames, reader))

    def __enter__(self) -> "PartWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @timed("writer queue wait")
    def write(
        self,
        frames: np.ndarray | torch.Tensor,
        pts: Sequence[int] | None = None,
        *,
        source: np.ndarray | torch.Tensor | None = None,
        ready: object | None = None,
    ) -> None:
        """Queue the next frames for encoding; blocks only while the queue is full.

        Args:
            frames: (F, H, W, 3) RGB of the output's ``pixels`` type (uint8; uint16 levels above 8 bits),
                numpy or a CPU tensor. The writer reads it later, on its thread: do not modify it
                after this call.
            pts: (F,) increasing timestamps in the source's time base; None: the nominal frame rate.
            source: (F, H, W, 3) input frames (uint8 or ``pixels``), required with ``compare=True``.
            ready: an event with ``synchronize()`` (e.g. a ``torch.cuda.Event`` recorded after an
                asynchronous device-to-host copy into ``frames``) that the encoder waits for first.

        Raises:
            VideoError: encoding failed (the cause is chained), e.g. no space left on the device.
        """
        self._check_open()
        frames, source = _host_frames(frames, source, self.compare, self.output.pixels)
        shape = frames.shape[1:3] if source is None else (frames.shape[1], 2 * frames.shape[2])
        if self._shape is None:
            self._sink.check_size(*shape)
            self._shape = shape
        elif shape != self._shape:
            raise ValueError(
                f"frames are {shape[1]}x{shape[0]}, earlier frames were {self._shape[1]}x{self._shape[0]}"
            )
        self._thread.put((frames, self._checked_pts(pts, len(frames)), source, ready))
        self._next += len(frames)

    @timed("writer finish")
    def close(self) -> None:
        """Encode what is queued and seal the last segment (and, for the ``last`` part, record the end)."""
        self._check_open()
        try:
            self._thread.finish()
            if self.last:
                if self._next == 0:
                    raise VideoError(self.output.path, "no frames were written")
                self.output.work.mark_end(self._next)
        except BaseException as error:
            self._state = "failed"
            self._thread.stop()
            if isinstance(error, OSError):
                raise cannot_write(self.output.path, error) from error
            raise
        self._state = "closed"

    def abort(self) -> None:
        """Stop now; the finished segments stay in the work folder for ``resume=True``."""
        if self._state == "open":
            self._thread.stop()
        if self._state != "closed":
            self._state = "aborted"

    def _checked_pts(self, pts: Sequence[int] | None, count: int) -> list[int]:
        if pts is None:
            pts = [self.info.nominal_pts(self._next + i) for i in range(count)]
        pts = [int(p) for p in pts]
        if len(pts) != count:
            raise ValueError(f"got {len(pts)} pts for {count} frames")
        stamps = ([self._last_pts] if self._last_pts is not None else []) + pts
        if any(b <= a for a, b in zip(stamps, stamps[1:])):
            raise ValueError(f"pts must increase, got {stamps}")
        self._last_pts = pts[-1]
        return pts

    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"the writer for {self.output.path} is {self._state}")


def output_bits(bits: int | str, info: VideoInfo, format: str, codec: str) -> int:
    """`Output`'s ``bits`` resolved: 8 or 10 (raises ValueError for a codec without 10-bit formats)."""
    deep_ok = format == "png" or encodes_bits(codec, 10)
    if bits == "auto":
        return 10 if info.bit_depth > 8 and deep_ok else 8
    if bits not in OUTPUT_BITS:
        raise ValueError(f"bits must be one of {OUTPUT_BITS} or 'auto', got {bits!r}")
    if bits == 10 and not deep_ok:
        raise ValueError(f"{codec} cannot encode 10-bit video here; use libx264 or libx265, or 8 bits")
    return bits


def _host_frames(frames: np.ndarray | torch.Tensor, source: np.ndarray | torch.Tensor | None,
                 compare: bool, pixels: torch.dtype) -> tuple[np.ndarray, np.ndarray | None]:
    """``write``'s frames (and, comparing, input frames of the same shape) as (F, H, W, 3) numpy of the
    output's ``pixels`` type; 8-bit input frames beside uint16 output ones are scaled to 16 bits."""
    if source is not None and not compare:
        raise ValueError("source frames are written only with compare=True")
    if compare and source is None:
        raise ValueError("compare=True needs the input frames: write(frames, pts, source=...)")
    frames = _host_array(frames, "frames", (pixels,))
    source = None if source is None else _host_array(source, "source", (torch.uint8, pixels))
    if source is not None and source.shape != frames.shape:
        raise ValueError(f"source frames {source.shape} do not match output frames {frames.shape}")
    if source is not None and source.dtype != frames.dtype:
        source = source.astype(frames.dtype) * (PEAKS[pixels] // PEAKS[torch.uint8])  # 255 -> 65535
    return frames, source


def _host_array(frames: np.ndarray | torch.Tensor, name: str, types: tuple[torch.dtype, ...]) -> np.ndarray:
    """(F, H, W, 3) numpy of one of ``types`` from numpy or a CPU tensor (no copy)."""
    if isinstance(frames, torch.Tensor):
        if frames.device.type != "cpu":
            raise ValueError(f"{name} must be in host memory, got a tensor on {frames.device}")
        frames = frames.detach().numpy()
    allowed = [torch.empty(0, dtype=t).numpy().dtype for t in types]
    if frames.dtype not in allowed or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must be (F, H, W, 3) {' or '.join(map(str, allowed))}, "
                         f"got {frames.shape} {frames.dtype}")
    return frames
