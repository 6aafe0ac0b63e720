"""PWC-Net optical flow (Sun et al. 2018), the sniklaus port that CDVD-TSP fine-tunes.

Same layers, order and arithmetic as the official ``flow_pwc.py``; names are ours and a checked key map
(`checkpoint.py`) translates the official ``moduleExtractor.moduleOne.0.weight``-style keys.

The forward pass is split so that a caller can reuse work: :meth:`PWCNet.features` resizes a frame to
multiples of 64 and builds its feature pyramid (once per frame), :meth:`PWCNet.flow_from_features`
decodes a flow for a pair of pyramids. ``PWCNet(first, second)`` does both. A net whose flow heads are
all zero (`init.zero_flow_`, and the default checkpoint) outputs exactly zero flow for any finite input;
:meth:`PWCNet.emits_zero_flow` tells callers so, and they skip it.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .correlation import CostVolume
from .ranges import timed
from .warp import pwc_backward_warp

PYRAMID_CHANNELS = (16, 32, 64, 96, 128, 196)
DENSE_CHANNELS = (128, 128, 96, 64, 32)
COST_CHANNELS = 81  # (2 * 4 + 1) ** 2 displacements
FLOW_SCALE = 20.0  # the network predicts flow / 20


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=0.1)


class FeaturePyramid(nn.Module):
    """Six levels of (stride-2 conv, conv, conv), each conv followed by LeakyReLU(0.1)."""

    def __init__(self) -> None:
        super().__init__()
        inputs = (3,) + PYRAMID_CHANNELS[:-1]
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _lrelu(),
                nn.Conv2d(c_out, c_out, 3, padding=1), _lrelu(),
                nn.Conv2d(c_out, c_out, 3, padding=1), _lrelu(),
            )
            for c_in, c_out in zip(inputs, PYRAMID_CHANNELS)
        )

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> six maps, finest first: (B, 16, H/2, W/2) ... (B, 196, H/64, W/64)."""
        pyramid = []
        for level in self.levels:
            image = level(image)
            pyramid.append(image)
        return pyramid


