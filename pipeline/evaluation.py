"""Scoring restorations under the official protocol: one loop for ``evaluate``, ``deblur --sharp``,
training's validation and the default checkpoint's recipe.

A `Video` (`pipeline.data.scored`) gives its sharp frames and, where there are some, its blurred input,
as factories of (H, W, 3) uint8 frames; a restore function gives its restored frames (existing outputs:
`outputs_restore_fn`; a model run over the blurred input: `model_restore_fn`). `score` steps through them
in lockstep (frame counts and sizes must agree), and `report` / `write_csv` store the figures.

Protocol: RGB uint8, ``crop`` px cut from every side, PSNR with peak 255, MATLAB-style SSIM
(`pipeline.metrics`); an average is the mean over all frames, not over videos.
"""
import collections
import csv
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from model import CDVDTSP
from pipeline import metrics
from pipeline.config import DeblurConfig
from pipeline.data.datasets import find_sequence
from pipeline.data.scored import Video
from pipeline.metrics import FrameScore, Scores, Summary
from pipeline.stream import restore_frames
from pipeline.video.sequences import read_frames, zip_frames

RestoreFn = Callable[[Video], tuple[str, Iterable[np.ndarray]]]
"""The restored frames of one video: ``video -> (source, frames)``, frames (H, W, 3) uint8 in order."""


def outputs_restore_fn(restored: Path, *, single: bool) -> RestoreFn:
    """Read existing outputs: ``restored`` itself when ``single``, else ``restored/<video>[.<ext>]``."""
    def restore(video: Video) -> tuple[str, Iterable[np.ndarray]]:
        path = restored if single else find_sequence(restored, video.name)
        if path is None:
            raise ValueError(f"{restored}: no restored output for video {video.name!r} "
                             f"(expected {restored / video.name}/ or {restored / video.name}.<ext>)")
        return str(path), read_frames(path)
    return restore


def model_restore_fn(model: CDVDTSP, config: DeblurConfig, device: torch.device, name: str) -> RestoreFn:
    """Restore each video's blurred input with ``model`` (on ``device``, in eval mode), streaming every
    frame through the engine (`pipeline.stream.restore_frames`); ``name`` names the model."""
    def restore(video: Video) -> tuple[str, Iterable[np.ndarray]]:
        if video.blurred is None:
            raise ValueError(f"{video.sharp_source}: restoring needs the blurred input")
        return f"{name} on {video.blurred_source}", restore_frames(model, video.blurred(), config, device)
    return restore


def score(videos: Sequence[Video], restore_fn: RestoreFn, *, crop: int = 4, baseline: bool = False,
          skip_ends: int = 0, limit: int | None = None,
          on_frame: Callable[[str], None] = lambda video: None) -> tuple[Scores, Scores | None]:
    """Score each video's restored frames, and with ``baseline`` its blurred input, against its sharp frames.

    ``skip_ends`` frames at each end of every video are not scored (2 is the official test protocol,
    whose ``inference.py`` restores frames 2 .. N-3 only); ``limit`` stops after the first frames of each
    video (None: all; it is applied after ``skip_ends``' start).

    Returns ``(restored scores, input scores or None)``; ``on_frame(video)`` is called after every frame.
    Raises ValueError on a missing blurred input or a frame count/size mismatch (naming the sources).
    """
    if skip_ends < 0:
        raise ValueError(f"skip_ends must be >= 0, got {skip_ends}")
    if baseline:
        missing = [video.name for video in videos if video.blurred is None]
        if missing:
            raise ValueError(f"no blurred input for video(s) {', '.join(missing)}")
    restored_scores, input_scores = Scores(crop), Scores(crop) if baseline else None
    for video in videos:
        streams = [(video.sharp_source, video.sharp()), restore_fn(video)]
        if baseline:
            streams.append((video.blurred_source, video.blurred()))
        frames = zip_frames(*streams)
        if limit is not None:
            frames = itertools.islice(frames, skip_ends + limit)
        held = collections.deque()  # the last skip_ends frames seen, scored once a later one arrives
        for index, (sharp, restored, *blurred) in enumerate(frames):
            on_frame(video.name)
            if index < skip_ends:
                continue
            held.append((sharp, restored, blurred))
            if len(held) > skip_ends:
                sharp, restored, blurred = held.popleft()
                restored_scores.add(video.name, restored, sharp)
                if baseline:
                    input_scores.add(video.name, blurred[0], sharp)
    return restored_scores, input_scores


