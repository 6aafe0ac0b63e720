"""Rendered motion (pipeline/data/motion.py): paths, frames and flow that is exact by construction."""

import numpy as np
import pytest
import torch
from skimage import data

from model.warp import warp
from pipeline.data.motion import Layer, MotionConfig, Path, Scene, random_scene


def _photo(image: np.ndarray, size: int = 160) -> torch.Tensor:
    """A real photograph as (3, h, w) float32, downscaled so its longer side is about ``size``."""
    step = max(1, max(image.shape[:2]) // size)
    return torch.from_numpy(np.ascontiguousarray(image[::step, ::step, :3])).permute(2, 0, 1).float() / 255


def _ramp(height: int, width: int) -> torch.Tensor:
    """(3, H, W) planes linear in x and y: bilinear sampling reproduces them exactly."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return torch.stack((xs / width, ys / height, (xs + ys) / (width + height)))


CENTRE = (31.5, 23.5)  # of the 64x48 frames below


def _path(base: torch.Tensor, drift=(0.0,) * 6, shake: float = 0.0, seed: int = 0) -> Path:
    """A path from ``base`` drifting by ``drift`` (tx, ty, angle, log scale, px, py) per frame, shaking by
    up to ``shake`` px."""
    rng = np.random.default_rng(seed)
    amplitude = torch.from_numpy(rng.uniform(0, 1, (2, 6))) * torch.tensor(
        [shake, shake, 2e-3 * shake, 2e-3 * shake, 0, 0]
    )
    frequency = torch.tensor([0.6, 1.3], dtype=torch.float64)
    phase = torch.from_numpy(rng.uniform(0, 2 * np.pi, (2, 6)))
    return Path(base, CENTRE, torch.tensor(drift, dtype=torch.float64), (amplitude, frequency, phase))


def _placed(x: float, y: float, scale: float = 1.0) -> torch.Tensor:
    return torch.tensor([[scale, 0, x], [0, scale, y], [0, 0, 1]], dtype=torch.float64)


def test_a_path_starts_at_its_placement():
    """A(0) is the placement itself: the drift and the shake are zero at t = 0, not after."""
    base = _placed(-5.0, -3.0, 0.7)
    path = _path(base, drift=(1.5, -0.5, 0.003, 0.002, 0, 0), shake=1.0)
    assert torch.allclose(path.at(0.0), base, atol=1e-12)
    assert not torch.allclose(path.at(1.0), base, atol=1e-3)


def test_flow_warps_the_later_frame_onto_the_earlier_one_exactly():
    """On a linear image (which bilinear sampling reproduces) the frame at t1 warped by flow(t0 -> t1) is the
    frame at t0, to float rounding, wherever the warp is valid: the flow is exact, rotation and zoom
    included."""
    path = _path(_placed(-40.0, -30.0), drift=(1.5, -0.8, 0.004, 0.003, 1e-5, -1e-5), shake=1.0)
    scene = Scene([Layer(_ramp(120, 160), path)], 48, 64)
    first, later, flow = scene.render(0.0), scene.render(2.0), scene.flow(0.0, 2.0)
    assert flow.norm(dim=0).mean() > 1.0  # it moved
    warped, mask = warp(later[None], flow[None])
    valid = mask[0].bool().expand_as(first)
    assert valid.float().mean() > 0.8
    assert (warped[0] - first)[valid].abs().max() < 1e-4


def test_flow_follows_the_topmost_layer():
    """Where an opaque cut-out covers the frame at t0, the flow is the cut-out's motion, not the
    background's."""
    background = Layer(_ramp(80, 100), _path(_placed(-10.0, -10.0)))
    cut = Layer(
        torch.ones(3, 20, 20),
        _path(_placed(16.0, 12.0), drift=(3.0, -1.0, 0, 0, 0, 0)),
        torch.ones(1, 20, 20),
    )
    flow = Scene([background, cut], 48, 64).flow(0.0, 1.0)
    assert torch.allclose(flow[:, 20, 24], torch.tensor([3.0, -1.0]), atol=1e-5)  # inside the cut-out
    assert torch.allclose(flow[:, 2, 2], torch.zeros(2), atol=1e-5)  # the still background


def test_random_scenes_are_reproducible_and_varied():
    """The same generator state gives the same frames; another gives other frames; values stay in [0, 1]."""
    photos = [_photo(data.astronaut()), _photo(data.coffee()), _photo(data.chelsea())]
    render = lambda seed: random_scene(np.random.default_rng(seed), photos, 64, 64).render(1.5)  # noqa: E731
    a, b, c = render(5), render(5), render(6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 64, 64) and 0 <= a.min() and a.max() <= 1


def test_motion_config_rejects_bad_ranges():
    with pytest.raises(ValueError, match="motion.speed"):
        MotionConfig(speed=(3.0, 1.0))
    with pytest.raises(ValueError, match="motion.margin"):
        MotionConfig(margin=(0.5, 1.0))
