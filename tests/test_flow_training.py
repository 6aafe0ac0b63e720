"""PWC-Net pretraining on rendered motion and on real footage distilled from DIS: pairs, multi-scale EPE
loss, zero-flow start, weights format."""

import numpy as np
import pytest
import torch
from skimage import data

from model import CDVDTSP, load_pwc_weights, save_pwc_weights
from model.init import zero_flow_
from model.pwc import PWCNet
from model.warp import warp
from pipeline.config import BlurConfig
from pipeline.training.flow import (
    LEVEL_WEIGHTS,
    FlowPairs,
    PairConfig,
    consistent,
    dis_flow,
    evaluate_pairs,
    flow_loss,
    footage_pair,
    make_pair,
    multiscale_epe,
    photometric,
)

PHOTOS = [
    torch.from_numpy(np.ascontiguousarray(image[::4, ::4, :3])).permute(2, 0, 1).float() / 255
    for image in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())
]


def test_pairs_are_a_function_of_seed_and_index():
    """Pair i of run s is the same every time it is made (a resumed run sees the same data)."""
    config = PairConfig(size=64, blurred=0.5)
    first = make_pair(PHOTOS, config, seed=3, index=7)
    again = make_pair(PHOTOS, config, seed=3, index=7)
    other = make_pair(PHOTOS, config, seed=3, index=8)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == first[1].shape == (3, 64, 64) and first[2].shape == (2, 64, 64)
    assert torch.equal(first[3], torch.ones(1, 64, 64))  # rendered flow is exact everywhere


def panned(image: np.ndarray, frames: int, step: tuple[int, int] = (3, 1), size: int = 96) -> np.ndarray:
    """(frames, size, size, 3): a real photograph seen by a camera moving ``step`` (x, y) px per frame."""
    return np.stack([image[40 + step[1] * t:40 + step[1] * t + size, 60 + step[0] * t:60 + step[0] * t + size]
                     for t in range(frames)])


def test_dis_flow_finds_a_pan_and_agrees_with_itself_backwards():
    """On a camera panning (3, 1) px per frame, the picture moves (-3, -1) px per frame: DIS's flow from
    frame 0 to frame 2 is about (-6, -2) px and is consistent forwards and backwards over most of it."""
    clip = panned(data.astronaut(), 3)
    forward, backward = dis_flow(clip[0], clip[2]), dis_flow(clip[2], clip[0])
    assert np.median(forward[..., 0]) == pytest.approx(-6, abs=0.3)
    assert np.median(forward[..., 1]) == pytest.approx(-2, abs=0.3)
    assert consistent(forward, backward).mean() > 0.8
    assert consistent(forward, -backward + 10).mean() < 0.1


def test_footage_pairs_keep_the_flow_true_under_every_symmetry():
    """Whatever crop, gap, order and symmetry a footage pair draws, its second frame warped by its flow
    matches its first on the valid pixels far better than unwarped, and it is the same pair each time."""
    clip = panned(data.coffee(), 12, size=160)
    config = PairConfig(size=64, gap=(1, 3), blurred=0.0)
    for index in range(12):
        first, second, flow, valid = footage_pair([clip], config, BlurConfig(), seed=0, index=index)
        again = footage_pair([clip], config, BlurConfig(), seed=0, index=index)
        assert all(torch.equal(a, b) for a, b in zip((first, second, flow, valid), again))
        aligned, inside = warp(second[None], flow[None])
        mask = (valid * inside[0]).bool().expand_as(first)
        assert mask.float().mean() > 0.5
        assert (aligned[0] - first).abs()[mask].mean() < 0.3 * (second - first).abs()[mask].mean()


def test_a_still_pair_is_one_frame_twice_with_its_own_noise_and_zero_flow():
    """A still shot: the same crop of one frame in both, apart only by noise of a few levels, zero flow
    valid everywhere; the same draw as a moving pair up to its gap, and the same pair each time."""
    clip = panned(data.coffee(), 12, size=160)
    config, blur = PairConfig(size=64, gap=(1, 3), blurred=0.0), BlurConfig(noise=[2.0, 3.0])
    for index in range(4):
        first, second, flow, valid = footage_pair([clip], config, blur, seed=0, index=index, still=True)
        again = footage_pair([clip], config, blur, seed=0, index=index, still=True)
        assert all(torch.equal(a, b) for a, b in zip((first, second, flow, valid), again))
        assert not flow.any() and valid.all()
        difference = (second - first).abs().mean().item() * 255
        assert 1.0 < difference < 4.0  # independent noise of sigma 2-3 on each frame
    shared = dict(batch=8, seed=1, footage=[clip], footage_share=1.0, blur=blur)
    moving, still = FlowPairs(PHOTOS, config, **shared), FlowPairs(PHOTOS, config, **shared, still=0.5)
    changed = [not torch.equal(moving.pair(i)[2], still.pair(i)[2]) for i in range(16)]
    assert 3 < sum(changed) < 13
    assert all(not still.pair(i)[2].any() for i in range(16) if changed[i])


