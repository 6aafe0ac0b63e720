"""Optional ``torch.compile`` of what the engine calls once per group of positions (``deblur.compile``).

The engine's calls have a few shapes per video (a group of ``deblur.group`` positions, and the groups
cut by the video's ends), so each piece is compiled for static shapes, once per shape: PWC-Net's
pyramid, each level's decoder and the refiner, and the restoration net. ``reduce-overhead`` also
captures them as CUDA graphs (on a GPU; a CPU
runs them as plain compiled code). ``correlation`` compiles only PWC-Net's cost volume, once, with dynamic
shapes, for every level and frame size: the correlation as one generated kernel instead of 81
multiply-mean pairs, and the cheapest mode to compile (it speeds up the flow net only, which a zero-flow
checkpoint does not run). Compiled kernels fuse and reorder arithmetic, so outputs may differ from eager
ones by rounding (tests hold them within 1e-5); every part of a video is made in one mode (it is in the
segments' fingerprint), so time shards and resumed runs still join exactly.
"""
import torch

from model import CDVDTSP
from model.correlation import correlation

MODES = ("off", "correlation", "default", "max-autotune", "reduce-overhead")


def compile_model(model: CDVDTSP, mode: str, backend: str = "inductor") -> CDVDTSP:
    """Compile ``model``'s per-call pieces in place with ``mode`` (one of `MODES`; "off": nothing) and
    ``backend`` (tests trace with "eager", which skips code generation); returns it. State-dict keys are
    unchanged (``nn.Module.compile``)."""
    if mode not in MODES:
        raise ValueError(f"compile mode must be one of {MODES}, got {mode!r}")
    if mode == "off":
        return model
    if mode == "correlation":
        fused = torch.compile(correlation, dynamic=True, backend=backend)
        for decoder in model.flow.decoders:
            decoder.cost_volume.kernel = fused
        return model
    pieces = [model.flow.pyramid, *model.flow.decoders, model.flow.refiner, model.restore]
    for piece in pieces:
        piece.compile(mode=None if backend == "eager" else mode, dynamic=False, backend=backend)
    return model
