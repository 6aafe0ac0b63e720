"""PWC-Net trained here, with no downloaded weights: on rendered motion with exact flow, and on real
footage with the flow of a classical method as its target (distillation).

Two pair sources, mixed by ``footage_share``:

* *rendered*: `pipeline.data.motion` scenes built from real photographs: frame 1 at instant 0, frame 2 at
  instant ``gap``, and the exact backward flow between them;
* *footage*: two frames ``gap`` apart of a real sharp sequence (the training set's ``sequences/train``) and
  OpenCV's DIS flow between them (`dis_flow`; OpenCV is a training-time dependency only), valid where the
  forward and backward flows agree. DIS sees the sharp frames, so its flow is the motion between the
  instants, whatever blur the net's inputs then get.

With probability ``blurred`` both frames are exposures (`pipeline.data.synth`; rendered: the linear-light
mean of 7 frames; footage: a `pipeline.data.exposures` draw of 3 to 11 frames, linear or gamma), because
the cascade's first stage estimates flow between blurred frames; the flow of a blurred pair is that of the
middle instants. Pair i of a run depends on ``(seed, i)`` only, so a resumed run sees the same data.

The loss is PWC-Net's multi-scale endpoint error (Sun et al. 2018, Eq. 1, without the weight decay):
``sum_l alpha_l sum_x |w_l(x) - w_l^GT(x)|_2`` over levels 6 .. 2, with the ground truth scaled by 1/20
and area-downsampled to each level, alpha = (0.32, 0.08, 0.02, 0.01, 0.005), averaged over the batch; a
footage pair's pixels count where its target is valid. From the matching start (`pipeline.training.matching`)
its matching loss is added at the weight ``flow.matching``.
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
from pipeline.config import BlurConfig, FlowConfig
from pipeline.data.datasets import random_crop_box
from pipeline.data.exposures import with_noise
from pipeline.data.motion import MotionConfig, random_scene
from pipeline.data.synth import DVD_EXPOSURE, SynthConfig, blur_window, synthesize
from pipeline.precision import precision_context
from pipeline.training.matching import level_truth, matching_loss
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


Pair = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""first and second (3, S, S) in [0, 1], flow (2, S, S) in pixels, valid (1, S, S) in {0, 1}."""


def make_pair(photos: Sequence[torch.Tensor], config: PairConfig, seed: int, index: int) -> Pair:
    """Rendered pair ``index`` of run ``seed``; its flow is exact, so valid everywhere."""
    rng = np.random.default_rng((seed, index))
    scene = random_scene(rng, photos, config.size, config.size, config.motion)
    gap = int(rng.integers(config.gap[0], config.gap[1] + 1))
    blurred = bool(rng.random() < config.blurred)
    first, second = (_frame(scene, t, blurred) for t in (0.0, float(gap)))
    return first, second, scene.flow(0.0, float(gap)), torch.ones(1, config.size, config.size)


def dis_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flow from ``first`` to ``second`` ((H, W, 3) uint8 RGB) by OpenCV's DIS
    (``PRESET_MEDIUM``), in pixels: pixel p of the first frame is at p + flow in the second."""
    try:
        import cv2  # training and measuring only: OpenCV is not a dependency of deblurring
    except ImportError as error:
        raise ValueError("flow from footage needs OpenCV: pip install -e '.[train]', "
                         "or --set flow.footage_share=0") from error

    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in (first, second)]
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(*grey, None)


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) bool: where following ``forward`` and then ``backward`` (each (H, W, 2)) comes back to
    within the usual tolerance, |f + b(p + f)|^2 < 0.01 (|f|^2 + |b(p + f)|^2) + 0.5 (Sundaram et al.)."""
    flow = torch.from_numpy(forward).permute(2, 0, 1)[None]  # (1, 2, H, W)
    back, inside = warp(torch.from_numpy(backward).permute(2, 0, 1)[None], flow)
    loop = (flow + back).square().sum(1)  # (1, H, W)
    bound = 0.01 * (flow.square().sum(1) + back.square().sum(1)) + 0.5
    return ((loop < bound) & inside[:, 0].bool())[0].numpy()


