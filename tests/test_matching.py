"""The matching start of PWC-Net (pipeline/training/matching.py): rescaled costs, a matching loss that
picks the true displacement, heads fitted in closed form."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from model.init import zero_flow_
from model.pwc import PWCNet
from pipeline.cli import pretrain_flow
from pipeline.config import FlowConfig
from pipeline.training.flow import multiscale_epe
from pipeline.training.matching import fit_heads_, matching_loss, matching_start_, rescale_, spreads

PHOTO = torch.from_numpy(np.ascontiguousarray(data.astronaut()[::2, ::2])).permute(2, 0, 1).float() / 255


def translations(count: int, size: int, seed: int, batch: int = 2):
    """``count`` batches of ``batch`` crops of the astronaut and the same crops moved by up to 6 whole
    pixels."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        firsts, seconds, flows = [], [], []
        for _ in range(batch):
            y, x = (int(v) for v in rng.integers(6, PHOTO.shape[1] - size - 6, size=2))
            dx, dy = (int(v) for v in rng.integers(-6, 7, size=2))
            firsts.append(PHOTO[:, y:y + size, x:x + size])
            seconds.append(PHOTO[:, y + dy:y + dy + size, x + dx:x + dx + size])
            flows.append(torch.tensor([-dx, -dy], dtype=torch.float32)[:, None, None].expand(2, size, size))
        yield torch.stack(firsts), torch.stack(seconds), torch.stack(flows), torch.ones(batch, 1, size, size)


def test_rescaled_cost_volumes_vary_by_one_and_zero_flow_stays_zero():
    torch.manual_seed(0)
    first, second, _, _ = next(translations(1, 64, seed=0, batch=1))
    net = rescale_(zero_flow_(PWCNet()), first, second)
    assert spreads(net, first, second) == pytest.approx([1.0] * 6, rel=1e-3)
    with torch.no_grad():
        assert net.emits_zero_flow() and torch.equal(net(first, second), torch.zeros(1, 2, 64, 64))


def test_the_matching_loss_picks_the_true_displacement_of_distinct_features():
    """Random features moved by (4, 4), (2, 2) and (1, 1) cells at levels 2, 3 and 4, which is 16 px right
    and 16 px down in the frames: the best cost is the truth's bin wherever the moved cell is inside, and the
    loss is far lower than for the opposite motion."""
    torch.manual_seed(0)
    first = [torch.randn(2, 32, 128 // 2 ** level, 128 // 2 ** level) for level in range(1, 7)]
    moved = [torch.roll(f, shifts=(16 >> level, 16 >> level), dims=(2, 3)) if 2 <= level <= 4 else f
             for level, f in enumerate(first, start=1)]  # second(x + d) = first(x), d = (s, s) cells
    flow = torch.zeros(2, 2, 128, 128)
    flow[:, 0], flow[:, 1] = 16.0, 16.0
    valid = torch.ones(2, 1, 128, 128)
    loss, hit = matching_loss(first, moved, flow, valid)
    wrong, wrong_hit = matching_loss(first, moved, -flow, valid)
    assert 0.7 < hit and wrong_hit < 0.05  # 77% of the cells at each level have their match inside
    assert loss < 0.5 * wrong


def test_fitted_heads_read_the_cost_volume_better_than_zero_flow():
    """From the rescaled start, heads fitted on a few batches of translations beat zero flow's endpoint
    error on fresh ones; from zero flow, the net's flow was exactly zero."""
    torch.manual_seed(0)
    fit = list(translations(12, 128, seed=1))
    net = rescale_(zero_flow_(PWCNet()), fit[0][0][:1], fit[0][1][:1])
    report = fit_heads_(net, fit)
    assert [row["level"] for row in report] == [4, 3, 2]
    assert report[-1]["epe"] < report[-1]["zero_epe"]
    errors = []
    with torch.no_grad():
        for first, second, flow, _ in translations(4, 128, seed=2):
            estimate = net(first, second)
            errors.append(((estimate - flow).norm(dim=1).mean() / flow.norm(dim=1).mean()).item())
    assert np.mean(errors) < 0.97


def test_the_matching_start_logs_its_updates_and_fit():
    torch.manual_seed(0)
    records = []
    net = matching_start_(zero_flow_(PWCNet()), translations(5, 64, seed=3, batch=1),
                          FlowConfig(matching_updates=2, fit_batches=2, log_every=1), torch.device("cpu"),
                          records.append)
    assert [r["matching_update"] for r in records[:2]] == [1, 2]
    assert [row["level"] for row in records[2]["fitted_heads"]] == [4, 3, 2]
    first, second, flow, valid = next(translations(1, 64, seed=4))
    assert torch.isfinite(multiscale_epe(net.decode(*net.pair_features(first, second)), flow, valid))


def test_pretrain_flow_makes_the_matching_start_once(tmp_path):
    """The start is made on a fresh run and saved; a resume goes on from the saved net."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).save(photos / "astronaut.png")
    out = tmp_path / "flow"
    common = ["--device", "cpu", "--set", "flow.size=64", "--set", "flow.batch=2", "--set", "flow.workers=0",
              "--set", "flow.val_pairs=1", "--set", f"flow.val_photos={photos}"]
    arguments = ["--out", str(out), "--set", f"flow.photos={photos}", "--set", "flow.start=matching",
                 "--set", "flow.matching_updates=2", "--set", "flow.fit_batches=1",
                 "--set", "flow.log_every=1", "--set", "flow.max_steps=2", *common]
    assert pretrain_flow.main(arguments) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum("fitted_heads" in record for record in log) == 1
    assert pretrain_flow.main(["--out", str(out), "--resume", "--set", "flow.max_steps=3", *common]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum("fitted_heads" in record for record in log) == 1
    assert json.loads((out / "scores.json").read_text())["steps"] == 3