class FlowDecoder(nn.Module):
    """Flow estimation at one pyramid level: cost volume, DenseNet-style conv stack, flow head.

    Args:
        level: pyramid level, 6 (coarsest, 1/64) to 2 (1/4).
    """

    def __init__(self, *, level: int) -> None:
        super().__init__()
        self.level = level
        in_channels = COST_CHANNELS if level == 6 else COST_CHANNELS + PYRAMID_CHANNELS[level - 1] + 4
        if level < 6:
            coarser = COST_CHANNELS if level == 5 else COST_CHANNELS + PYRAMID_CHANNELS[level] + 4
            self.upflow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
            self.upfeat = nn.ConvTranspose2d(coarser + sum(DENSE_CHANNELS), 2, 4, stride=2, padding=1)
            self.warp_scale = FLOW_SCALE / 2 ** level  # flow/20 at 1/2**level scale -> pixels of this level
        dense = []
        for c_out in DENSE_CHANNELS:
            dense.append(nn.Sequential(nn.Conv2d(in_channels, c_out, 3, padding=1), _lrelu()))
            in_channels += c_out
        self.dense = nn.ModuleList(dense)
        self.predict = nn.Conv2d(in_channels, 2, 3, padding=1)
        self.cost_volume = CostVolume()

    def forward(
        self, first: torch.Tensor, second: torch.Tensor, coarser: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One level.

        Args:
            first, second: (B, C_l, h, w) pyramid features of both images at this level.
            coarser: (flow (B, 2, h/2, w/2), features (B, C', h/2, w/2)) of the coarser level, or None at 6.

        Returns:
            flow: (B, 2, h, w) the network's flow at this level: pixels of this level = flow * 20 / 2**level.
            features: (B, C'', h, w) the concatenated dense features, for the next level and the refiner.
        """
        if coarser is None:
            features = F.leaky_relu(self.cost_volume(first, second), 0.1)
        else:
            flow = self.upflow(coarser[0])
            upfeat = self.upfeat(coarser[1])
            warped = pwc_backward_warp(second, flow * self.warp_scale)
            volume = F.leaky_relu(self.cost_volume(first, warped), 0.1)
            features = torch.cat((volume, first, flow, upfeat), dim=1)
        for layer in self.dense:
            features = torch.cat((layer(features), features), dim=1)
        return self.predict(features), features


class ContextNetwork(nn.Sequential):
    """Dilated convs (1, 2, 4, 8, 16, 1, 1) that refine the level-2 flow."""

    def __init__(self, in_channels: int) -> None:
        channels = (in_channels, 128, 128, 128, 96, 64, 32)
        layers = []
        for c_in, c_out, dilation in zip(channels, channels[1:], (1, 2, 4, 8, 16, 1)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation), _lrelu()]
        layers.append(nn.Conv2d(32, 2, 3, padding=1))
        super().__init__(*layers)


class PWCNet(nn.Module):
    """PWC-Net with CDVD-TSP's pre/post-processing (``Flow_PWC.estimate_flow``).

    Frames are RGB in [0, 1] (CDVD-TSP feeds RGB although sniklaus trained on BGR; the fine-tuned
    weights expect RGB). They are bilinearly *resized* (not padded) to multiples of 64; the output is
    scaled by 20, resized back and rescaled per axis.

    Args:
        antisymmetric: return (F(a, b) - F(b, a)) / 2 for the flow from a to b (`ModelConfig`'s
            ``antisymmetric_flow``); False: F(a, b), as published.
    """

    def __init__(self, *, antisymmetric: bool = False) -> None:
        super().__init__()
        self.antisymmetric = antisymmetric
        self.pyramid = FeaturePyramid()
        self.decoders = nn.ModuleList(FlowDecoder(level=level) for level in (6, 5, 4, 3, 2))
        self.refiner = ContextNetwork(COST_CHANNELS + PYRAMID_CHANNELS[1] + 4 + sum(DENSE_CHANNELS))
        self._zero_checked: tuple = ()  # (data pointer, version) of every flow head's weights when checked
        self._zero = False

    def emits_zero_flow(self) -> bool:
        """Whether the flow is exactly zero whatever the (finite) frames, so that computing it can be skipped.

        Every level's flow is its head's output alone (the coarser flow enters a level only as an input of
        its dense layers), and the refined flow adds the refiner's last conv; so when those heads and that
        conv are all zeros, the output is 0 exactly. False while the net would be trained (grad enabled
        and a parameter requiring it: the heads need their gradients) and for meta tensors (no values).
        The weights are looked at again only after they change (their data pointers and version
        counters), so this syncs a device once per change of weights, not per call.
        """
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return False
        convs = [decoder.predict for decoder in self.decoders] + [self.refiner[-1]]
        heads = [p for conv in convs for p in conv.parameters()]
        if heads[0].is_meta:
            return False
        key = tuple((p.data_ptr(), p._version) for p in heads)
        if key != self._zero_checked:
            self._zero_checked, self._zero = key, not any(bool(p.any()) for p in heads)
        return self._zero

    @timed("flow")
    def features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) frames -> the pyramid of the frames resized to multiples of 64 (`FeaturePyramid`)."""
        height, width = frames.shape[-2:]
        size = (math.ceil(height / 64) * 64, math.ceil(width / 64) * 64)
        resized = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
        return self.pyramid(resized)

    def pair_features(
        self, first: torch.Tensor, second: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(B, 3, H, W) x2 -> both frames' pyramids (:meth:`features`), computed in one pass."""
        both = self.features(torch.cat((first, second), dim=0))
        batch = first.shape[0]
        return [f[:batch] for f in both], [f[batch:] for f in both]

    def decode(self, first: list[torch.Tensor], second: list[torch.Tensor]) -> list[torch.Tensor]:
        """The flow estimate of every level, coarsest first, in the network's units (for training).

        Args:
            first, second: pyramids from :meth:`features` (same batch size).

        Returns:
            five (B, 2, h_l, w_l) flows for levels 6 .. 2 (1/64 .. 1/4 of the resized frames); the last is
            refined by the context network. ``20 * flow`` is in pixels of the resized frames.
        """
        estimate, flows = None, []
        for decoder, f1, f2 in zip(self.decoders, first[:0:-1], second[:0:-1]):  # levels 6..2
            estimate = decoder(f1, f2, estimate)
            flows.append(estimate[0])
        flow, features = estimate
        flows[-1] = flow + self.refiner(features)  # (B, 2, H'/4, W'/4)
        return flows

    @timed("flow")
    def flow_from_features(
        self, first: list[torch.Tensor], second: list[torch.Tensor], size: tuple[int, int]
    ) -> torch.Tensor:
        """Flow from ``first``'s frame to ``second``'s frame.

        Args:
            first, second: pyramids from :meth:`features` (same batch size).
            size: (H, W) of the original frames.

        Returns:
            (B, 2, H, W) backward flow in pixels (x then y): pixel p of the first frame is at p + flow in
            the second.
        """
        if self.antisymmetric:  # both directions as one batch of 2B
            ab = [torch.cat(pair) for pair in zip(first, second)]
            ba = [torch.cat(pair) for pair in zip(second, first)]
            forward, backward = self.decode(ab, ba)[-1].chunk(2)
            flow = (forward - backward) / 2  # (B, 2, H'/4, W'/4)
        else:
            flow = self.decode(first, second)[-1]  # (B, 2, H'/4, W'/4)
        height, width = size
        net_height, net_width = first[0].shape[-2] * 2, first[0].shape[-1] * 2
        flow = FLOW_SCALE * F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
        scale = flow.new_empty(1, 2, 1, 1)  # filled on the device: a list would be copied from the host
        scale[:, 0], scale[:, 1] = width / net_width, height / net_height
        return flow * scale

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) x2 -> (B, 2, H, W) flow from ``first`` to ``second`` in pixels."""
        return self.flow_from_features(*self.pair_features(first, second), first.shape[-2:])
