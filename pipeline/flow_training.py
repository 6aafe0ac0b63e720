"""Supervised PWC-Net pretraining on rendered motion with exact flow (no downloaded weights needed).

Pairs come from `pipeline.data.motion` scenes built from real photographs: frame 1 at instant 0, frame 2 at
instant ``gap``, and the exact backward flow between them. With probability ``blurred`` both frames are
DVD-style exposures (the linear-light mean of 7 frames around each instant, `pipeline.data.synth`), because
the cascade's first stage estimates flow between blurred frames; the flow of a blurred pair is that of
the middle instants. Pair i of a run depends on ``(seed, i)`` only, so a resumed run sees the same data.

The loss is PWC-Net's multi-scale endpoint error (Sun et al. 2018, Eq. 1, without the weight decay):
``sum_l alpha_l sum_x |w_l(x) - w_l^GT(x)|_2`` over levels 6 .. 2, with the ground truth scaled by 1/20
and area-downsampled to each level, alpha = (0.32, 0.08, 0.02, 0.01, 0.005), averaged over the batch.
"""

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.pwc import FLOW_SCALE, PWCNet
from model.warp import warp
from pipeline.config import FlowConfig
from pipeline.data.datasets import discover_frame_pairs
from pipeline.data.motion import MotionConfig, random_scene
from pipeline.data.synth import DVD_EXPOSURE, blur_window
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.sequences import frame_files, read_image

LEVEL_WEIGHTS = (0.32, 0.08, 0.02, 0.01, 0.005)  # levels 6 .. 2, PWC-Net paper
VAL_SEED_OFFSET = 10_000  # held-out pairs use a seed no training run uses


def load_photos(folder: str | Path, max_side: int = 640) -> list[torch.Tensor]:
    """The PNG/JPG files of ``folder`` as (3, h, w) float32 in [0, 1], downscaled to at most ``max_side``."""
    photos = []
    for path in frame_files(Path(folder)):
        image = torch.from_numpy(read_image(path).copy())[None]  # (1, h, w, 3)
        photo = to_model(image)  # (1, 3, h, w)
        factor = max_side / max(photo.shape[-2:])
        if factor < 1:
            photo = F.interpolate(photo, scale_factor=factor, mode="area")
        photos.append(photo[0])
    if not photos:
        raise ValueError(f"{folder}: no photographs (PNG/JPG) found")
    return photos


@dataclass(frozen=True)
class PairConfig:
    """Flow pairs: ``size`` x ``size`` frames (a multiple of 64, so PWC-Net sees them unresized), the
    instants ``gap`` frames apart (inclusive range), a share ``blurred`` of DVD-style exposures."""

    size: int = 128
    gap: tuple[int, int] = (1, 2)
    blurred: float = 0.5
    motion: MotionConfig = MotionConfig()

    def __post_init__(self) -> None:
        if self.size < 64 or self.size % 64:
            raise ValueError(f"flow pair size must be a positive multiple of 64, got {self.size}")
        if not 1 <= self.gap[0] <= self.gap[1]:
            raise ValueError(f"flow pair gap must be a range 1 <= low <= high, got {self.gap}")
        if not 0 <= self.blurred <= 1:
            raise ValueError(f"flow pair blurred share must be in [0, 1], got {self.blurred}")


def _frame(scene, t: float, blurred: bool) -> torch.Tensor:
    """(3, H, W) the scene at ``t`` quantised to 8 bits as video is: a sharp frame, or the DVD-style
    exposure of the 7 frames around it."""
    if not blurred:
        return to_model(to_uint8(scene.render(t)[None]))[0]
    half = DVD_EXPOSURE.window // 2
    frames = torch.stack([scene.render(t + k) for k in range(-half, half + 1)])  # (7, 3, H, W)
    mean = blur_window(to_uint8(frames).numpy(), DVD_EXPOSURE)  # (H, W, 3) uint8
    return to_model(torch.from_numpy(mean)[None])[0]


