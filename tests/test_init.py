"""Starting points without downloaded weights (model/init.py) and the residual option (model.residual)."""

import pytest
import torch
import torch.nn.functional as F

from model import CDVDTSP, CheckpointError, ModelConfig, load_checkpoint, save_checkpoint, save_official
from model.init import bilinear_upsampling_kernel, identity_restoration_, zero_flow_

TINY = dict(features=4, resblocks=1)


def test_identity_start_returns_the_centre_frame():
    """zero_flow_ + identity_restoration_ on a residual model: every stage returns its centre frames."""
    model = CDVDTSP(ModelConfig(residual=True, **TINY))
    zero_flow_(model.flow)
    identity_restoration_(model)
    frames = torch.rand(2, 5, 3, 32, 48)
    stages = model.forward_stages(frames)
    assert torch.equal(stages[0], frames[:, 1:-1]) and torch.equal(stages[1][:, 0], frames[:, 2])
    assert model.flow(frames[:, 0], frames[:, 1]).abs().max() == 0


def test_zero_flow_still_learns():
    """The zeroed flow heads get gradients, so the first update moves the flow off zero."""
    model = CDVDTSP(ModelConfig(**TINY))
    zero_flow_(model.flow)
    frames = torch.rand(1, 2, 3, 64, 64)
    model.flow(frames[:, 0], frames[:, 1]).sum().backward()
    assert model.flow.decoders[-1].predict.weight.grad.abs().sum() > 0
    assert model.flow.refiner[-1].weight.grad.abs().sum() > 0


def test_identity_needs_the_residual():
    with pytest.raises(ValueError, match="residual"):
        identity_restoration_(CDVDTSP(ModelConfig(**TINY)))


def test_bilinear_kernel_makes_a_transposed_conv_upsample_bilinearly():
    """A stride-2 transposed conv with the kernel equals bilinear 2x upsampling away from the border."""
    upsample = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
    upsample.weight.data[0, 0] = bilinear_upsampling_kernel(4)
    image = torch.rand(1, 1, 6, 9)
    expected = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(upsample(image)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-6)


def test_residual_adds_the_centre_frame():
    """residual=True returns exactly the official output plus the unwarped centre frame."""
    torch.manual_seed(0)
    plain = CDVDTSP(ModelConfig(**TINY))
    residual = CDVDTSP(ModelConfig(residual=True, **TINY))
    residual.load_state_dict(plain.state_dict())
    inputs = torch.rand(2, 10, 16, 16)
    assert torch.allclose(residual.restore(inputs), plain.restore(inputs) + inputs[:, 3:6], atol=1e-6)


def test_a_residual_checkpoint_keeps_its_residual_and_has_no_official_form(tmp_path):
    """A project checkpoint rebuilds with its own residual even when the caller's config says otherwise
    (only ``stages`` is taken from it); the official format cannot express the residual."""
    model = CDVDTSP(ModelConfig(residual=True, **TINY))
    save_checkpoint(model, tmp_path / "residual.pt")
    loaded = load_checkpoint(tmp_path / "residual.pt", config=ModelConfig(stages=1))
    assert loaded.config == ModelConfig(stages=1, residual=True, **TINY)
    with pytest.raises(CheckpointError, match="residual"):
        save_official(model, tmp_path / "official.pt")
