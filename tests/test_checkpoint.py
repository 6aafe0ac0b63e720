"""Checkpoints: the official key map, fidelity to the official model, round trips and loading errors."""
from pathlib import Path

import pytest
import torch

from model import (
    CDVDTSP,
    CheckpointError,
    ModelConfig,
    load_checkpoint,
    load_pwc_weights,
    official_state_dict,
    save_checkpoint,
    save_official,
)

from .helpers import TINY, seeded_clip, seeded_model
from .official_reference import CDVD_TSP, Network

OFFICIAL_KEYS = Path(__file__).parent / "data" / "official_state_dict.txt"


@pytest.fixture(scope="module")
def model():
    return seeded_model(seed=11)


@pytest.fixture(scope="module")
def official_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "CDVD_TSP_random.pt"
    save_official(model, path)
    return path


def test_official_keys_shapes_and_order(model):
    """The 210 official keys, with their shapes, in the official registration order."""
    expected = [line.split(" ", 1) for line in OFFICIAL_KEYS.read_text().splitlines()
                if not line.startswith("#")]
    ours = official_state_dict(model)
    assert [(k, list(v.shape)) for k, v in ours.items()] == [(k, eval(s)) for k, s in expected]


def test_official_file_loads_into_the_official_structure(official_file):
    """A file we save in official format is exactly what the official module tree loads with strict=True."""
    CDVD_TSP().load_state_dict(torch.load(official_file), strict=True)


def test_output_equals_official_model(official_file):
    """Same weights, same 5-frame clip: our model equals the official transcription (fp32, <= 1e-4).

    The oracle is `official_reference.CDVD_TSP`: the official call sequence with unbatched PWC-Net calls;
    every stage-1 output and the final output are compared.
    """
    oracle = CDVD_TSP().eval()
    oracle.load_state_dict(torch.load(official_file), strict=True)
    ours = load_checkpoint(official_file).eval()
    clip = seeded_clip(5, 64, 100, seed=5)  # 100 is not a multiple of 64: PWC-Net resizes
    with torch.no_grad():
        recons_1, recons_2, recons_3, out, _ = oracle(clip)
        stage1, final = ours.forward_stages(clip)
    assert (stage1 - torch.stack((recons_1, recons_2, recons_3), dim=1)).abs().max() <= 1e-4
    assert (final[:, 0] - out).abs().max() <= 1e-4


def test_project_round_trip_keeps_outputs(model, tmp_path):
    """Project format: the config (a project option included) travels with the weights; outputs are
    bit-identical after reload."""
    tiny = seeded_model(ModelConfig(stages=3, features=4, resblocks=1, antisymmetric_flow=True), seed=2)
    save_checkpoint(tiny, tmp_path / "tiny.pt", step=5)
    loaded = load_checkpoint(tmp_path / "tiny.pt")
    assert loaded.config == tiny.config
    clip = seeded_clip(7, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(clip), tiny(clip))


def test_official_round_trip_keeps_outputs(model, official_file, tmp_path):
    """official save -> load -> official save gives the same tensors; outputs unchanged."""
    loaded = load_checkpoint(official_file)
    save_official(loaded, tmp_path / "again.pt")
    first, second = torch.load(official_file), torch.load(tmp_path / "again.pt")
    assert list(first) == list(second) and all(torch.equal(first[k], second[k]) for k in first)
    clip = seeded_clip(5, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded(clip), model(clip))


def test_data_parallel_prefix_is_accepted(model, tmp_path):
    """A state dict saved from nn.DataParallel (``module.`` prefix) loads the same weights."""
    torch.save({f"module.{k}": v for k, v in official_state_dict(model).items()}, tmp_path / "dp.pt")
    loaded = load_checkpoint(tmp_path / "dp.pt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_pwc_weights_file_loads_into_flow_only(model, tmp_path):
    """sniklaus's ``network-default.pytorch`` layout (old ``module*`` and new ``net*`` names)."""
    pwc = Network()
    pwc.load_state_dict({k[len("flow_net.moduleNetwork."):]: v for k, v in official_state_dict(model).items()
                         if k.startswith("flow_net.")})
    torch.save(pwc.state_dict(), tmp_path / "network-default.pytorch")
    torch.save({k.replace("module", "net"): v for k, v in pwc.state_dict().items()}, tmp_path / "net.pytorch")
    for name in ("network-default.pytorch", "net.pytorch"):
        fresh = CDVDTSP(TINY)
        before = {k: v.clone() for k, v in fresh.restore.state_dict().items()}
        load_pwc_weights(fresh, tmp_path / name)
        assert all(torch.equal(a, b)
                   for a, b in zip(fresh.flow.state_dict().values(), model.flow.state_dict().values()))
        assert all(torch.equal(before[k], v) for k, v in fresh.restore.state_dict().items())


def _broken(model, tmp_path, edit, name="bad.pt"):
    state = official_state_dict(model)
    edit(state)
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_missing_key_is_named(model, tmp_path):
    path = _broken(model, tmp_path, lambda s: s.pop("recons_net.outBlock.3.bias"))
    with pytest.raises(CheckpointError, match=r"1 missing: restore\.out_block\.3\.bias"):
        load_checkpoint(path)


def test_unexpected_key_is_named(model, tmp_path):
    path = _broken(model, tmp_path, lambda s: s.update({"recons_net.extra.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected: .*recons_net\.extra\.weight"):
        load_checkpoint(path)


def test_wrong_shape_is_named(model, tmp_path):
    path = _broken(model, tmp_path, lambda s: s.update({"recons_net.outBlock.3.bias": torch.zeros(4)}))
    with pytest.raises(CheckpointError, match=r"wrong shape: restore\.out_block\.3\.bias \(4,\) != \(3,\)"):
        load_checkpoint(path)


def test_partial_file_is_refused(model, tmp_path):
    """A restoration-only state dict is refused with the 126 missing PWC-Net tensors counted."""
    path = _broken(model, tmp_path, lambda s: [s.pop(k) for k in list(s) if k.startswith("flow_net.")])
    with pytest.raises(CheckpointError, match="126 missing"):
        load_checkpoint(path)


@pytest.mark.parametrize("content,message", [
    (None, "no such checkpoint file"),
    (b"", "empty file"),
    (b"\x80\x02garbage that is not a pickle", "not a readable PyTorch checkpoint"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_truncated_file_is_refused(official_file, tmp_path):
    data = official_file.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_foreign_state_dict_is_refused(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a CDVD-TSP checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
