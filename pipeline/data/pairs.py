"""Paired training videos: each blurred/sharp pair is ONE short-GOP video, blurred | sharp side by side.

Storage decision: frame k of a pair video is ``concat([blurred_k, sharp_k], axis=width)``, (H, 2W, 3).
One decode yields both halves of the same frame index, so blurred and sharp windows cannot desynchronise
(no second reader, no shuffle or seek that could drift), and a crop at x0 in the left half and x0 + W in
the right half is the same region of the same frame. Nothing is decoded that the sample does not need:
one frame 2W wide instead of two W wide. Halves must have even sizes so 4:2:0 chroma never straddles the
seam (block-based coding still mixes the two sides of the seam within a block; the PSNR that
``scripts/prepare_data.py import`` prints includes that).

Codecs (``EncodeSettings.codec``):

* ``h264``: libx264, yuv420p, no B-frames, a keyframe every ``keyint`` frames: for NVDEC (DALI on GPU);
* ``vp9``: libvpx-vp9, yuv420p, same GOP: the inter codec DALI decodes on the CPU as well as the GPU;
* ``mjpeg``: intra-only (every frame a keyframe), yuvj444p: cheapest random access on the CPU, largest
  files.

Short GOPs matter because every random window seeks back to the keyframe before its first frame.
"""
import logging
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.video.colour import Colour
from pipeline.video.encoder import Encoder
from pipeline.video.sequences import read_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Codec:
    encoder: str
    pix_fmt: str
    suffix: str
    default_quality: int  # CRF for h264/vp9, JPEG q-scale (2 = best usual) for mjpeg
    quality_range: tuple[int, int]


CODECS = {
    "h264": _Codec("libx264", "yuv420p", ".mp4", 16, (0, 51)),
    "vp9": _Codec("libvpx-vp9", "yuv420p", ".webm", 20, (0, 63)),
    "mjpeg": _Codec("mjpeg", "yuvj444p", ".mkv", 2, (1, 31)),
}


@dataclass(frozen=True)
class EncodeSettings:
    """``codec`` in CODECS; ``keyint``: frames between keyframes (ignored by intra-only mjpeg);
    ``quality``: CRF (h264, vp9) or q-scale (mjpeg), lower is better; None takes the codec's default."""

    codec: str = "vp9"
    keyint: int = 8
    quality: int | None = None

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        if not 1 <= self.keyint <= 250:
            raise ValueError(f"keyint must be in [1, 250], got {self.keyint}")
        low, high = CODECS[self.codec].quality_range
        if self.quality is not None and not low <= self.quality <= high:
            raise ValueError(f"{self.codec} quality must be in [{low}, {high}], got {self.quality}")

    @property
    def suffix(self) -> str:
        return CODECS[self.codec].suffix

    def stream_options(self) -> dict[str, str]:
        """Encoder options for PyAV's ``add_stream``."""
        codec = CODECS[self.codec]
        quality = str(codec.default_quality if self.quality is None else self.quality)
        if self.codec == "h264":
            gop = f"keyint={self.keyint}:min-keyint={self.keyint}:scenecut=0:bframes=0"
            return {"crf": quality, "preset": "medium", "x264-params": gop}
        if self.codec == "vp9":
            return {"crf": quality, "b": "0", "g": str(self.keyint), "keyint_min": str(self.keyint),
                    "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
        return {"qmin": quality, "qmax": quality}


SAMPLE_ENCODE = EncodeSettings(codec="h264", quality=12)
"""How the project's blurred/sharp sample files are encoded: make_sample's (the demo clip, the held-out
benchmark's inputs), and so the training set's held-out round trip."""


class VideoEncoder(Encoder):
    """`pipeline.video.encoder.Encoder` with ``settings``' codec, GOP and quality, at ``fps``, BT.601
    (as DALI decodes every file; tagged, so PyAV reads it the same); frames must have even sizes."""

    def __init__(self, path: str | Path, *, fps: Fraction | float, settings: EncodeSettings):
        path = Path(path)
        if path.suffix != settings.suffix:
            raise ValueError(f"{path}: a {settings.codec} video must end in {settings.suffix}")
        rate = Fraction(fps).limit_denominator(100000)
        if rate <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        codec = CODECS[settings.codec]
        super().__init__(path, codec=codec.encoder, rate=rate, pix_fmt=codec.pix_fmt,
                         colour=Colour(full_range=codec.pix_fmt.startswith("yuvj")),
                         options=settings.stream_options())
        self.settings, self.fps = settings, rate

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        if self.frames == 0 and (image.ndim != 3 or image.shape[0] % 2 or image.shape[1] % 2):
            raise ValueError(f"{self.path}: frames must be (H, W, 3) with even H and W, got {image.shape}")
        super().write(image, pts)


def round_trip(frames: list[np.ndarray], settings: EncodeSettings) -> list[np.ndarray]:
    """Frames as a viewer of ``settings``' file sees them: (H, W, 3) uint8 frames (even sizes) encoded
    (`VideoEncoder`) and decoded again by the deblurring reader; the same count and shape."""
    with tempfile.TemporaryDirectory(prefix="round_trip_") as scratch:
        path = Path(scratch) / f"frames{settings.suffix}"
        with VideoEncoder(path, fps=25, settings=settings) as encoder:
            for frame in frames:
                encoder.write(frame)
        return list(read_frames(path))


def crop_to_even(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H & ~1, W & ~1, C): drop the last row/column of odd sizes (a view)."""
    return frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]


def stack_pair(blurred: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """Two (H, W, 3) uint8 frames -> (H, 2W, 3): blurred left, sharp right."""
    if blurred.shape != sharp.shape or blurred.ndim != 3:
        raise ValueError(f"blurred {blurred.shape} and sharp {sharp.shape} must be (H, W, 3) of one size")
    return np.concatenate([blurred, sharp], axis=1)


def split_pair(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, 2W, 3) -> (blurred, sharp), two (H, W, 3) views."""
    if frame.shape[1] % 2:
        raise ValueError(f"a side-by-side pair frame has an even width, got shape {frame.shape}")
    half = frame.shape[1] // 2
    return frame[:, :half], frame[:, half:]


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (height, width, 3), area-averaged (the right filter for downscaling)."""
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {width}x{height}")
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    return picture.reformat(width=width, height=height, interpolation="AREA").to_ndarray()
