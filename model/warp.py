"""Backward warping with the conventions the official weights were trained with.

The official code ran on PyTorch 0.4.1, whose ``grid_sample`` behaves as ``align_corners=True``: pixel
centre x maps to ``2x / (W - 1) - 1``. Both warps below state ``align_corners=True`` explicitly; without
it, modern PyTorch shifts every sample by half a pixel and the checkpoints degrade.

Both warps sample in fp32 whatever the autocast dtype: a sampling position is a pixel index plus a flow,
and bf16 (8 significant bits) spaces representable positions 8 px apart beyond x = 1024 (fp16: 0.5 px
beyond 1024), which would move every sample of a 720p frame by up to several pixels. The image and the
flow keep their dtypes outside; the result comes back in the image's dtype.
"""
import contextlib

import torch
import torch.nn.functional as F


def _sample(image: torch.Tensor, grid: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """Bilinear ``grid_sample`` (align_corners=True) in fp32, autocast off; result in ``image``'s dtype."""
    device = image.device.type  # the meta device (FLOP counting) has no autocast to turn off
    off = torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else None
    with off or contextlib.nullcontext():
        sampled = F.grid_sample(image.float(), grid.float(), mode="bilinear", padding_mode=padding_mode,
                                align_corners=True)
    return sampled.to(image.dtype)


def _normalised(positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H', W', 2) fp32 pixel positions (x, y) in an H x W image -> grid_sample's [-1, 1] coordinates."""
    x = 2.0 * positions[..., 0] / max(width - 1, 1) - 1.0  # (B, H', W')
    y = 2.0 * positions[..., 1] / max(height - 1, 1) - 1.0
    return torch.stack((x, y), dim=-1)


def _pixel_grid(flow: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) flow in pixels -> (B, H, W, 2) fp32 sampling positions normalised to [-1, 1]."""
    _, _, height, width = flow.shape
    flow = flow.float()
    ys, xs = torch.meshgrid(
        torch.arange(height, device=flow.device, dtype=torch.float32),
        torch.arange(width, device=flow.device, dtype=torch.float32),
        indexing="ij",
    )
    return _normalised(torch.stack((xs + flow[:, 0], ys + flow[:, 1]), dim=-1), height, width)


def sample_at(image: torch.Tensor, positions: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear samples of ``image`` at arbitrary pixel positions, with the warps' conventions.

    Args:
        image: (B, C, H, W).
        positions: (B, H', W', 2) positions (x, y) in pixels of ``image`` (pixel centres at integers).
        padding_mode: ``border`` or ``zeros`` outside the image.

    Returns:
        (B, C, H', W') in ``image``'s dtype.
    """
    return _sample(image, _normalised(positions.float(), *image.shape[-2:]), padding_mode)


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``x + flow(x)``, zeroing pixels whose sample leaves the frame.

    The official ``Flow_PWC.warp``: bilinear, border padding for the image, and a validity mask from
    sampling ones with zero padding, thresholded (``< 0.999 -> 0``, else 1). The image is multiplied by
    the mask, so the border padding never shows. Sampling runs in fp32 (see the module docstring).

    Args:
        image: (B, C, H, W) frames to warp (the "second" frame of the flow).
        flow: (B, 2, H, W) backward flow in pixels, x then y: for each pixel of the reference frame, its
            position in ``image``.

    Returns:
        warped: (B, C, H, W) ``image`` aligned to the reference, 0 where invalid, in ``image``'s dtype.
        mask: (B, 1, H, W) in {0, 1}, 1 where the sample lies inside the frame.
    """
    grid = _pixel_grid(flow)
    warped = _sample(image, grid, "border")
    ones = image.new_ones(image.shape[0], 1, *image.shape[2:])
    coverage = _sample(ones.float(), grid, "zeros")
    mask = (coverage >= 0.999).to(image.dtype)
    return warped * mask, mask


def pwc_backward_warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The warp inside PWC-Net's decoders (sniklaus ``Backward``): zero padding, mask ``> 0.999``.

    Sampling runs in fp32 (see the module docstring).

    Args:
        features: (B, C, h, w) second-image features at one pyramid level.
        flow: (B, 2, h, w) upsampled flow in pixels of that level.

    Returns:
        (B, C, h, w) warped features in ``features``' dtype, 0 where the sample is not fully inside.
    """
    _, _, height, width = flow.shape
    flow = flow.float()
    xs = torch.linspace(-1.0, 1.0, width, device=flow.device, dtype=torch.float32).view(1, 1, width)
    ys = torch.linspace(-1.0, 1.0, height, device=flow.device, dtype=torch.float32).view(1, height, 1)
    grid = torch.stack(
        (xs + flow[:, 0] / ((width - 1.0) / 2.0), ys + flow[:, 1] / ((height - 1.0) / 2.0)), dim=-1
    )  # (B, h, w, 2)
    ones = features.new_ones(features.shape[0], 1, height, width)
    sampled = _sample(torch.cat((features, ones), dim=1), grid, "zeros")
    mask = (sampled[:, -1:] > 0.999).to(features.dtype)
    return sampled[:, :-1] * mask
