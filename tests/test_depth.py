"""Video deeper than 8 bits: decoded at 16 bits, restored and written at 10 bits (or 8, when asked)."""
import json
import re
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from model import CDVDTSP, ModelConfig, save_checkpoint
from model.init import identity_restoration_, zero_flow_
from pipeline.cli.deblur import main as deblur
from pipeline.config import DeblurConfig
from pipeline.stream import deblur_video
from pipeline.video.colour import Colour
from pipeline.video.encoder import Encoder
from pipeline.video.probe import probe
from pipeline.video.readers import open_reader

SIZE = (48, 64)  # H, W


def gradient(frames: int) -> np.ndarray:
    """(F, H, W, 3) uint16 smooth ramps that 8 bits cannot hold (moving one level per frame)."""
    height, width = SIZE
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / (width - 1), y / (height - 1), (x + y) / (width + height - 2)], axis=-1)
    ramps = [(0.1 + 0.8 * base) * 65535 + 37 * t for t in range(frames)]
    return np.stack(ramps).round().astype(np.uint16)


@pytest.fixture(scope="module")
def ten_bit_clip(tmp_path_factory):
    """8 frames of `gradient` as lossless 10-bit H.264 (4:4:4, so that chroma keeps the ramps too)."""
    path = tmp_path_factory.mktemp("depth") / "ten_bit.mp4"
    with Encoder(path, codec="libx264", rate=Fraction(25), pix_fmt="yuv444p10le", colour=Colour(),
                 options={"qp": "0"}) as encoder:
        for image in gradient(8):
            encoder.write(image)
    return path


def deep_frames(path) -> np.ndarray:
    """(F, H, W, 3) uint16 RGB of a video or a PNG file, decoded at 16 bits by PyAV."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb48le") for frame in container.decode(video=0)])


def identity_model() -> CDVDTSP:
    """Zero flow and an identity restoration: the output is the input, exactly."""
    model = CDVDTSP(ModelConfig(residual=True, features=4, resblocks=1))
    zero_flow_(model.flow)
    return identity_restoration_(model).eval()


def test_a_deep_reader_keeps_the_bits_8_bit_ones_lose(ten_bit_clip):
    info = probe(ten_bit_clip)
    assert info.bit_depth == 10
    deep = torch.cat([c.frames for c in open_reader(info, "pyav", chunk=3, deep=True)]).numpy()
    shallow = torch.cat([c.frames for c in open_reader(info, "pyav", chunk=3)]).numpy()
    assert deep.dtype == np.uint16 and shallow.dtype == np.uint8
    truth = gradient(8).astype(float)
    deep_error = np.abs(deep - truth).mean()
    shallow_error = np.abs(shallow * 257.0 - truth).mean()
    assert deep_error < shallow_error / 3, (deep_error, shallow_error)


def test_ten_bit_input_comes_out_at_ten_bits(ten_bit_clip, tmp_path):
    """By default: 16-bit PNG levels equal to the deep decode (identity model), and 10-bit H.264 that is
    closer to it than an 8-bit output at the same CRF, both 4:4:4 as the input (measured: 250 vs 304 of 65535
    levels, mean; written as 4:2:0, as before the output kept the input's chroma, 294 vs 482)."""
    model = identity_model()
    deblur_video(model, ten_bit_clip, tmp_path / "frames", DeblurConfig(chunk=3, format="png"))
    decoded = torch.cat([c.frames for c in open_reader(probe(ten_bit_clip), "pyav", deep=True)]).numpy()
    pngs = np.concatenate([deep_frames(p) for p in sorted((tmp_path / "frames").glob("*.png"))])
    assert np.array_equal(pngs, decoded)

    errors = {}
    for bits in ("auto", 8):
        out = tmp_path / f"out_{bits}.mp4"
        deblur_video(model, ten_bit_clip, out, DeblurConfig(chunk=3, bits=bits))
        info = probe(out)
        assert (info.bit_depth, info.pix_fmt, info.num_frames) == (
            (10, "yuv444p10le", 8) if bits == "auto" else (8, "yuv444p", 8))  # the input's 4:4:4
        errors[bits] = np.abs(deep_frames(out).astype(float) - decoded).mean()
    assert errors["auto"] < 0.85 * errors[8], errors


def test_eight_bits_when_asked_with_a_warning_in_the_summary(ten_bit_clip, tmp_path, capsys):
    """The summary table says so (and its JSON holds both depths)."""
    checkpoint = tmp_path / "identity.pt"
    save_checkpoint(identity_model(), checkpoint)
    summary = tmp_path / "summary.json"
    assert deblur([str(ten_bit_clip), "-o", str(tmp_path / "out.mp4"), "--checkpoint", str(checkpoint),
                   "--bits", "8", "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["videos"][0]["bits"] == {"input": 10, "output": 8}
    table = re.sub(r"[│\s]+", " ", capsys.readouterr().out)  # the cell's lines, wrapped or not, joined
    assert "(10-bit input written at 8 bits)" in table


def test_ten_bits_from_a_codec_without_them_is_one_line(ten_bit_clip, tmp_path, capsys):
    checkpoint = tmp_path / "identity.pt"
    save_checkpoint(identity_model(), checkpoint)
    assert deblur([str(ten_bit_clip), "-o", str(tmp_path / "out.webm"), "--checkpoint", str(checkpoint),
                   "--codec", "libvpx-vp9", "--bits", "10"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "libvpx-vp9 cannot encode 10-bit video here" in errors[0]
    assert not (tmp_path / "out.webm").exists()