def symmetric(first: np.ndarray, second: np.ndarray, flow: np.ndarray, valid: np.ndarray,
              hflip: bool, vflip: bool, rot90: bool) -> tuple[np.ndarray, ...]:
    """A pair's frames ((S, S, 3)), flow ((S, S, 2)) and valid mask ((S, S)) flipped left-right, then up-down,
    then turned 90 degrees counter-clockwise, each when asked, the flow's vectors turned with them."""
    if hflip:
        first, second, flow, valid = first[:, ::-1], second[:, ::-1], flow[:, ::-1] * (-1, 1), valid[:, ::-1]
    if vflip:
        first, second, flow, valid = first[::-1], second[::-1], flow[::-1] * (1, -1), valid[::-1]
    if rot90:  # (x, y) -> (y, S - 1 - x): a displacement (u, v) becomes (v, -u)
        first, second, valid = np.rot90(first), np.rot90(second), np.rot90(valid)
        flow = np.rot90(flow)[..., ::-1] * (1, -1)
    return first, second, flow, valid


def footage_pair(sequences: Sequence[np.ndarray], config: PairConfig, blur: BlurConfig, seed: int,
                 index: int, still: bool = False) -> Pair:
    """Footage pair ``index`` of run ``seed``: two frames of a real sequence ``gap`` apart, either order,
    their DIS flow as the target; an ``S`` x ``S`` crop in one of the square's 8 symmetries (sequences
    smaller than that are passed over). ``still``: a still shot instead, one frame twice, each with its own
    sensor noise (sigma drawn from ``blur.noise``), zero flow as the target, valid everywhere."""
    rng = np.random.default_rng((seed, index))
    window = int(rng.choice([w for w in blur.windows if w > 1])) if rng.random() < config.blurred else 1
    exposure = SynthConfig(window=window, linear_light=bool(rng.random() >= blur.gamma))
    gap = int(rng.integers(config.gap[0], config.gap[1] + 1)) * int(rng.choice((-1, 1))) * (not still)
    span = window // 2
    lengths = np.array([len(s) if min(s.shape[1:3]) >= config.size else 0 for s in sequences])
    room = np.maximum(lengths - 2 * span - abs(gap), 0)
    if not room.any():
        raise ValueError(f"no sequence has the {config.size} px and the frames that a {window}-frame "
                         f"exposure pair {abs(gap)} frames apart needs")
    sequence = sequences[int(rng.choice(len(lengths), p=room / room.sum()))]
    centre = span + max(0, -gap) + int(rng.integers(0, len(sequence) - 2 * span - abs(gap)))
    if still:
        forward = np.zeros((*sequence.shape[1:3], 2), np.float32)
        valid = np.ones(sequence.shape[1:3], bool)
    else:
        forward = dis_flow(sequence[centre], sequence[centre + gap])
        valid = consistent(forward, dis_flow(sequence[centre + gap], sequence[centre]))
    y0, x0 = random_crop_box(rng, sequence.shape[1], sequence.shape[2], config.size)
    box = (slice(y0, y0 + config.size), slice(x0, x0 + config.size))
    frames = [blur_window(sequence[c - span:c + span + 1, box[0], box[1]], exposure)
              for c in (centre, centre + gap)]
    if still:
        frames = list(with_noise(np.stack(frames), rng.uniform(*blur.noise), rng))
    hflip, vflip, rot90 = (bool(b) for b in rng.integers(0, 2, size=3))
    first, second, flow, valid = symmetric(*frames, forward[box], valid[box], hflip, vflip, rot90)
    first, second = (to_model(torch.from_numpy(np.ascontiguousarray(f))[None])[0] for f in (first, second))
    flow = torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).float()
    return first, second, flow, torch.from_numpy(np.ascontiguousarray(valid))[None].float()


class FlowPairs(torch.utils.data.IterableDataset):
    """Batches ``(first, second, flow, valid)``, (B, 3, S, S) x2, (B, 2, S, S) and (B, 1, S, S), from batch
    ``start`` on: pair i a footage pair with probability ``footage_share`` (decided by ``(seed, i)``), else
    a rendered one; a footage pair is a still shot with probability ``still``."""

    def __init__(
        self, photos: Sequence[torch.Tensor], config: PairConfig, *, batch: int, seed: int, start: int = 0,
        footage: Sequence[np.ndarray] = (), footage_share: float = 0.0, blur: BlurConfig | None = None,
        still: float = 0.0,
    ) -> None:
        super().__init__()
        if footage_share and not footage:
            raise ValueError("a share of footage pairs needs footage sequences (flow.footage)")
        self.photos, self.config, self.batch, self.seed, self.start = list(photos), config, batch, seed, start
        self.footage, self.footage_share, self.blur = list(footage), footage_share, blur or BlurConfig()
        self.still = still

    def pair(self, index: int) -> Pair:
        footage, still = np.random.default_rng((self.seed, index, 1)).random(2)
        if footage < self.footage_share:
            return footage_pair(self.footage, self.config, self.blur, self.seed, index, still < self.still)
        return make_pair(self.photos, self.config, self.seed, index)

    def __iter__(self) -> Iterator[Pair]:
        step = self.start
        while True:
            pairs = [self.pair(step * self.batch + i) for i in range(self.batch)]
            yield tuple(torch.stack(items) for items in zip(*pairs))
            step += 1


