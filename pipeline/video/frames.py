"""The one place where frame layouts convert between decoders/encoders and the model.

Decoders and encoders use (F, H, W, 3) uint8 RGB (DALI's FHWC); the model uses (F, 3, H, W) float in [0, 1].
"""

import torch


def to_model(frames: torch.Tensor) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, H, W) float32 in [0, 1], contiguous, on the same device."""
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (F, H, W, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
    return frames.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format).div_(255)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(F, 3, H, W) float in [0, 1] -> (F, H, W, 3) uint8, contiguous, on the same device.

    Quantised as the official inference does: ``clamp(x * 255, 0, 255).round()``.
    """
    if not frames.is_floating_point() or frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected (F, 3, H, W) float frames, got {tuple(frames.shape)} {frames.dtype}")
    return frames.mul(255).clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
