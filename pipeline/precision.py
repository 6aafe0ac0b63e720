"""The precision vocabulary, defined once: what each name means when the model runs.

* ``fp32``: exact IEEE fp32. On CUDA this turns TF32 off for cuDNN convolutions and for matmuls (PyTorch's
  default lets convolutions use TF32, which rounds their inputs to 10 mantissa bits);
* ``tf32``: fp32 storage with TF32 tensor-core maths on CUDA (on a CPU it is fp32);
* ``bf16``, ``fp16``: autocast to that type (fp16 needs a GPU to be fast; bf16 also runs on CPUs with
  AVX512-BF16).
"""

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
TRAIN_PRECISIONS = ("fp32", "bf16")  # what training supports (no loss scaling for fp16)
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def precision_context(device: torch.device | str, precision: str) -> Iterator[None]:
    """Run the block in ``precision`` on ``device``; TF32 settings are restored afterwards."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if precision in AUTOCAST_DTYPES:
        with torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision]):
            yield
        return
    if device.type != "cuda":
        yield
        return
    switches = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)  # PyTorch >= 2.9's fp32 switches
    saved = [switch.fp32_precision for switch in switches]
    for switch in switches:
        switch.fp32_precision = "tf32" if precision == "tf32" else "ieee"
    try:
        yield
    finally:
        for switch, value in zip(switches, saved):
            switch.fp32_precision = value
