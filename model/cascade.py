"""CDVD-TSP: the cascade of flow, temporal sharpness prior and restoration (``cdvd_tsp.py``).

One PWC-Net and one restoration net serve every stage and position. A stage turns N frames into the
N - 2 restored frames of its inner positions: each inner frame is restored from itself, its two
neighbours warped onto it and their sharpness prior. T stages turn 2T + 1 frames into one.
"""
import torch
import torch.nn as nn

from .config import ModelConfig
from .pwc import PWCNet
from .ranges import timed
from .restoration import RestorationNet
from .tsp import temporal_sharpness
from .warp import warp

SIZE_MULTIPLE = 4  # two stride-2 levels in the restoration net


class CDVDTSP(nn.Module):
    """The cascaded deblurring model.

    Args:
        config: hyper-parameters; ``ModelConfig()`` is the published model (16,187,045 parameters).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.flow = PWCNet(antisymmetric=self.config.antisymmetric_flow)
        self.restore = RestorationNet(features=self.config.features, resblocks=self.config.resblocks,
                                      residual=self.config.residual)

    def pyramids(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) frames -> their PWC-Net feature pyramids, level l as (N, C_l, h_l, w_l); no levels
        at all when the flow net emits zero flow (`PWCNet.emits_zero_flow`), which needs none."""
        return [] if self.flow.emits_zero_flow() else self.flow.features(frames)

    @timed("warp + TSP")
    def align(
        self, centres: torch.Tensor, prev: torch.Tensor, next_: torch.Tensor,
        pyramids: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Warp both neighbours onto each centre and build the restoration input.

        The two flows of every centre go through PWC-Net as one batch.

        Args:
            centres, prev, next_: (B, 3, H, W) frames.
            pyramids: the (centre, prev, next) pyramids from `pyramids`, to reuse them; computed here
                when None (and unused when the flow net emits zero flow).

        Returns:
            (B, 10, H, W) ``[warped prev, centre, warped next, S]``.
        """
        batch = centres.shape[0]
        if self.flow.emits_zero_flow():  # exactly what PWC-Net would output, without computing it
            flows = centres.new_zeros((2 * batch, 2, *centres.shape[-2:]))
        else:
            if pyramids is None:
                both = self.flow.features(torch.cat((centres, prev, next_), dim=0))
                pyramids = tuple([p[i * batch:(i + 1) * batch] for p in both] for i in range(3))
            centre_pyr, prev_pyr, next_pyr = pyramids
            first = [torch.cat((c, c), dim=0) for c in centre_pyr]  # (2B, C_l, h_l, w_l)
            second = [torch.cat(pair, dim=0) for pair in zip(prev_pyr, next_pyr)]
            flows = self.flow.flow_from_features(first, second, centres.shape[-2:])  # (2B, 2, H, W)
        warped, masks = warp(torch.cat((prev, next_), dim=0), flows)  # (2B, 3, H, W), (2B, 1, H, W)
        warped_prev, warped_next = warped[:batch], warped[batch:]
        prior = temporal_sharpness(warped_prev, centres, warped_next, masks[:batch], masks[batch:])
        return torch.cat((warped_prev, centres, warped_next, prior), dim=1)

    def stage(self, frames: torch.Tensor, pyramids: list[torch.Tensor] | None = None) -> torch.Tensor:
        """One cascade stage.

        Args:
            frames: (B, N, 3, H, W), N >= 3.
            pyramids: the frames' `pyramids`, level l as (B, N, C_l, h_l, w_l), to reuse them (the
                streaming engine keeps them across chunks); computed here when None.

        Returns:
            (B, N - 2, 3, H, W): restored frames 1 .. N-2.
        """
        batch, count = frames.shape[:2]
        if count < 3:
            raise ValueError(f"a stage needs at least 3 frames, got {count}")
        if pyramids is None:
            pyramids = [p.unflatten(0, (batch, count)) for p in self.pyramids(frames.flatten(0, 1))]

        def at(offset: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
            """Frames and pyramids of positions offset .. offset+N-3, flattened to (B*(N-2), ...)."""
            window = slice(offset, offset + count - 2)
            return frames[:, window].flatten(0, 1), [p[:, window].flatten(0, 1) for p in pyramids]

        (prev, prev_pyr), (centre, centre_pyr), (next_, next_pyr) = at(0), at(1), at(2)
        restored = self.restore(self.align(centre, prev, next_, (centre_pyr, prev_pyr, next_pyr)))
        return restored.unflatten(0, (batch, count - 2))  # (B, N-2, 3, H, W)

    def forward_stages(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """All stages' outputs, for training (the official loss supervises stage 1 and the last stage).

        Args:
            frames: (B, 2T+1, 3, H, W) in [0, 1], H and W multiples of 4.

        Returns:
            T tensors; stage t (1-based) is (B, 2(T-t)+1, 3, H, W). The last is (B, 1, 3, H, W).
        """
        self._check(frames)
        outputs = []
        for _ in range(self.config.stages):
            frames = self.stage(frames)
            outputs.append(frames)
        return outputs

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Restore the centre frame of each window: (B, 2T+1, 3, H, W) -> (B, 3, H, W)."""
        return self.forward_stages(frames)[-1][:, 0]

    def _check(self, frames: torch.Tensor) -> None:
        if frames.dim() != 5 or frames.shape[1] != self.config.window or frames.shape[2] != 3:
            raise ValueError(
                f"expected frames of shape (B, {self.config.window}, 3, H, W), got {tuple(frames.shape)}"
            )
        height, width = frames.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(
                f"frame size {height}x{width} is not a multiple of {SIZE_MULTIPLE}; pad it first "
                "(model.pad_to_multiple)"
            )
