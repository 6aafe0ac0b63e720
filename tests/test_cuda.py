"""CUDA behaviour of the model: the same function on the GPU, reduced precision that stays close, and
steady states (engine, training step) without host syncs."""
import contextlib

import pytest
import torch

from model import ModelConfig
from model.init import zero_flow_
from pipeline.config import TrainConfig
from pipeline.stream.engine import StreamingEngine
from pipeline.training.steps import TrainForward, build_optimizer, train_step

from .helpers import TINY, seeded_clip, seeded_model

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_cuda_fp32_equals_cpu():
    """fp32 on the GPU (TF32 off) gives the CPU output within 1e-4."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = seeded_model(seed=3)
    clip = seeded_clip(5, 64, 96)
    with torch.no_grad():
        cpu = model(clip)
        gpu = model.cuda()(clip.cuda()).cpu()
    assert (cpu - gpu).abs().max() <= 1e-4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_stays_close(dtype):
    """Autocast runs end to end on the GPU and stays within a loose bound of fp32."""
    model = seeded_model(seed=3).cuda()
    clip = seeded_clip(5, 64, 96).cuda()
    with torch.no_grad():
        reference = model(clip)
        with torch.autocast("cuda", dtype=dtype):
            reduced = model(clip).float()
    assert torch.isfinite(reduced).all()
    assert (reduced - reference).abs().mean() <= 0.05


@contextlib.contextmanager
def syncs_are_errors():
    """Any host-device synchronisation inside the block raises (`torch.cuda.set_sync_debug_mode`)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("zero_flow", [False, True])
def test_the_engine_never_syncs_in_its_steady_state(zero_flow):
    """The streaming engine on device frames: after a first pass (which looks at the flow heads once),
    a whole video runs without one host sync, borders included."""
    model = seeded_model(TINY, seed=3).cuda().eval()
    if zero_flow:
        zero_flow_(model.flow)
    video = torch.rand(11, 3, 32, 48, device="cuda")
    engine = StreamingEngine(model)
    expected = torch.cat(list(engine.run(video.split(4))))
    with syncs_are_errors():
        restored = torch.cat(list(engine.run(video.split(4))))
    assert torch.equal(restored, expected)


def test_training_steps_never_sync():
    """Forward, loss with hard-example mining (device generator), backward, clipping and Adam: no host
    sync in a step once the first has run."""
    config = TrainConfig(batch=2, crop=32, hem_weight=2.0, clip=1.0)
    model = seeded_model(ModelConfig(stages=2, features=4, resblocks=1), seed=3).cuda().train()
    optimizer, _ = build_optimizer(model, config)
    net, device = TrainForward(model), torch.device("cuda")
    generator = torch.Generator(device).manual_seed(0)
    blurred, sharp = torch.rand(2, 2, 5, 3, 32, 32, device=device)
    train_step(net, optimizer, blurred, sharp, config, generator, device)
    with syncs_are_errors():
        for _ in range(3):
            loss, _ = train_step(net, optimizer, blurred, sharp, config, generator, device)
    assert torch.isfinite(loss)
