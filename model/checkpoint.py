"""Saving and loading: the project's own checkpoints and the official release's files.

Three kinds of file are recognised:

* the project's format: ``{"format": "cdvd-tsp-dali", "version": 1, "config": {...}, "model": {...}}``
  (plus whatever training state the trainer adds), rebuilt from the file alone;
* an official CDVD-TSP ``.pt`` (``CDVD_TSP_DVD_Convergent.pt``, ...): a plain state dict with 210 keys
  ``flow_net.moduleNetwork.*`` and ``recons_net.*``;
* sniklaus's PWC-Net weights (``network-default.pytorch``, keys ``moduleExtractor.*`` or the newer
  ``netExtractor.*``), loaded into the flow net alone (:func:`load_pwc_weights`).

Official names are translated by :func:`official_key`, a rule per layer kind; loading checks that the
translation is a bijection onto the model's keys with equal shapes (``strict``), and names what is
missing, unexpected or mis-shaped otherwise. Nothing is ever loaded partially.
"""
import logging
import os
import re
from collections import OrderedDict
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .cascade import CDVDTSP
from .config import ModelConfig

log = logging.getLogger(__name__)

FORMAT = "cdvd-tsp-dali"
VERSION = 1
_LEVEL_NAMES = ("One", "Two", "Thr", "Fou", "Fiv", "Six")  # official names of levels 1..6 and dense layers
_RESTORE_NAMES = {
    "in_block": "inBlock", "encoder1": "encoder_first", "encoder2": "encoder_second",
    "decoder2": "decoder_second", "decoder1": "decoder_first", "out_block": "outBlock",
}
_PWC_PREFIX = "flow_net.moduleNetwork."


DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "cdvd_tsp_default.pt"  # package data


def default_checkpoint() -> Path | None:
    """The bundled default checkpoint (trained by ``scripts/train_default.py``), or None if not installed."""
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None


def stored_config(path: str | os.PathLike) -> ModelConfig | None:
    """The model config a project checkpoint carries (read memory-mapped, weights untouched); None for files
    that carry none (official ones)."""
    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return ModelConfig(**obj["config"]) if isinstance(obj, dict) and obj.get("format") == FORMAT else None


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded as asked; the message names the file and the problem."""


def _decoder_name(index: str) -> str:
    return "module" + _LEVEL_NAMES[5 - int(index)]  # decoders run from level 6 (index 0) to level 2


_RULES = [  # project key (regex) -> official key
    (r"flow\.pyramid\.levels\.(\d)\.(\d)\.(\w+)",
     lambda m: f"{_PWC_PREFIX}moduleExtractor.module{_LEVEL_NAMES[int(m[1])]}.{m[2]}.{m[3]}"),
    (r"flow\.decoders\.(\d)\.up(flow|feat)\.(\w+)",
     lambda m: f"{_PWC_PREFIX}{_decoder_name(m[1])}.moduleUp{m[2]}.{m[3]}"),
    (r"flow\.decoders\.(\d)\.dense\.(\d)\.0\.(\w+)",
     lambda m: f"{_PWC_PREFIX}{_decoder_name(m[1])}.module{_LEVEL_NAMES[int(m[2])]}.0.{m[3]}"),
    (r"flow\.decoders\.(\d)\.predict\.(\w+)",
     lambda m: f"{_PWC_PREFIX}{_decoder_name(m[1])}.moduleSix.0.{m[2]}"),
    (r"flow\.refiner\.(\d+)\.(\w+)", lambda m: f"{_PWC_PREFIX}moduleRefiner.moduleMain.{m[1]}.{m[2]}"),
    (r"restore\.(\w+?)\.(.+)", lambda m: f"recons_net.{_RESTORE_NAMES[m[1]]}.{m[2]}"),
]


def official_key(key: str) -> str:
    """Project state-dict key -> the official release's key, e.g.
    ``flow.decoders.0.predict.weight`` -> ``flow_net.moduleNetwork.moduleSix.moduleSix.0.weight``."""
    for pattern, official in _RULES:
        match = re.fullmatch(pattern, key)
        if match:
            return official(match)
    raise KeyError(f"no official name for {key!r}")


def _official_rank(key: str) -> tuple[int, int]:
    """Registration order of the official model: extractor, decoders of levels 2..6, refiner, recons."""
    if key.startswith(_PWC_PREFIX + "moduleExtractor"):
        return (0, 0)
    if key.startswith(_PWC_PREFIX + "moduleRefiner"):
        return (2, 0)
    if key.startswith(_PWC_PREFIX):
        return (1, _LEVEL_NAMES.index(key[len(_PWC_PREFIX) + len("module"):].split(".")[0][:3]))
    return (3, 0)


def official_state_dict(model: CDVDTSP) -> "OrderedDict[str, torch.Tensor]":
    """The model's weights under the official names and in the official order (210 tensors)."""
    items = [(official_key(k), v) for k, v in model.state_dict().items()]
    return OrderedDict(sorted(items, key=lambda kv: _official_rank(kv[0])))  # sorted() is stable


