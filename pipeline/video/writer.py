"""The output writer: encodes on a background thread, resumable, atomic.

Frames go through a bounded queue to an encoder thread (`pipeline.video.encoder_thread`), so the compute
thread blocks only when the queue is full. Everything is written into a hidden work folder next to the
output (`pipeline.video.workfolder`) as fixed-size segments of ``segment_frames`` frames: separately
encoded video files or PNG frames (`pipeline.video.segments`). ``resume=True`` continues after the
finished segments of an interrupted run with the same settings (`VideoWriter.resume_frame`). At the end
the segments are joined by remuxing (no re-encoding) together with the source's audio and subtitle
streams, metadata and chapters (`pipeline.video.join`) into a temporary file in the work folder, which
is renamed over the output; the work folder is deleted. A failed or aborted run leaves no output file,
only the hidden work folder for ``--resume``.
"""

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import av
import numpy as np
import torch

from model.ranges import timed
from pipeline.errors import VideoError, os_problem
from pipeline.video.encoder import container_format
from pipeline.video.encoder_thread import EncoderThread
from pipeline.video.join import join_segments
from pipeline.video.probe import VideoInfo, probe
from pipeline.video.segments import PngFrames, VideoSegments
from pipeline.video.workfolder import WorkFolder

log = logging.getLogger(__name__)

FORMATS = ("video", "png")


class VideoWriter:
    """Writes a video's output frames, in order, to ``path`` (a video file, or a folder of PNG frames).

    Use as a context manager: leaving the block normally finishes the output (`close`), leaving it with
    an exception `abort`s. Frames ``resume_frame, resume_frame + 1, ...`` are expected, with their pts.
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
        overwrite: bool = False,
        resume: bool = False,
        segment_frames: int = 64,
        queue_depth: int = 4,
        settings: Mapping[str, object] | None = None,
    ) -> None:
        """
        Args:
            path: the output video (its suffix picks the container: one of `encoder.CONTAINERS`) or
                PNG folder.
            info: the source video: frame rate, time base and audio come from it.
            format: "video" or "png".
            codec, crf, options: the video encoder, its ``crf`` (for encoders that have one: libx264,
                libx265, libvpx-vp9) and further encoder options (e.g. ``{"preset": "veryfast"}``).
            compare: write input | output side by side (``write(..., source=...)`` gives the input).
            overwrite: replace an existing output; otherwise an existing output is an error.
            resume: continue the work folder left by an interrupted run with the same settings.
            segment_frames: frames per resumable segment.
            queue_depth: write() calls queued for the encoder thread before write() blocks.
            settings: anything else that must match for a resume (e.g. the model and engine config);
                JSON-serialisable (other values compare by ``str``).

        Raises:
            VideoError: the output exists (without ``overwrite``), or its folder cannot be written.
        """
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        if segment_frames < 1 or queue_depth < 1:
            raise ValueError(
                f"segment_frames and queue_depth must be >= 1, got {segment_frames}, {queue_depth}"
            )
        self.path, self.info, self.format, self.compare = Path(path), info, format, compare
        self.segment_frames = segment_frames
        self.work = WorkFolder(self.path, dict(
            source=str(info.path.resolve()), source_bytes=info.path.stat().st_size,
            num_frames=info.num_frames,
            format=format, codec=codec, crf=crf, options=dict(options or {}), compare=compare,
            segment_frames=segment_frames, settings=dict(settings or {})))
        if format == "video":
            self._container = container_format(self.path, codec)
            encoder_options = {"crf": str(crf), **(options or {})}
            self._sink = VideoSegments(self.work.path, info, codec, encoder_options, segment_frames)
        else:
            self._sink = PngFrames(self.work.path)
        self.work.check_output(overwrite, folder=format == "png")
        self.resume_frame, self._complete = self.work.start(resume)
        self._next, self._last_pts, self._shape = self.resume_frame, None, None
        self._state = "open"
        self._thread = EncoderThread(self._sink, output=self.path, start=self.resume_frame,
                                     segment_frames=segment_frames, queue_depth=queue_depth,
                                     checkpoint=self.work.save)

    def __enter__(self) -> "VideoWriter":
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
            frames: (F, H, W, 3) uint8 RGB, numpy or a CPU tensor. The writer reads it later, on its
                thread: do not modify it after this call.
            pts: (F,) increasing timestamps in the source's time base; None: the nominal frame rate.
            source: (F, H, W, 3) uint8 input frames, required with ``compare=True``.
            ready: an event with ``synchronize()`` (e.g. a ``torch.cuda.Event`` recorded after an
                asynchronous device-to-host copy into ``frames``) that the encoder waits for first.

        Raises:
            VideoError: encoding failed (the cause is chained), e.g. no space left on the device.
        """
        self._check_open()
        if self._complete:
            raise ValueError(
                f"{self.work.path} already holds all {self._next} frames; nothing more can be written"
            )
        frames, source = _host_frames(frames, source, self.compare)
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
    def close(self) -> Path:
        """Encode what is queued, join the segments (and audio) into the output, and rename it into place."""
        self._check_open()
        try:
            self._thread.finish()
            if self._next == 0:
                raise VideoError(self.path, "no frames were written")
            self._finish()
        except BaseException:
            self._state = "failed"
            self._thread.stop()
            self.work.remove_joined()
            raise
        self._state = "closed"
        log.info("wrote %s (%d frames)", self.path, self._next)
        return self.path

    def abort(self) -> None:
        """Stop without an output; finished segments stay in the work folder for ``resume=True``."""
        if self._state == "closed":
            return
        if self._state == "open":
            self._thread.stop()
        self._state = "aborted"
        self.work.remove_joined()
        log.info("%s not written; %s keeps %d finished frames for resume", self.path, self.work.path,
                 self.work.done_frames())

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
            raise ValueError(f"the writer for {self.path} is {self._state}")

    def _finish(self) -> None:
        """Move the finished work into place and delete the work folder."""
        if self.format == "png":
            self.work.become_output()
            return
        joined = self.work.joined()
        try:
            join_segments(self._sink.files(self._next), self.info, joined, self._container)
            frames = probe(joined).num_frames
            if frames != self._next:
                raise VideoError(self.path, f"joined segments hold {frames} of {self._next} frames")
            os.replace(joined, self.path)
        except (OSError, av.error.FFmpegError) as error:
            raise VideoError(self.path, f"cannot write it ({os_problem(error)})") from error
        shutil.rmtree(self.work.path, ignore_errors=True)


def _host_frames(frames: np.ndarray | torch.Tensor, source: np.ndarray | torch.Tensor | None,
                 compare: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``write``'s frames (and, comparing, input frames of the same shape) as (F, H, W, 3) uint8 numpy."""
    if source is not None and not compare:
        raise ValueError("source frames are written only with compare=True")
    if compare and source is None:
        raise ValueError("compare=True needs the input frames: write(frames, pts, source=...)")
    frames = _host_array(frames, "frames")
    source = None if source is None else _host_array(source, "source")
    if source is not None and source.shape != frames.shape:
        raise ValueError(f"source frames {source.shape} do not match output frames {frames.shape}")
    return frames, source


def _host_array(frames: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """(F, H, W, 3) uint8 numpy from numpy or a CPU tensor (no copy)."""
    if isinstance(frames, torch.Tensor):
        if frames.device.type != "cpu":
            raise ValueError(f"{name} must be in host memory, got a tensor on {frames.device}")
        frames = frames.detach().numpy()
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must be (F, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames
