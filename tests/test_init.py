"""Starting points without downloaded weights (model/init.py), the residual option (model.residual), and
skipping a flow net that emits zero flow (PWCNet.emits_zero_flow)."""

import pytest
import torch
import torch.nn.functional as F

from model import CDVDTSP, CheckpointError, ModelConfig, load_checkpoint, save_checkpoint, save_official
from model.init import bilinear_upsampling_kernel, grow_restoration_, identity_restoration_, zero_flow_
from pipeline.stream.engine import StreamingEngine

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


def test_a_grown_model_computes_what_the_narrow_one_did():
    """A trained-looking narrow net (every weight random, none zero) grown to twice its width gives its
    outputs, through the whole cascade, to fp32 rounding."""
    torch.manual_seed(0)
    narrow = CDVDTSP(ModelConfig(residual=True, stages=2, features=4, resblocks=2))
    wide = grow_restoration_(CDVDTSP(ModelConfig(residual=True, stages=2, features=8, resblocks=2)), narrow)
    frames = torch.rand(2, 5, 3, 32, 48)
    with torch.no_grad():
        expected, grown = narrow(frames), wide(frames)
    assert (grown - expected).abs().max() < 1e-5


def test_the_added_width_learns_from_the_first_step():
    """The zeroed weights from new channels into old ones get gradients, so the new width is used."""
    torch.manual_seed(0)
    narrow = CDVDTSP(ModelConfig(residual=True, stages=1, features=4, resblocks=1))
    wide = grow_restoration_(CDVDTSP(ModelConfig(residual=True, stages=1, features=8, resblocks=1)), narrow)
    wide(torch.rand(1, 3, 3, 32, 32)).abs().mean().backward()
    last = wide.restore.out_block[-1].weight.grad  # (3, 8, 5, 5): reads 4 old and 4 new channels
    assert last[:, 4:].abs().sum() > 0


@pytest.mark.parametrize("change", [dict(features=16), dict(resblocks=2), dict(residual=False)])
def test_only_a_narrower_net_of_the_same_design_grows(change):
    """Wider, deeper or differently built: refused, not half-copied."""
    design = dict(residual=True, features=4, resblocks=1)
    wide = CDVDTSP(ModelConfig(**{**design, "features": 8}))
    with pytest.raises(ValueError, match="cannot grow"):
        grow_restoration_(wide, CDVDTSP(ModelConfig(**{**design, **change})))


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


def _computing_the_flow(model: CDVDTSP, monkeypatch) -> None:
    """Make ``model`` compute its (zero) flow through PWC-Net, as it did before the skip."""
    monkeypatch.setattr(model.flow, "emits_zero_flow", lambda: False)


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_a_zero_flow_net_is_skipped_with_the_same_bits(monkeypatch, dtype):
    """With zero flow heads PWC-Net is not run at all (model and streaming engine), and the outputs are
    the bits of computing its zero flow, in fp32 and under bf16 autocast."""
    torch.manual_seed(0)
    model = CDVDTSP(ModelConfig(**TINY)).eval()
    zero_flow_(model.flow)
    frames, video = torch.rand(2, 5, 3, 32, 48), torch.rand(7, 3, 30, 44)

    def outputs():
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return model(frames), torch.cat(list(StreamingEngine(model).run(video.split(3))))

    with monkeypatch.context() as patch:
        patch.setattr(model.flow, "features", None)  # calling PWC-Net at all fails
        patch.setattr(model.flow, "flow_from_features", None)
        skipped = outputs()
    with monkeypatch.context() as patch:
        _computing_the_flow(model, patch)
        computed = outputs()
    assert all(torch.equal(a, b) for a, b in zip(skipped, computed))


def test_frozen_zero_flow_trains_the_restoration_net_with_the_same_gradients(monkeypatch):
    torch.manual_seed(0)
    model = CDVDTSP(ModelConfig(residual=True, **TINY))
    zero_flow_(model.flow)
    model.flow.requires_grad_(False)
    frames = torch.rand(2, 5, 3, 32, 32)

    def gradients():
        model.zero_grad()
        sum(stage.square().mean() for stage in model.forward_stages(frames)).backward()
        return [p.grad.clone() for p in model.restore.parameters()]

    assert model.flow.emits_zero_flow()
    skipped = gradients()
    with monkeypatch.context() as patch:
        _computing_the_flow(model, patch)
        computed = gradients()
    assert all(torch.equal(a, b) for a, b in zip(skipped, computed))


def test_emits_zero_flow_follows_the_weights():
    """Not while the net would be trained; again after any change of the heads' weights (in place under
    no_grad, a state dict, a dtype change)."""
    model = CDVDTSP(ModelConfig(**TINY))
    assert not model.flow.emits_zero_flow()  # random heads
    zero_flow_(model.flow)
    assert not model.flow.emits_zero_flow()  # grad enabled and trainable: the heads need gradients
    with torch.no_grad():
        assert model.flow.emits_zero_flow()
        model.flow.decoders[2].predict.bias[1] = 1e-30
        assert not model.flow.emits_zero_flow()
        model.flow.load_state_dict(zero_flow_(CDVDTSP(ModelConfig(**TINY)).flow).state_dict())
        assert model.flow.emits_zero_flow()
        model.half()
        assert model.flow.emits_zero_flow()
    model.flow.requires_grad_(False)
    assert model.flow.emits_zero_flow()  # frozen: nothing to train in it
    assert not CDVDTSP(ModelConfig(**TINY)).to("meta").flow.emits_zero_flow()  # no values to look at
