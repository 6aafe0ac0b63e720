"""The scored sequence: a video's sharp frames and, where there are some, its blurred input, as factories of
(H, W, 3) uint8 frames, for `pipeline.evaluation.score` and the training loaders' validation sets."""
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.datasets import VideoPaths, discover_frame_pairs
from pipeline.video.sequences import read_frames, read_image

Frames = Callable[[], Iterable[np.ndarray]]  # a factory: each call yields the video's (H, W, 3) uint8 frames


@dataclass(frozen=True)
class Video:
    """One scored video: its name, its sharp frames and optionally its blurred input, each with the source
    that error messages name."""

    name: str
    sharp: Frames
    sharp_source: str
    blurred: Frames | None = None
    blurred_source: str | None = None

    @classmethod
    def of(cls, paths: VideoPaths) -> "Video":
        """The video of an evaluation root's sequences (video files or frame folders)."""
        blurred = paths.blurred
        return cls(paths.name, lambda: read_frames(paths.gt), str(paths.gt),
                   None if blurred is None else lambda: read_frames(blurred),
                   None if blurred is None else str(blurred))


def frame_folder_videos(root: str | Path) -> list[Video]:
    """The videos of a DVD/GOPRO-style frame-folder root, blurred input included."""
    return [Video(pair.name, lambda p=pair: map(read_image, p.sharp), str(pair.sharp[0].parent),
                  lambda p=pair: map(read_image, p.blurred), str(pair.blurred[0].parent))
            for pair in discover_frame_pairs(root)]
