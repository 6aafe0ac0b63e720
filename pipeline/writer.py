"""The output writer: encodes on a background thread, resumable, atomic.

Frames go through a bounded queue to an encoder thread, so the compute thread blocks only when the
queue is full. Everything is written into a hidden work folder next to the output,
``.{name}.partial/``, as fixed-size segments of ``segment_frames`` frames:

* video: each segment is a separately encoded file (``000000.nut``, ...; NUT keeps any time base
  exactly). Segments start on fixed frame numbers and the encoder is deterministic, so an interrupted
  and resumed run produces the same segments as an uninterrupted one. B-frames are off so that the
  segments' packets join with increasing decoding timestamps.
* png: ``%06d.png`` frames (frame 0 is ``000000.png``).

``progress.json`` records the frames in finished segments and the settings they were made with;
``resume=True`` continues after them (`VideoWriter.resume_frame`). At the end the segments are joined by
remuxing (no re-encoding) together with the source's audio stream, into a temporary file in the work
folder that is then renamed over the output, and the work folder is deleted. A failed or aborted run
leaves no output file, only the hidden work folder for ``--resume``.

Sizes are kept: yuv420p needs even sizes, so odd-sized video is encoded as yuv444p (the same
conversion, no chroma subsampling) instead of being padded or cropped.
"""

import errno
import heapq
import io
import json
import logging
import os
import queue
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .colour import from_rgb, tag
from .errors import VideoError
from .probe import VideoInfo, probe

log = logging.getLogger(__name__)

