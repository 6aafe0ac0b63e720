"""Score a model on held-out videos: PSNR/SSIM (official protocol) of the input and of the restored frames.

One loop for training's validation and the default checkpoint's recipe: each video streams through the
engine (`pipeline.deblur.restore_frames`) while its blurred frames are scored as the baseline.
"""

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from model import CDVDTSP

from .config import DeblurConfig
from .datasets import discover_frame_pairs
from .deblur import restore_frames
from .framesource import read_image
from .metrics import Scores

Frames = Callable[[], Iterable[np.ndarray]]  # a factory: each call yields the video's (H, W, 3) uint8 frames


def frame_folder_videos(root) -> list[tuple[str, Frames, Frames]]:
    """The videos of a DVD/GOPRO-style frame-folder root as (name, blurred frames, sharp frames)."""
    return [(pair.name, lambda p=pair: map(read_image, p.blurred), lambda p=pair: map(read_image, p.sharp))
            for pair in discover_frame_pairs(root)]


@torch.no_grad()
def score_restoration(
    model: CDVDTSP,
    videos: Sequence[tuple[str, Frames, Frames]],
    config: DeblurConfig,
    device: torch.device | str = "cpu",
    limit: int | None = None,
) -> tuple[Scores, Scores]:
    """(input scores, output scores) over ``videos`` given as (name, blurred frames, sharp frames).

    ``limit`` scores the first frames of each video only (None: all). The model is put in eval mode and
    left there.
    """
    model.eval()
    inputs, outputs = Scores(), Scores()
    for name, blurred, sharp in videos:
        frames, to_restore = itertools.tee(
            itertools.islice(blurred(), limit)
        )  # tee holds only the engine's lag
        for image, restored, target in zip(
            frames, restore_frames(model, to_restore, config, device), sharp()
        ):
            inputs.add(name, image, target)
            outputs.add(name, restored, target)
    return inputs, outputs
