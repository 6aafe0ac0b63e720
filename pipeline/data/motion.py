"""Synthetic scenes with exact motion, rendered from real photographs with the project's warp.

A scene is a background photograph moved by a smooth random camera path and a few foreground layers cut
from other photographs, each moved along its own path (FlyingChairs / AutoFlow style). A path gives, for
any instant t (in frames, fractions allowed), a homography from the layer's photograph to the frame. From
it the renderer draws frames (``model.warp.sample_at``, the warps' bilinear ``align_corners=True``
convention) and the exact backward flow between two instants: for each pixel p of the frame at t0, where
the surface seen at p is in the frame at t1, ``flow(p) = A(t1) A(t0)^-1 p - p`` for the topmost layer
covering p at t0 (occluded or not at t1, as in FlyingChairs).

The same scenes serve two purposes: flow pairs with ground truth for pretraining PWC-Net
(`pipeline.training.flow`), and camera-shake sequences whose frames are averaged the DVD/GOPRO way
(`pipeline.data.synth`) into blurred/sharp training pairs (`scripts/build_training_set.py`).

A camera path is ``A(t) = C M(t) C^-1 B``: ``B`` places the photograph (scaled to cover the frame with a
margin), ``C`` moves the origin to the frame centre, and ``M(t)`` is a similarity plus a small perspective
part whose parameters drift at a constant rate and shake with two sinusoids (handheld motion), all zero
at t = 0.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.warp import sample_at


@dataclass(frozen=True)
class MotionConfig:
    """Ranges the random scenes are drawn from; sizes in pixels of the frame, rates per frame.

    Attributes:
        speed: camera drift, px per frame (uniform in the range, random direction).
        shake: amplitude of the handheld shake, px (two sinusoids of 0.05-0.3 cycles per frame).
        rotation: drift of the camera roll, radians per frame (uniform in +-).
        zoom: drift of the log scale per frame (uniform in +-).
        perspective: drift of the projective terms per frame, per pixel (uniform in +-).
        margin: the photograph covers the frame by this factor (range), so drift stays inside it.
        layers: number of foreground layers (inclusive range).
        layer_size: a layer's side as a fraction of the frame's shorter side (range).
        layer_speed: a layer's drift in the frame, px per frame (independent of the camera's).
    """

    speed: tuple[float, float] = (0.0, 4.0)
    shake: float = 1.5
    rotation: float = 0.004
    zoom: float = 0.004
    perspective: float = 2e-6
    margin: tuple[float, float] = (1.3, 1.8)
    layers: tuple[int, int] = (0, 3)
    layer_size: tuple[float, float] = (0.15, 0.45)
    layer_speed: tuple[float, float] = (0.0, 6.0)

    def __post_init__(self) -> None:
        for name in ("speed", "margin", "layers", "layer_size", "layer_speed"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(
                    f"motion.{name} must be a range low <= high of non-negative values, got {(low, high)}"
                )
        if self.margin[0] < 1:
            raise ValueError(
                f"motion.margin must be >= 1 (the photograph covers the frame), got {self.margin}"
            )


def _homography(params: torch.Tensor) -> torch.Tensor:
    """(6,) (tx, ty, angle, log scale, px, py) -> (3, 3) float64 ``M``; identity at zero."""
    tx, ty, angle, log_scale, px, py = params.tolist()
    scale = math.exp(log_scale)
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[cos, -sin, tx], [sin, cos, ty], [px, py, 1.0]], dtype=torch.float64)


def _translate(x: float, y: float) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _scale(factor: float) -> torch.Tensor:
    return torch.diag(torch.tensor([factor, factor, 1.0], dtype=torch.float64))


class Path:
    """A smooth random path of homographies: photograph pixels -> frame pixels at instant t.

    Args:
        base: (3, 3) placement of the photograph at t = 0.
        centre: (x, y) of the frame centre, the origin of rotation and zoom.
        drift: (6,) parameter rates per frame; shake: (2, 6) amplitudes, (2,) frequencies in radians per
            frame, (2, 6) phases.
    """

    def __init__(
        self,
        base: torch.Tensor,
        centre: tuple[float, float],
        drift: torch.Tensor,
        shake: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> None:
        self.base, self.drift, self.shake = base, drift, shake
        self.to_centre, self.from_centre = _translate(*centre), _translate(-centre[0], -centre[1])

    def at(self, t: float) -> torch.Tensor:
        """(3, 3) float64 ``A(t)``."""
        amplitude, frequency, phase = self.shake
        wobble = (amplitude * (torch.sin(frequency[:, None] * t + phase) - torch.sin(phase))).sum(0)  # (6,)
        return self.to_centre @ _homography(self.drift * t + wobble) @ self.from_centre @ self.base


@dataclass
class Layer:
    """A photograph (or a cut-out of one) and its path; ``alpha`` (1, h, w) in [0, 1], None = opaque."""

    image: torch.Tensor  # (3, h, w) float32 in [0, 1]
    path: Path
    alpha: torch.Tensor | None = None


class Scene:
    """Layers bottom to top over a ``height`` x ``width`` frame; renders frames and exact flow."""

    def __init__(self, layers: Sequence[Layer], height: int, width: int) -> None:
        self.layers, self.height, self.width = list(layers), height, width
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
        )
        self.pixels = torch.stack((xs, ys, torch.ones_like(xs)), dim=-1)  # (H, W, 3) homogeneous

    def _map(self, matrix: torch.Tensor) -> torch.Tensor:
        """(H, W, 2) float64: where each frame pixel goes under the (3, 3) homography ``matrix``."""
        mapped = self.pixels @ matrix.T  # (H, W, 3)
        return mapped[..., :2] / mapped[..., 2:]

    def _coverage(self, t: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer: (colour (3, H, W), alpha (1, H, W)) as seen in the frame at t."""
        seen = []
        for layer in self.layers:
            positions = self._map(torch.linalg.inv(layer.path.at(t)))[None].float()  # (1, H, W, 2)
            colour = sample_at(layer.image[None], positions, "border")[0]
            if layer.alpha is None:
                alpha = torch.ones(1, self.height, self.width)
            else:
                alpha = sample_at(layer.alpha[None], positions, "zeros")[0]
            seen.append((colour, alpha))
        return seen

    def render(self, t: float) -> torch.Tensor:
        """(3, H, W) float32 frame at instant t: layers composited over by their alpha."""
        frame = torch.zeros(3, self.height, self.width)
        for colour, alpha in self._coverage(t):
            frame = frame * (1 - alpha) + colour * alpha
        return frame.clamp_(0, 1)

    def flow(self, t0: float, t1: float) -> torch.Tensor:
        """(2, H, W) float32 exact backward flow: pixel p of the frame at t0 shows what is at p + flow in the
        frame at t1 (the topmost layer with alpha >= 0.5 at p decides)."""
        flow = torch.zeros(2, self.height, self.width, dtype=torch.float64)
        for layer, (_, alpha) in zip(self.layers, self._coverage(t0)):
            moved = self._map(layer.path.at(t1) @ torch.linalg.inv(layer.path.at(t0))) - self.pixels[..., :2]
            flow = torch.where(alpha >= 0.5, moved.permute(2, 0, 1), flow)
        return flow.float()


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _random_path(
    rng: np.random.Generator,
    config: MotionConfig,
    base: torch.Tensor,
    centre: tuple[float, float],
    speed: tuple[float, float],
    shake: float,
) -> Path:
    direction = rng.uniform(0, 2 * math.pi)
    rate = _uniform(rng, speed)
    drift = torch.tensor(
        [
            rate * math.cos(direction),
            rate * math.sin(direction),
            rng.uniform(-config.rotation, config.rotation),
            rng.uniform(-config.zoom, config.zoom),
            rng.uniform(-config.perspective, config.perspective),
            rng.uniform(-config.perspective, config.perspective),
        ],
        dtype=torch.float64,
    )
    # shake: translation in px, roll and zoom scaled like the drift limits
    scales = torch.tensor([shake, shake, config.rotation, config.zoom, 0.0, 0.0], dtype=torch.float64)
    amplitude = torch.from_numpy(rng.uniform(0, 1, size=(2, 6))) * scales
    frequency = torch.from_numpy(rng.uniform(0.05, 0.3, size=2) * 2 * math.pi)
    phase = torch.from_numpy(rng.uniform(0, 2 * math.pi, size=(2, 6)))
    return Path(base, centre, drift, (amplitude, frequency, phase))


