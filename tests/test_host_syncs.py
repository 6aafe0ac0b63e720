"""Nothing in the engine's or a training step's steady state would make the host wait for a GPU, checked on
a CPU: `HostSyncGuard` with meta tensors standing in for device ones (the ``cuda`` tests check the same on
a GPU with ``torch.cuda.set_sync_debug_mode``)."""
import pytest
import torch

from model import CDVDTSP, ModelConfig
from pipeline.config import TrainConfig
from pipeline.stream.engine import StreamingEngine, naive_windows
from pipeline.training.steps import TrainForward, build_optimizer, train_step

from .host_syncs import HostSync, HostSyncGuard

META = torch.device("meta")


def meta_model(**config) -> CDVDTSP:
    """A small cascade on the meta device: the flow net runs (meta weights are never "zero flow")."""
    return CDVDTSP(ModelConfig(features=4, resblocks=1, **config)).to(META)


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


@pytest.mark.parametrize("sync", [
    lambda x: x.sum().item(),
    lambda x: bool(x.any()),
    lambda x: x.tolist(),
    lambda x: x.cpu(),
    lambda x: x[[0, 2]],  # a list index
    lambda x: x * x.new_tensor([1.0, 2.0, 3.0]),  # tensor data from a list
    lambda x: x * torch.ones(3),  # a host tensor meeting a device one
], ids=["item", "bool", "tolist", "cpu", "list index", "new_tensor", "host tensor"])
def test_the_guard_catches_what_would_sync(sync):
    x = torch.empty(4, 3, device=META)
    with pytest.raises(HostSync), HostSyncGuard([x]):
        sync(x)


def test_the_guard_lets_device_work_and_host_scalars_through():
    x = torch.empty(4, 3, device=META)
    with HostSyncGuard([x]):
        y = torch.stack([x[0], x[2]]) * 2.0 * torch.tensor(0.5)  # views, a Python and a 0-d host scalar
        y = torch.cat((y, x.new_zeros(1, 3)))
    assert y.shape == (3, 3)


@pytest.mark.parametrize("frames", [7, 2])
def test_the_engine_never_syncs(frames):
    """A whole video through the engine, borders included (their frames are picked by index; a video
    shorter than a border in one go), with the flow net running: no host sync."""
    model = meta_model().eval()
    video = torch.empty(frames, 3, 32, 48, device=META)
    with HostSyncGuard([*weights(model), video]):
        restored = list(StreamingEngine(model).run(video.split(4)))
    assert sum(len(chunk) for chunk in restored) == frames


def test_the_official_schedule_never_syncs():
    model = meta_model().eval()
    video = torch.empty(6, 3, 32, 48, device=META)
    with HostSyncGuard([*weights(model), video]):
        assert naive_windows(model, video, batch=4).shape == video.shape


def test_training_steps_never_sync():
    """Forward (flow net included), loss with hard-example mining, backward, clipping and Adam, once the
    first step has made the optimiser's state: no host sync."""
    config = TrainConfig(batch=2, crop=32, hem_weight=2.0, clip=1.0, precision="fp32", flow_lr=1e-6)
    model = meta_model(stages=2).train()
    optimizer, _ = build_optimizer(model, config)
    net = TrainForward(model)
    blurred, sharp = torch.empty(2, 2, 5, 3, 32, 32, device=META)
    train_step(net, optimizer, blurred, sharp, config, None, META)
    state = [t for values in optimizer.state.values() for t in values.values() if t.is_meta]
    with HostSyncGuard([*weights(model), *state, blurred, sharp]):
        for _ in range(2):
            loss, _ = train_step(net, optimizer, blurred, sharp, config, None, META)
    assert loss.is_meta