def test_flow_pairs_mix_footage_and_rendered_pairs_by_share():
    clip = panned(data.coffee(), 12, size=160)
    pairs = FlowPairs(PHOTOS, PairConfig(size=64, blurred=0.0), batch=8, seed=1, footage=[clip],
                      footage_share=0.5)
    batch = next(iter(pairs))
    assert [tuple(t.shape) for t in batch] == [(8, 3, 64, 64), (8, 3, 64, 64), (8, 2, 64, 64), (8, 1, 64, 64)]
    assert all(torch.equal(batch[0][i], pairs.pair(i)[0]) for i in range(8))
    footage = [torch.equal(pairs.pair(i)[0], footage_pair([clip], pairs.config, pairs.blur, 1, i)[0])
               for i in range(16)]
    assert 3 < sum(footage) < 13
    with pytest.raises(ValueError, match="footage sequences"):
        FlowPairs(PHOTOS, PairConfig(size=64), batch=2, seed=1, footage_share=0.5)


def test_blurred_pairs_are_softer_than_sharp_ones():
    """With blurred=1 both frames are 7-frame exposures: less high-frequency energy than sharp renders."""

    def detail(config):
        pairs = [make_pair(PHOTOS, config, seed=0, index=i) for i in range(6)]
        return np.mean([(p[0][:, :, 1:] - p[0][:, :, :-1]).abs().mean().item() for p in pairs])

    assert detail(PairConfig(size=64, blurred=1.0)) < detail(PairConfig(size=64, blurred=0.0))


def test_multiscale_epe_is_zero_on_the_truth_and_weighs_levels_as_the_paper():
    """Levels equal to the 1/20-scaled, downsampled truth cost nothing; an error of e px on level 6 alone
    costs alpha_6 * e/20 * its pixel count."""
    flow = torch.randn(2, 2, 128, 128) * 3
    sizes = [128 // 2**level for level in (6, 5, 4, 3, 2)]
    truth = [torch.nn.functional.adaptive_avg_pool2d(flow / 20, size) for size in sizes]
    assert multiscale_epe(truth, flow).item() == pytest.approx(0.0, abs=1e-5)
    shifted = [truth[0] + torch.tensor([0.6, 0.8]).view(1, 2, 1, 1) / 20] + truth[1:]  # 1 px EPE on level 6
    assert multiscale_epe(shifted, flow).item() == pytest.approx(
        LEVEL_WEIGHTS[0] * sizes[0] ** 2 / 20, rel=1e-4
    )


def test_multiscale_epe_ignores_the_truth_where_it_is_not_valid():
    """With the right half invalid, any target there costs nothing and the loss is that of the left half;
    all valid is the plain loss."""
    flow = torch.randn(1, 2, 128, 128)
    levels = [torch.zeros(1, 2, 128 // 2**level, 128 // 2**level) for level in (6, 5, 4, 3, 2)]
    valid = torch.ones(1, 1, 128, 128)
    assert multiscale_epe(levels, flow, valid).item() == pytest.approx(multiscale_epe(levels, flow).item())
    valid[..., 64:] = 0
    wild = flow.clone()
    wild[..., 64:] = 1000
    assert multiscale_epe(levels, wild, valid).item() == pytest.approx(
        multiscale_epe(levels, flow, valid).item(), rel=1e-5)
    assert multiscale_epe(levels, flow, valid).item() < multiscale_epe(levels, flow).item()


def test_a_zero_flow_net_scores_exactly_as_zero_flow():
    """From `zero_flow_` the EPE equals the zero-flow EPE, and warping by its flow changes nothing."""
    net = zero_flow_(PWCNet()).eval()
    pairs = [make_pair(PHOTOS, PairConfig(size=64), seed=1, index=i) for i in range(3)]
    scores = evaluate_pairs(net, pairs, torch.device("cpu"))
    assert scores.epe == pytest.approx(scores.zero_epe, rel=1e-6) and scores.zero_epe > 0
    frames = [(p[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for p in pairs]
    aligned = photometric(net, frames, torch.device("cpu"))
    assert aligned.warped == pytest.approx(aligned.unwarped) and aligned.frames == 2


def test_photometric_scores_put_the_net_beside_dis():
    """On a real pan, DIS's warp brings the neighbour much closer to the centre than no warp; zero flow is
    no warp."""
    aligned = photometric(zero_flow_(PWCNet()).eval(), list(panned(data.astronaut(), 4)), torch.device("cpu"))
    assert aligned.frames == 3 and aligned.warped == pytest.approx(aligned.unwarped, rel=1e-3)
    assert aligned.dis < 0.5 * aligned.unwarped


def test_training_from_zero_flow_fits_a_batch():
    """Forty Adam steps on one batch of rendered pairs bring its EPE well below zero flow's."""
    torch.manual_seed(0)
    net = zero_flow_(PWCNet())
    pairs = [make_pair(PHOTOS, PairConfig(size=64, blurred=0.0), seed=2, index=i) for i in range(2)]
    first, second, flow, _ = (torch.stack(items) for items in zip(*pairs))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-4)
    for _ in range(40):
        loss, _ = flow_loss(net, first, second, flow, None, "fp32", torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores = evaluate_pairs(net.eval(), pairs, torch.device("cpu"))
    assert scores.epe < 0.7 * scores.zero_epe


def test_pwc_weights_round_trip_in_sniklaus_format(tmp_path):
    """`save_pwc_weights` writes what `load_pwc_weights` reads (``moduleExtractor.*`` names), exactly."""
    source, target = CDVDTSP(), CDVDTSP()
    save_pwc_weights(source, tmp_path / "flow.pt")
    names = list(torch.load(tmp_path / "flow.pt", weights_only=True))
    assert names[0].startswith("moduleExtractor.")
    load_pwc_weights(target, tmp_path / "flow.pt")
    assert all(
        torch.equal(a, b)
        for a, b in zip(source.flow.state_dict().values(), target.flow.state_dict().values())
    )
