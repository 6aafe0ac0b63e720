"""Frame sequences for evaluation: read uint8 RGB frames from a video file or a frame folder, find the
videos of a DVD/GOPRO evaluation root, and step through several sequences in lockstep.

A *sequence* is a video file (decoded by PyAV as `deblur` decodes it, display rotation and colour
applied) or a folder of PNG/JPG frames taken in lexicographic order
of their names, as the official ``sorted(glob(...))``. Frame files are decoded with Pillow (libjpeg), the
decoder family OpenCV uses in the official code. FFmpeg's JPEG -> RGB conversion differs from libjpeg's by
up to ~20 levels with a mean bias of ~0.5 (measured on 720p frames), enough to move PSNR against JPEG
ground truth by several hundredths of a dB.

Evaluation roots (``gt`` or ``sharp`` for ground truth; ``blur`` for the blurred input, optional):

* ``<root>/{blur,gt}/<video>/*``: DVD as the official ``inference.py`` expects it (``<video>`` may also be
  a video file ``<video>.<ext>``);
* ``<root>/<video>/{blur,gt}/*``: GOPRO as distributed (``sharp`` instead of ``gt``).
"""
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .probe import probe
from .readers import open_reader

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GT_NAMES = ("gt", "sharp")
BLUR_NAME = "blur"
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
_CHUNK = 8  # frames decoded ahead


@dataclass(frozen=True)
class VideoPair:
    """One evaluation video: its ground-truth sequence and, where the layout has one, its blurred input."""

    name: str
    gt: Path
    blurred: Path | None = None


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
    """The deblurring reader's PyAV path (`pipeline.readers`): every consumer sees the same upright frames."""
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


def find_sequence(parent: Path, name: str) -> Path | None:
    """The sequence ``name`` in ``parent``: the folder ``parent/name`` or the one file ``parent/name.<ext>``.

    Returns None when there is neither; raises ValueError when several files match.
    """
    parent = Path(parent)
    if (parent / name).is_dir():
        return parent / name
    files = sorted(p for p in parent.iterdir() if p.is_file() and p.stem == name) if parent.is_dir() else []
    if len(files) > 1:
        raise ValueError(f"{parent}: several files could be video {name!r}: "
                         f"{', '.join(p.name for p in files)}")
    return files[0] if files else None


def _subfolder(folder: Path, names: Iterable[str]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_dir()), None)


def discover(root: Path) -> list[VideoPair]:
    """The videos of a DVD/GOPRO evaluation root (layouts in the module docstring), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder")
    gt_folder = _subfolder(root, GT_NAMES)
    if gt_folder is not None:  # <root>/{blur,gt}/<video>
        blur_folder = root / BLUR_NAME
        names = sorted({p.stem for p in gt_folder.iterdir() if not p.name.startswith(".")})
        pairs = [VideoPair(name, find_sequence(gt_folder, name), find_sequence(blur_folder, name))
                 for name in names]
    else:  # <root>/<video>/{blur,gt}
        pairs = [VideoPair(video.name, gt, (video / BLUR_NAME) if (video / BLUR_NAME).is_dir() else None)
                 for video in sorted(p for p in root.iterdir() if p.is_dir())
                 if (gt := _subfolder(video, GT_NAMES)) is not None and is_sequence(gt)]
    if not pairs:
        raise ValueError(f"{root}: no evaluation videos: expected {root}/gt/<video>/ or {root}/<video>/gt/ "
                         f"(or 'sharp' for 'gt')")
    log.info("%s: %d videos, %d with blurred input", root, len(pairs),
             sum(pair.blurred is not None for pair in pairs))
    return pairs


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
