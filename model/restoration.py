"""The restoration encoder-decoder of the official ``recons_video.py`` (SRN-style, no ConvLSTM).

Input: 10 channels ``[warped prev, centre, warped next, S]``; output: the restored centre frame itself
(no residual, no clamp), or with ``residual=True`` (a project option, not the official model) the centre
frame plus the net's output. Three scales with ``features``, 2x and 4x channels, ``resblocks`` residual
blocks per scale, 5x5 kernels; skips are additive. Default config: 6,812,771 parameters.
"""
import torch
import torch.nn as nn

from .ranges import timed


class ResBlock(nn.Module):
    """conv -> ReLU -> conv, plus identity (no activation after the sum)."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def _stage(head: nn.Module, channels: int, blocks: int, kernel_size: int, head_first: bool) -> nn.Sequential:
    body = [ResBlock(channels, kernel_size) for _ in range(blocks)]
    return nn.Sequential(head, *body) if head_first else nn.Sequential(*body, head)


class RestorationNet(nn.Module):
    """Encoder-decoder restoring one frame from its aligned neighbours and sharpness prior.

    Args:
        in_channels: 3 * 3 frames + 1 prior = 10.
        out_channels: 3.
        features: channels at full resolution (32); 2x and 4x at 1/2 and 1/4.
        resblocks: residual blocks per scale (3).
        kernel_size: 5.
        residual: add the input's centre frame (channels 3..5) to the output.
    """

    def __init__(
        self, *, in_channels: int = 10, out_channels: int = 3, features: int = 32, resblocks: int = 3,
        kernel_size: int = 5, residual: bool = False,
    ) -> None:
        super().__init__()
        self.residual = residual
        k, pad = kernel_size, kernel_size // 2
        f1, f2, f4 = features, 2 * features, 4 * features

        def down(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad), nn.ReLU())

        def up(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1), nn.ReLU()
            )

        self.in_block = _stage(down(in_channels, f1, 1), f1, resblocks, k, head_first=True)
        self.encoder1 = _stage(down(f1, f2, 2), f2, resblocks, k, head_first=True)
        self.encoder2 = _stage(down(f2, f4, 2), f4, resblocks, k, head_first=True)
        self.decoder2 = _stage(up(f4, f2), f4, resblocks, k, head_first=False)
        self.decoder1 = _stage(up(f2, f1), f2, resblocks, k, head_first=False)
        self.out_block = _stage(nn.Conv2d(f1, out_channels, k, padding=pad), f1, resblocks, k,
                                head_first=False)

    @timed("restoration")
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 10, H, W) with H, W multiples of 4 -> (B, 3, H, W)."""
        full = self.in_block(x)  # (B, f, H, W)
        half = self.encoder1(full)  # (B, 2f, H/2, W/2)
        quarter = self.encoder2(half)  # (B, 4f, H/4, W/4)
        up_half = self.decoder2(quarter)  # (B, 2f, H/2, W/2)
        up_full = self.decoder1(up_half + half)  # (B, f, H, W)
        out = self.out_block(up_full + full)  # (B, 3, H, W)
        return out + x[:, 3:6] if self.residual else out