def _strict_load(module: torch.nn.Module, state: dict, source: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists what does not match."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape)
    ]
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
        if names:
            shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
            problems.append(f"{len(names)} {label}: {shown}")
    if problems:
        raise CheckpointError(f"{source}: weights do not match the model; " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def _read(path: str | os.PathLike, map_location) -> object:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many kinds for corrupt or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason[:160]})") from error


def _from_official(state: dict, model: CDVDTSP, source: str) -> None:
    translation = {official_key(k): k for k in model.state_dict()}
    unexpected = [k for k in state if k not in translation]
    renamed = {translation[k]: v for k, v in state.items() if k in translation}
    renamed.update({f"<official> {k}": v for k, v in state.items() if k in unexpected})
    _strict_load(model, renamed, source)


def _strip_data_parallel(state: dict) -> dict:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def load_checkpoint(
    path: str | os.PathLike, *, map_location: str | torch.device = "cpu", config: ModelConfig | None = None
) -> CDVDTSP:
    """Build a model from a project checkpoint or an official ``.pt`` file.

    Args:
        path: the file.
        map_location: where tensors are loaded (the model is returned there).
        config: the number of stages to run (``config.stages``; every stage shares the same weights, so any
            T works). A project checkpoint's other settings always come from the file (``residual`` cannot
            be seen in the weights); an official file is built with ``config`` (the published model when
            None), which must not ask for ``residual``.

    Raises:
        CheckpointError: missing, empty, unreadable or foreign file, or weights that do not match.
    """
    obj = _read(path, map_location)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict or checkpoint")
    if obj.get("format") == FORMAT:
        if obj.get("version") != VERSION:
            raise CheckpointError(f"{path}: checkpoint version {obj.get('version')!r}, expected {VERSION}")
        stored = ModelConfig(**obj["config"])
        model = CDVDTSP(replace(stored, stages=config.stages) if config else stored)
        _strict_load(model, obj["model"], str(path))
        return model.to(map_location)
    state = _strip_data_parallel(obj)
    if any(k.startswith(("flow_net.", "recons_net.")) for k in state):
        log.info("%s: official CDVD-TSP state dict (%d tensors)", path, len(state))
        if config is not None and config.residual:
            raise CheckpointError(f"{path}: an official checkpoint has no global residual (model.residual)")
        model = CDVDTSP(config or ModelConfig())
        _from_official(state, model, str(path))
        return model.to(map_location)
    raise CheckpointError(
        f"{path}: not a CDVD-TSP checkpoint (no 'format' entry and no flow_net./recons_net. keys; "
        f"first keys: {', '.join(list(obj)[:3]) or 'none'})"
    )


def load_pwc_weights(model: CDVDTSP, path: str | os.PathLike) -> None:
    """Load sniklaus's PWC-Net weights (``network-default.pytorch``) into ``model.flow`` only.

    This is the paper's initialisation for training; the restoration net is left untouched.
    """
    state = _strip_data_parallel(_read(path, "cpu"))
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a PWC-Net state dict")
    state = {re.sub(r"(^|\.)net(?=[A-Z])", r"\1module", k): v for k, v in state.items()}  # newer naming
    translation = {
        official_key(f"flow.{k}")[len(_PWC_PREFIX):]: k for k in model.flow.state_dict()
    }
    renamed = {translation.get(k, f"<pwc> {k}"): v for k, v in state.items()}
    _strict_load(model.flow, renamed, str(path))


def save_pwc_weights(model: CDVDTSP, path: str | os.PathLike) -> None:
    """Write ``model.flow`` as sniklaus's PWC-Net files are (``moduleExtractor.*`` names), atomically.

    :func:`load_pwc_weights` reads it back, so a flow net pretrained here stands in for
    ``network-default.pytorch`` (``train.pwc_weights``).
    """
    state = OrderedDict((official_key(f"flow.{k}")[len(_PWC_PREFIX):], v)
                        for k, v in model.flow.state_dict().items())
    atomic_save(state, path)


def save_checkpoint(model: CDVDTSP, path: str | os.PathLike, **extra) -> None:
    """Write a project checkpoint (config + weights + ``extra`` entries) atomically."""
    atomic_save({"format": FORMAT, "version": VERSION, "config": asdict(model.config),
                  "model": model.state_dict(), **extra}, path)


def save_official(model: CDVDTSP, path: str | os.PathLike) -> None:
    """Write the weights as the official code saves them: a plain state dict under official names."""
    if model.config.residual:
        raise CheckpointError("a model with model.residual has no official format (the official net has no "
                              "global residual): save it with save_checkpoint")
    atomic_save(official_state_dict(model), path)


def atomic_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through a partial file renamed into place: a crash leaves the old file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(obj, partial)
    os.replace(partial, path)
