"""Frame sequences: uint8 RGB frames read from a video file or a frame folder, and several sequences
stepped through in lockstep (frame counts and sizes checked).

A *sequence* is a video file (decoded by PyAV as `deblur` decodes it, display rotation and colour
applied) or a folder of PNG/JPG frames taken in lexicographic order
of their names, as the official ``sorted(glob(...))``. Frame files are decoded with Pillow (libjpeg), the
decoder family OpenCV uses in the official code. FFmpeg's JPEG -> RGB conversion differs from libjpeg's by
up to ~20 levels with a mean bias of ~0.5 (measured on 720p frames), enough to move PSNR against JPEG
ground truth by several hundredths of a dB.
"""
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.video.probe import probe
from pipeline.video.readers import open_reader

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
_CHUNK = 8  # frames decoded ahead


def frame_files(folder: Path) -> list[Path]:
    """The PNG/JPG files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_sequence(path: Path) -> bool:
    """True for a file (taken as a video) or a folder that holds frame files itself."""
    path = Path(path)
    return path.is_file() or (path.is_dir() and bool(frame_files(path)))


def read_image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        if image.mode not in _EIGHT_BIT_MODES:
            raise ValueError(f"{path}: image mode {image.mode!r} is not 8-bit RGB or grey")
        return np.asarray(image.convert("RGB"))


def _decode_video(path: Path) -> Iterator[np.ndarray]:
    """The deblurring reader's PyAV path (`pipeline.video.readers`): every consumer sees the same upright
    frames."""
    for chunk in open_reader(probe(path), "pyav", "cpu", _CHUNK):
        yield from chunk.frames.numpy()


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Yield the frames of a video file or a frame folder as uint8 RGB ``(H, W, 3)`` arrays, in order."""
    path = Path(path)
    if path.is_file():
        return _decode_video(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    files = frame_files(path)
    if not files:
        raise ValueError(f"{path}: no frames ({', '.join(IMAGE_SUFFIXES)} files) in this folder")
    return map(read_image, files)


def zip_frames(*streams: tuple[str, Iterable[np.ndarray]]) -> Iterator[tuple[np.ndarray, ...]]:
    """Step through frame streams together, pairing frames by order.

    ``streams`` are ``(label, frames)``: the label (a path) names the stream in errors. Yields one tuple of
    ``(H, W, C)`` frames per step; raises ValueError naming the streams when their frame counts or frame
    sizes differ.
    """
    labels = [label for label, _ in streams]
    iterators = [iter(frames) for _, frames in streams]
    for index in itertools.count():
        frames = [next(iterator, None) for iterator in iterators]
        ended = [frame is None for frame in frames]
        if all(ended):
            return
        if any(ended):
            raise ValueError(f"frame count mismatch: {labels[ended.index(True)]} ends after {index} frames "
                             f"but {labels[ended.index(False)]} has more")
        for label, frame in zip(labels[1:], frames[1:]):
            if frame.shape != frames[0].shape:
                raise ValueError(f"frame size mismatch at frame {index}: {label} has {frame.shape} (H, W, C) "
                                 f"but {labels[0]} has {frames[0].shape}")
        yield tuple(frames)
