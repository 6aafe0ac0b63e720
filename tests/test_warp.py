"""Warp invariants (official ``Flow_PWC.warp`` and PWC ``Backward`` conventions)."""
import torch

from model.warp import pwc_backward_warp, warp


def test_zero_flow_is_identity():
    """Zero flow returns the image unchanged and a mask of ones."""
    image = torch.rand(2, 3, 9, 13)
    warped, mask = warp(image, torch.zeros(2, 2, 9, 13))
    assert torch.allclose(warped, image, atol=1e-6)
    assert mask.shape == (2, 1, 9, 13) and bool((mask == 1).all())


def test_integer_shift_is_shifted_image_with_invalid_strip():
    """Flow (+2, -1) samples image[y-1, x+2]; the strip that leaves the frame is zero and masked."""
    image = torch.rand(1, 3, 8, 10)
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    warped, mask = warp(image, flow)
    assert torch.allclose(warped[:, :, 1:, :-2], image[:, :, :-1, 2:], atol=1e-5)
    assert bool((mask[:, :, 1:, :-2] == 1).all())
    assert bool((mask[:, :, 0, :] == 0).all()) and bool((mask[:, :, :, -2:] == 0).all())
    assert bool((warped[:, :, 0, :] == 0).all()) and bool((warped[:, :, :, -2:] == 0).all())


def test_align_corners_true_convention():
    """A half-pixel flow averages neighbours exactly (align_corners=True: pixel x sits at 2x/(W-1)-1)."""
    image = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 3, 6).contiguous()
    flow = torch.zeros(1, 2, 3, 6)
    flow[:, 0] = 0.5
    warped, mask = warp(image, flow)
    assert torch.allclose(warped[0, 0, 1, :5], torch.arange(5.0) + 0.5, atol=1e-5)
    assert mask[0, 0, 1, 5] == 0


def test_pwc_backward_zero_flow_and_shift():
    """The decoder warp: identity at zero flow; integer shifts move features and zero the strip."""
    features = torch.rand(1, 4, 6, 8)
    assert torch.allclose(pwc_backward_warp(features, torch.zeros(1, 2, 6, 8)), features, atol=1e-6)
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0] = -1.0
    shifted = pwc_backward_warp(features, flow)
    assert torch.allclose(shifted[..., 1:], features[..., :-1], atol=1e-5)
    assert bool((shifted[..., 0] == 0).all())
