"""scripts/train.py on a tiny config: it learns, resumes exactly, and runs under torchrun (gloo)."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.cli.prepare_data import main as prepare
from pipeline.cli.train import main as train

from .helpers import TINY, TINY_ARGS

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAIN = [*TINY_ARGS, "--set", "train.batch=1",
        "--set", "train.crop=32", "--set", "train.precision=fp32", "--set", "train.lr=1e-3",
        "--set", "train.val_every=1000", "--device", "cpu"]


@pytest.fixture(scope="module")
def manifest(footage, tmp_path_factory):
    """Blurred/sharp pairs synthesised from two real clips (MJPEG, so DALI decodes them on the CPU)."""
    out = tmp_path_factory.mktemp("pairs")
    code = prepare(["synth", str(footage / "realshort.mp4"), str(footage / "carphone_pristine.mp4"),
                    "--out", str(out), "--codec", "mjpeg", "--max-frames", "16", "--max-width", "64",
                    "--val", "carphone_pristine"])
    assert code == 0
    return out / "manifest.json"


def _run(out, manifest, *extra):
    return train(["--out", str(out), "--set", f"train.data={manifest}", *TINY_TRAIN, *extra])


def _losses(out):
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]


def test_a_few_steps_lower_the_loss(manifest, tmp_path):
    """Six steps at lr 1e-3: the last two logged losses are below the first two."""
    assert _run(tmp_path, manifest, "--set", "train.max_steps=6", "--set", "train.log_every=1") == 0
    losses = _losses(tmp_path)
    assert len(losses) == 6 and sum(losses[-2:]) < sum(losses[:2])
    assert (tmp_path / "step_6.pt").is_file() and (tmp_path / "config.yaml").is_file()


def test_resume_equals_an_uninterrupted_run(manifest, tmp_path):
    """Stopped after 1 step and resumed to 3: weights, optimiser state and losses equal a straight run."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _run(straight, manifest, "--set", "train.max_steps=3", "--set", "train.log_every=1") == 0
    assert _run(resumed, manifest, "--set", "train.max_steps=1", "--set", "train.log_every=1") == 0
    assert train(["--out", str(resumed), "--resume", "--set", "train.max_steps=3", "--device", "cpu"]) == 0
    a, b = (torch.load(run / "last.pt", weights_only=True) for run in (straight, resumed))
    seconds = [run["progress"].pop("seconds") for run in (a, b)]  # trained time, resumes included
    assert a["progress"] == b["progress"] == {"step": 3, "epoch": 0, "batch": 3}
    assert all(value > 0 for value in seconds)
    assert all(torch.equal(a["optimizer"]["state"][i]["exp_avg"], b["optimizer"]["state"][i]["exp_avg"])
               for i in a["optimizer"]["state"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert _losses(straight) == _losses(resumed)


def test_validation_scores_held_out_video(manifest, tmp_path):
    """With a val split, validation logs PSNR/SSIM of input and output on the held-out video."""
    assert _run(tmp_path, manifest, "--set", "train.max_steps=1", "--set", "train.val_every=1",
                "--set", "train.val_frames=3") == 0
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    scores = next(r["validation"] for r in records if "validation" in r)
    assert set(scores) == {"input_psnr", "input_ssim", "psnr", "ssim"} and 10 < scores["input_psnr"] < 60


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert train(["--out", str(tmp_path), *TINY_TRAIN]) == 2
    assert "no training data" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_torchrun_gloo(manifest, tmp_path):
    """torchrun with 2 CPU processes (gloo DDP): both ranks step, rank 0 writes the checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", "29533", str(ROOT / "scripts" / "train.py"),
                          "--out", str(tmp_path), "--set", f"train.data={manifest}", *TINY_TRAIN,
                          "--set", "train.max_steps=2"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "step_2.pt").is_file()
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["progress"]["step"] == 2
    first, second = state["rng"]["ranks"]  # each rank's own random state, for an exact resume
    assert not torch.equal(first["torch"], second["torch"]) and not torch.equal(first["hem"], second["hem"])
    resumed = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--out", str(tmp_path),
                              "--resume", "--set", "train.max_steps=3"],
                             capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert resumed.returncode == 0 and "random states for 2 rank(s), this run has 1" in resumed.stderr


def test_warmup_ramps_the_rates_linearly_then_holds_and_resumes():
    """train.warmup=4: both groups' rates rise linearly from 1/4 of their value to all of it over 4 steps and
    stay; a schedule rebuilt from a saved state continues where it was."""
    from model import CDVDTSP
    from pipeline.config import TrainConfig
    from pipeline.training.steps import build_optimizer

    def rates(optimizer, schedule, steps):
        seen = []
        for _ in range(steps):
            seen.append([group["lr"] for group in optimizer.param_groups])
            optimizer.step()
            schedule.step()
        return seen

    config = TrainConfig(lr=1e-3, flow_lr=1e-5, warmup=4)
    optimizer, schedule = build_optimizer(CDVDTSP(TINY), config)
    first = rates(optimizer, schedule, 2)
    saved = copy.deepcopy((optimizer.state_dict(), schedule.state_dict()))
    later = rates(optimizer, schedule, 4)
    assert [r[0] for r in first + later] == pytest.approx([2.5e-4, 4.375e-4, 6.25e-4, 8.125e-4, 1e-3, 1e-3])
    assert [r[1] for r in first + later] == pytest.approx([2.5e-6, 4.375e-6, 6.25e-6, 8.125e-6, 1e-5, 1e-5])
    resumed_optimizer, resumed = build_optimizer(CDVDTSP(TINY), config)
    resumed_optimizer.load_state_dict(saved[0])
    resumed.load_state_dict(saved[1])
    assert [r[0] for r in rates(resumed_optimizer, resumed, 4)] == pytest.approx([r[0] for r in later])


def test_a_time_budget_stops_the_run(manifest, tmp_path):
    """train.max_minutes ends the run (and saves it) long before max_steps would."""
    assert _run(tmp_path, manifest, "--set", "train.max_steps=50", "--set", "train.max_minutes=0.0001") == 0
    progress = torch.load(tmp_path / "last.pt", weights_only=True)["progress"]
    assert progress["step"] <= 1 and progress["seconds"] > 0


def test_identity_start_then_init_from_a_checkpoint(tmp_path):
    """train.start=identity gives the identity model; train.init then loads a checkpoint's weights over it."""
    from model import CDVDTSP, ModelConfig, save_checkpoint
    from pipeline.config import TrainConfig
    from pipeline.training.steps import initialise

    config = ModelConfig(features=4, resblocks=1, residual=True, stages=1)
    model = CDVDTSP(config)
    initialise(model, TrainConfig(start="identity"))
    frames = torch.rand(1, 3, 3, 16, 16)
    assert torch.equal(model(frames), frames[:, 1])
    other = CDVDTSP(ModelConfig(features=4, resblocks=1, residual=True, stages=2))
    save_checkpoint(other, tmp_path / "other.pt")
    initialise(model, TrainConfig(start="identity", init=str(tmp_path / "other.pt")))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_init_from_a_narrower_checkpoint_grows_it(tmp_path):
    """train.init of a checkpoint at half the width (the shipped one into model.features=32): the wider
    model starts from its outputs."""
    from model import CDVDTSP, ModelConfig, save_checkpoint
    from pipeline.config import TrainConfig
    from pipeline.training.steps import initialise

    narrow = CDVDTSP(ModelConfig(features=4, resblocks=1, residual=True, stages=1))
    save_checkpoint(narrow, tmp_path / "narrow.pt")
    wide = CDVDTSP(ModelConfig(features=8, resblocks=1, residual=True, stages=1))
    initialise(wide, TrainConfig(start="identity", init=str(tmp_path / "narrow.pt")))
    frames = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        assert (wide(frames) - narrow(frames)).abs().max() < 1e-5


def test_flow_lr_zero_freezes_pwc_net_and_clip_bounds_the_update():
    """train.flow_lr=0: PWC-Net gets no gradients and does not change; train.clip: the gradients reaching Adam
    have at most that global norm (a clipped SGD step of rate 1 moves the weights by at most ``clip``)."""
    from model import CDVDTSP, ModelConfig
    from pipeline.config import TrainConfig
    from pipeline.training.steps import TrainForward, build_optimizer, train_step

    torch.manual_seed(0)
    model = CDVDTSP(ModelConfig(features=4, resblocks=1, stages=1))
    config = TrainConfig(flow_lr=0, clip=1e-3, lr=1.0, precision="fp32")
    optimizer, _ = build_optimizer(model, config)
    assert optimizer.param_groups[1]["params"] == []
    sgd = torch.optim.SGD(optimizer.param_groups[0]["params"], lr=1.0)  # a step is minus the clipped gradient
    flow_before = copy.deepcopy(model.flow.state_dict())
    restore_before = torch.cat([p.detach().flatten().clone() for p in model.restore.parameters()])
    blurred, sharp = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)
    train_step(TrainForward(model), sgd, blurred, sharp, config, torch.Generator().manual_seed(0),
               torch.device("cpu"))
    assert all(p.grad is None for p in model.flow.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.flow.state_dict().values(), flow_before.values()))
    moved = torch.cat([p.detach().flatten() for p in model.restore.parameters()]) - restore_before
    assert 0 < moved.norm() <= 1e-3 * (1 + 1e-5)
    with pytest.raises(ValueError, match="train.clip"):
        TrainConfig(clip=-1)
