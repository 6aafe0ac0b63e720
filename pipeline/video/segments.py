"""Where the writer's encoder thread puts frames: PNG files, or video segments joined losslessly at the end.

* `PngFrames`: ``%06d.png`` frames (frame 0 is ``000000.png``) in the work folder, which becomes the output.
* `VideoSegments`: each segment of ``segment_frames`` frames a separately encoded file (``000000.nut``, ...;
  NUT keeps any time base exactly). Segments start on fixed frame numbers and the encoder is deterministic,
  so an interrupted and resumed run makes the same segments as an uninterrupted one. B-frames are off so
  that the segments' packets join with increasing decoding timestamps (`pipeline.video.join`).

Sizes are kept: yuv420p needs even sizes, so odd-sized video is encoded as yuv444p (the same conversion, no
chroma subsampling) instead of being padded or cropped (`pix_fmt`).
"""

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from model.ranges import timed
from pipeline.video.encoder import Encoder
from pipeline.video.probe import VideoInfo

log = logging.getLogger(__name__)

SEGMENT_FORMAT = "nut"


class Sink:
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


class PngFrames(Sink):
    """``%06d.png`` frames in the work folder; the folder itself becomes the output."""

    def __init__(self, work: Path) -> None:
        self.work, self._encoder = work, None

    @timed("encode")
    def add(self, index: int, image: np.ndarray, pts: int) -> None:
        if self._encoder is None:
            self._encoder = av.CodecContext.create("png", "w")
            self._encoder.width, self._encoder.height = image.shape[1], image.shape[0]
            self._encoder.pix_fmt, self._encoder.time_base = "rgb24", Fraction(1, 1)
        (packet,) = self._encoder.encode(av.VideoFrame.from_ndarray(image, format="rgb24"))
        (self.work / f"{index:06d}.png").write_bytes(bytes(packet))


class VideoSegments(Sink):
    """Segments ``%06d.nut``, each a separately encoded file of ``segment_frames`` frames."""

    def __init__(
        self, work: Path, info: VideoInfo, codec: str, options: dict[str, str], segment_frames: int
    ) -> None:
        self.work, self.info, self.codec, self.options = work, info, codec, options
        self.segment_frames, self.pix_fmt = segment_frames, None
        self._encoder: Encoder | None = None  # of the segment being written

    def check_size(self, height: int, width: int) -> None:
        self.pix_fmt = pix_fmt(self.codec, height, width)

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


def pix_fmt(codec: str, height: int, width: int) -> str:
    """The encoder pixel format: yuv420p when the size allows it, else a full-chroma format (same size)."""
    formats = [f.name for f in av.codec.Codec(codec, "w").video_formats or []]
    even = height % 2 == 0 and width % 2 == 0
    for name in (("yuv420p",) if even else ()) + ("yuv444p", "rgb24", "bgr0", "gbrp"):
        if not formats or name in formats:
            if not even:
                log.warning("odd frame size %dx%d: encoded with %s as %s to keep every pixel; browsers, "
                            "QuickTime and NVDEC play 4:2:0 only (an even-sized input or --format png "
                            "avoids this)", width, height, codec, name)
            return name
    raise ValueError(f"{codec} cannot encode {width}x{height} frames without resizing; use libx264")
