"""Where the writer's encoder thread puts frames: PNG files, or video segments joined losslessly at the end.

* `PngFrames`: ``%06d.png`` frames (frame 0 is ``000000.png``) in the work folder, which becomes the output.
* `Segments`: a video's segments (size, count, bounds), the unit of a resume.
* `VideoSegments`: each segment a separately encoded file (``000000.nut``, ...;
  NUT keeps any time base exactly). Segments start on fixed frame numbers and the encoder is deterministic,
  so an interrupted and resumed run makes the same segments as an uninterrupted one. B-frames are off so
  that the segments' packets join with increasing decoding timestamps (`pipeline.video.join`).

The pixel format is the input's, as FFmpeg keeps it (`pix_fmt`): its chroma subsampling (4:2:0, 4:2:2,
4:4:4; RGB input as 4:4:4, gray as 4:2:0) at the output's depth. Sizes are kept: 4:2:0 needs even sizes and
4:2:2 an even width, so odd-sized video gets the next fuller format (the same conversion, less chroma
subsampling) instead of being padded or cropped; an encoder without the input's format gets the nearest it
has, which the summary reports. 10-bit outputs take uint16 frames (levels 0..65535) and are encoded as the
10-bit format of that subsampling; PNG frames as 16-bit PNG.
"""

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from model.ranges import timed
from pipeline.video.colour import RGB_FORMATS
from pipeline.video.encoder import Encoder
from pipeline.video.probe import VideoInfo

log = logging.getLogger(__name__)

SEGMENT_FORMAT = "nut"


