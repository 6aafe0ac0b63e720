"""Hard scene-cut detection: a frame whose tiny luma thumbnail jumps far more than its neighbours' do.

The score of frame i is the mean absolute difference, in [0, 1], between the 64x36 block-averaged luma
thumbnails of frames i-1 and i. Frame i starts a new shot when its score is both large in absolute terms
(``min_score``) and large relative to the median score of the ``radius`` frames on either side
(``ratio``): camera motion raises the scores of a whole stretch of frames, a cut raises one. Gradual
transitions (fades, dissolves) are not detected; blurring across them only gives a soft blend, not the
ghost of an unrelated picture.
"""
import logging
from collections.abc import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601


def luma_thumbnail(frame: np.ndarray, size: tuple[int, int] = (36, 64)) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (h, w) float32 luma in [0, 1], each pixel the mean of one block.

    ``size`` is (h, w); it shrinks to the frame's own size for frames smaller than that.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    luma = frame.astype(np.float32) @ (_LUMA / 255.0)  # (H, W)
    rows = np.linspace(0, luma.shape[0], min(size[0], luma.shape[0]) + 1).astype(int)[:-1]
    cols = np.linspace(0, luma.shape[1], min(size[1], luma.shape[1]) + 1).astype(int)[:-1]
    sums = np.add.reduceat(np.add.reduceat(luma, rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, luma.shape[0])), np.diff(np.append(cols, luma.shape[1])))
    return sums / counts


def cut_scores(thumbnails: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) float: mean |thumb[i] - thumb[i-1]| for i >= 1; score[0] = 0 (nothing before it)."""
    scores = np.zeros(len(thumbnails), dtype=np.float64)
    for i in range(1, len(thumbnails)):
        scores[i] = np.abs(thumbnails[i] - thumbnails[i - 1]).mean()
    return scores


def find_cuts(scores: np.ndarray, *, min_score: float = 0.1, ratio: float = 3.0,
              radius: int = 5) -> list[int]:
    """Indices i (>= 1, ascending) of the frames that start a new shot, from ``cut_scores``."""
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    cuts = []
    for i in range(1, len(scores)):
        neighbours = np.concatenate([scores[max(1, i - radius):i], scores[i + 1:i + 1 + radius]])
        local = float(np.median(neighbours)) if len(neighbours) else 0.0
        if scores[i] >= min_score and scores[i] >= ratio * local:
            cuts.append(i)
    return cuts


def detect_cuts(frames: Iterable[np.ndarray], *, min_score: float = 0.1, ratio: float = 3.0,
                radius: int = 5) -> list[int]:
    """Indices of the frames that start a new shot in a stream of (H, W, 3) uint8 RGB frames.

    Only thumbnails are kept, so a long video costs a few KB per frame.
    """
    scores = cut_scores([luma_thumbnail(frame) for frame in frames])
    cuts = find_cuts(scores, min_score=min_score, ratio=ratio, radius=radius)
    log.info("%d frames, %d scene cut(s) at %s", len(scores), len(cuts), cuts)
    return cuts
