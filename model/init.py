"""Initialisations for training without downloaded weights: start from zero flow and from identity.

The paper starts PWC-Net from sniklaus's pretrained weights and the restoration net from scratch. Where
those weights cannot be had, a randomly initialised PWC-Net emits random flows that scramble both
neighbours, and an official (non-residual) restoration net starts far from the identity. These functions
set a model so that it starts exactly where a short training gains most:

* `zero_flow_`: PWC-Net emits exactly zero flow (every flow head and the refiner's last conv zeroed, the
  flow upsamplers set to bilinear 2x upsampling), while its feature pyramid and dense layers keep their
  random initialisation, so gradients reach them from the first update on;
* `identity_restoration_`: with ``ModelConfig(residual=True)``, the restoration net's last conv is zeroed,
  so the model returns the centre frame unchanged;
* `grow_restoration_`: a wider model starts as a trained narrower one, exactly (a checkpoint trained at
  ``features: 16`` goes on at the published 32 without losing what it learned).
"""
import dataclasses

import torch
import torch.nn as nn

from .cascade import CDVDTSP
from .pwc import PWCNet


def bilinear_upsampling_kernel(size: int = 4) -> torch.Tensor:
    """(size, size) kernel that makes a stride-2, padding-1 ``ConvTranspose2d`` a bilinear 2x upsampler."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float64) - centre).abs() / factor  # (size,)
    return (taps[:, None] * taps[None, :]).float()


@torch.no_grad()
def zero_flow_(flow: PWCNet) -> PWCNet:
    """Make ``flow`` output exactly zero flow for any input, in place; returns it."""
    for decoder in flow.decoders:
        nn.init.zeros_(decoder.predict.weight)
        nn.init.zeros_(decoder.predict.bias)
        if hasattr(decoder, "upflow"):  # levels 5..2: coarse flow upsampled bilinearly, per component
            weight = decoder.upflow.weight  # (2, 2, 4, 4)
            weight.zero_()
            for channel in range(weight.shape[0]):
                weight[channel, channel] = bilinear_upsampling_kernel(weight.shape[-1])
            nn.init.zeros_(decoder.upflow.bias)
    last = flow.refiner[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return flow


@torch.no_grad()
def identity_restoration_(model: CDVDTSP) -> CDVDTSP:
    """Zero the restoration net's last conv so that a residual model returns its centre frame; in place."""
    if not model.config.residual:
        raise ValueError(
            "identity_restoration_ needs ModelConfig(residual=True): without the global residual "
            "a zeroed last conv makes the model output black frames"
        )
    last = model.restore.out_block[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return model


@torch.no_grad()
def grow_restoration_(wide: CDVDTSP, narrow: CDVDTSP) -> CDVDTSP:
    """Make ``wide`` compute what ``narrow`` computes, in place; returns ``wide``.

    The two may differ only in ``features``. Every conv of the narrow net becomes the leading block of the
    wide one's: its outputs (channels ``:c_out``) read the old weights from the old inputs (``:c_in``) and
    zero from the new ones, so the old channels are the narrow net's activations whatever the new channels
    hold. The new channels keep ``wide``'s random initialisation of their own filters, and gradients reach
    the zeroed weights from the first step (the new channels' activations times the old channels'
    gradients), so training puts the added width to use from there. Skips are additive and every width is
    a multiple of ``features``, so channel ``c`` of any layer is channel ``c`` of the same layer in both
    nets. PWC-Net is copied as it is.
    """
    if dataclasses.replace(narrow.config, features=wide.config.features) != wide.config or (
        narrow.config.features > wide.config.features
    ):
        raise ValueError(
            f"cannot grow a restoration net with {narrow.config} into one with {wide.config}: "
            "they may differ only in features, and only upwards"
        )
    wide.flow.load_state_dict(narrow.flow.state_dict())
    old_layers = dict(narrow.restore.named_modules())
    for name, layer in wide.restore.named_modules():
        if not isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            continue
        old = old_layers[name]
        # Conv2d weights are (c_out, c_in, k, k), ConvTranspose2d weights (c_in, c_out, k, k)
        out_dim, in_dim = (1, 0) if isinstance(layer, nn.ConvTranspose2d) else (0, 1)
        old_outputs = layer.weight.narrow(out_dim, 0, old.weight.shape[out_dim])
        old_outputs.zero_()
        old_outputs.narrow(in_dim, 0, old.weight.shape[in_dim]).copy_(old.weight)
        layer.bias[: old.bias.shape[0]].copy_(old.bias)
    return wide
