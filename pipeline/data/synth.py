"""Synthetic motion blur from sharp footage, the way DVD and GOPRO were made: average consecutive frames.

A blurred frame is the average of ``window`` consecutive sharp frames (a long exposure); its target is the
middle one. DVD and GOPRO averaged 7-13 frames of 240 fps video; ordinary footage runs at 20-30 fps, so
the same averaging shows a few distinct copies of anything that moves (ghosts) rather than a smooth trail.

Options:

* ``linear_light``: decode sRGB to linear light before averaging and encode the mean back, as GOPRO did
  (light adds up linearly at the sensor; averaging gamma-encoded values darkens bright moving edges).
* ``upsample``: insert ``upsample - 1`` linearly interpolated frames between neighbours before averaging.
  The interpolation is a cross-fade, not motion-compensated, so it creates no new positions of a moving
  object: the average of the interpolated sequence equals a weighted average of the original frames whose
  weights fall off linearly over the outer frame interval (a trapezoid, see ``exposure_weights``). The
  outermost copies become fainter, which softens the hard ends of the trail; the copies themselves remain.
  Flow-based interpolation (as REDS did) would be needed to fill the gaps.

Windows never straddle a scene cut: each shot is processed on its own and output frames are numbered per
shot, so that consecutive output frames are consecutive blurred frames of one continuous shot.
"""
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SynthConfig:
    """How blurred frames are made from sharp ones.

    ``window``: sharp frames averaged per blurred frame (odd; the target is the middle one).
    ``stride``: sharp frames between the centres of consecutive blurred frames (1: every frame gets a
    blurred version; ``window``: exposures that do not overlap, like DVD's 240->30 fps).
    """

    window: int = 7
    stride: int = 1
    linear_light: bool = True
    upsample: int = 1

    def __post_init__(self):
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of frames, got {self.window}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.upsample < 1:
            raise ValueError(f"upsample must be >= 1, got {self.upsample}")


@dataclass(frozen=True)
class SynthFrame:
    """One output pair: ``blurred`` and ``sharp`` are (H, W, 3) uint8; ``centre`` is the index of the
    sharp frame in the input stream, ``shot`` the index of its shot, ``index`` its position in the shot's
    output sequence."""

    shot: int
    index: int
    centre: int
    blurred: np.ndarray
    sharp: np.ndarray


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light in [0, 1] (IEC 61966-2-1)."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB-encoded values in [0, 1]; the inverse of ``srgb_to_linear``."""
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


DVD_EXPOSURE = SynthConfig(window=7, linear_light=True)
"""The blur the default checkpoint is trained and scored on: each blurred frame the linear-light mean of 7
consecutive sharp frames, the middle one the target (as DVD and GOPRO were made)."""

_DECODE_LUT = {
    False: (np.arange(256, dtype=np.float64) / 255).astype(np.float32),
    True: srgb_to_linear(np.arange(256, dtype=np.float64) / 255).astype(np.float32),
}


def exposure_weights(window: int, upsample: int = 1) -> np.ndarray:
    """(window,) float64 weights summing to 1: how much each original frame contributes to the mean of
    the ``upsample``-times linearly interpolated sequence spanning the window.

    The interpolated sequence has ``(window - 1) * upsample + 1`` samples at times ``j / upsample``; a
    sample at fractional time t is ``(1 - frac) * f[floor t] + frac * f[floor t + 1]``. ``upsample=1``
    gives the plain average ``1 / window``.
    """
    if window < 1 or upsample < 1:
        raise ValueError(f"window and upsample must be >= 1, got {window} and {upsample}")
    weights = np.zeros(window, dtype=np.float64)
    samples = (window - 1) * upsample + 1
    for j in range(samples):
        frame, step = divmod(j, upsample)
        frac = step / upsample
        weights[frame] += 1.0 - frac
        if frac:
            weights[frame + 1] += frac
    return weights / samples


def blur_window(frames: np.ndarray, config: SynthConfig) -> np.ndarray:
    """(window, H, W, 3) uint8 consecutive sharp frames -> (H, W, 3) uint8 blurred frame."""
    if frames.shape[0] != config.window or frames.dtype != np.uint8:
        raise ValueError(f"expected ({config.window}, H, W, 3) uint8 frames, "
                         f"got {frames.shape} {frames.dtype}")
    weights = exposure_weights(config.window, config.upsample).astype(np.float32)
    return _weighted_mean(_DECODE_LUT[config.linear_light][frames], weights, config)


def _weighted_mean(decoded: Iterable[np.ndarray], weights: np.ndarray, config: SynthConfig) -> np.ndarray:
    """``window`` (H, W, 3) float frames in the averaging space -> (H, W, 3) uint8 sRGB of their
    weighted mean."""
    mean = sum(w * frame for w, frame in zip(weights, decoded))
    encoded = linear_to_srgb(mean) if config.linear_light else np.clip(mean, 0.0, 1.0)
    return np.rint(encoded * 255).astype(np.uint8)


def synthesize(frames: Iterable[np.ndarray], config: SynthConfig,
               cuts: Collection[int] = ()) -> Iterator[SynthFrame]:
    """Blurred/sharp pairs from a stream of (H, W, 3) uint8 sharp frames, never averaging across a cut.

    ``cuts`` are the indices of frames that start a new shot (see ``pipeline.data.scenecut``). In a shot of
    n frames the centres are ``first + window // 2 + k * stride`` while the window fits, so a shot shorter
    than ``window`` yields nothing. Only ``window`` frames are held in memory.
    """
    cuts = set(cuts)
    half = config.window // 2
    weights = exposure_weights(config.window, config.upsample).astype(np.float32)
    lut = _DECODE_LUT[config.linear_light]
    recent: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=config.window)  # (sharp uint8, decoded float)
    shot, shot_start, emitted, shape = -1, 0, 0, None
    for i, frame in enumerate(frames):
        if shape is None:
            shape = frame.shape
        if frame.shape != shape or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i}: expected ({shape[0]}, {shape[1]}, 3) uint8, "
                             f"got {frame.shape} {frame.dtype}")
        if i == 0 or i in cuts:
            shot, shot_start, emitted = shot + 1, i, 0
            recent.clear()
        recent.append((frame, lut[frame]))
        centre = i - half
        if len(recent) == config.window and (centre - shot_start - half) % config.stride == 0:
            blurred = _weighted_mean((decoded for _, decoded in recent), weights, config)
            yield SynthFrame(shot=shot, index=emitted, centre=centre, blurred=blurred, sharp=recent[half][0])
            emitted += 1
