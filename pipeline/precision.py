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
    # The legacy switches, which PyTorch (2.9 to 2.13 at least) mirrors into the new per-backend
    # ``fp32_precision`` ones; setting the new ones instead leaves the legacy ones unreadable ("a mix of
    # the legacy and new APIs"), and Inductor and the profiler still read them.
    cuda = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = [switch.allow_tf32 for switch in cuda]
    for switch in cuda:
        switch.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        for switch, value in zip(cuda, saved):
            switch.allow_tf32 = value
