"""Pad frames to the size the nets need and crop results back, so output size equals input size.

The official inference crops frames to multiples of 4 and loses up to 3 rows and columns; we pad with
replicated edges instead and crop the restored frame back to the input size.
"""
import torch
import torch.nn.functional as F


def pad_to_multiple(frames: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    """Replicate-pad the bottom and right of (..., C, H, W) frames up to multiples of ``multiple``."""
    height, width = frames.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return frames
    shape = frames.shape
    flat = frames.reshape(-1, *shape[-3:])  # (N, C, H, W): replicate padding wants 4-D
    padded = F.pad(flat, (0, pad_w, 0, pad_h), mode="replicate")
    return padded.reshape(*shape[:-2], height + pad_h, width + pad_w)


def crop_to(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left (H, W) of (..., C, H', W') frames."""
    return frames[..., : size[0], : size[1]]
