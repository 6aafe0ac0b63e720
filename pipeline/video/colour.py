"""Colour: which YUV <-> RGB conversion a video needs, one rule for every reader and the writer.

A file's tags (matrix, range, primaries, transfer) say how its YUV maps to RGB. Untagged files get what
players assume: BT.709 for HD (720 lines or more), BT.601 below; limited range unless the pixel format is
a full-range JPEG one (``yuvj*``). Readers convert with it, and the writer converts back with the same
colour and tags the output, so a file round-trips and plays the same everywhere.

* PyAV converts with swscale, told the matrix and range (`to_rgb`);
* DALI always converts with the BT.601 matrix; `DaliCorrection` maps its RGB to the file's own on the
  device (an affine 3x3 map, exact up to rounding wherever DALI did not clip a channel);
* the writer converts RGB to YUV (`from_rgb`) and tags the stream (`tag`).

Both swscale conversions resample subsampled chroma with one filter (`SCALER`) at one siting, so that a
file's chroma planes survive the round trip through RGB as closely as FFmpeg's own conversion keeps them,
or closer. The siting is swscale's default both ways: a decoder reports where its chroma samples sit (H.264
and HEVC: left), and swscale honoured that when it read 10-bit frames but not when it wrote them (nor in its
8-bit path), which shifted the chroma of every 10-bit output by half a pixel (a quarter of a 4:2:0 chroma
sample) and cost 4 to 6 dB of chroma PSNR on a saturated test pattern (`tests/test_fidelity.py`). Range,
rounding (``ACCURATE_RND`` changed nothing at 10 bits and lost at 8) and the clipping of YCbCr that lies
outside RGB are FFmpeg's.

Values are FFmpeg's enums (``AVColorSpace``, ``AVColorPrimaries``, ``AVColorTransferCharacteristic``).
"""

from dataclasses import dataclass

import av
import numpy as np
import torch
from av.video.reformatter import Interpolation

UNSPECIFIED = 2  # in AVColorSpace, AVColorPrimaries and AVColorTransferCharacteristic
BT709, BT470BG, SMPTE170M, BT2020_NCL, BT2020_CL = 1, 5, 6, 9, 10  # AVColorSpace values converted here
HD_LINES = 720
# Luma weights (Kr, Kb) of each matrix; BT.470BG and SMPTE 170M are both BT.601.
_WEIGHTS = {
    BT709: (0.2126, 0.0722),
    BT470BG: (0.299, 0.114),
    SMPTE170M: (0.299, 0.114),
    BT2020_NCL: (0.2627, 0.0593),
    BT2020_CL: (0.2627, 0.0593),
}
_SWSCALE = {BT709: 1, BT470BG: 5, SMPTE170M: 5, BT2020_NCL: 9, BT2020_CL: 9}  # swscale's colourspace ids
_PRIMARIES_OF = {
    BT709: 1,
    BT470BG: 5,
    SMPTE170M: 6,
    BT2020_NCL: 9,
    BT2020_CL: 9,
}  # when only the matrix is known
_TRANSFER_OF = {BT709: 1, BT470BG: 6, SMPTE170M: 6, BT2020_NCL: 14, BT2020_CL: 14}


@dataclass(frozen=True)
class Colour:
    """How a video's YUV maps to RGB.

    Attributes:
        matrix: AVColorSpace of the YUV <-> RGB matrix (1 BT.709, 5/6 BT.601, 9 BT.2020).
        full_range: YUV uses 0..255 (JPEG) rather than 16..235/240 (MPEG, "limited").
        primaries, transfer: AVColorPrimaries and AVColorTransferCharacteristic, carried to the output.
        tagged: the file said so (False: the matrix and range are the untagged default above).
    """

    matrix: int = SMPTE170M
    full_range: bool = False
    primaries: int = 6
    transfer: int = 6
    tagged: bool = False

    def __post_init__(self) -> None:
        if self.matrix not in _WEIGHTS:
            raise ValueError(f"unsupported colour matrix {self.matrix} (AVColorSpace)")

    @property
    def range_id(self) -> int:
        """AVColorRange (also swscale's range argument): 1 limited (MPEG), 2 full (JPEG)."""
        return 2 if self.full_range else 1

    @property
    def name(self) -> str:
        matrix = {BT709: "BT.709", BT2020_NCL: "BT.2020", BT2020_CL: "BT.2020"}.get(self.matrix, "BT.601")
        return (
            f"{matrix} {'full' if self.full_range else 'limited'} range{'' if self.tagged else ' (untagged)'}"
        )


def colour_of(stream: av.VideoStream, height: int, pix_fmt: str) -> Colour:
    """The colour of an opened video stream whose frames are ``height`` lines of ``pix_fmt``."""
    context = stream.codec_context
    matrix, primaries, transfer = (
        int(getattr(context, name) or UNSPECIFIED) for name in ("colorspace", "color_primaries", "color_trc")
    )
    tagged = matrix in _WEIGHTS
    if not tagged:
        matrix = BT709 if height >= HD_LINES else SMPTE170M
    range_ = int(context.color_range or 0)  # AVColorRange: 0 unspecified, 1 limited (MPEG), 2 full (JPEG)
    full = range_ == 2 if range_ in (1, 2) else pix_fmt.startswith("yuvj")
    return Colour(
        matrix=matrix,
        full_range=full,
        primaries=primaries if primaries != UNSPECIFIED else _PRIMARIES_OF[matrix],
        transfer=transfer if transfer != UNSPECIFIED else _TRANSFER_OF[matrix],
        tagged=tagged,
    )


