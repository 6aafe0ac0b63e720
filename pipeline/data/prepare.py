"""Turn datasets into paired training videos (see ``pipeline.data.pairs``) described by a manifest.

* ``import_frame_pair``: a DVD/GOPRO video given as frame folders -> one side-by-side video, plus the PSNR
  of each transcoded half against the original frames (which are only read, never changed);
* ``synth_footage``: a sharp video -> scene cuts -> synthetic blur per shot -> one side-by-side video per
  shot long enough to train on;
* ``holdout``: which source videos go to the validation split (whole videos, so no shot of a validation
  video is trained on).

Progress is reported through ``on_frame`` callbacks (one call per frame written); the caller owns the UI.
"""
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline import metrics
from pipeline.data.datasets import FramePair, ManifestVideo, read_image
from pipeline.data.pairs import EncodeSettings, VideoEncoder, crop_to_even, resize, split_pair, stack_pair
from pipeline.data.scenecut import detect_cuts
from pipeline.data.synth import SynthConfig, synthesize
from pipeline.video.probe import probe
from pipeline.video.sequences import read_frames, zip_frames

log = logging.getLogger(__name__)

OnFrame = Callable[[], None]


def transcode_psnr(path: Path, originals: Iterable[np.ndarray]) -> dict[str, float | None]:
    """Mean per-frame PSNR (dB, no border crop) of each half of the pair video at ``path`` against the
    (H, 2W, 3) side-by-side frames it was encoded from."""
    halves: dict[str, tuple[list, list]] = {"blurred": ([], []), "sharp": ([], [])}
    for coded, original in zip_frames((str(path), read_frames(path)), ("originals", originals)):
        for (images, targets), coded_half, original_half in zip(halves.values(), split_pair(coded),
                                                                  split_pair(original)):
            images.append(coded_half)
            targets.append(original_half)
    return {name: metrics.mean_psnr(images, targets) for name, (images, targets) in halves.items()}


def import_frame_pair(pair: FramePair, path: Path, *, settings: EncodeSettings, split: str,
                      fps: Fraction | float, max_frames: int | None = None,
                      on_frame: OnFrame = lambda: None) -> ManifestVideo:
    """Encode the first ``max_frames`` (all by default) frames of ``pair`` as one paired video at ``path``
    (sizes cropped to even) and measure what the lossy coding cost."""
    count = min(pair.frames, max_frames or pair.frames)

    def originals() -> Iterable[np.ndarray]:
        """(H, 2W, 3) side-by-side frames, sizes cropped to even."""
        blurred = (str(pair.blurred[0].parent), map(read_image, pair.blurred[:count]))
        sharp = (str(pair.sharp[0].parent), map(read_image, pair.sharp[:count]))
        for blur, gt in zip_frames(blurred, sharp):
            yield stack_pair(crop_to_even(blur), crop_to_even(gt))

    with VideoEncoder(path, fps=fps, settings=settings) as encoder:
        for frame in originals():
            encoder.write(frame)
            on_frame()
    psnr = transcode_psnr(path, originals())
    log.info("%s: %d frames, PSNR blurred %s dB, sharp %s dB", pair.name, count, psnr["blurred"],
                psnr["sharp"])
    return ManifestVideo(name=pair.name, path=path.name, split=split, frames=count, width=encoder.width // 2,
                         height=encoder.height, fps=float(fps), codec=settings.codec, keyint=settings.keyint,
                         source={"blurred": str(pair.blurred[0].parent), "sharp": str(pair.sharp[0].parent)},
                         psnr=psnr)


def fitted_size(height: int, width: int, max_width: int | None) -> tuple[int, int]:
    """(H, W) of a ``height`` x ``width`` frame after `fit_width`."""
    if max_width is None or width <= max_width:
        return height // 2 * 2, width // 2 * 2
    if max_width < 2:
        raise ValueError(f"max width must be >= 2, got {max_width}")
    return max(2, round(height * max_width / width / 2) * 2), max_width // 2 * 2


def fit_width(frame: np.ndarray, max_width: int | None) -> np.ndarray:
    """(H, W, 3) -> the frame downscaled (area, aspect kept) to at most ``max_width`` wide, with even
    sizes (narrower frames are cropped to even sizes instead)."""
    if max_width is None or frame.shape[1] <= max_width:
        return crop_to_even(frame)
    height, width = fitted_size(*frame.shape[:2], max_width)
    return resize(frame, width, height)


def synth_footage(video: Path, out_dir: Path, *, config: SynthConfig, settings: EncodeSettings, split: str,
                  max_width: int | None = None, min_frames: int = 5, max_frames: int | None = None,
                  on_frame: OnFrame = lambda: None) -> list[ManifestVideo]:
    """Synthesise blurred/sharp pairs from the sharp ``video`` (its first ``max_frames`` frames, downscaled
    to ``max_width`` if wider): one paired video ``<stem>_shot<k>`` per shot with at least ``min_frames``
    frames."""
    fps = probe(video).fps / config.stride

    def frames() -> Iterable[np.ndarray]:
        return (fit_width(frame, max_width) for frame in itertools.islice(read_frames(video), max_frames))

    cuts = detect_cuts(frames())
    made = []
    for shot, pairs in itertools.groupby(synthesize(frames(), config, cuts), key=lambda pair: pair.shot):
        path = out_dir / f"{video.stem}_shot{shot}{settings.suffix}"
        with VideoEncoder(path, fps=fps, settings=settings) as encoder:
            for pair in pairs:
                if encoder.frames == 0:
                    first_centre = pair.centre
                encoder.write(stack_pair(pair.blurred, pair.sharp))
                on_frame()
            if encoder.frames < min_frames:
                log.info("%s: dropping a shot of %d frames (< %d)", path.name, encoder.frames, min_frames)
                encoder.abort()
                continue
        made.append(ManifestVideo(
            name=path.stem, path=path.name, split=split, frames=encoder.frames, width=encoder.width // 2,
            height=encoder.height, fps=float(fps), codec=settings.codec, keyint=settings.keyint,
            source={"video": str(video), "first_centre": first_centre, "cuts": cuts, **asdict(config)}))
    return made


def holdout(names: Sequence[str], *, fraction: float, seed: int = 0, chosen: Sequence[str] = ()) -> set[str]:
    """The names that form the validation split: ``chosen`` if given, else ``round(fraction * n)`` names
    picked by a seeded permutation, always leaving at least one for training."""
    unknown = set(chosen) - set(names)
    if unknown:
        raise ValueError(f"--val names not among the inputs: {sorted(unknown)}")
    if chosen:
        return set(chosen)
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    count = min(round(fraction * len(names)), len(names) - 1)
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i] for i in order[:count]}
