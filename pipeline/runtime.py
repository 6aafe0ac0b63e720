"""The runtime rules every command shares: which device it runs on and which model it runs.

* `compute_device`: the device asked for; else this process's GPU (torchrun's ``LOCAL_RANK``) when there
  is one; else the CPU.
* `build_model`: the checkpoint given; else the bundled default checkpoint, unless the user chose another
  architecture (then seeded untrained weights of that shape, which the caller must say loudly).
* `prepare_model`: the model as every deblurring path runs it (the job, `restore_frames`, ``evaluate``): on
  its device, in the weights' layout ``deblur.memory_format``, compiled as ``deblur.compile``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model import CDVDTSP, ModelConfig, default_checkpoint, load_checkpoint
from model.checkpoint import stored_config
from pipeline.compiling import compile_model
from pipeline.memory_format import with_memory_format

if TYPE_CHECKING:  # pipeline.config imports the stream package's vocabularies, whose runs prepare models here
    from pipeline.config import Config, DeblurConfig

UNTRAINED = "untrained (seeded)"
# what a checkpoint's weights fix ("stages" they do not)
_ARCHITECTURE = ("features", "resblocks", "residual")


def compute_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` as a device; None: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if name is not None:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def chosen_model_config(config: Config) -> ModelConfig | None:
    """The model config to load a checkpoint with: None (the checkpoint's own; the published one for
    official files) unless the user set ``model.*`` values."""
    return config.model if any(key.startswith("model.") for key in config.chosen) else None


def weights_to_load(checkpoint: str | Path | None, config: Config) -> Path | None:
    """The checkpoint a command runs: ``checkpoint`` when given; else the bundled default checkpoint, unless
    the user chose a model architecture that differs from it (then None: untrained weights of that shape)."""
    if checkpoint is not None:
        return Path(checkpoint)
    default = default_checkpoint()
    if default is None:
        return None
    chosen = {key[len("model."):] for key in config.chosen if key.startswith("model.")} & set(_ARCHITECTURE)
    stored = stored_config(default) if chosen else None
    if stored is not None and any(getattr(config.model, key) != getattr(stored, key) for key in chosen):
        return None
    return default


def build_model(config: Config, checkpoint: str | Path | None = None) -> tuple[CDVDTSP, str]:
    """(model on the CPU, what it is: the checkpoint's path or `UNTRAINED`), by `weights_to_load`'s rule."""
    path = weights_to_load(checkpoint, config)
    if path is None:
        torch.manual_seed(0)
        return CDVDTSP(config.model), UNTRAINED
    return load_checkpoint(path, config=chosen_model_config(config)), str(path)


def prepare_model(model: CDVDTSP, config: DeblurConfig, device: torch.device | str) -> CDVDTSP:
    """``model`` in place on ``device``, its weights in ``config.memory_format``, its per-call pieces compiled
    with ``config.compile`` (`pipeline.compiling`; once: preparing it again changes nothing); returns it.
    Precision is not a property of the model: the runs apply it (`precision.precision_context`)."""
    model = with_memory_format(model.to(device), config.memory_format)
    return compile_model(model, config.compile)