def multiscale_epe(levels: Sequence[torch.Tensor], flow: torch.Tensor,
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    """PWC-Net's training loss.

    Args:
        levels: `PWCNet.decode` output, five (B, 2, h_l, w_l) flows in network units, levels 6 .. 2.
        flow: (B, 2, H, W) ground truth in pixels of the frames PWC-Net saw (sizes multiples of 64).
        valid: (B, 1, H, W) in {0, 1}, where ``flow`` holds (None: everywhere). At each level a pixel's
            truth is the mean of its valid pixels' and it counts by their share.

    Returns:
        0-d loss: sum over levels of alpha_l * (sum over pixels of the endpoint error), batch mean.
    """
    valid = flow.new_ones((flow.shape[0], 1, *flow.shape[-2:])) if valid is None else valid
    loss = flow.new_zeros(())
    for weight, estimate in zip(LEVEL_WEIGHTS, levels):
        truth, share = level_truth(flow / FLOW_SCALE, valid, estimate.shape[-2:])  # (B, 2 | 1, h_l, w_l)
        error = (estimate.float() - truth).norm(dim=1, keepdim=True) * share
        loss = loss + weight * error.sum(dim=(1, 2, 3)).mean()
    return loss


def warm_up_(optimizer: torch.optim.Optimizer, flow: FlowConfig, step: int) -> None:
    """The flow phase's rate for its update ``step`` (from 0): ``flow.lr`` after a linear warm-up over
    ``flow.warmup`` updates, a function of the step alone (so a resumed run goes on with the same rates)."""
    for group in optimizer.param_groups:
        group["lr"] = flow.lr * min(1.0, (step + 1) / max(flow.warmup, 1))


def flow_loss(net: PWCNet, first: torch.Tensor, second: torch.Tensor, truth: torch.Tensor,
              valid: torch.Tensor | None, precision: str, device: torch.device,
              matching: float = 0.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The flow phase's forward: PWC-Net's five flows for the (B, 3, H, W) pairs in ``precision`` (bf16
    autocast or fp32) and `multiscale_epe` against ``truth`` (B, 2, H, W), valid where ``valid``, plus
    ``matching`` times `pipeline.training.matching.matching_loss` of the pairs' pyramids. Returns the 0-d
    loss and the five flows."""
    if valid is None:
        valid = truth.new_ones((truth.shape[0], 1, *truth.shape[-2:]))
    with precision_context(device, precision):
        first_pyramid, second_pyramid = net.pair_features(first, second)
        levels = net.decode(first_pyramid, second_pyramid)
    loss = multiscale_epe(levels, truth, valid)
    if matching:
        loss = loss + matching * matching_loss(first_pyramid, second_pyramid, truth, valid)[0]
    return loss, levels


def batch_epe(levels: Sequence[torch.Tensor], flow: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """The endpoint error (px) of a training batch's refined flow (``levels[-1]`` of `PWCNet.decode`,
    upsampled to ``flow``'s (B, 2, H, W)) and of zero flow, over the pixels where ``valid`` (B, 1, H, W)."""
    estimate = FLOW_SCALE * F.interpolate(levels[-1].detach().float(), size=flow.shape[-2:], mode="bilinear",
                                          align_corners=False)
    pixels = valid.sum()
    net = ((estimate - flow).norm(dim=1, keepdim=True) * valid).sum() / pixels
    zero = (flow.norm(dim=1, keepdim=True) * valid).sum() / pixels
    return net.item(), zero.item()


@dataclass(frozen=True)
class FlowScores:
    """Endpoint error of the net and of zero flow (px) on rendered pairs with ground truth."""

    epe: float
    zero_epe: float
    pairs: int


@torch.no_grad()
def evaluate_pairs(net: PWCNet, pairs: Sequence[Pair], device: torch.device) -> FlowScores:
    """Mean EPE over all pixels of rendered ``pairs`` (`make_pair`), and of zero flow."""
    errors, zeros = [], []
    for first, second, flow, _ in pairs:
        predicted = net(first[None].to(device), second[None].to(device))[0].float().cpu()
        errors.append((predicted - flow).norm(dim=0).mean().item())
        zeros.append(flow.norm(dim=0).mean().item())
    return FlowScores(float(np.mean(errors)), float(np.mean(zeros)), len(pairs))


@dataclass(frozen=True)
class PhotometricScores:
    """Mean absolute error (levels of 255) of the centre against the neighbour warped by the net's flow,
    against the unwarped neighbour, and against the neighbour warped by DIS's flow (`dis_flow`, the
    classical method the net is distilled from), over the pixels where both warps are valid; ``frames``
    pairs scored."""

    warped: float
    unwarped: float
    dis: float
    frames: int


@torch.no_grad()
def photometric(net: PWCNet, frames: Sequence[np.ndarray], device: torch.device) -> PhotometricScores:
    """Consecutive (H, W, 3) uint8 frames of a real video: how much better the net's flow aligns them."""
    errors: dict[str, list[float]] = {"warped": [], "unwarped": [], "dis": []}
    clip = to_model(torch.from_numpy(np.stack(frames))).to(device)  # (F, 3, H, W)
    for index, (centre, neighbour) in enumerate(zip(clip[:-1], clip[1:])):
        classical = torch.from_numpy(dis_flow(frames[index], frames[index + 1])).permute(2, 0, 1)[None]
        flows = {"warped": net(centre[None], neighbour[None]).float(), "dis": classical.to(device)}
        for name, error in alignment_errors(centre, neighbour, flows).items():
            errors[name].append(error)
    return PhotometricScores(**{name: float(np.mean(values)) for name, values in errors.items()},
                             frames=len(errors["warped"]))


def alignment_errors(centre: torch.Tensor, neighbour: torch.Tensor,
                     flows: dict[str, torch.Tensor]) -> dict[str, float]:
    """The mean absolute difference (levels of 255) of the (3, H, W) ``centre`` against ``neighbour``
    warped by each of ``flows`` ((1, 2, H, W), from centre to neighbour) and unwarped (``"unwarped"``),
    over the pixels where every warp lands inside the frame."""
    aligned, mask = warp(neighbour[None].expand(len(flows), -1, -1, -1), torch.cat(list(flows.values())))
    inside = mask.prod(dim=0).expand_as(centre).bool()  # (3, H, W)
    candidates = {**dict(zip(flows, aligned)), "unwarped": neighbour}
    return {name: (candidate - centre).abs()[inside].mean().item() * 255
            for name, candidate in candidates.items()}


def score_flow(net: PWCNet, flow: FlowConfig, device: torch.device, frames: int | None = None) -> dict:
    """The flow net's report card, as JSON-ready dicts: ``pairs`` (`FlowScores` on ``flow.val_pairs``
    held-out rendered pairs from ``flow.val_photos``) and ``footage`` (`PhotometricScores` per held-out
    sharp frame folder of ``flow.val_footage``, on its sharp frames and on their DVD-style exposures, the
    first ``frames`` of each or all); each only when its source is set.
    """
    result = {}
    if flow.val_photos:
        photos = load_photos(flow.val_photos)
        config = PairConfig(size=flow.size, blurred=flow.blurred, gap=tuple(flow.gap))
        pairs = [make_pair(photos, config, flow.seed + VAL_SEED_OFFSET, i) for i in range(flow.val_pairs)]
        result["pairs"] = dataclasses.asdict(evaluate_pairs(net, pairs, device))
    if flow.val_footage:
        result["footage"] = {}
        for folder in sorted(p for p in Path(flow.val_footage).iterdir() if p.is_dir()):
            sharp = [read_image(path) for path in frame_files(folder)]
            blurred = [pair.blurred for pair in synthesize(sharp, DVD_EXPOSURE)][:frames]
            result["footage"][folder.name] = {
                kind: dataclasses.asdict(photometric(net, clip, device))
                for kind, clip in (("sharp", sharp[:frames]), ("blurred", blurred))
            }
    return result
