"""PWC-Net pretraining on rendered motion: pairs, multi-scale EPE loss, zero-flow start, weights format."""

import numpy as np
import pytest
import torch
from skimage import data

from model import CDVDTSP, load_pwc_weights, save_pwc_weights
from model.init import zero_flow_
from model.pwc import PWCNet
from pipeline.flow_training import (
    LEVEL_WEIGHTS,
    PairConfig,
    evaluate_pairs,
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


def test_a_zero_flow_net_scores_exactly_as_zero_flow():
    """From `zero_flow_` the EPE equals the zero-flow EPE, and warping by its flow changes nothing."""
    net = zero_flow_(PWCNet()).eval()
    pairs = [make_pair(PHOTOS, PairConfig(size=64), seed=1, index=i) for i in range(3)]
    scores = evaluate_pairs(net, pairs, torch.device("cpu"))
    assert scores.epe == pytest.approx(scores.zero_epe, rel=1e-6) and scores.zero_epe > 0
    frames = [(p[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for p in pairs]
    aligned = photometric(net, frames, torch.device("cpu"))
    assert aligned.warped == pytest.approx(aligned.unwarped) and aligned.frames == 2


def test_training_from_zero_flow_fits_a_batch():
    """Forty Adam steps on one batch of rendered pairs bring its EPE well below zero flow's."""
    torch.manual_seed(0)
    net = zero_flow_(PWCNet())
    pairs = [make_pair(PHOTOS, PairConfig(size=64, blurred=0.0), seed=2, index=i) for i in range(2)]
    first, second, flow = (torch.stack(items) for items in zip(*pairs))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-4)
    for _ in range(40):
        pyramids = net.features(torch.cat((first, second)))
        loss = multiscale_epe(net.decode([p[:2] for p in pyramids], [p[2:] for p in pyramids]), flow)
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
