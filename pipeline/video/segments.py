"""Where the writer's encoder thread puts frames: PNG files, or video segments joined losslessly at the end.

* `PngFrames`: ``%06d.png`` frames (frame 0 is ``000000.png``) in the work folder, which becomes the output.
* `VideoSegments`: each segment of ``segment_frames`` frames a separately encoded file (``000000.nut``, ...;
  NUT keeps any time base exactly). Segments start on fixed frame numbers and the encoder is deterministic,
  so an interrupted and resumed run makes the same segments as an uninterrupted one. B-frames are off so
  that the segments' packets join with increasing decoding timestamps (`pipeline.video.join`).

Sizes are kept: yuv420p needs even sizes, so odd-sized video is encoded as yuv444p (the same conversion, no
chroma subsampling) instead of being padded or cropped (`pix_fmt`). 10-bit outputs take uint16 frames
(levels 0..65535) and are encoded as yuv420p10le (yuv444p10le when odd-sized); PNG frames as 16-bit PNG.
"""

import logging
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
    """Segments ``%06d.nut``, each a separately encoded file of ``segment_frames`` frames."""

    def __init__(
        self, work: Path, info: VideoInfo, codec: str, options: dict[str, str], segment_frames: int,
        bits: int = 8,
    ) -> None:
        self.work, self.info, self.codec, self.options = work, info, codec, options
        self.segment_frames, self.bits, self.pix_fmt = segment_frames, bits, None
        self._encoder: Encoder | None = None  # of the segment being written

    def check_size(self, height: int, width: int) -> None:
        self.pix_fmt = pix_fmt(self.codec, height, width, self.bits)

    def files(self, frames: int) -> list[Path]:
        """The segment files that hold ``frames`` frames, in order."""
        return [self._file(i) for i in range(-(-frames // self.segment_frames))]

    def _file(self, segment: int) -> Path:
        return self.work / f"{segment:06d}.{SEGMENT_FORMAT}"

    @timed("encode")
    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        if self._encoder is None:
            self._encoder = Encoder(
                self._file(index // self.segment_frames), codec=self.codec,
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


# per output depth: (formats that need even sizes, formats for any size), in order of preference
PIX_FMTS = {8: (("yuv420p",), ("yuv444p", "rgb24", "bgr0", "gbrp")),
            10: (("yuv420p10le",), ("yuv444p10le", "gbrp10le"))}


def _encoder_formats(codec: str) -> list[str]:
    return [f.name for f in av.codec.Codec(codec, "w").video_formats or []]


def encodes_bits(codec: str, bits: int) -> bool:
    """Whether ``codec`` has a format of `PIX_FMTS` for ``bits``-bit output."""
    formats = _encoder_formats(codec)
    return not formats or any(name in formats for group in PIX_FMTS[bits] for name in group)


def pix_fmt(codec: str, height: int, width: int, bits: int = 8) -> str:
    """The encoder pixel format for ``bits``-bit output: 4:2:0 when the size allows it, else a full-chroma
    format (same size)."""
    formats = _encoder_formats(codec)
    even = height % 2 == 0 and width % 2 == 0
    subsampled, full = PIX_FMTS[bits]
    for name in (subsampled if even else ()) + full:
        if not formats or name in formats:
            if not even:
                log.warning("odd frame size %dx%d: encoded with %s as %s to keep every pixel; browsers, "
                            "QuickTime and NVDEC play 4:2:0 only (an even-sized input or --format png "
                            "avoids this)", width, height, codec, name)
            return name
    raise ValueError(f"{codec} cannot encode {width}x{height} frames without resizing; use libx264")
