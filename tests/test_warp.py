"""Warp invariants (official ``Flow_PWC.warp`` and PWC ``Backward`` conventions)."""
import pytest
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


def _coordinates(height: int, width: int) -> torch.Tensor:
    """(1, 2, H, W) image whose channels are each pixel's x and y: warping it shows where samples land."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                            torch.arange(width, dtype=torch.float32), indexing="ij")
    return torch.stack((xs, ys))[None]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shift", [0.0, 0.375])
def test_warps_sample_where_fp32_does_under_autocast_at_720p(dtype, shift):
    """At 1280x720 under bf16/fp16 autocast, with the flow in that dtype (as PWC-Net emits it), both warps
    sample within 0.01 px of fp32, identity and a sub-pixel shift alike (a grid built in bf16 is off by
    up to 6 px)."""
    image = _coordinates(720, 1280)
    flow = torch.full((1, 2, 720, 1280), shift)
    reference, mask = warp(image, flow)
    reference_pwc = pwc_backward_warp(image, flow)
    with torch.autocast("cpu", dtype=dtype):
        low_flow = flow.to(dtype)
        warped, low_mask = warp(image, low_flow)
        warped_pwc = pwc_backward_warp(image, low_flow)
    assert torch.equal(low_mask, mask)
    valid = mask.bool().expand_as(image)
    assert (warped.float() - reference)[valid].abs().max() < 0.01
    assert (warped_pwc.float() - reference_pwc).abs().max() < 0.01
    # fp32 itself lands on x + shift
    assert torch.allclose(reference[valid], (image + shift)[valid], atol=1e-3)
