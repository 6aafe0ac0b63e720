"""The one video encoder: (H, W, 3) uint8 (or uint16) RGB frames into a one-stream file, converted with a
colour and tagged with it, written under a temporary name and renamed when closed (a failed run leaves no
file that looks complete).

Every file the project encodes goes through it: the writer's segments (`pipeline.video.segments`), the
training pairs (`pipeline.data.pairs`) and the clips the profiler and the benchmarks make. The stream
opens with the first frame, whose size it takes.
"""
import io
import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.video.colour import RGB_FORMATS, Colour, from_rgb, tag

log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}


class Encoder:
    """Encodes frames to ``path`` with ``codec`` (an FFmpeg encoder name); a context manager.

    Args:
        rate: frames per second; time_base: the stream's (None: the encoder's default, 1/rate).
        container: the muxer (None: the one for the path's suffix, see `CONTAINERS`).
        options: encoder options (``{"crf": "18"}``, ...); pix_fmt: the encoded pixel format.
        colour: the YUV matrix and range frames are converted with, and the tags the stream gets.
        b_frames: False keeps decoding order equal to presentation order (segments that join).
    """

    def __init__(self, path: str | os.PathLike, *, codec: str, rate: Fraction, pix_fmt: str,
                 colour: Colour, options: dict[str, str] | None = None,
                 time_base: Fraction | None = None, container: str | None = None,
                 b_frames: bool = True) -> None:
        self.path = Path(path)
        self.codec, self.rate, self.pix_fmt, self.colour = codec, rate, pix_fmt, colour
        self.options, self.time_base, self.b_frames = dict(options or {}), time_base, b_frames
        self.frames, self.finished = 0, False
        self._partial = self.path.with_name(f".{self.path.name}.part")
        self._container = av.open(str(self._partial), "w", format=container or container_of(self.path))
        self._stream = None

    @property
    def width(self) -> int:
        return self._stream.width

    @property
    def height(self) -> int:
        return self._stream.height

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode the next (H, W, 3) RGB frame (uint8, or uint16 levels for deeper formats), shown at
        ``pts`` in the time base (None: the encoder numbers frames itself)."""
        if self._stream is None:
            self._open_stream(image.shape)
        if image.shape != (self._stream.height, self._stream.width, 3) or image.dtype not in RGB_FORMATS:
            raise ValueError(f"{self.path}: frame {self.frames} is {image.shape} {image.dtype}, "
                             f"expected ({self._stream.height}, {self._stream.width}, 3) uint8 or uint16")
        frame = from_rgb(image, self.pix_fmt, self.colour)
        if pts is not None:
            frame.pts, frame.time_base = pts, self.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush, close and move the file to its final name; returns that path. A failure (a full disk)
        deletes the partial file."""
        if self._stream is None:
            self.abort()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self.finished = True
        os.replace(self._partial, self.path)
        log.debug("wrote %s: %d frames, %.1f KB", self.path, self.frames, self.path.stat().st_size / 1024)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        self.finished = True
        try:
            self._container.close()
        except (OSError, av.error.FFmpegError):
            pass  # it is deleted next; the error that stopped the encoding is what the user sees
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> "Encoder":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self.finished:
            return
        if kind is None:
            self.close()
        else:
            self.abort()

    def _open_stream(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"{self.path}: frames must be (H, W, 3), got {shape}")
        stream = self._container.add_stream(self.codec, rate=self.rate, options=self.options)
        stream.height, stream.width = shape[:2]
        stream.pix_fmt = self.pix_fmt
        if self.time_base is not None:
            stream.time_base = stream.codec_context.time_base = self.time_base
        if not self.b_frames:
            stream.codec_context.max_b_frames = 0
        tag(stream.codec_context, self.colour, self.pix_fmt)
        self._stream = stream


def container_of(path: Path) -> str:
    """The muxer for ``path``'s suffix (one of `CONTAINERS`)."""
    container = CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"output {path} must end in one of {sorted(CONTAINERS)}")
    return container


def container_format(path: Path, codec: str) -> str:
    """The muxer for ``path``'s suffix, checked to hold ``codec``'s output."""
    container = container_of(path)
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
