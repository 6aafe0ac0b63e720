"""Cost volume of PWC-Net in pure PyTorch (the official code uses a CuPy kernel).

Matches the official `correlation.py` (kernel size 1, max displacement 4, stride 1): the value for
displacement (dy, dx) at pixel x is the mean over channels of ``first(x) * second(x + (dx, dy))``, with
``second`` zero padded, and channel index ``(dy + d) * (2d + 1) + (dx + d)`` (dy-major).
"""
import torch
import torch.nn.functional as F
from torch import nn


def correlation(first: torch.Tensor, second: torch.Tensor, max_displacement: int = 4) -> torch.Tensor:
    """Correlate two feature maps over a square of displacements.

    Args:
        first: (B, C, H, W) features of the reference image.
        second: (B, C, H, W) features of the other image.
        max_displacement: d; displacements run over [-d, d] in x and y.

    Returns:
        (B, (2d+1)**2, H, W) cost volume, channel ``(dy + d) * (2d + 1) + (dx + d)``.
    """
    if first.shape != second.shape:
        raise ValueError(
            f"correlation needs equal shapes, got {tuple(first.shape)} and {tuple(second.shape)}")
    d = max_displacement
    height, width = first.shape[-2:]
    padded = F.pad(second, (d, d, d, d))  # (B, C, H+2d, W+2d), zeros outside
    costs = [
        (first * padded[:, :, dy:dy + height, dx:dx + width]).mean(dim=1)  # (B, H, W)
        for dy in range(2 * d + 1)
        for dx in range(2 * d + 1)
    ]
    return torch.stack(costs, dim=1)


class CostVolume(nn.Module):
    """PWC-Net's cost volume at one level: ``kernel(first, second)``, `correlation` unless a faster
    equivalent is swapped in (`pipeline.compiling`'s ``correlation`` mode: one compiled version for every
    level). No parameters: nothing in the state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = correlation

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.kernel(first, second)
