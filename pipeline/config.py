"""Typed configuration: dataclasses are the schema, YAML files the data, ``--set a.b=v`` the overrides.

Unknown keys are errors that name the key (a typo must never silently become a default), values are
type-checked against the schema, and the resolved config can be written back next to outputs.
"""
import dataclasses
import inspect
import logging
import re
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from model import ModelConfig
from pipeline.compiling import COMPILE_MODES
from pipeline.memory_format import MEMORY_FORMATS
from pipeline.precision import PRECISIONS, TRAIN_PRECISIONS
from pipeline.stream.engine import GROUP
from pipeline.stream.windows import BORDERS
from pipeline.video.readers import READERS
from pipeline.video.writer import OUTPUT_BITS, OUTPUT_FORMATS

log = logging.getLogger(__name__)

RETIRED = {  # keys that older configs and run folders' config.yaml still carry: ignored, with a warning
    "deblur.batch": "positions per model call are deblur.group, grouped by absolute position (exact whatever "
                    "the chunking)",
}


class ConfigError(ValueError):
    """A config file or override that does not fit the schema; the message names the key."""


@dataclass
class DeblurConfig:
    """How `deblur` streams a video through the model.

    Attributes:
        border: what the first and last T frames see (`pipeline.stream.windows`).
        chunk: frames decoded per chunk.
        group: positions per model call (B): the engine computes each level of the cascade in groups of B
            absolute positions (`pipeline.stream.engine`), so the output depends on B (it is in the
            segments' fingerprint) and not on the chunking; a time shard decodes T * B frames of context
            each side. 2, measured on 2 CPU cores (`benchmarks/group.py`): 0.91x the time of B = 1 at
            96x96 and 1.04x at 320x180, where larger groups cost more (1.17x at 4, 1.41x at 8); on a GPU,
            where each call's overhead weighs more, measure it there.
        precision: fp32 (exact, TF32 off on CUDA), tf32, or bf16 / fp16 autocast (`pipeline.precision`).
        reader: auto (DALI when it can decode the file, else PyAV), dali or pyav.
        format: video (encoded with codec/crf, audio copied) or png (a folder of frames).
        codec, crf: encoder and quality of video output (libx264 CRF: lower is better).
        bits: output depth, 8 or 10; auto: 10 for inputs deeper than 8 bits (decoded at 16 bits) when the
            codec has a 10-bit format, else 8.
        compare: write input | output side by side.
        segment: frames per independently encoded segment (the unit of --resume).
        queue: depth of the decode and encode queues (bounded: memory stays flat).
        compile: torch.compile of the engine's per-call pieces (`pipeline.compiling`): off, correlation
            (PWC-Net's cost volume only), default, max-autotune, or reduce-overhead (CUDA graphs).
        memory_format: the weights' layout (`pipeline.memory_format`): contiguous, or channels_last.
    """

    border: Literal[BORDERS] = "reflect"
    chunk: int = 16
    group: int = GROUP
    precision: Literal[PRECISIONS] = "fp32"
    reader: Literal[READERS] = "auto"
    format: Literal[OUTPUT_FORMATS] = "video"
    codec: str = "libx264"
    crf: int = 18
    bits: Literal[("auto", *OUTPUT_BITS)] = "auto"
    compare: bool = False
    segment: int = 64
    queue: int = 4
    compile: Literal[COMPILE_MODES] = "off"
    memory_format: Literal[tuple(MEMORY_FORMATS)] = "contiguous"

    def __post_init__(self) -> None:
        for name in ("chunk", "group", "segment", "queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"deblur.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"deblur.crf must be in 0..51, got {self.crf!r}")