@dataclass(frozen=True)
class Segments:
    """A video cut into segments of ``size`` frames: segment k holds frames ``[k * size, (k + 1) * size)``,
    the last one what is left. The unit of a resume and of a time shard's bounds."""

    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"segment_frames must be >= 1, got {self.size}")

    def count(self, frames: int) -> int:
        """How many segments hold ``frames`` frames."""
        return -(-frames // self.size)

    def bounds(self, segment: int, frames: int) -> tuple[int, int]:
        """Frames ``[first, stop)`` of ``segment`` in a video of ``frames`` frames."""
        return segment * self.size, min((segment + 1) * self.size, frames)

    def of(self, frame: int) -> int:
        """The segment that holds ``frame``."""
        return frame // self.size


class Sink:
    """Where the encoder thread puts frames; the work folder's layout for one output format."""

    def check_size(self, height: int, width: int) -> None:
        """Raise ValueError if frames of this size cannot be written."""

    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        """Write frame ``index``: (H, W, 3) uint8 or uint16 levels, shown at ``pts``."""
        raise NotImplementedError

    def seal(self) -> None:
        """Finish the current segment, if any, making it durable."""

    def discard(self) -> None:
        """Drop the unfinished segment, if any."""


class PngFrames(Sink):
    """``%06d.png`` frames in the work folder; the folder itself becomes the output."""

    def __init__(self, work: Path) -> None:
        self.work, self._encoder = work, None

    @timed("encode")
    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        rgb = RGB_FORMATS[image.dtype]
        if self._encoder is None:
            self._encoder = av.CodecContext.create("png", "w")
            self._encoder.width, self._encoder.height = image.shape[1], image.shape[0]
            self._encoder.pix_fmt = "rgb24" if rgb == "rgb24" else "rgb48be"  # PNG stores 16 bits big-endian
            self._encoder.time_base = Fraction(1, 1)
        frame = av.VideoFrame.from_ndarray(image, format=rgb)
        (packet,) = self._encoder.encode(frame if rgb == "rgb24" else frame.reformat(format="rgb48be"))
        (self.work / f"{index:06d}.png").write_bytes(bytes(packet))


class VideoSegments(Sink):
    """Segments ``%06d.nut``, each a separately encoded file of one of ``segments``."""

    def __init__(
        self, work: Path, info: VideoInfo, codec: str, options: dict[str, str], segments: Segments,
        pix_fmt: str,
    ) -> None:
        self.work, self.info, self.codec, self.options = work, info, codec, options
        self.segments, self.pix_fmt = segments, pix_fmt
        self._encoder: Encoder | None = None  # of the segment being written

    def check_size(self, height: int, width: int) -> None:
        if not _holds(self.pix_fmt, height, width):
            raise ValueError(f"{width}x{height} frames do not fit the output's format, {self.pix_fmt}")

    def files(self, frames: int) -> list[Path]:
        """The segment files that hold ``frames`` frames, in order."""
        return [self._file(i) for i in range(self.segments.count(frames))]

    def _file(self, segment: int) -> Path:
        return self.work / f"{segment:06d}.{SEGMENT_FORMAT}"

    @timed("encode")
    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        if self._encoder is None:
            self._encoder = Encoder(
                self._file(self.segments.of(index)), codec=self.codec,
                rate=self.info.fps, pix_fmt=self.pix_fmt, colour=self.info.colour, options=self.options,
                time_base=self.info.time_base, container=SEGMENT_FORMAT,
                b_frames=False)  # segments must join with increasing dts
        self._encoder.write(image, pts)

    @timed("encode")
    def seal(self) -> None:
        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            encoder.close()

    def discard(self) -> None:
        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            encoder.abort()


CHROMAS = ("4:2:0", "4:2:2", "4:4:4")  # chroma subsampling, from the least chroma to the most
# per output depth and chroma subsampling, the formats in order of preference
PIX_FMTS = {8: {"4:2:0": ("yuv420p",), "4:2:2": ("yuv422p",), "4:4:4": ("yuv444p", "rgb24", "bgr0", "gbrp")},
            10: {"4:2:0": ("yuv420p10le",), "4:2:2": ("yuv422p10le",), "4:4:4": ("yuv444p10le", "gbrp10le")}}


def _encoder_formats(codec: str) -> list[str]:
    return [f.name for f in av.codec.Codec(codec, "w").video_formats or []]


def encodes_bits(codec: str, bits: int) -> bool:
    """Whether ``codec`` has a format of `PIX_FMTS` for ``bits``-bit output."""
    formats = _encoder_formats(codec)
    return not formats or any(name in formats for names in PIX_FMTS[bits].values() for name in names)


def chroma_of(pix_fmt: str) -> str:
    """The chroma subsampling of `CHROMAS` that holds all of ``pix_fmt``'s chroma: ``yuv422p10le`` 4:2:2,
    ``yuv411p`` 4:2:2, ``yuv440p`` 4:4:4, RGB 4:4:4; gray (no chroma) 4:2:0."""
    layout = av.VideoFormat(pix_fmt, 4, 4)  # 4x4 pixels: a chroma plane's size gives its subsampling
    colour = [component for component in layout.components if not component.is_alpha]
    if layout.is_rgb:
        return "4:4:4"
    if len(colour) < 3:
        return "4:2:0"
    full_width, full_height = colour[1].width == 4, colour[1].height == 4
    return "4:4:4" if full_width else "4:2:2" if full_height else "4:2:0"


def _holds(pix_fmt: str, height: int, width: int) -> bool:
    """Whether ``pix_fmt`` holds ``width`` x ``height`` frames (its chroma subsampling divides the size)."""
    chroma = chroma_of(pix_fmt)
    return (chroma == "4:4:4" or width % 2 == 0) and (chroma != "4:2:0" or height % 2 == 0)


def pix_fmt(codec: str, height: int, width: int, bits: int = 8, chroma: str = "4:2:0") -> str:
    """The encoder pixel format for ``bits``-bit output of a ``chroma`` input: the first of `PIX_FMTS` that
    ``codec`` has and that holds the size, trying ``chroma`` itself, then fuller subsamplings (an odd size),
    then poorer ones (an encoder without the input's; `Output` reports it)."""
    formats = _encoder_formats(codec)
    wanted = CHROMAS.index(chroma)
    odd = not _holds(PIX_FMTS[bits][chroma][0], height, width)
    order = CHROMAS[wanted:] + CHROMAS[:wanted][::-1]
    for candidate in order:
        for name in PIX_FMTS[bits][candidate]:
            if (not formats or name in formats) and _holds(name, height, width):
                if odd and CHROMAS.index(candidate) > wanted:
                    log.warning("odd frame size %dx%d: encoded with %s as %s to keep every pixel; browsers, "
                                "QuickTime and NVDEC play 4:2:0 only (an even-sized input or --format png "
                                "avoids this)", width, height, codec, name)
                return name
    raise ValueError(f"{codec} cannot encode {width}x{height} frames without resizing; use libx264")
