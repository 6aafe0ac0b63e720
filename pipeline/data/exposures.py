"""Blurred windows drawn on the fly from sharp frame sequences: training data that teaches restraint.

Every item is a fresh draw of how the footage reached the camera and the user (`BlurConfig`):

* an exposure of 1 (no blur: an identity pair, what sharp footage is) to 11 source frames, averaged in
  linear light or in decoded (gamma) values, the two conventions datasets use;
* a stride between the centres of consecutive blurred frames of 1 to 3 source frames, so that neighbours
  are sometimes far apart (fast motion) and a model that averages misaligned neighbours into the centre
  pays for it;
* sensor noise on some windows and an H.264 round trip on some, as footage reaches users.

The window's sharp targets are the source frames at the blurred frames' centres. Sequences are the
training set's ``sequences/train`` folders (`pipeline.data.trainset`): real clips at the training width and
camera-shake sequences rendered from photographs, held in memory as uint8.

Randomness comes only from ``(seed, epoch, index)``: an item is the same in any worker or process.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.config import BlurConfig
from pipeline.data.datasets import dihedral, random_crop_box
from pipeline.data.pairs import EncodeSettings, round_trip
from pipeline.data.synth import SynthConfig, blur_window
from pipeline.video.frames import to_model
from pipeline.video.sequences import frame_files, read_image


@dataclass(frozen=True)
class Draw:
    """How one window is made: its exposure and stride, noise sigma (levels) and CRF (None: lossless)."""

    exposure: SynthConfig
    noise: float
    crf: int | None

    @property
    def span(self) -> int:
        """Source frames one blurred frame needs on either side of its centre."""
        return self.exposure.window // 2


def draw(blur: BlurConfig, rng: np.random.Generator) -> Draw:
    """A random `Draw` from ``blur``'s ranges."""
    weights = np.asarray(blur.weights, dtype=np.float64)
    window = int(rng.choice(blur.windows, p=weights / weights.sum()))
    stride = int(rng.integers(blur.strides[0], blur.strides[1] + 1))
    exposure = SynthConfig(window=window, stride=stride, linear_light=bool(rng.random() >= blur.gamma))
    noise = float(rng.uniform(*blur.noise)) if rng.random() < blur.noise_share else 0.0
    crf = int(rng.integers(blur.crf[0], blur.crf[1] + 1)) if rng.random() < blur.compress else None
    return Draw(exposure, noise, crf)


def load_sequences(root: str | Path) -> list[np.ndarray]:
    """Every frame folder directly under ``root`` as one (N, H, W, 3) uint8 array, in name order."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
    sequences = [np.stack([read_image(f) for f in frame_files(folder)]) for folder in folders]
    if not sequences:
        raise ValueError(f"{root}: no frame folders (build_training_set.py writes sequences/train)")
    return sequences


def with_noise(frames: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``frames`` (any shape) with Gaussian sensor noise of ``sigma`` levels, rounded and clipped."""
    noisy = frames.astype(np.float32) + rng.normal(0.0, sigma, frames.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def blurred_window(
    sequence: np.ndarray, centres: Sequence[int], made: Draw, rng: np.random.Generator
) -> np.ndarray:
    """(F, h, w, 3) uint8: the blurred frames at ``centres`` of ``sequence`` ((N, h, w, 3) uint8, every
    exposure inside it), with ``made``'s noise and compression."""
    span = made.span
    blurred = np.stack([blur_window(sequence[c - span:c + span + 1], made.exposure) for c in centres])
    if made.noise:
        blurred = with_noise(blurred, made.noise, rng)
    if made.crf is not None:
        settings = EncodeSettings(codec="h264", keyint=len(centres), quality=made.crf)
        blurred = np.stack(round_trip(list(blurred), settings))
    return blurred


class BlurredWindows(torch.utils.data.Dataset):
    """Item i: ``(blurred, sharp)``, each (frames, 3, crop, crop) float32 in [0, 1].

    A `draw`, a sequence long enough for it (chosen in proportion to its length), a centre, a crop box and
    one of the square's 8 symmetries, all from ``(seed, epoch, i)``. An epoch has as many items as the
    sequences have frames.
    """

    def __init__(self, sequences: Sequence[np.ndarray], blur: BlurConfig, *, frames: int, crop: int,
                 seed: int = 0) -> None:
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be a positive odd number, got {frames}")
        self.sequences, self.blur, self.frames, self.crop = list(sequences), blur, frames, crop
        self.seed, self.epoch = seed, 0
        for index, sequence in enumerate(self.sequences):
            if sequence.ndim != 4 or sequence.shape[-1] != 3 or sequence.dtype != np.uint8:
                raise ValueError(f"sequence {index}: expected (N, H, W, 3) uint8, got {sequence.shape} "
                                 f"{sequence.dtype}")
            if min(sequence.shape[1:3]) < crop:
                raise ValueError(f"sequence {index}: frames of {sequence.shape[1]}x{sequence.shape[2]} are "
                                 f"smaller than the crop ({crop})")
        reach = (frames // 2) * blur.strides[1] + max(blur.windows) // 2
        if max(len(s) for s in self.sequences) < 2 * reach + 1:
            raise ValueError(f"no sequence has the {2 * reach + 1} frames the widest draw needs")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(s) for s in self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        made = draw(self.blur, rng)
        reach = (self.frames // 2) * made.exposure.stride + made.span  # source frames either side of centre
        lengths = np.array([len(s) for s in self.sequences])
        room = np.maximum(lengths - 2 * reach, 0)  # where a centre can go
        if not room.any():  # shorter than this draw everywhere: the same exposure without the stride
            made = Draw(SynthConfig(window=made.exposure.window, linear_light=made.exposure.linear_light),
                        made.noise, made.crf)
            reach = self.frames // 2 + made.span
            room = np.maximum(lengths - 2 * reach, 0)
        sequence = self.sequences[int(rng.choice(len(lengths), p=room / room.sum()))]
        centre = reach + int(rng.integers(0, len(sequence) - 2 * reach))
        y0, x0 = random_crop_box(rng, sequence.shape[1], sequence.shape[2], self.crop)
        box = sequence[:, y0:y0 + self.crop, x0:x0 + self.crop]
        offsets = (np.arange(self.frames) - self.frames // 2) * made.exposure.stride
        centres = [centre + int(k) for k in offsets]
        clip = np.concatenate([blurred_window(box, centres, made, rng), box[centres]])  # (2F, h, w, 3)
        hflip, vflip, rot90 = (bool(b) for b in rng.integers(0, 2, size=3))
        clip = dihedral(clip, hflip=hflip, vflip=vflip, rot90=rot90)
        tensor = to_model(torch.from_numpy(np.ascontiguousarray(clip)))  # (2F, 3, crop, crop)
        return tensor[: self.frames], tensor[self.frames:]
