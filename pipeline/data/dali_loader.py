"""DALI loader of paired training windows: random 2T+1-frame windows of side-by-side blurred|sharp videos.

Per epoch:

1. every window ``(clip, start)`` of every clip (starts ``step`` frames apart) is listed and grouped into
   *runs* of up to ``run`` consecutive windows of one clip; the runs are permuted with
   ``numpy.random.default_rng((seed, epoch))``, the windows in that order wrapped to a multiple of
   ``world_size`` and cut into one contiguous, equal share per rank;
2. this rank's share goes into a DALI ``file_list`` in ``frames`` format, one line per run (``path clip
   start end``: DALI makes a window at every ``step`` from ``start`` while it ends by ``end``), so DALI
   opens a decoder once per run, not once per window, and decodes a run's windows in one pass; its reader
   mixes ``shuffle_buffer`` samples at a time (``initial_fill``), so batches still mix clips;
3. the pipeline decodes each window once (both halves), slices the blurred and sharp halves, crops the
   same random box from both (same random numbers, same half size), concatenates them along frames and
   applies one random horizontal flip, vertical flip and 90-degree rotation to all 2F frames, then
   normalises to float [0, 1] in FCHW. Decode and augmentation run on the GPU when there is one.

A new pipeline is built per epoch (the file list changes); DALI's frame-index cache is process-wide, so
that costs milliseconds, not a rescan of the videos. Batches reach PyTorch through ``DALIGenericIterator``
without a copy: the tensors are views of DALI's output buffer. ``run=1, shuffle_buffer=1`` reads one
window per line in exactly `epoch_windows`' order.

DALI is imported when a pipeline is built, not with this module: the window arithmetic and the loader's
checks work where DALI is not installed (`pipeline.video.dali.unavailable` says why it is not).
"""
import logging
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from pipeline.config import TrainConfig
from pipeline.data.datasets import Manifest
from pipeline.video import dali

log = logging.getLogger(__name__)

READER = "windows"


