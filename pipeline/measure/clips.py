"""The benchmarks' clips: the bundled sample, resized and looped back and forth to any length."""
from fractions import Fraction
from pathlib import Path

from pipeline.checkout import SAMPLES
from pipeline.data.pairs import resize
from pipeline.video.colour import Colour
from pipeline.video.encoder import Encoder
from pipeline.video.sequences import read_frames

SAMPLE = SAMPLES / "cockatoo_blurred.mp4"


def looped_clip(path: Path, frames: int, width: int, height: int, source: Path = SAMPLE,
                options: dict[str, str] | None = None) -> Path:
    """``source`` resized to width x height, played forward and back to ``frames`` frames, H.264 (libx264
    ``options``, CRF 12 by default), 20 fps: real footage of any length without a jump where it loops."""
    images = list(read_frames(source))
    order = (images + images[-2:0:-1]) * (frames // (2 * len(images) - 2) + 1)
    with Encoder(path, codec="libx264", rate=Fraction(20), pix_fmt="yuv420p", colour=Colour(),
                 options=options or {"crf": "12"}) as encoder:
        for image in order[:frames]:
            encoder.write(resize(image, width, height))
    return path
