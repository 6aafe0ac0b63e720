"""Temporal sharpness prior, as the official code implements it (``CDVD_TSP.get_masks``).

This is not the paper's Eq. 10-11: the official code box-filters each RGB channel (5x5 mean, zero
padding), sums the squared differences of the filtered neighbours to the filtered centre over both
neighbours and all channels, halves, takes a square root, and ``exp(-.)``; pixels where either warp
sampled outside the frame get 0. The released checkpoints expect exactly this.
"""
import torch
import torch.nn.functional as F


def box_filter(images: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Per-channel ``size`` x ``size`` mean filter with zero padding: (B, C, H, W) -> (B, C, H, W)."""
    channels = images.shape[1]
    kernel = images.new_full((channels, 1, size, size), 1.0 / (size * size))
    return F.conv2d(images, kernel, padding=size // 2, groups=channels)


def temporal_sharpness(
    prev: torch.Tensor,
    centre: torch.Tensor,
    next_: torch.Tensor,
    prev_mask: torch.Tensor,
    next_mask: torch.Tensor,
) -> torch.Tensor:
    """Sharpness map S of the centre frame given its two warped neighbours.

    Args:
        prev, next_: (B, 3, H, W) neighbours warped onto the centre (already multiplied by their masks).
        centre: (B, 3, H, W) the centre frame.
        prev_mask, next_mask: (B, 1, H, W) warp validity in {0, 1}.

    Returns:
        (B, 1, H, W) S in [0, 1], detached: 1 where the neighbours agree with the centre, 0 where invalid.
    """
    prev, centre, next_ = (box_filter(x.detach()) for x in (prev, centre, next_))
    squared = ((prev - centre) ** 2 + (next_ - centre) ** 2) / 2.0  # (B, 3, H, W); delta = 1
    distance = torch.sqrt(squared.sum(dim=1, keepdim=True))  # (B, 1, H, W)
    valid = (prev_mask * next_mask).detach()
    return torch.exp(-distance) * valid
