"""Datasets as published (folders of frames) and as prepared here (paired videos + a JSON manifest).

Layouts, as `discover` finds them (``gt`` or ``sharp`` for ground truth; ``blur`` for the blurred input,
optional): ``<root>/{blur,gt}/<video>/*``, DVD as the official ``inference.py`` expects it (``<video>``
may also be a video file ``<video>.<ext>``), and ``<root>/<video>/{blur,gt}/*``, the official README's
and the GOPRO download's (``sharp`` for ``gt``; GOPRO's ``blur_gamma`` is ignored). Videos are
matched by name, which is the official sorted-order pairing whenever the names agree and an error where
they do not; frames are taken in sorted name order, and a video whose blurred and sharp frame counts
differ is an error, never silently truncated.
"""
import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.video.frames import to_model
from pipeline.video.sequences import (
    frame_files,
    is_sequence,
    read_image,  # Pillow (libjpeg), as evaluation reads frames
)

log = logging.getLogger(__name__)

GT_NAMES = ("gt", "sharp")
BLUR_NAME = "blur"


@dataclass(frozen=True)
class VideoPaths:
    """One video of an evaluation root: its ground-truth sequence and, where the layout has one, its
    blurred input (video files or frame folders)."""

    name: str
    gt: Path
    blurred: Path | None = None



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


