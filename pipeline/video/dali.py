"""Whether DALI can be used here, what DALI 2.4 can decode where, and how a compute device is named to it:
every DALI fact, once.

The readers (`pipeline.video.readers`), the training loader (`pipeline.data.dali_loader`) and the
measurements decide with these. Only `unavailable` imports DALI (once per process, when first asked), so
the codec rules cost nothing where DALI is not installed.
"""

import functools
import importlib
import logging

import torch

from pipeline.video.probe import VideoInfo

CPU_CODECS = ("mjpeg", "vp8", "vp9")  # the only decoders in DALI 2.4's bundled FFmpeg
GPU_CODECS = ("h264", "hevc", "mpeg4", "vp8", "vp9")  # NVDEC on Hopper (no AV1 there)
NVDEC_PIX_FMTS = ("yuv420p", "yuvj420p")  # NVDEC on Hopper: no H.264 4:4:4 or High10; 8-bit 4:2:0 only here
PLUGIN = "nvidia.dali.plugin.pytorch"  # what the readers and the loader import: DALI and its PyTorch bridge

log = logging.getLogger(__name__)


@functools.cache
def unavailable() -> str | None:
    """Why DALI cannot be used in this process (not installed, or it fails to import: a missing library,
    a plugin built for another PyTorch), as one line; None when it can. Imports DALI the first time."""
    try:
        importlib.import_module(PLUGIN)
    except (ImportError, OSError) as error:
        reason = f"DALI is not usable here ({type(error).__name__}: {error})"
        log.info("%s: videos are decoded with PyAV", reason)
        return reason
    return None


def device_id(device: torch.device) -> int | None:
    """DALI's ``device_id`` for a compute device: its CUDA index (the current one if unnumbered), or None
    (DALI on the CPU)."""
    if device.type != "cuda":
        return None
    return device.index if device.index is not None else torch.cuda.current_device()


def gpu_problem(info: VideoInfo, device: torch.device) -> str | None:
    """Why DALI on NVDEC cannot decode ``info``'s video on ``device``; None if it can."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return "no CUDA device"
    if info.codec not in GPU_CODECS:
        return f"NVDEC (DALI gpu) decodes {', '.join(GPU_CODECS)}, not {info.codec}"
    if info.pix_fmt not in NVDEC_PIX_FMTS:
        return f"NVDEC (DALI gpu) is used for 8-bit 4:2:0 only, not {info.codec} {info.pix_fmt}"
    return None


def cpu_problem(info: VideoInfo) -> str | None:
    """Why DALI's CPU reader cannot decode ``info``'s video; None if it can."""
    if info.codec not in CPU_CODECS:
        return f"DALI's CPU reader decodes {', '.join(CPU_CODECS)} only, not {info.codec}"
    if info.bit_depth != 8 or info.has_alpha or info.is_gray:
        return f"DALI's CPU reader is used for 8-bit colour without alpha only, not {info.pix_fmt}"
    return None