@torch.no_grad()
def score_restoration(model: CDVDTSP, videos: Sequence[Video], config: DeblurConfig,
                      device: torch.device | str = "cpu", limit: int | None = None) -> tuple[Scores, Scores]:
    """(input scores, output scores) of ``model`` over ``videos`` (first ``limit`` frames of each; None:
    all). The model is put in eval mode and left there."""
    model.eval()
    restored, inputs = score(videos, model_restore_fn(model, config, torch.device(device), "the model"),
                             baseline=True, limit=limit)
    return inputs, restored


Row = tuple[str, Summary, Summary | None]


def summaries(restored: Scores, inputs: Scores | None) -> tuple[list[Row], Row]:
    """``(video, restored summary, input summary or None)`` per video, and the same for the average."""
    input_videos = inputs.per_video() if inputs else {}
    videos = [(name, summary, input_videos.get(name)) for name, summary in restored.per_video().items()]
    return videos, ("average", restored.overall(), inputs.overall() if inputs else None)


def _frame_rows(restored: Scores, inputs: Scores | None) -> list[tuple[FrameScore, FrameScore | None]]:
    return list(zip(restored.frames, inputs.frames if inputs else [None] * len(restored.frames)))


def _figures(item: Summary | FrameScore) -> dict:
    """``{"psnr": dB, or None when infinite, "ssim": ...}``."""
    return {"psnr": item.psnr if math.isfinite(item.psnr) else None, "ssim": item.ssim}


def _entry(out: Summary | FrameScore, inp: Summary | FrameScore | None) -> dict:
    return {"restored": _figures(out)} | ({"input": _figures(inp)} if inp else {})


def report(restored: Scores, inputs: Scores | None, sources: dict[str, str]) -> dict:
    """The JSON document: sources, protocol, per-video and average summaries, per-frame figures.

    Figures are ``{"psnr": dB or null when infinite, "ssim": ...}`` under ``"restored"`` and, with a
    baseline, ``"input"``.
    """
    videos, (_, average, average_input) = summaries(restored, inputs)
    return {
        "sources": sources,
        "protocol": {"crop": restored.crop, "psnr_peak": metrics.PEAK,
                     "ssim": f"{metrics.WINDOW_SIZE}x{metrics.WINDOW_SIZE} Gaussian window, sigma "
                             f"{metrics.WINDOW_SIGMA}, per channel, valid region, C1=(0.01*255)^2, "
                             f"C2=(0.03*255)^2",
                     "average": "mean over all frames"},
        "videos": [{"video": name, "frames": out.frames, **_entry(out, inp)} for name, out, inp in videos],
        "average": {"frames": average.frames, **_entry(average, average_input)},
        "frames": [{"video": out.video, "frame": out.index, **_entry(out, inp)}
                   for out, inp in _frame_rows(restored, inputs)],
    }


def write_csv(path: Path, restored: Scores, inputs: Scores | None) -> None:
    """One row per frame: video, frame, restored_psnr, restored_ssim[, input_psnr, input_ssim]."""
    header = ["video", "frame", "restored_psnr", "restored_ssim"]
    header += ["input_psnr", "input_ssim"] if inputs else []
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for out, inp in _frame_rows(restored, inputs):
            figures = [out.psnr, out.ssim] + ([inp.psnr, inp.ssim] if inp else [])
            writer.writerow([out.video, out.index, *figures])
