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

CUDA graphs (``reduce-overhead`` and ``max-autotune``) return their outputs in the graphs' memory pool,
which the next graphed call may overwrite, while the engine keeps outputs across calls (each frame's
pyramid, each restored position). In those modes every piece's outputs are therefore cloned as they come
out, so that the engine owns what it keeps. (``torch.compiler.cudagraph_mark_step_begin`` would not do:
it declares every earlier output dead.)
"""
from collections.abc import Callable

import torch
from torch.utils._pytree import tree_map_only

from model import CDVDTSP
from model.correlation import correlation

COMPILE_MODES = ("off", "correlation", "default", "max-autotune", "reduce-overhead")
GRAPHED = ("max-autotune", "reduce-overhead")  # the modes whose compiled code replays CUDA graphs


def compile_model(model: CDVDTSP, mode: str, backend: str = "inductor") -> CDVDTSP:
    """Compile ``model``'s per-call pieces in place with ``mode`` (one of `COMPILE_MODES`; "off": nothing) and
    ``backend`` (tests trace with "eager", which skips code generation, or a stand-in for CUDA graphs);
    returns it. Each piece's ``forward`` is replaced, so state-dict keys are unchanged; the mode is kept as
    ``model.compile_mode``, and compiling again in that mode does nothing.

    Raises:
        ValueError: an unknown mode, or a model already compiled in another mode.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}")
    compiled = getattr(model, "compile_mode", "off")
    if compiled != "off" and compiled != mode:
        raise ValueError(f"the model is already compiled with mode {compiled!r}, not {mode!r}")
    if mode == "off" or compiled == mode:
        return model
    model.compile_mode = mode
    if mode == "correlation":
        fused = torch.compile(correlation, dynamic=True, backend=backend)
        for decoder in model.flow.decoders:
            decoder.cost_volume.kernel = fused
        return model
    pieces = [model.flow.pyramid, *model.flow.decoders, model.flow.refiner, model.restore]
    for piece in pieces:
        compiled = torch.compile(piece.forward, mode=mode if backend == "inductor" else None, dynamic=False,
                                 backend=backend)
        piece.forward = owned(compiled) if mode in GRAPHED else compiled
    return model


def owned(compiled: Callable) -> Callable:
    """``compiled`` with every tensor it returns cloned: the caller owns its outputs, not a CUDA graph."""
    def call(*args, **kwargs):
        return tree_map_only(torch.Tensor, torch.clone, compiled(*args, **kwargs))
    return call
