"""Optional channels-last layout of the model's weights (``deblur.memory_format``).

With its 4-d weights in channels-last (NHWC) order, every convolution of the model takes and gives
channels-last activations (PyTorch follows the weight's layout), which is what GPU tensor-core kernels read
best; warps, correlation and the sharpness prior work on either layout. The arithmetic is the same, the
kernels differ, so outputs may differ by rounding (tests hold them within 1e-5): it is in the segments'
fingerprint, like the compile mode. The GPU check measures what it buys
(`pipeline.measure.gpu_steps.channels_last`).
"""
import torch

from model import CDVDTSP

MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def with_memory_format(model: CDVDTSP, name: str) -> CDVDTSP:
    """``model`` with its weights in the layout ``name`` (a key of `MEMORY_FORMATS`), in place; returns it."""
    if name not in MEMORY_FORMATS:
        raise ValueError(f"memory format must be one of {tuple(MEMORY_FORMATS)}, got {name!r}")
    return model.to(memory_format=MEMORY_FORMATS[name])
