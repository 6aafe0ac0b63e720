"""The precision vocabulary (pipeline/precision.py): exact fp32 means no TF32 on CUDA; names checked once."""

import pytest
import torch

from pipeline.config import load_config
from pipeline.precision import precision_context


@pytest.mark.parametrize("precision, inside", [("fp32", "ieee"), ("tf32", "tf32")])
def test_fp32_turns_tf32_off_on_cuda_and_restores_it(precision, inside):
    """PyTorch lets cuDNN convolutions use TF32 by default; "fp32" must not. The switches are process-wide,
    so this runs on any machine."""
    switches = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [switch.fp32_precision for switch in switches]
    with precision_context("cuda", precision):
        assert [switch.fp32_precision for switch in switches] == [inside, inside]
    assert [switch.fp32_precision for switch in switches] == before


def test_autocast_and_cpu_fp32():
    conv = torch.nn.Conv2d(3, 4, 3)
    image = torch.rand(1, 3, 8, 8)
    with precision_context("cpu", "bf16"):
        assert conv(image).dtype == torch.bfloat16
    with precision_context("cpu", "fp32"):
        assert conv(image).dtype == torch.float32
    with pytest.raises(ValueError, match="precision must be one of"):
        with precision_context("cpu", "int8"):
            pass


def test_the_configs_take_the_names_from_one_place():
    assert load_config(None, ["deblur.precision=tf32"]).deblur.precision == "tf32"
    with pytest.raises(ValueError, match="train.precision"):
        load_config(None, ["train.precision=fp16"])