@dataclass
class TrainConfig:
    """The training recipe; defaults are the paper's and the official code's.

    Attributes:
        data: a manifest.json of paired videos (``scripts/prepare_data.py``), a DVD/GOPRO frame-folder
            root for the PNG loader, or a folder of sharp frame folders for the synth loader.
        loader: dali (paired videos, decoded on the GPU when there is one), png (frame folders), or synth
            (sharp frame folders blurred on the fly as the ``blur`` section says).
        val_data: held-out data for validation (a manifest's ``val`` split is used when empty and the
            manifest has one; a frame-folder root for the PNG loader); validation is skipped without it.
        batch, crop: samples per step (per process) and square crop side.
        step: frames between training window starts in a clip; max_frames: first frames used per clip
            (the official training used 100).
        lr, flow_lr: Adam learning rates of the restoration net and of PWC-Net (fine-tuned gently);
            flow_lr 0 freezes PWC-Net (no gradients through it: a third less time per step on a CPU).
        betas, eps: Adam's.
        lr_step, lr_gamma: the rate is multiplied by lr_gamma every lr_step epochs.
        epochs, max_steps: stop after either (max_steps 0: no limit).
        hem_weight, hard_ratio, random_ratio: loss = L1 + hem_weight * HEM(top hard_ratio + random_ratio).
        precision: bf16 autocast (on any device) or fp32.
        checkpoint_every, val_every, log_every: in steps.
        val_frames: frames per held-out video scored at validation (0: all).
        seed: data order, augmentation and hard-example sampling.
        pwc_weights: sniklaus ``network-default.pytorch`` to initialise PWC-Net (the paper's start).
        workers: DataLoader workers for the PNG loader.
        start: ``random`` (PyTorch's initialisation) or ``identity``: PWC-Net emitting zero flow and, with
            ``model.residual``, a restoration net returning its centre frame (`model.init`), the start for
            training without downloaded weights. Applied before ``init`` and ``pwc_weights``.
        init: a project checkpoint whose weights start the run (e.g. the previous phase of a recipe; its
            ``stages`` may differ: every stage shares the same weights).
        max_minutes: stop (and save) once the run has trained this long, resumes included (0: no limit).
        warmup: steps of linear learning-rate warm-up at the start (0: none, the paper's recipe).
        clip: the gradients' global L2 norm is clipped to this before each step (0: off, the paper's recipe).
    """

    data: str = ""
    loader: Literal["dali", "png", "synth"] = "dali"
    val_data: str = ""
    batch: int = 8
    crop: int = 256
    step: int = 1
    max_frames: int | None = 100
    lr: float = 1e-4
    flow_lr: float = 1e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    lr_step: int = 200
    lr_gamma: float = 0.5
    epochs: int = 500
    max_steps: int = 0
    hem_weight: float = 2.0
    hard_ratio: float = 0.5
    random_ratio: float = 0.1
    precision: Literal[TRAIN_PRECISIONS] = "bf16"
    checkpoint_every: int = 1000
    val_every: int = 1000
    log_every: int = 20
    val_frames: int = 0
    seed: int = 1
    pwc_weights: str = ""
    workers: int = 4
    start: Literal["random", "identity"] = "random"
    init: str = ""
    max_minutes: float = 0.0
    warmup: int = 0
    clip: float = 0.0

    def __post_init__(self) -> None:
        for name in ("batch", "crop", "step", "lr_step", "epochs", "checkpoint_every", "val_every",
                     "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)!r}")
        if len(self.betas) != 2:
            raise ValueError(f"train.betas must be two numbers, got {self.betas!r}")
        for name in ("max_minutes", "warmup", "clip", "flow_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass
class FlowConfig:
    """PWC-Net pretraining on rendered motion and real footage
    (`pipeline.training.flow`, `scripts/pretrain_flow.py`).

    Attributes:
        photos: folder of the training photographs; val_photos: held-out ones, for the EPE figures.
        footage: a folder of sharp frame folders (the training set's ``sequences/train``) for pairs with
            DIS flow as the target; footage_share: the share of such pairs (the rest are rendered); still:
            the share of those that are still shots (one frame twice, own noise each, zero flow).
        gap: frames between a pair's two instants, an inclusive range.
        val_footage: a folder of held-out sharp frame folders (the training set's ``sequences/val``), for
            the photometric figures on real footage (empty: skipped); val_every: steps between such looks
            while training, on the first ``val_frames`` frames of each (0: only at the end).
        size: side of the square pairs (a multiple of 64); batch: pairs per step.
        blurred: share of pairs made of exposures (what the cascade's stage 1 sees).
        lr: Adam's rate, after a linear warm-up over ``warmup`` steps; precision: bf16 autocast or fp32.
        max_steps, max_minutes: stop after either (0: no limit); the run resumes where it stopped.
        val_pairs: held-out pairs scored at the end; seed: pair i of a run depends on (seed, i) only.
        log_every, checkpoint_every: in steps; workers: processes rendering pairs ahead of the step.
        start: ``zero`` (zero flow on PyTorch's initialisation) or ``matching``
            (`pipeline.training.matching`: cost volumes rescaled, the pyramid trained ``matching_updates``
            updates at ``matching_lr`` to match, the heads fitted on ``fit_batches`` batches);
            matching: the matching loss's weight beside the endpoint error while training.
    """

    photos: str = ""
    val_photos: str = ""
    footage: str = ""
    footage_share: float = 0.0
    still: float = 0.0
    gap: list[int] = field(default_factory=lambda: [1, 2])
    val_footage: str = ""
    val_every: int = 0
    val_frames: int = 12
    size: int = 128
    batch: int = 8
    blurred: float = 0.5
    lr: float = 1e-4
    warmup: int = 100
    precision: Literal[TRAIN_PRECISIONS] = "bf16"
    max_steps: int = 0
    max_minutes: float = 0.0
    val_pairs: int = 64
    seed: int = 1
    log_every: int = 20
    checkpoint_every: int = 100
    workers: int = 1
    start: Literal["zero", "matching"] = "zero"
    matching_updates: int = 600
    matching_lr: float = 1e-4
    fit_batches: int = 40
    matching: float = 0.0

    def __post_init__(self) -> None:
        for name in ("matching_updates", "matching_lr", "matching"):
            if getattr(self, name) < 0:
                raise ValueError(f"flow.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("size", "batch", "log_every", "checkpoint_every", "val_pairs", "fit_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"flow.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.size % 64:
            raise ValueError(f"flow.size must be a multiple of 64, got {self.size!r}")
        for name in ("footage_share", "still"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"flow.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if len(self.gap) != 2 or not 1 <= self.gap[0] <= self.gap[1]:
            raise ValueError(f"flow.gap must be a range [low, high] from 1, got {self.gap!r}")


@dataclass
class RecipeConfig:
    """`scripts/train_default.py`: how a time budget is shared between the recipe's phases.

    Attributes:
        minutes: the whole budget (data building and evaluation not included).
        flow_share, stage1_share: shares of it for the flow pretraining and for stage 1 (T = 1); the
            cascade (T = 2, shared weights) gets the rest.
        cascade_lr, cascade_warmup: the restoration rate and warm-up steps of the cascade phase (stage 1 uses
            ``train.lr`` and ``train.warmup``).
        export_frames: frames per validation folder (clip and condition) the export scores candidates on.
    """

    minutes: float = 120.0
    flow_share: float = 0.12
    stage1_share: float = 0.6
    cascade_lr: float = 5e-5
    cascade_warmup: int = 25
    export_frames: int = 16

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"recipe.minutes must be > 0, got {self.minutes!r}")
        if not (0 <= self.flow_share and 0 < self.stage1_share and self.flow_share + self.stage1_share <= 1):
            raise ValueError(f"recipe shares must be >= 0 and sum to at most 1, "
                             f"got flow {self.flow_share!r}, stage 1 {self.stage1_share!r}")


@dataclass
class BlurConfig:
    """How the ``synth`` loader blurs sharp sequences on the fly (`pipeline.data.exposures`): each window
    a fresh draw of exposure, convention, stride, noise and compression.

    Attributes:
        windows: exposure lengths in source frames (odd; 1 is a sharp frame: an identity pair).
        weights: their relative chances (one per window).
        gamma: share of exposures averaged in decoded (gamma) values, as GOPRO's ``blur`` frames were;
            the rest in linear light.
        strides: source frames between the centres of consecutive blurred frames, an inclusive range
            (1: every frame; 3: fast motion, neighbours far apart).
        noise, noise_share: Gaussian sensor noise, sigma drawn from the range (levels of 255), on a share.
        compress, crf: share of windows round-tripped through H.264, at a CRF drawn from the range.
    """

    windows: list[int] = field(default_factory=lambda: [1, 3, 5, 7, 9, 11])
    weights: list[float] = field(default_factory=lambda: [2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    gamma: float = 0.5
    strides: list[int] = field(default_factory=lambda: [1, 3])
    noise: list[float] = field(default_factory=lambda: [0.0, 3.0])
    noise_share: float = 0.5
    compress: float = 0.5
    crf: list[int] = field(default_factory=lambda: [12, 28])

    def __post_init__(self) -> None:
        if not self.windows or any(w < 1 or w % 2 == 0 for w in self.windows):
            raise ValueError(f"blur.windows must be positive odd numbers, got {self.windows!r}")
        if len(self.weights) != len(self.windows) or min(self.weights) < 0 or not sum(self.weights) > 0:
            raise ValueError(f"blur.weights must be one non-negative chance per window, got {self.weights!r}")
        for name, low_limit in (("strides", 1), ("noise", 0), ("crf", 0)):
            bounds = getattr(self, name)
            if len(bounds) != 2 or not low_limit <= bounds[0] <= bounds[1]:
                raise ValueError(f"blur.{name} must be a range [low, high] from {low_limit}, got {bounds!r}")
        if self.crf[1] > 51:
            raise ValueError(f"blur.crf must be within 0..51, got {self.crf!r}")
        for name in ("gamma", "noise_share", "compress"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"blur.{name} must be a share in [0, 1], got {getattr(self, name)!r}")


@dataclass
class Config:
    """Everything a run is configured by; each section is its own dataclass."""

    model: ModelConfig = field(default_factory=ModelConfig)
    deblur: DeblurConfig = field(default_factory=DeblurConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)
    chosen: frozenset[str] = field(default_factory=frozenset, init=False, repr=False, compare=False)
    """The dotted keys (``model.features``, ...) that the config file or the command line set."""


def _check_value(key: str, kind, value):
    """Return ``value`` if it fits the annotated type ``kind``, converting int -> float; else raise."""
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, typing.get_args(kind)))}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(k for k in options if k is not type(None))
        return _check_value(key, kind, value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)[:1]
        return origin(_check_value(f"{key}[{i}]", item, v) for i, v in enumerate(value))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value


def from_dict(schema, data: dict, prefix: str = ""):
    """Build dataclass ``schema`` from nested dicts, rejecting unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    for key in [k for k in data if f"{prefix}{k}" in RETIRED]:
        log.warning("config key %s%s is no longer used: %s", prefix, key, RETIRED[f"{prefix}{key}"])
        data = {k: v for k, v in data.items() if k != key}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} (known: {', '.join(fields)})")
    values = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = from_dict(kind, value, f"{prefix}{name}.")
        else:
            values[name] = _check_value(f"{prefix}{name}", kind, value)
    try:
        return schema(**values)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (_merge(merged[key], value)
                       if isinstance(merged.get(key), dict) and isinstance(value, dict) else value)
    return merged


def parse_override(text: str) -> dict:
    """``"model.stages=3"`` -> ``{"model": {"stages": 3}}``; the value is read as YAML
    (3, 1e-4, true, [1, 2])."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    return _nested(key.strip(), yaml.safe_load(raw) if raw.strip() else "")


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (), schema=Config, *,
                values: typing.Mapping[str, object] | None = None):
    """Defaults, then the YAML file at ``path``, then each ``key=value`` override (text, read as YAML), then
    ``values`` (dotted key -> value, as a command's own flags give them; None values are skipped), checked
    against ``schema``. A `Config` remembers which keys were set (`Config.chosen`)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    for text in overrides:
        data = _merge(data, parse_override(text))
    for key, value in (values or {}).items():
        if value is not None:
            data = _merge(data, _nested(key, value))
    config = from_dict(schema, data)
    if schema is Config:
        config.chosen = frozenset(_leaf_keys(data))
    return config


def _nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _leaf_keys(data: dict, prefix: str = "") -> typing.Iterator[str]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def dump_config(config, path: str | Path | None = None) -> str:
    """The resolved config as YAML text, also written to ``path`` when given."""
    data = {key: value for key, value in dataclasses.asdict(config).items() if key != "chosen"}
    text = yaml.safe_dump(data, sort_keys=False)
    if path is not None:
        Path(path).write_text(text)
    return text


def defaults_yaml() -> str:
    """``configs/default.yaml``: every key of `Config` at its default, each section and key with its
    description from the dataclasses' docstrings (``scripts/default_config.py`` writes it; a test holds the
    file equal to this)."""
    lines = ["# Every config key at its default: generated from pipeline/config.py (and model/config.py) by",
             "# `python scripts/default_config.py`; edit the dataclasses, not this file.", ""]
    hints = typing.get_type_hints(Config)
    for section in (f.name for f in dataclasses.fields(Config) if f.init):
        schema = hints[section]
        doc = inspect.getdoc(schema)
        summary = " ".join(doc.partition("\n\n")[0].split())  # the docstring's first paragraph
        lines += [*(f"# {line}" for line in textwrap.wrap(summary, 108)), f"{section}:"]
        notes = _attribute_notes(doc)
        for name, value in dataclasses.asdict(schema()).items():
            for note in textwrap.wrap(notes.get(name, ""), 106):
                lines.append(f"  # {note}")
            flow = None if isinstance(value, list) else False  # lists on one line: [0.9, 0.999]
            lines.append("  " + yaml.safe_dump({name: value}, default_flow_style=flow).strip())
        lines.append("")
    return "\n".join(lines)


def _attribute_notes(doc: str) -> dict[str, str]:
    """A docstring's ``Attributes:`` entries, ``name[, name]: text``, as first name -> text (one line)."""
    notes: dict[str, str] = {}
    attributes = doc.partition("Attributes:\n")[2]
    entry = None
    for line in attributes.splitlines():
        found = re.match(r"^    (\w+(?:, \w+)*): (.*)", line)
        if found:
            entry = found[1].split(", ")[0]
            notes[entry] = found[2]
        elif entry is not None and line.startswith("        "):
            notes[entry] += " " + line.strip()
    return notes
