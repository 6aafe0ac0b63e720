"""Counted arithmetic: multiply-accumulates per output frame, and the peaks to hold achieved FLOP/s against.

MACs are counted by ``torch.utils.flop_counter`` on the meta device (nothing runs). Two schedules: the
official one (every output frame runs its whole 2T+1-frame cascade: 8 PWC-Net and 4 restoration calls at
T=2) and the cached streaming engine's steady state (each frame's stage results and pyramids computed
once: the marginal cost of one more position per stage, times T). The published tables count with thop's
convention (bias included, transposed convs over output pixels); that count is given too.
"""
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from model import CDVDTSP
from pipeline.precision import AUTOCAST_DTYPES, precision_context

# Dense datasheet peaks in TFLOP/s (no sparsity): fp32 on CUDA cores, bf16/fp16 on tensor cores.
DATASHEET_TFLOPS = {
    "H100 80GB HBM3": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM5
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.0, "fp16": 835.0},
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
}


def _macs(fn, *args) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops() / 2  # the counter reports FLOPs = 2 x MACs


def _thop_style(model: torch.nn.Module, fn, *args) -> float:
    """Every conv, transposed ones included, counted as output elements x (C_in/groups x k x k + 1 for the
    bias): the convention of the published tables (thop)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += output.numel() * (module.in_channels // module.groups * module.kernel_size[0]
                                   * module.kernel_size[1] + (module.bias is not None))

    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    handles = [m.register_forward_hook(hook) for m in convs]
    try:
        with torch.no_grad():
            fn(*args)
    finally:
        for handle in handles:
            handle.remove()
    return total


def meta_copy(model: CDVDTSP) -> CDVDTSP:
    """The model's structure on the meta device, to count what it runs without running it. Of the
    weights, only whether the flow net emits zero flow matters (PWC-Net is then skipped, and not
    counted); meta tensors have no values to tell it, so the copy is told."""
    meta = CDVDTSP(model.config).to("meta")
    with torch.no_grad():
        if model.flow.emits_zero_flow():
            meta.flow.emits_zero_flow = lambda: True
    return meta


def count_macs(model: CDVDTSP, height: int, width: int) -> dict[str, float]:
    """MACs per output frame at (height, width), multiples of 4: ``official`` and ``cached`` schedules
    (torch.utils.flop_counter) and ``thop`` (the official schedule, thop's convention).

    The model's `meta_copy` is counted.
    """
    meta = meta_copy(model)

    def frames(n):
        return torch.empty(1, n, 3, height, width, device="meta")

    official = _macs(meta, frames(meta.config.window))
    marginal = _macs(meta.stage, frames(4)) - _macs(meta.stage, frames(3))  # one more restored position
    return {"official": official, "cached": marginal * meta.config.stages,
            "thop": _thop_style(meta, meta, frames(meta.config.window))}


def datasheet_tflops(device: torch.device, precision: str) -> float | None:
    """The dense datasheet peak of the GPU in ``device`` for ``precision``; None for CPUs and unknown GPUs."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks[precision] for key, peaks in DATASHEET_TFLOPS.items() if key in name), None)


def measured_matmul_tflops(device: torch.device, precision: str, *, size: int | None = None, windows: int = 5,
                           seconds: float = 0.2) -> float:
    """The FLOP/s square matmuls reach on ``device`` in ``precision``: the practical peak, the best of
    ``windows`` timing windows of about ``seconds`` each (so that a moment of background load does not
    lower it). ``size`` defaults to 8192 on CUDA (smaller products leave tensor cores idle between
    kernels) and 2048 on a CPU.

    A window runs its products back to back and waits for the device once, at its end; on CUDA it is
    timed by CUDA events. (A wait per product adds a launch gap to each: on an H100 a 2048**3 bf16 product
    takes about as long as that gap.)
    """
    size = size or (8192 if device.type == "cuda" else 2048)
    dtype = AUTOCAST_DTYPES.get(precision, torch.float32)  # tf32: fp32 storage, TF32 maths (`precision`)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty_like(a)
    flops = 2 * size**3

    def product() -> None:
        torch.mm(a, b, out=out)

    with precision_context(device, precision):
        warm_up = _window_seconds(product, 1, device)  # kernel choice, thread pool
        if warm_up > seconds:  # a slow path (fp16 on most CPUs): one product is measure enough
            return flops / warm_up / 1e12
        reps = max(1, round(seconds / _window_seconds(product, 1, device)))
        return max(flops * reps / _window_seconds(product, reps, device) / 1e12 for _ in range(windows))


def _window_seconds(fn, reps: int, device: torch.device) -> float:
    """Seconds ``reps`` calls of ``fn`` take back to back, waiting for ``device`` once at the end."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000
    began = time.perf_counter()
    for _ in range(reps):
        fn()
    return time.perf_counter() - began
