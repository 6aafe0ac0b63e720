"""The precision vocabulary (pipeline/precision.py): exact fp32 means no TF32 on CUDA; names checked once."""

import pytest
import torch

from pipeline.config import load_config
from pipeline.precision import PRECISIONS, precision_context


def tf32_switches() -> dict:
    """Every TF32 switch, read through the legacy and the new API (a read raises where they were mixed); of
    the new API whether it says TF32 (it spells "not TF32" "none", "default" or "ieee" by version and by
    how it was set)."""
    return {"matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            **{f"{name}.fp32_precision is tf32": switch.fp32_precision == "tf32"
               for name, switch in (("matmul", torch.backends.cuda.matmul), ("cudnn", torch.backends.cudnn),
                                    ("conv", torch.backends.cudnn.conv), ("rnn", torch.backends.cudnn.rnn))}}


@pytest.mark.torch_api
@pytest.mark.parametrize("precision", PRECISIONS)
def test_tf32_switches_stay_readable_through_both_apis_and_are_restored(precision):
    """PyTorch lets cuDNN convolutions use TF32 by default; "fp32" must not, "tf32" must. Inside and after
    every precision, both APIs read without the "mix of legacy and new APIs" error (Inductor and the
    profiler read the legacy switches), and afterwards they read as before. The switches are process-wide,
    so this runs on any machine; the GPU check runs it on the GPU machine's torch too."""
    before = tf32_switches()
    with precision_context("cuda", precision):
        inside = tf32_switches()
    assert tf32_switches() == before
    if precision in ("fp32", "tf32"):
        tf32 = precision == "tf32"
        assert inside["matmul.allow_tf32"] is tf32 and inside["cudnn.allow_tf32"] is tf32
        assert inside["matmul.fp32_precision is tf32"] is tf32
        assert inside["conv.fp32_precision is tf32"] is tf32
        assert inside["float32_matmul_precision"] == ("high" if tf32 else "highest")
    else:
        assert inside == before


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
