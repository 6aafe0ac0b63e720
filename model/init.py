"""Initialisations for training without downloaded weights: start from zero flow and from identity.

The paper starts PWC-Net from sniklaus's pretrained weights and the restoration net from scratch. Where
those weights cannot be had, a randomly initialised PWC-Net emits random flows that scramble both
neighbours, and an official (non-residual) restoration net starts far from the identity. These functions
set a model so that it starts exactly where a short training gains most:

* `zero_flow_`: PWC-Net emits exactly zero flow (every flow head and the refiner's last conv zeroed, the
  flow upsamplers set to bilinear 2x upsampling), while its feature pyramid and dense layers keep their
  random initialisation, so gradients reach them from the first update on;
* `identity_restoration_`: with ``ModelConfig(residual=True)``, the restoration net's last conv is zeroed,
  so the model returns the centre frame unchanged.
"""

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
