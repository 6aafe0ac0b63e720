"""PSNR and SSIM under the official CDVD-TSP evaluation protocol, and a per-frame score accumulator.

The protocol (``code/inference.py`` of the official implementation):

* images are RGB ``uint8``; ``crop`` pixels (4) are removed from every side before scoring;
* PSNR: peak 255, MSE over all pixels and channels; identical images give ``inf``;
* SSIM, MATLAB style: an 11x11 Gaussian window with sigma 1.5 applied to each channel, only the "valid"
  region (no padding: 5 more pixels lost per side), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, the map
  averaged over pixels and channels;
* the total over a data set is the mean over all frames, not the mean of per-video means.

Images are numpy arrays ``(..., H, W, C)``: one image ``(H, W, 3)`` gives a float, a batch ``(N, H, W, 3)``
gives an ``(N,)`` array. All arithmetic is float64. The Gaussian filter is separable and is applied as two
1-D passes over a strided window view (numpy only: no OpenCV, no SciPy).
"""
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PEAK = 255.0
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
C1 = (0.01 * PEAK) ** 2
C2 = (0.03 * PEAK) ** 2


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    """(size,) normalised 1-D Gaussian taps (what ``cv2.getGaussianKernel(size, sigma)`` returns)."""
    offsets = np.arange(size) - (size - 1) / 2
    taps = np.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


_WINDOW = _gaussian_window(WINDOW_SIZE, WINDOW_SIGMA)


def _cropped_pair(a: np.ndarray, b: np.ndarray, crop: int, min_size: int = 1) -> tuple[np.ndarray, ...]:
    """Check two uint8 ``(..., H, W, C)`` images; return them as float64 with ``crop`` px cut per side."""
    for image in (a, b):
        if not isinstance(image, np.ndarray):
            raise ValueError(f"expected uint8 numpy images (..., H, W, C), got {type(image).__name__}")
        if image.dtype != np.uint8 or image.ndim < 3:
            raise ValueError(f"expected uint8 images (..., H, W, C), got {image.dtype} {image.shape}")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if crop < 0:
        raise ValueError(f"crop must be >= 0, got {crop}")
    height, width = a.shape[-3:-1]
    if min(height, width) - 2 * crop < min_size:
        raise ValueError(f"{height}x{width} (HxW) images are too small for crop={crop}: "
                         f"at least {min_size} px must remain on each side")
    region = (..., slice(crop, height - crop), slice(crop, width - crop), slice(None))
    return a[region].astype(np.float64), b[region].astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, crop: int = 4) -> float | np.ndarray:
    """PSNR in dB (peak 255) of uint8 images ``(..., H, W, C)`` after cutting ``crop`` px from every side.

    Returns a float for one image, an array of shape ``(...)`` for a batch; ``inf`` where images are equal.
    """
    a, b = _cropped_pair(a, b, crop)
    mse = np.mean((a - b) ** 2, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):  # mse == 0 -> inf, stated in the docstring
        return np.where(mse == 0, math.inf, 10 * np.log10(PEAK**2 / mse))[()]


def mean_psnr(images: Iterable[np.ndarray], targets: Iterable[np.ndarray], crop: int = 0) -> float | None:
    """Mean per-frame PSNR (dB) of uint8 frames against their targets, paired in order; None (JSON null)
    when a frame equals its target (its PSNR, and so the mean, is infinite)."""
    values = [float(psnr(image, target, crop)) for image, target in zip(images, targets, strict=True)]
    mean = float(np.mean(values))
    return mean if math.isfinite(mean) else None


def _filter_valid(planes: np.ndarray) -> np.ndarray:
    """Gaussian-filter planes ``(..., H, W)``, keeping the valid region ``(..., H-10, W-10)``."""
    for axis in (-2, -1):
        planes = sliding_window_view(planes, WINDOW_SIZE, axis=axis) @ _WINDOW  # the window axis is last
    return planes


def ssim(a: np.ndarray, b: np.ndarray, crop: int = 4) -> float | np.ndarray:
    """MATLAB-style SSIM of uint8 images ``(..., H, W, C)`` after cutting ``crop`` px from every side.

    Each channel is filtered separately with the 11x11 Gaussian window (sigma 1.5) over the valid region
    only, and the SSIM map is averaged over pixels and channels. Returns a float for one image, an array
    of shape ``(...)`` for a batch. Needs at least 11 px per side after the crop.
    """
    a, b = _cropped_pair(a, b, crop, min_size=WINDOW_SIZE)
    a, b = np.moveaxis(a, -1, -3), np.moveaxis(b, -1, -3)  # (..., C, H, W)
    # One contiguous (5, ..., C, H, W) stack: filtering contiguous rows is 2x faster than strided (H, W, C).
    planes = np.ascontiguousarray(np.stack([a, b, a * a, b * b, a * b]))
    mu_a, mu_b, mean_aa, mean_bb, mean_ab = _filter_valid(planes)
    var_a = mean_aa - mu_a**2
    var_b = mean_bb - mu_b**2
    cov = mean_ab - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
    return ssim_map.mean(axis=(-3, -2, -1))[()]


@dataclass(frozen=True)
class FrameScore:
    """PSNR (dB) and SSIM of frame ``index`` (0-based, in sequence order) of ``video``."""

    video: str
    index: int
    psnr: float
    ssim: float


@dataclass(frozen=True)
class Summary:
    """Mean PSNR (dB) and SSIM over ``frames`` frames."""

    psnr: float
    ssim: float
    frames: int


def _summarise(scores: list[FrameScore]) -> Summary:
    return Summary(psnr=float(np.mean([score.psnr for score in scores])),
                   ssim=float(np.mean([score.ssim for score in scores])), frames=len(scores))


class Scores:
    """Per-frame PSNR/SSIM of restored frames against their targets, summarised per video and overall.

    ``overall()`` is the official total: the mean over all frames, so long videos weigh more than short
    ones (it is not the mean of the per-video means).
    """

    def __init__(self, crop: int = 4):
        self.crop = crop
        self.frames: list[FrameScore] = []
        self._counts: dict[str, int] = {}

    def add(self, video: str, image: np.ndarray, target: np.ndarray) -> FrameScore:
        """Score the next frame of ``video``: uint8 ``(H, W, C)`` ``image`` against ``target``."""
        index = self._counts.get(video, 0)
        score = FrameScore(video, index, psnr=float(psnr(image, target, self.crop)),
                           ssim=float(ssim(image, target, self.crop)))
        self._counts[video] = index + 1
        self.frames.append(score)
        return score

    def per_video(self) -> dict[str, Summary]:
        """Video name -> mean over its frames, in the order the videos were first scored."""
        by_video: dict[str, list[FrameScore]] = {video: [] for video in self._counts}
        for score in self.frames:
            by_video[score.video].append(score)
        return {video: _summarise(scores) for video, scores in by_video.items()}

    def overall(self) -> Summary:
        """Mean over all frames of all videos."""
        if not self.frames:
            raise ValueError("no frames have been scored")
        return _summarise(self.frames)
