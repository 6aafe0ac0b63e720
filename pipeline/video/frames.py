"""The one place where frame layouts convert between decoders/encoders and the model.

Decoders and encoders use (F, H, W, 3) RGB levels (DALI's FHWC): uint8 for 8-bit video, uint16 (0..65535,
FFmpeg's rgb48) for deeper video and 10-bit outputs. The model uses (F, 3, H, W) float in [0, 1]. `take`
picks frames by indices the host knows without a host-device sync.
"""

import torch

PEAKS = {torch.uint8: 255, torch.uint16: 65535}  # the level of full scale, per pixel type


def pixel_type(bits: int) -> torch.dtype:
    """The pixel type that holds ``bits``-bit levels: uint8 up to 8 bits, uint16 above."""
    return torch.uint8 if bits <= 8 else torch.uint16


def to_model(frames: torch.Tensor) -> torch.Tensor:
    """(F, H, W, 3) uint8 or uint16 -> (F, 3, H, W) float32 in [0, 1], contiguous, on the same device."""
    if frames.dtype not in PEAKS or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (F, H, W, 3) uint8 or uint16 frames, got {tuple(frames.shape)} "
                         f"{frames.dtype}")
    scale = PEAKS[frames.dtype]
    return frames.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format).div_(scale)


def to_pixels(frames: torch.Tensor, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """(F, 3, H, W) float in [0, 1] -> (F, H, W, 3) ``dtype`` levels (uint8 or uint16), contiguous, on the
    same device.

    Quantised as the official inference does for uint8: ``clamp(x * 255, 0, 255).round()``; uint16 the
    same with 65535.
    """
    if not frames.is_floating_point() or frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected (F, 3, H, W) float frames, got {tuple(frames.shape)} {frames.dtype}")
    peak = PEAKS[dtype]
    return frames.mul(peak).clamp_(0, peak).round_().to(dtype).permute(0, 2, 3, 1).contiguous()


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """`to_pixels` as uint8: what 8-bit outputs, metrics and previews take."""
    return to_pixels(frames, torch.uint8)


def take(frames: torch.Tensor, indices: list[int]) -> torch.Tensor:
    """(F, ...) frames -> (len(indices), ...) the frames at ``indices``, a new tensor.

    Indices known on the host are taken as views and stacked: indexing a device tensor with a Python list
    (or a host index tensor) would copy the index to the device first, which blocks the host until the
    device has caught up.
    """
    return torch.stack([frames[i] for i in indices])
