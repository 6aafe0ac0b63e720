"""The bundled default checkpoint deblurs footage it never saw, leaves sharp footage and fast motion alone,
and every command finds it by default."""

import itertools
import json
from pathlib import Path

import numpy as np
import torch

from model import DEFAULT_CHECKPOINT, default_checkpoint, load_checkpoint
from model.checkpoint import stored_config
from pipeline.config import DeblurConfig, load_config
from pipeline.data.prepare import fit_width
from pipeline.data.protocol import CONDITIONS, condition_pairs
from pipeline.metrics import psnr
from pipeline.runtime import weights_to_load
from pipeline.stream import restore_frames
from pipeline.video.sequences import read_frames

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FRAMES = slice(12, 24)  # 12 frames of the bikes sample, its blurriest stretch
MIN_GAIN_DB = 0.3  # measured: +0.51 dB on these frames (22.81 -> 23.32 dB) with the shipped checkpoint
MIN_SHARP_PSNR = 38.0  # the protocol's bar for sharp input given back (measured: 38.86 dB)
MIN_FAST_GAIN_DB = -0.1  # the protocol's bar for a blurred condition (measured: +0.60 dB)


def test_the_default_checkpoint_ships_as_package_data_in_fp16():
    """Inside the ``model`` package (found without any path relative to a script), under 40 MB, fp16
    tensors that load into an fp32 model, its architecture and card from the file alone."""
    assert default_checkpoint() == DEFAULT_CHECKPOINT and DEFAULT_CHECKPOINT.is_file()
    assert DEFAULT_CHECKPOINT.stat().st_size < 40 * 2**20
    state = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)
    assert {t.dtype for t in state["model"].values() if t.is_floating_point()} == {torch.float16}
    model = load_checkpoint(DEFAULT_CHECKPOINT)
    assert next(model.parameters()).dtype == torch.float32
    assert stored_config(DEFAULT_CHECKPOINT) == model.config and model.config.residual
    card = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    assert (card["validation"] == state["card"]["validation"]
            and card["model"]["features"] == model.config.features)


def test_it_deblurs_a_held_out_clip():
    """On 12 frames of the bundled bikes sample (held out of training), the restored frames are at least
    MIN_GAIN_DB sharper (PSNR against the sharp frames) than the blurred input."""
    model = load_checkpoint(DEFAULT_CHECKPOINT).eval()
    blurred = list(itertools.islice(read_frames(SAMPLES / "bikes_blurred.mp4"), FRAMES.start, FRAMES.stop))
    sharp = list(itertools.islice(read_frames(SAMPLES / "bikes_sharp.mp4"), FRAMES.start, FRAMES.stop))
    with torch.no_grad():
        restored = list(restore_frames(model, blurred, DeblurConfig()))
    before = np.mean([psnr(b, s) for b, s in zip(blurred, sharp)])
    after = np.mean([psnr(r, s) for r, s in zip(restored, sharp)])
    assert after - before >= MIN_GAIN_DB, f"gain {after - before:+.2f} dB (input {before:.2f} dB)"


def bikes_under(condition: str, frames: int = 8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(inputs, targets): the bikes footage (held out of every phase) at the training width, from its
    frame 40, under a condition of the protocol (`pipeline.data.protocol`)."""
    source = itertools.islice(read_frames(SAMPLES / "footage" / "bikes.mp4"), 40, None)
    clip = (fit_width(frame, 320) for frame in source)
    pairs = list(condition_pairs(clip, CONDITIONS[condition], frames))
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def restored_psnr(inputs: list[np.ndarray], targets: list[np.ndarray]) -> tuple[float, float]:
    """(input, output) mean PSNR against the targets, the default checkpoint run as deblur runs it."""
    model = load_checkpoint(DEFAULT_CHECKPOINT).eval()
    with torch.no_grad():
        restored = list(restore_frames(model, inputs, DeblurConfig()))
    return (float(np.mean([psnr(i, t) for i, t in zip(inputs, targets)])),
            float(np.mean([psnr(r, t) for r, t in zip(restored, targets)])))


def test_it_gives_sharp_footage_back():
    """Sharp frames in (most footage is sharp): the output is within MIN_SHARP_PSNR of the input."""
    _, after = restored_psnr(*bikes_under("sharp"))
    assert after >= MIN_SHARP_PSNR, f"sharp input given back at {after:.2f} dB"


def test_it_does_not_harm_fast_motion():
    """7-frame exposures 3 frames apart (neighbours far out of line): no worse than MIN_FAST_GAIN_DB."""
    before, after = restored_psnr(*bikes_under("fast3"))
    assert after - before >= MIN_FAST_GAIN_DB, f"gain {after - before:+.2f} dB (input {before:.2f} dB)"


def test_commands_load_it_unless_another_architecture_is_asked_for():
    """No --checkpoint: the default one, whatever the config's sizes, unless the user sets sizes that
    differ from it (then untrained weights of that shape); an explicit --checkpoint always wins."""
    assert weights_to_load(None, load_config(None, [])) == DEFAULT_CHECKPOINT
    assert weights_to_load(None, load_config(None, ["model.stages=3"])) == DEFAULT_CHECKPOINT
    same = [f"model.features={stored_config(DEFAULT_CHECKPOINT).features}"]
    assert weights_to_load(None, load_config(None, same)) == DEFAULT_CHECKPOINT
    tiny = load_config(None, ["model.features=4"])
    assert weights_to_load(None, tiny) is None
    assert weights_to_load(Path("x.pt"), tiny) == Path("x.pt")