FORMATS = ("video", "png")
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
PROGRESS = "progress.json"
OUTPUT_NAME = "output"  # the joined video in the work folder, before its rename into place
SEGMENT_FORMAT = "nut"
_POLL_S = 0.1  # how often a blocked thread checks whether the other side has failed or stopped


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
            path: the output video (its suffix picks the container: one of `CONTAINERS`) or PNG folder.
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
        self.work = self.path.parent / f".{self.path.name}.partial"
        if format == "video":
            self._container = _container_format(self.path, codec)
            encoder_options = {"crf": str(crf), **(options or {})}
            self._sink: _Sink = _VideoSegments(self.work, info, codec, encoder_options, segment_frames)
        else:
            self._sink = _PngFrames(self.work)
        self._check_output(overwrite)
        fingerprint = dict(
            source=str(info.path.resolve()),
            source_bytes=info.path.stat().st_size,
            num_frames=info.num_frames,
            format=format,
            codec=codec,
            crf=crf,
            options=dict(options or {}),
            compare=compare,
            segment_frames=segment_frames,
            settings=dict(settings or {}),
        )
        self._fingerprint = json.loads(
            json.dumps(fingerprint, default=str)
        )  # as it reads back from progress.json
        self.resume_frame, self._complete = self._start_work(resume)
        self._next, self._last_pts, self._shape = self.resume_frame, None, None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_depth)
        self._stop, self._error = threading.Event(), None
        self._state = "open"
        self._thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self._thread.start()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

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
        frames = _host_frames(frames, "frames")
        if self._complete:
            raise ValueError(
                f"{self.work} already holds all {self._next} frames; nothing more can be written"
            )
        if source is not None and not self.compare:
            raise ValueError("source frames are written only with compare=True")
        if self.compare:
            if source is None:
                raise ValueError("compare=True needs the input frames: write(frames, pts, source=...)")
            source = _host_frames(source, "source")
            if source.shape != frames.shape:
                raise ValueError(f"source frames {source.shape} do not match output frames {frames.shape}")
        shape = frames.shape[1:3] if source is None else (frames.shape[1], 2 * frames.shape[2])
        if self._shape is None:
            self._sink.check_size(*shape)
            self._shape = shape
        elif shape != self._shape:
            raise ValueError(
                f"frames are {shape[1]}x{shape[0]}, earlier frames were {self._shape[1]}x{self._shape[0]}"
            )
        pts = self._checked_pts(pts, len(frames))
        self._put((frames, pts, source, ready))
        self._next += len(frames)

    def close(self) -> Path:
        """Encode what is queued, join the segments (and audio) into the output, and rename it into place."""
        self._check_open()
        try:
            self._put(None)  # end of stream: the encoder finishes the last segment
            self._thread.join()
            self._raise_error()
            if self._next == 0:
                raise VideoError(self.path, "no frames were written")
            self._finish()
        except BaseException:
            self._state = "failed"
            self._stop.set()
            self._thread.join()
            self._remove_output()
            raise
        self._state = "closed"
        log.info("wrote %s (%d frames)", self.path, self._next)
        return self.path

    def abort(self) -> None:
        """Stop without an output; finished segments stay in the work folder for ``resume=True``."""
        if self._state == "closed":
            return
        if self._state == "open":
            self._stop.set()
            self._thread.join()
        self._state = "aborted"
        self._remove_output()
        log.info(
            "%s not written; %s keeps %d finished frames for resume",
            self.path,
            self.work,
            self._done_frames(),
        )

    def _check_output(self, overwrite: bool) -> None:
        if self.path.exists() and not overwrite:
            raise VideoError(self.path, "already exists (use --overwrite to replace it)")
        if self.path.is_dir() != (self.format == "png") and self.path.exists():
            raise VideoError(
                self.path, "is a folder" if self.format == "video" else "is a file, not a folder"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VideoError(self.path.parent, f"cannot create the folder ({_problem(error)})") from error
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise VideoError(self.path.parent, "folder is not writable")

    def _start_work(self, resume: bool) -> tuple[int, bool]:
        """Prepare the work folder; (first frame to write, whether all frames are written already)."""
        progress = _read_json(self.work / PROGRESS)
        if resume and progress is not None:
            if progress.get("settings") != self._fingerprint:
                raise VideoError(
                    self.work, "was made with other settings or another source; delete it to start over"
                )
            frames, complete = int(progress["frames"]), bool(progress["complete"])
            log.info("resuming %s at frame %d", self.path, frames)
            return frames, complete
        if self.work.exists():
            log.info("%s: discarding unfinished work in %s", self.path, self.work)
        try:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir()
            self._save_progress(0, complete=False)
        except OSError as error:
            raise VideoError(self.work, f"cannot write ({_problem(error)})") from error
        return 0, False

    def _save_progress(self, frames: int, complete: bool) -> None:
        temporary = self.work / f"{PROGRESS}.tmp"
        temporary.write_text(
            json.dumps({"settings": self._fingerprint, "frames": frames, "complete": complete})
        )
        os.replace(temporary, self.work / PROGRESS)

    def _done_frames(self) -> int:
        progress = _read_json(self.work / PROGRESS)
        return int(progress["frames"]) if progress else 0

    def _checked_pts(self, pts: Sequence[int] | None, count: int) -> list[int]:
        info = self.info
        if pts is None:
            pts = [info.start_pts + round((self._next + i) / info.fps / info.time_base) for i in range(count)]
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

    def _put(self, item: object) -> None:
        while True:
            self._raise_error()
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _raise_error(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, VideoError):
            raise error
        raise VideoError(self.path, f"cannot write it ({_problem(error)})") from error

    def _run(self) -> None:
        """The encoder thread: frames from the queue into segments until the end marker or a stop."""
        written = self.resume_frame
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is None:
                    self._sink.seal()
                    self._save_progress(written, complete=True)
                    return
                frames, pts, source, ready = item
                if ready is not None:
                    ready.synchronize()
                if source is not None:
                    frames = np.concatenate((source, frames), axis=2)  # (F, H, 2W, 3): input | output
                for image, stamp in zip(frames, pts):
                    if self._stop.is_set():
                        break
                    self._sink.add(written, image, stamp)
                    written += 1
                    if written % self.segment_frames == 0:
                        self._sink.seal()
                        self._save_progress(written, complete=False)
        except BaseException as error:  # handed to the caller's next write() or close()
            self._error = error
        finally:
            self._sink.discard()

    def _finish(self) -> None:
        """Move the finished work into place and delete the work folder."""
        if self.format == "png":
            (self.work / PROGRESS).unlink()
            _replace_folder(self.work, self.path)
            return
        output = self.work / f"{OUTPUT_NAME}{self.path.suffix}"
        try:
            _join_segments(self.work, self.info, output, self._next, self.segment_frames, self._container)
            frames = probe(output).num_frames
            if frames != self._next:
                raise VideoError(self.path, f"joined segments hold {frames} of {self._next} frames")
            os.replace(output, self.path)
        except (OSError, av.error.FFmpegError) as error:
            raise VideoError(self.path, f"cannot write it ({_problem(error)})") from error
        shutil.rmtree(self.work, ignore_errors=True)

    def _remove_output(self) -> None:
        """Delete a partly joined output, so that nothing that looks finished is left."""
        for output in self.work.glob(f"{OUTPUT_NAME}.*"):
            output.unlink()


class _Sink:
    """Where the encoder thread puts frames; the work folder's layout for one output format."""

    def check_size(self, height: int, width: int) -> None:
        """Raise ValueError if frames of this size cannot be written."""

    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        """Write frame ``index``: (H, W, 3) uint8 shown at ``pts``."""
        raise NotImplementedError

    def seal(self) -> None:
        """Finish the current segment, if any, making it durable."""

    def discard(self) -> None:
        """Drop the unfinished segment, if any."""


class _PngFrames(_Sink):
    """``%06d.png`` frames in the work folder; the folder itself becomes the output."""

    def __init__(self, work: Path) -> None:
        self.work, self._encoder = work, None

    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        if self._encoder is None:
            self._encoder = av.CodecContext.create("png", "w")
            self._encoder.width, self._encoder.height = image.shape[1], image.shape[0]
            self._encoder.pix_fmt, self._encoder.time_base = "rgb24", Fraction(1, 1)
        (packet,) = self._encoder.encode(av.VideoFrame.from_ndarray(image, format="rgb24"))
        (self.work / f"{index:06d}.png").write_bytes(bytes(packet))


class _VideoSegments(_Sink):
    """Segments ``%06d.nut``, each a separately encoded file of ``segment_frames`` frames."""

    def __init__(
        self, work: Path, info: VideoInfo, codec: str, options: dict[str, str], segment_frames: int
    ) -> None:
        self.work, self.info, self.codec, self.options = work, info, codec, options
        self.segment_frames, self.pix_fmt = segment_frames, None
        self._open = None  # (container, stream, temporary path, final path) of the segment being written

    def check_size(self, height: int, width: int) -> None:
        self.pix_fmt = _pix_fmt(self.codec, height, width)

    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        if self._open is None:
            self._open = self._start(index // self.segment_frames, image.shape[0], image.shape[1])
        container, stream, _, _ = self._open
        frame = from_rgb(image, self.pix_fmt, self.info.colour)
        frame.pts, frame.time_base = pts, self.info.time_base
        for packet in stream.encode(frame):
            container.mux(packet)

    def _start(self, segment: int, height: int, width: int) -> tuple:
        final = self.work / f"{segment:06d}.{SEGMENT_FORMAT}"
        temporary = final.with_name(final.name + ".part")
        container = av.open(str(temporary), "w", format=SEGMENT_FORMAT)
        stream = container.add_stream(self.codec, rate=self.info.fps, options=self.options)
        stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
        stream.time_base = stream.codec_context.time_base = self.info.time_base
        stream.codec_context.max_b_frames = 0  # segments must join with increasing dts
        tag(stream.codec_context, self.info.colour, self.pix_fmt)  # the input's colour, converted and tagged
        return container, stream, temporary, final

    def seal(self) -> None:
        if self._open is None:
            return
        container, stream, temporary, final = self._open
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        self._open = None
        os.replace(temporary, final)

    def discard(self) -> None:
        if self._open is not None:
            container, _, temporary, _ = self._open
            self._open = None
            try:
                container.close()
            except (OSError, av.error.FFmpegError):
                pass  # it is deleted next; the error that stopped the writer is what the user sees
            temporary.unlink(missing_ok=True)


def _join_segments(
    work: Path, info: VideoInfo, output: Path, frames: int, segment_frames: int, container_format: str
) -> None:
    """Remux the segments holding ``frames`` frames, and ``info``'s audio stream, into ``output``."""
    segments = [work / f"{i:06d}.{SEGMENT_FORMAT}" for i in range(_ceil_div(frames, segment_frames))]
    with ExitStack() as stack:
        muxer = stack.enter_context(av.open(str(output), "w", format=container_format))
        first = stack.enter_context(av.open(str(segments[0])))
        video = muxer.add_stream_from_template(first.streams.video[0])
        video.time_base = info.time_base
        packets = [_packets(segments, video)]
        if info.has_audio and info.audio_codec not in muxer.supported_codecs:
            log.warning(
                "%s: %s audio cannot go into %s; the output has no audio",
                info.path,
                info.audio_codec,
                output.suffix,
            )
        elif info.has_audio:
            source = stack.enter_context(av.open(str(info.path)))
            audio = muxer.add_stream_from_template(source.streams.audio[0])
            packets.append(_packets_of(source, source.streams.audio[0], audio))
        _mux_in_time_order(muxer, packets)


def _packets(segments: list[Path], stream: av.stream.Stream) -> Iterator[av.Packet]:
    """The video packets of the segments in order, addressed to ``stream``."""
    for segment in segments:
        with av.open(str(segment)) as container:
            yield from _packets_of(container, container.streams.video[0], stream)


def _packets_of(
    container: av.container.InputContainer, source: av.stream.Stream, target: av.stream.Stream
) -> Iterator[av.Packet]:
    for packet in container.demux(source):
        if packet.size:
            packet.stream = target
            yield packet


def _mux_in_time_order(muxer: av.container.OutputContainer, streams: list[Iterator[av.Packet]]) -> None:
    """Interleave packet streams by decoding time, so the muxer buffers little (each is already in order)."""

    def seconds(packet: av.Packet) -> Fraction:
        stamp = packet.dts if packet.dts is not None else packet.pts
        return stamp * packet.time_base

    for packet in heapq.merge(*streams, key=seconds):
        muxer.mux(packet)


def _pix_fmt(codec: str, height: int, width: int) -> str:
    """The encoder pixel format: yuv420p when the size allows it, else a full-chroma format (same size)."""
    formats = [f.name for f in av.codec.Codec(codec, "w").video_formats or []]
    even = height % 2 == 0 and width % 2 == 0
    for name in (("yuv420p",) if even else ()) + ("yuv444p", "rgb24", "bgr0", "gbrp"):
        if not formats or name in formats:
            if not even:
                log.info(
                    "odd frame size %dx%d: encoding %s as %s to keep the size", width, height, codec, name
                )
            return name
    raise ValueError(f"{codec} cannot encode {width}x{height} frames without resizing; use libx264")


def _container_format(path: Path, codec: str) -> str:
    """The muxer for ``path``'s suffix, checked to hold ``codec``'s output."""
    container = CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"output {path} must end in one of {sorted(CONTAINERS)}")
    try:
        encoder = av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError as error:
        raise ValueError(f"unknown video encoder {codec!r}") from error
    with av.open(io.BytesIO(), "w", format=container) as probe_muxer:
        if encoder.canonical_name not in probe_muxer.supported_codecs:
            raise ValueError(
                f"{path.suffix} files cannot hold {encoder.canonical_name} video; pick another codec"
            )
    return container


def _host_frames(frames: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """(F, H, W, 3) uint8 numpy from numpy or a CPU tensor (no copy)."""
    if isinstance(frames, torch.Tensor):
        if frames.device.type != "cpu":
            raise ValueError(f"{name} must be in host memory, got a tensor on {frames.device}")
        frames = frames.detach().numpy()
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must be (F, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _replace_folder(folder: Path, target: Path) -> None:
    """Rename ``folder`` to ``target``, replacing an existing ``target`` folder."""
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(folder, target)
    shutil.rmtree(old, ignore_errors=True)


def _problem(error: BaseException) -> str:
    """A short description of an OS or FFmpeg error."""
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC:
        return "no space left on device"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