RGB_FORMATS = {np.dtype(np.uint8): "rgb24", np.dtype(np.uint16): "rgb48le"}  # FFmpeg's, per level type
# swscale's chroma filter, both ways. Round trips of a saturated 10-bit 4:2:0 test pattern (chroma PSNR U/V
# against the input): bilinear (PyAV's default) 33.0/30.8 dB, bicubic (FFmpeg's) 36.4/34.5, lanczos 37.4/35.6;
# natural footage: all within 0.1 dB of each other.
SCALER = Interpolation.LANCZOS


def to_rgb(frame: av.VideoFrame, colour: Colour, deep: bool = False) -> np.ndarray:
    """(H, W, 3) RGB of a decoded frame, converted with ``colour`` (RGB and gray frames as they are): uint8,
    or with ``deep`` uint16 levels (0..65535), which keep a 10- or 12-bit file's precision."""
    rgb = RGB_FORMATS[np.dtype(np.uint16 if deep else np.uint8)]
    if not frame.format.name.startswith(("yuv", "nv", "p0", "p1")):
        return frame.to_ndarray(format=rgb)
    return _default_siting(frame).reformat(
        format=rgb, src_colorspace=_SWSCALE[colour.matrix], src_color_range=colour.range_id,
        interpolation=SCALER,
    ).to_ndarray()


def _default_siting(frame: av.VideoFrame) -> av.VideoFrame:
    """``frame``'s pixels in a new frame that says nothing of its chroma siting, so that swscale reads its
    chroma where `from_rgb` writes it (PyAV cannot set a frame's chroma location); a full-chroma frame as
    it is."""
    if all(plane.width == frame.width and plane.height == frame.height for plane in frame.planes):
        return frame
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for source, target in zip(frame.planes, copy.planes):
        width = min(source.line_size, target.line_size)
        _rows(target)[:, :width] = _rows(source)[:, :width]
    return copy


def _rows(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """(lines, line_size) uint8: a plane's bytes, line by line (a view)."""
    return np.frombuffer(plane, np.uint8, plane.height * plane.line_size).reshape(plane.height, -1)


def from_rgb(image: np.ndarray, pix_fmt: str, colour: Colour) -> av.VideoFrame:
    """An (H, W, 3) uint8 or uint16 RGB image as a ``pix_fmt`` frame converted and tagged with ``colour``."""
    frame = av.VideoFrame.from_ndarray(image, format=RGB_FORMATS[image.dtype])
    if not pix_fmt.startswith("yuv"):
        return frame.reformat(format=pix_fmt)
    converted = frame.reformat(
        format=pix_fmt, dst_colorspace=_SWSCALE[colour.matrix], dst_color_range=colour.range_id,
        interpolation=SCALER,
    )
    converted.colorspace, converted.color_range = colour.matrix, colour.range_id
    return converted


def tag(context: av.codec.context.CodecContext, colour: Colour, pix_fmt: str) -> None:
    """Tag an encoder's output with ``colour`` (YUV outputs only: RGB ones have no matrix)."""
    if pix_fmt.startswith("yuv"):
        context.colorspace, context.color_range = colour.matrix, colour.range_id
        context.color_primaries, context.color_trc = colour.primaries, colour.transfer


def yuv_to_rgb_affine(colour: Colour) -> tuple[np.ndarray, np.ndarray]:
    """``rgb = A @ yuv + b`` for 8-bit values (float64): the conversion ``colour`` defines."""
    kr, kb = _WEIGHTS[colour.matrix]
    kg = 1 - kr - kb
    luma, chroma, offset = (255, 255, 0) if colour.full_range else (219, 224, 16)
    # R = Y' + 2(1-Kr) Pr; B = Y' + 2(1-Kb) Pb; G = (Y' - Kr R - Kb B) / Kg, with Y' in 0..1, Pb, Pr in +-0.5
    per_unit = np.array(
        [
            [1, 0, 2 * (1 - kr)],
            [1, -2 * (1 - kb) * kb / kg, -2 * (1 - kr) * kr / kg],
            [1, 2 * (1 - kb), 0],
        ]
    )
    scale = np.diag([255 / luma, 255 / chroma, 255 / chroma])
    a = per_unit @ scale
    b = -a @ np.array([offset, 128, 128])
    return a, b


class DaliCorrection:
    """Maps DALI's RGB to the RGB of the file's own colour. DALI converts every file with the BT.601 matrix,
    in full range for the JPEG pixel formats (``yuvj*``, MJPEG) and limited range otherwise, whatever the
    file's tags say (measured on DALI 2.4's CPU reader)."""

    def __init__(self, colour: Colour, pix_fmt: str) -> None:
        assumed = Colour(matrix=SMPTE170M, full_range=pix_fmt.startswith("yuvj"))
        self.identity = (_WEIGHTS[colour.matrix], colour.full_range) == (
            _WEIGHTS[SMPTE170M],
            assumed.full_range,
        )
        # DALI converts a full-range file as limited (or the reverse): it clips most of what the
        # correction would need, so the correction cannot be near exact
        self.range_problem = None if colour.full_range == assumed.full_range else (
            f"DALI converts {colour.name} as {assumed.name.split(' (')[0]}, clipping what a correction needs")
        a_true, b_true = yuv_to_rgb_affine(colour)
        a_dali, b_dali = yuv_to_rgb_affine(assumed)
        inverse = np.linalg.inv(a_dali)
        self.matrix = torch.from_numpy(a_true @ inverse).float()  # (3, 3)
        self.offset = torch.from_numpy(b_true - a_true @ inverse @ b_dali).float()  # (3,)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, H, W, 3) uint8 RGB as DALI made it -> the same in the file's colour, on the same device."""
        if self.identity:
            return frames
        matrix, offset = self.matrix.to(frames.device), self.offset.to(frames.device)
        corrected = frames.float() @ matrix.T + offset
        return corrected.round_().clamp_(0, 255).to(torch.uint8)
