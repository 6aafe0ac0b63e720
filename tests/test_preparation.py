"""Every deblurring path prepares the model one way (`runtime.prepare_model`): ``deblur.compile`` and
``deblur.memory_format`` reach the model in ``cdvd-deblur``, ``cdvd-evaluate`` and `deblur_video` alike."""
import pytest
import torch
from PIL import Image

from model import save_checkpoint
from pipeline import runtime
from pipeline.cli.deblur import main as deblur
from pipeline.cli.evaluate import main as evaluate
from pipeline.config import DeblurConfig
from pipeline.stream import deblur_video

from .helpers import TINY, TINY_ARGS, seeded_model

PREPARED = ["--set", "deblur.compile=default", "--set", "deblur.memory_format=channels_last"]


def _run_deblur_command(clip, tmp_path):
    assert deblur([str(clip), "-o", str(tmp_path / "out.mp4"), "--chunk", "4", *TINY_ARGS, *PREPARED]) == 0


def _run_evaluate_command(clip, tmp_path):
    save_checkpoint(seeded_model(TINY), tmp_path / "tiny.pt")
    for name in ("gt", "blur"):  # a 5-frame sequence scored against itself: only the model's run matters
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.new("RGB", (32, 24), (40 * i, 80, 120)).save(tmp_path / name / f"{i:05d}.png")
    assert evaluate(["--checkpoint", str(tmp_path / "tiny.pt"), str(tmp_path / "gt"), "--blurred",
                     str(tmp_path / "blur"), *PREPARED]) == 0


def _run_deblur_video(clip, tmp_path):
    config = DeblurConfig(chunk=4, compile="default", memory_format="channels_last")
    deblur_video(seeded_model(TINY), clip, tmp_path / "out.mp4", config)


@pytest.mark.parametrize("run", [_run_deblur_command, _run_evaluate_command, _run_deblur_video],
                         ids=["cdvd-deblur", "cdvd-evaluate", "deblur_video"])
def test_compile_and_memory_format_reach_the_model(run, make_clip, tmp_path, monkeypatch):
    """The model that runs has channels-last weights and its pieces went through ``torch.compile`` in the
    asked mode (a stand-in that returns the function as it is, so nothing is generated)."""
    modes, prepared = [], []
    monkeypatch.setattr(torch, "compile", lambda fn, **options: modes.append(options["mode"]) or fn)
    layout = runtime.with_memory_format

    def spy(model, name):
        prepared.append(layout(model, name))
        return prepared[-1]

    monkeypatch.setattr(runtime, "with_memory_format", spy)
    run(make_clip("prepared.mp4", frames=6, size=(64, 48)), tmp_path)
    assert modes and set(modes) == {"default"}
    weights = [p for p in prepared[-1].parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