@dataclass(frozen=True)
class LoaderConfig:
    """``frames``: window length 2T+1; ``crop``: square crop side (None: whole frames, no augmentation,
    all clips of one size); ``step``: frames between window starts within a clip; ``max_frames``: use only
    the first frames of each clip (the official training used 100); ``run``: windows read in a row from
    one place of one clip (one decoder open each); ``shuffle_buffer``: samples DALI mixes at a time."""

    frames: int = 5
    crop: int | None = 256
    augment: bool = True
    batch_size: int = 8
    step: int = 1
    seed: int = 0
    drop_last: bool = True
    max_frames: int | None = None
    num_threads: int = 2
    prefetch: int = 2
    run: int = 8
    shuffle_buffer: int = 32

    def __post_init__(self):
        for name in ("frames", "batch_size", "step", "num_threads", "prefetch", "run", "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop is not None and self.crop < 1:
            raise ValueError(f"crop must be >= 1 or None, got {self.crop}")
        if self.crop is None and self.augment:
            raise ValueError("augment needs a square crop (rotating non-square frames changes their shape)")
        if self.max_frames is not None and self.max_frames < self.frames:
            raise ValueError(f"max_frames must be >= frames ({self.frames}), got {self.max_frames}")

    @classmethod
    def of(cls, train: TrainConfig, frames: int) -> "LoaderConfig":
        """The loader settings a training config implies, for windows of ``frames`` frames."""
        return cls(frames=frames, crop=train.crop, batch_size=train.batch, step=train.step, seed=train.seed,
                   max_frames=train.max_frames)


@dataclass(frozen=True)
class Window:
    """Frames ``start .. start + frames - 1`` of clip number ``clip`` (stored at ``path``)."""

    path: str
    clip: int
    start: int


class PairedBatch(NamedTuple):
    """``blurred``/``sharp``: (B, F, 3, h, w) float32 in [0, 1] on the loader's device; ``clips``: (B,)
    clip numbers; ``frame_numbers``: (B, F) decoded frame indices (the same for both halves)."""

    blurred: torch.Tensor
    sharp: torch.Tensor
    clips: torch.Tensor
    frame_numbers: torch.Tensor


def list_windows(paths: Sequence[str], lengths: Sequence[int], *, frames: int, step: int = 1,
                 max_frames: int | None = None) -> list[Window]:
    """All windows of ``frames`` frames whose starts are ``step`` apart, clip by clip."""
    windows = []
    for clip, (path, length) in enumerate(zip(paths, lengths, strict=True)):
        usable = min(length, max_frames or length)
        windows += [Window(str(path), clip, start) for start in range(0, usable - frames + 1, step)]
    return windows


def epoch_windows(windows: Sequence[Window], *, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                  run: int = 1) -> list[Window]:
    """This rank's windows for ``epoch``, in reading order: runs of up to ``run`` consecutive windows of
    one clip in a (seed, epoch) permutation, wrapped to a multiple of ``world_size`` windows and cut into
    ``world_size`` contiguous shares of ``ceil(len / world_size)`` windows."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    if not windows:
        raise ValueError("no windows to shuffle")
    runs = [clip_windows[i:i + run] for clip_windows in _by_clip(windows)
            for i in range(0, len(clip_windows), run)]
    order = np.random.default_rng((seed, epoch)).permutation(len(runs))
    flat = [window for i in order for window in runs[i]]
    share = math.ceil(len(flat) / world_size)
    flat = [flat[i % len(flat)] for i in range(share * world_size)]  # wraps around
    return flat[rank * share:(rank + 1) * share]


def _by_clip(windows: Sequence[Window]) -> list[list[Window]]:
    clips: dict[int, list[Window]] = {}
    for window in windows:
        clips.setdefault(window.clip, []).append(window)
    return list(clips.values())


def write_file_list(windows: Sequence[Window], path: Path, frames: int, step: int) -> int:
    """A DALI ``file_list`` in ``frames`` format reading ``windows`` in order (starts ``step`` apart within
    a clip): one line per run of consecutive windows of one clip. Returns the number of lines.

    DALI 2.4 makes windows of ``sequence_length`` frames every ``step`` frames from ``start`` while they end
    by ``end`` (measured, and the window count is checked at every build).
    """
    lines, first, last = [], None, None
    for window in [*windows, None]:
        if window is not None and any(c.isspace() for c in window.path):
            raise ValueError(f"DALI file lists cannot hold paths with whitespace: {window.path!r}")
        if last is not None and (window is None or window.clip != last.clip
                                 or window.start != last.start + step):
            lines.append(f"{first.path} {first.clip} {first.start} {last.start + frames}\n")
            first = None
        first, last = first or window, window
    path.write_text("".join(lines))
    return len(lines)


def paired_window_pipeline(file_list: str, frames: int, step: int, shuffle_buffer: int, crop: int | None,
                           augment: bool, decode: str, **pipeline_args):
    """A DALI pipeline (``pipeline_args``: batch size, threads, device, seed...) whose every sample is
    ``(clip (2F, 3, h, w) float32 [0, 1], label (1,) int32, frame_num (F,) int32)``: frames [0, F) blurred,
    [F, 2F) sharp. ``decode`` is "cpu" or "gpu"; everything after it runs there."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(**pipeline_args)
    def windows():
        video, label, frame_num = fn.experimental.readers.video(
            device=decode, file_list=file_list, file_list_format="frames", sequence_length=frames, step=step,
            random_shuffle=shuffle_buffer > 1, initial_fill=shuffle_buffer, enable_frame_num="sequence",
            pad_last_batch=True, name=READER)  # (F, H, 2W, 3)
        blurred = fn.slice(video, rel_start=(0.0, 0.0), rel_shape=(1.0, 0.5), axis_names="HW")  # (F, H, W, 3)
        sharp = fn.slice(video, rel_start=(0.0, 0.5), rel_shape=(1.0, 0.5), axis_names="HW")
        if crop is not None:
            x, y = fn.random.uniform(range=(0.0, 1.0)), fn.random.uniform(range=(0.0, 1.0))
            blurred = fn.crop(blurred, crop=(crop, crop), crop_pos_x=x, crop_pos_y=y)  # same box in both
            sharp = fn.crop(sharp, crop=(crop, crop), crop_pos_x=x, crop_pos_y=y)
        both = fn.cat(blurred, sharp, axis_name="F")  # (2F, h, w, 3)
        if augment:
            both = fn.flip(both, horizontal=fn.random.coin_flip(), vertical=fn.random.coin_flip())
            quarter_turns = fn.random.coin_flip(dtype=types.INT32)
            both = fn.rotate(both, angle=fn.cast(quarter_turns * 90, dtype=types.FLOAT), keep_size=False,
                             interp_type=types.INTERP_NN)  # counter-clockwise, exact for square crops
        both = fn.crop_mirror_normalize(both, dtype=types.FLOAT, mean=[0.0], std=[255.0],
                                        output_layout="FCHW")
        return both, label, frame_num

    return windows()


class PairedVideoLoader:
    """Iterates ``(blurred, sharp)`` batches of (B, F, 3, h, w) float32 [0, 1] over one epoch.

    Call ``set_epoch`` before each epoch (as with DistributedSampler): the same (seed, epoch) gives the
    same windows in the same order with the same augmentation, another epoch another order. ``batches``
    also yields the clip and frame numbers of each sample. ``device_id`` None decodes on the CPU
    (VP8/VP9/MJPEG clips only), an int on that GPU.
    """

    def __init__(self, manifest: Manifest, split: str, config: LoaderConfig = LoaderConfig(), *,
                 rank: int = 0, world_size: int = 1, device_id: int | None = None):
        self.clips = manifest.split(split)
        self.config, self.rank, self.world_size, self.device_id = config, rank, world_size, device_id
        self.epoch = 0
        for clip in self.clips:
            if device_id is None and clip.codec not in dali.CPU_CODECS:
                raise ValueError(f"clip {clip.name!r} is {clip.codec}: DALI decodes only "
                                 f"{', '.join(dali.CPU_CODECS)} on the CPU (prepare the data with "
                                 "--codec vp9 or mjpeg, or use a GPU)")
            if config.crop is not None and config.crop > min(clip.width, clip.height):
                raise ValueError(f"crop {config.crop} does not fit clip {clip.name!r} "
                                 f"({clip.width}x{clip.height})")
        if config.crop is None and len({(c.width, c.height) for c in self.clips}) > 1:
            raise ValueError("whole-frame batches (crop None) need clips of one size")
        paths = [str(manifest.video_path(clip).resolve()) for clip in self.clips]
        self.windows = list_windows(paths, [c.frames for c in self.clips], frames=config.frames,
                                    step=config.step, max_frames=config.max_frames)
        if not self.windows:
            raise ValueError(f"no clip in split {split!r} has {config.frames} frames")
        self._workdir = tempfile.TemporaryDirectory(prefix="dali_windows_")
        self.lines, self.build_seconds = 0, 0.0  # of the last epoch's file list and pipeline build

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_windows(self) -> list[Window]:
        """This rank's windows of the current epoch, in the order they are read."""
        return epoch_windows(self.windows, seed=self.config.seed, epoch=self.epoch, rank=self.rank,
                             world_size=self.world_size, run=self.config.run)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        count = math.ceil(len(self.windows) / self.world_size)
        batch = self.config.batch_size
        return count // batch if self.config.drop_last else math.ceil(count / batch)

    def _build(self):
        config = self.config
        windows = self.epoch_windows()
        file_list = Path(self._workdir.name) / f"epoch{self.epoch}.txt"
        self.lines = write_file_list(windows, file_list, config.frames, config.step)
        seed = int(np.random.default_rng((config.seed, self.epoch, self.rank)).integers(2**31))
        started = time.perf_counter()
        pipe = paired_window_pipeline(
            str(file_list), config.frames, config.step, config.shuffle_buffer, config.crop, config.augment,
            "cpu" if self.device_id is None else "gpu",
            batch_size=config.batch_size, num_threads=config.num_threads, device_id=self.device_id, seed=seed,
            prefetch_queue_depth=config.prefetch)
        pipe.build()
        if pipe.epoch_size(READER) != len(windows):
            raise RuntimeError(f"DALI made {pipe.epoch_size(READER)} samples of {len(windows)} windows in a "
                               f"{self.lines}-line file list")
        self.build_seconds = time.perf_counter() - started
        log.debug("epoch %d: pipeline for %d windows in %d lines built in %.3f s", self.epoch, len(windows),
                  self.lines, self.build_seconds)
        return pipe

    def batches(self) -> Iterator[PairedBatch]:
        """One epoch of batches with the clip and frame numbers of each sample."""
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        policy = LastBatchPolicy.DROP if self.config.drop_last else LastBatchPolicy.PARTIAL
        iterator = DALIGenericIterator(self._build(), ["clip", "label", "frame_num"], reader_name=READER,
                                       last_batch_policy=policy)
        frames = self.config.frames
        for (outputs,) in iterator:
            clip = outputs["clip"]  # (B, 2F, 3, h, w)
            yield PairedBatch(blurred=clip[:, :frames], sharp=clip[:, frames:], clips=outputs["label"][:, 0],
                              frame_numbers=outputs["frame_num"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.batches():
            yield batch.blurred, batch.sharp
