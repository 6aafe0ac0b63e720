"""Static HDR metadata: read from a decoded frame, written back by the encoders whose streams can hold it.

HDR10 files carry, beside their transfer and primaries tags (`pipeline.video.colour`), the colour volume
of the display they were mastered on (SMPTE ST 2086) and their content light levels (CTA-861.3: MaxCLL,
MaxFALL). Players tone-map with them; a file that loses them shows too dark or clipped. FFmpeg's decoders
attach both to the frames that carry them (H.264/HEVC keyframes, with the SEI; the probe reads the first
frame, which is one), and libx264 and libx265 write them as SEI from their ``*-params`` options; the other
encoders here do not, and are warned about.
"""

import struct
from dataclasses import dataclass
from fractions import Fraction

import av

# Units of the encoders' option strings: chromaticity in 1/50000, luminance in 1/10000 cd/m2 (as in SEI).
_CHROMATICITY, _LUMINANCE = 50000, 10000
_PARAMS = {"libx264": ("x264-params", "mastering-display", "cll"),
           "libx265": ("x265-params", "master-display", "max-cll")}  # option, volume key, light key
CARRIERS = tuple(_PARAMS)  # encoders that write it


@dataclass(frozen=True)
class HdrMetadata:
    """What a stream says about its HDR mastering; either part may be missing.

    Attributes:
        display: the mastering display's CIE 1931 (x, y) of red, green, blue and the white point, then
            its (min, max) luminance in cd/m2 (ST 2086); None when not given.
        light_level: (MaxCLL, MaxFALL) in cd/m2; None when not given.
    """

    display: tuple[tuple[tuple[Fraction, Fraction], ...], tuple[Fraction, Fraction]] | None = None
    light_level: tuple[int, int] | None = None


def hdr_of(frame: av.VideoFrame) -> HdrMetadata | None:
    """The static HDR metadata attached to a decoded frame, or None when it has none."""
    display = light = None
    kinds = av.sidedata.sidedata.Type
    # looked up by type: iterating the side data yields the entries in PyAV 18.1.0, their types in 18.1.1
    mastering = frame.side_data.get(kinds.MASTERING_DISPLAY_METADATA)
    if mastering is not None:
        # AVMasteringDisplayMetadata: AVRational primaries[3][2], white_point[2], min, max; has_primaries,
        # has_luminance
        values = struct.unpack("=20i2i", bytes(mastering)[:88])
        rationals = [Fraction(values[i], values[i + 1] or 1) for i in range(0, 20, 2)]
        if values[20] and values[21]:
            display = (tuple(zip(rationals[0:8:2], rationals[1:8:2])), (rationals[8], rationals[9]))
    content = frame.side_data.get(kinds.CONTENT_LIGHT_LEVEL)
    if content is not None:
        light = struct.unpack("=2I", bytes(content)[:8])  # AVContentLightMetadata: unsigned MaxCLL, MaxFALL
    return HdrMetadata(display, light) if display or light else None


def hdr_options(codec: str, hdr: HdrMetadata | None, options: dict[str, str]) -> dict[str, str]:
    """``options`` with ``hdr`` added to the encoder's ``*-params`` after those the user gave (a key the user
    gave is the user's), for the encoders in `CARRIERS`; other encoders' options unchanged."""
    if hdr is None or codec not in _PARAMS:
        return options
    option, volume_key, light_key = _PARAMS[codec]
    given = options.get(option)
    keys = {item.partition("=")[0] for item in given.split(":")} if given else set()
    params = []
    if hdr.display and volume_key not in keys:
        (red, green, blue, white), (low, high) = hdr.display
        xy = "".join(f"{name}({round(x * _CHROMATICITY)},{round(y * _CHROMATICITY)})"
                     for name, (x, y) in zip("GBR", (green, blue, red)))
        white_xy = f"WP({round(white[0] * _CHROMATICITY)},{round(white[1] * _CHROMATICITY)})"
        params.append(f"{volume_key}={xy}{white_xy}L({round(high * _LUMINANCE)},{round(low * _LUMINANCE)})")
    if hdr.light_level and light_key not in keys:
        params.append(f"{light_key}={hdr.light_level[0]},{hdr.light_level[1]}")
    return {**options, option: ":".join(([given] if given else []) + params)} if params else options
