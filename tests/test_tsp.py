"""Temporal sharpness prior invariants (official ``get_masks``)."""
import torch

from model.tsp import box_filter, temporal_sharpness


def test_identical_frames_give_one_where_valid():
    """Neighbours equal to the centre give S = 1 wherever both warps are valid."""
    frame = torch.rand(2, 3, 16, 16)
    ones = torch.ones(2, 1, 16, 16)
    prior = temporal_sharpness(frame, frame, frame, ones, ones)
    assert prior.shape == (2, 1, 16, 16)
    assert torch.allclose(prior, torch.ones_like(prior))


def test_invalid_warp_gives_zero():
    """A pixel where either neighbour's warp is invalid gets S = 0."""
    frame = torch.rand(1, 3, 8, 8)
    prev_mask, next_mask = torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    prev_mask[..., 0, :] = 0
    next_mask[..., :, -1] = 0
    prior = temporal_sharpness(frame, frame, frame, prev_mask, next_mask)
    assert bool((prior[..., 0, :] == 0).all()) and bool((prior[..., :, -1] == 0).all())
    assert bool((prior[..., 1:, :-1] == 1).all())


def test_value_is_exp_of_root_half_sum_of_filtered_differences():
    """Constant frames away from the border: S = exp(-sqrt(((p - c)^2 + (n - c)^2) * 3 / 2))."""
    centre = torch.full((1, 3, 12, 12), 0.5)
    prev, next_ = torch.full_like(centre, 0.7), torch.full_like(centre, 0.2)
    ones = torch.ones(1, 1, 12, 12)
    prior = temporal_sharpness(prev, centre, next_, ones, ones)
    expected = torch.exp(-torch.sqrt(torch.tensor((0.2 ** 2 + 0.3 ** 2) * 3 / 2)))
    assert torch.allclose(prior[..., 2:-2, 2:-2], expected.expand(1, 1, 8, 8), atol=1e-6)


def test_box_filter_zero_pads_and_is_detached_in_prior():
    """The 5x5 mean darkens borders (zero padding); the prior carries no gradient."""
    image = torch.ones(1, 3, 6, 6)
    filtered = box_filter(image)
    assert torch.allclose(filtered[..., 2:4, 2:4], torch.ones(1, 3, 2, 2))
    assert abs(filtered[0, 0, 0, 0].item() - 9 / 25) < 1e-6
    frame = torch.rand(1, 3, 8, 8, requires_grad=True)
    prior = temporal_sharpness(frame * 0.9, frame, frame * 1.1, torch.ones(1, 1, 8, 8),
                               torch.ones(1, 1, 8, 8))
    assert not prior.requires_grad
