"""CUDA behaviour of the model: the same function on the GPU, and reduced precision that stays close."""
import pytest
import torch

from .helpers import seeded_clip, seeded_model

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