def make_pair(
    photos: Sequence[torch.Tensor], config: PairConfig, seed: int, index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair ``index`` of run ``seed``: first and second (3, S, S) in [0, 1], flow (2, S, S) in pixels."""
    rng = np.random.default_rng((seed, index))
    scene = random_scene(rng, photos, config.size, config.size, config.motion)
    gap = int(rng.integers(config.gap[0], config.gap[1] + 1))
    blurred = bool(rng.random() < config.blurred)
    first, second = (_frame(scene, t, blurred) for t in (0.0, float(gap)))
    return first, second, scene.flow(0.0, float(gap))


class FlowPairs(torch.utils.data.IterableDataset):
    """Batches ``(first, second, flow)``, (B, 3, S, S) x2 and (B, 2, S, S), from batch ``start`` on."""

    def __init__(
        self, photos: Sequence[torch.Tensor], config: PairConfig, *, batch: int, seed: int, start: int = 0
    ) -> None:
        super().__init__()
        self.photos, self.config, self.batch, self.seed, self.start = list(photos), config, batch, seed, start

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        step = self.start
        while True:
            pairs = [
                make_pair(self.photos, self.config, self.seed, step * self.batch + i)
                for i in range(self.batch)
            ]
            yield tuple(torch.stack(items) for items in zip(*pairs))
            step += 1


def multiscale_epe(levels: Sequence[torch.Tensor], flow: torch.Tensor) -> torch.Tensor:
    """PWC-Net's training loss.

    Args:
        levels: `PWCNet.decode` output, five (B, 2, h_l, w_l) flows in network units, levels 6 .. 2.
        flow: (B, 2, H, W) ground truth in pixels of the frames PWC-Net saw (sizes multiples of 64).

    Returns:
        0-d loss: sum over levels of alpha_l * (sum over pixels of the endpoint error), batch mean.
    """
    target = flow / FLOW_SCALE
    loss = flow.new_zeros(())
    for weight, estimate in zip(LEVEL_WEIGHTS, levels):
        truth = F.adaptive_avg_pool2d(target, estimate.shape[-2:])  # (B, 2, h_l, w_l)
        loss = loss + weight * (estimate.float() - truth).norm(dim=1).sum(dim=(1, 2)).mean()
    return loss


@dataclass(frozen=True)
class FlowScores:
    """Endpoint error of the net and of zero flow (px) on rendered pairs with ground truth."""

    epe: float
    zero_epe: float
    pairs: int


@torch.no_grad()
def evaluate_pairs(
    net: PWCNet, pairs: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], device: torch.device
) -> FlowScores:
    """Mean EPE over all pixels of ``pairs`` ((3, S, S), (3, S, S), (2, S, S) each), and of zero flow."""
    errors, zeros = [], []
    for first, second, flow in pairs:
        predicted = net(first[None].to(device), second[None].to(device))[0].float().cpu()
        errors.append((predicted - flow).norm(dim=0).mean().item())
        zeros.append(flow.norm(dim=0).mean().item())
    return FlowScores(float(np.mean(errors)), float(np.mean(zeros)), len(pairs))


@dataclass(frozen=True)
class PhotometricScores:
    """Mean absolute error (levels of 255) of the centre against the neighbour warped by the net's flow and
    against the unwarped neighbour, over the pixels where the warp is valid; ``frames`` pairs scored."""

    warped: float
    unwarped: float
    frames: int


@torch.no_grad()
def photometric(net: PWCNet, frames: Sequence[np.ndarray], device: torch.device) -> PhotometricScores:
    """Consecutive (H, W, 3) uint8 frames of a real video: how much better the net's flow aligns them."""
    warped_errors, unwarped_errors = [], []
    clip = to_model(torch.from_numpy(np.stack(frames))).to(device)  # (F, 3, H, W)
    for centre, neighbour in zip(clip[:-1], clip[1:]):
        flow = net(centre[None], neighbour[None])
        aligned, mask = warp(neighbour[None], flow)
        valid = mask.expand_as(aligned).bool()
        warped_errors.append((aligned[0] - centre).abs()[valid[0]].mean().item() * 255)
        unwarped_errors.append((neighbour - centre).abs()[valid[0]].mean().item() * 255)
    return PhotometricScores(
        float(np.mean(warped_errors)), float(np.mean(unwarped_errors)), len(warped_errors)
    )


def score_flow(net: PWCNet, flow: FlowConfig, device: torch.device) -> dict:
    """The flow net's report card, as JSON-ready dicts: ``pairs`` (`FlowScores` on ``flow.val_pairs``
    held-out rendered pairs from ``flow.val_photos``) and ``footage`` (`PhotometricScores` per held-out
    video of ``flow.val_footage``, on its sharp and on its blurred frames); each only when its source is set.
    """
    result = {}
    if flow.val_photos:
        photos = load_photos(flow.val_photos)
        config = PairConfig(size=flow.size, blurred=flow.blurred)
        pairs = [make_pair(photos, config, flow.seed + VAL_SEED_OFFSET, i) for i in range(flow.val_pairs)]
        result["pairs"] = dataclasses.asdict(evaluate_pairs(net, pairs, device))
    if flow.val_footage:
        result["footage"] = {}
        for video in discover_frame_pairs(flow.val_footage):
            frames = {kind: [read_image(p) for p in getattr(video, kind)] for kind in ("sharp", "blurred")}
            result["footage"][video.name] = {
                kind: dataclasses.asdict(photometric(net, clip, device)) for kind, clip in frames.items()
            }
    return result