def _blob(rng: np.random.Generator, height: int, width: int) -> torch.Tensor:
    """(1, h, w) alpha of a random smooth blob (a superellipse with a wobbly radius), anti-aliased."""
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height, dtype=torch.float64),
        torch.linspace(-1, 1, width, dtype=torch.float64),
        indexing="ij",
    )
    power = rng.uniform(1.5, 4.0)
    angle = torch.atan2(ys, xs)
    radius = 0.9 + sum(
        rng.uniform(0, 0.08) * torch.cos(k * angle + rng.uniform(0, 2 * math.pi)) for k in range(2, 6)
    )
    level = (xs.abs() ** power + ys.abs() ** power) ** (1 / power) / radius  # < 1 inside
    edge = 2.0 / min(height, width)  # about one pixel of soft edge
    return ((1 - level) / edge + 0.5).clamp(0, 1).float()[None]


def random_scene(
    rng: np.random.Generator,
    photos: Sequence[torch.Tensor],
    height: int,
    width: int,
    config: MotionConfig = MotionConfig(),
) -> Scene:
    """A background photograph and 0-3 foreground cut-outs from the others, each on a random path.

    Args:
        photos: (3, h, w) float32 photographs in [0, 1]; the background is drawn from them, layers from any.
        height, width: the frame.
    """
    if not photos:
        raise ValueError("random_scene needs at least one photograph")
    centre = ((width - 1) / 2, (height - 1) / 2)
    background = photos[int(rng.integers(len(photos)))]
    _, src_h, src_w = background.shape
    scale = max(height / src_h, width / src_w) * _uniform(rng, config.margin)
    spare_x, spare_y = src_w * scale - width, src_h * scale - height
    base = _translate(-spare_x * rng.uniform(0.25, 0.75), -spare_y * rng.uniform(0.25, 0.75)) @ _scale(scale)
    layers = [Layer(background, _random_path(rng, config, base, centre, config.speed, config.shake))]
    for _ in range(int(rng.integers(config.layers[0], config.layers[1] + 1))):
        photo = photos[int(rng.integers(len(photos)))]
        _, src_h, src_w = photo.shape
        side = _uniform(rng, config.layer_size) * min(height, width)
        aspect = rng.uniform(0.6, 1.6)
        box_h, box_w = int(max(8, side * aspect**0.5)), int(max(8, side / aspect**0.5))
        zoom = rng.uniform(0.5, 1.5)  # layer pixels per frame pixel
        cut_h, cut_w = min(src_h, int(box_h * zoom)), min(src_w, int(box_w * zoom))
        y0, x0 = int(rng.integers(0, src_h - cut_h + 1)), int(rng.integers(0, src_w - cut_w + 1))
        cut = photo[:, y0 : y0 + cut_h, x0 : x0 + cut_w]
        place = _translate(rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)) @ torch.diag(
            torch.tensor([box_w / cut_w, box_h / cut_h, 1.0], dtype=torch.float64)
        )
        path = _random_path(rng, config, place, centre, config.layer_speed, config.shake)
        layers.append(Layer(cut.contiguous(), path, _blob(rng, cut_h, cut_w)))
    return Scene(layers, height, width)