def discover(root: Path) -> list[VideoPaths]:
    """The videos of a DVD/GOPRO evaluation root (layouts in the module docstring), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder")
    gt_folder = _subfolder(root, GT_NAMES)
    if gt_folder is not None:  # <root>/{blur,gt}/<video>
        blur_folder = root / BLUR_NAME
        names = sorted({p.stem for p in gt_folder.iterdir() if not p.name.startswith(".")})
        pairs = [VideoPaths(name, find_sequence(gt_folder, name), find_sequence(blur_folder, name))
                 for name in names]
    else:  # <root>/<video>/{blur,gt}
        pairs = [VideoPaths(video.name, gt, (video / BLUR_NAME) if (video / BLUR_NAME).is_dir() else None)
                 for video in sorted(p for p in root.iterdir() if p.is_dir())
                 if (gt := _subfolder(video, GT_NAMES)) is not None and is_sequence(gt)]
    if not pairs:
        raise ValueError(f"{root}: no evaluation videos: expected {root}/gt/<video>/ or {root}/<video>/gt/ "
                         f"(or 'sharp' for 'gt')")
    log.info("%s: %d videos, %d with blurred input", root, len(pairs),
             sum(pair.blurred is not None for pair in pairs))
    return pairs


@dataclass(frozen=True)
class FramePair:
    """One video of a frame-folder dataset: paths of its blurred and sharp frames, in order."""

    name: str
    blurred: tuple[Path, ...]
    sharp: tuple[Path, ...]

    def __post_init__(self):
        if len(self.blurred) != len(self.sharp) or not self.blurred:
            raise ValueError(f"video {self.name!r}: {len(self.blurred)} blurred vs {len(self.sharp)} "
                             "sharp frames")

    @property
    def frames(self) -> int:
        return len(self.blurred)


def discover_frame_pairs(root: str | Path) -> list[FramePair]:
    """The videos of a DVD/GOPRO-style frame-folder dataset at ``root``, sorted by name."""
    pairs = []
    for video in discover(Path(root)):
        if video.blurred is None or not video.blurred.is_dir() or not video.gt.is_dir():
            raise ValueError(f"{root}: video {video.name!r} needs blurred and sharp frame folders, "
                             f"got {video.blurred} and {video.gt}")
        pairs.append(FramePair(video.name, tuple(frame_files(video.blurred)), tuple(frame_files(video.gt))))
    return pairs


@dataclass(frozen=True)
class ManifestVideo:
    """One paired video of a prepared dataset.

    ``path`` is relative to the manifest's folder; ``width``/``height`` are those of ONE half (the file is
    2*width wide, blurred left); ``source`` says where the frames came from; ``psnr`` is the mean PSNR (dB)
    of each transcoded half against the original frames, when measured.
    """

    name: str
    path: str
    split: str
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    keyint: int
    source: dict[str, str | int | bool | list[int]] = field(default_factory=dict)
    psnr: dict[str, float | None] | None = None


@dataclass
class Manifest:
    """A prepared dataset: ``videos`` in a JSON file whose folder, ``root``, the paths are relative to."""

    videos: list[ManifestVideo]
    root: Path = Path(".")
    layout: str = "side_by_side"
    version: int = 1

    def video_path(self, video: ManifestVideo) -> Path:
        return self.root / video.path

    def split(self, name: str) -> list[ManifestVideo]:
        """The videos of split ``name`` (e.g. "train", "val", "test")."""
        chosen = [v for v in self.videos if v.split == name]
        if not chosen:
            raise ValueError(f"no videos in split {name!r}; splits: {sorted({v.split for v in self.videos})}")
        return chosen

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        data = {"version": self.version, "layout": self.layout,
                "videos": [dataclasses.asdict(v) for v in self.videos]}
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a readable manifest ({error})") from error
        if not isinstance(data, dict) or (data.get("version"), data.get("layout")) != (1, "side_by_side"):
            raise ValueError(f"{path}: not a version 1 side-by-side manifest")
        known = {f.name for f in dataclasses.fields(ManifestVideo)}
        videos = []
        for entry in data.get("videos", []):
            unknown = set(entry) - known
            if unknown:
                raise ValueError(f"{path}: unknown manifest key(s) {sorted(unknown)} "
                                 f"in video {entry.get('name')!r}")
            videos.append(ManifestVideo(**entry))
        return cls(videos=videos, root=path.parent)


def random_crop_box(rng: np.random.Generator, height: int, width: int, crop: int) -> tuple[int, int]:
    """Top-left (y0, x0) of a uniformly placed ``crop`` x ``crop`` box; ValueError if it does not fit."""
    if crop > height or crop > width:
        raise ValueError(f"crop {crop} does not fit frames of {height}x{width}")
    return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))


def dihedral(clip: np.ndarray, *, hflip: bool, vflip: bool, rot90: bool) -> np.ndarray:
    """(N, H, W, C) -> the same frames flipped left-right, then up-down, then rotated 90 degrees
    counter-clockwise, each when asked (all 8 symmetries of a square); a view."""
    if hflip:
        clip = clip[:, :, ::-1]
    if vflip:
        clip = clip[:, ::-1]
    if rot90:
        clip = np.rot90(clip, k=1, axes=(1, 2))
    return clip


class PngWindowDataset(torch.utils.data.Dataset):
    """Windows of ``frames`` consecutive blurred and sharp frames read from frame folders.

    Item i is ``(blurred, sharp)``, each (frames, 3, h, w) float32 in [0, 1]: the same random
    ``crop`` x ``crop`` box (whole frames when ``crop`` is None) and, with ``augment``, the same random
    horizontal flip, vertical flip and 90-degree rotation (p = 0.5 each) for every frame of both.

    Randomness comes only from ``(seed, epoch, i)``, so an item is the same in any worker or process and
    different in each epoch after ``set_epoch``; rank sharding is DistributedSampler's job (map-style).
    ``max_frames`` keeps the first frames of each video only (the official training used 100).
    """

    def __init__(self, pairs: Sequence[FramePair], *, frames: int = 5, crop: int | None = 256,
                 augment: bool = True, seed: int = 0, max_frames: int | None = None):
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if crop is not None and crop < 1:
            raise ValueError(f"crop must be >= 1 or None, got {crop}")
        if max_frames is not None and max_frames < frames:
            raise ValueError(f"max_frames must be >= frames ({frames}), got {max_frames}")
        if crop is None and augment:
            raise ValueError("augment needs a square crop (rotating non-square frames changes their shape)")
        self.pairs = list(pairs)
        self.frames, self.crop, self.augment, self.seed, self.epoch = frames, crop, augment, seed, 0
        self.windows = [(v, start) for v, pair in enumerate(self.pairs)
                        for start in range(min(pair.frames, max_frames or pair.frames) - frames + 1)]
        if not self.windows:
            raise ValueError(f"no video has {frames} frames (lengths: {[p.frames for p in self.pairs]})")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        video, start = self.windows[index]
        pair = self.pairs[video]
        span = slice(start, start + self.frames)
        images = [read_image(p) for p in pair.blurred[span] + pair.sharp[span]]
        if len({image.shape for image in images}) != 1:
            raise ValueError(f"video {pair.name!r}: frames {start}..{span.stop - 1} differ in size "
                             f"{sorted({image.shape for image in images})}")
        clip = np.stack(images)  # (2F, H, W, 3)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.crop is not None:
            y0, x0 = random_crop_box(rng, clip.shape[1], clip.shape[2], self.crop)
            clip = clip[:, y0:y0 + self.crop, x0:x0 + self.crop]
        if self.augment:
            hflip, vflip, rot90 = (bool(b) for b in rng.integers(0, 2, size=3))
            clip = dihedral(clip, hflip=hflip, vflip=vflip, rot90=rot90)
        tensor = to_model(torch.from_numpy(np.ascontiguousarray(clip)))  # (2F, 3, h, w)
        return tensor[: self.frames], tensor[self.frames:]
