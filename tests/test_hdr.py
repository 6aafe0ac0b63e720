"""HDR10 static metadata (mastering display, light levels) goes from the input file to the output file."""

from fractions import Fraction

import av
import pytest

from pipeline.video.hdr import HdrMetadata, hdr_of, hdr_options
from pipeline.video.probe import probe
from pipeline.video.readers import open_reader
from pipeline.video.writer import Output

from .helpers import VideoWriter

# BT.2020 primaries, D65, a 1000-nit mastering display down to 0.005 nits; MaxCLL 1000, MaxFALL 400
X264 = "mastering-display=G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,50):cll=1000,400"
HDR10 = HdrMetadata(
    display=(
        ((Fraction(35400, 50000), Fraction(14600, 50000)), (Fraction(8500, 50000), Fraction(39850, 50000)),
         (Fraction(6550, 50000), Fraction(2300, 50000)), (Fraction(15635, 50000), Fraction(16450, 50000))),
        (Fraction(50, 10000), Fraction(10000000, 10000)),
    ),
    light_level=(1000, 400),
)
PQ = 16  # AVColorTransferCharacteristic SMPTE ST 2084


@pytest.fixture
def hdr10_clip(make_clip):
    """20 frames of real footage as a 10-bit BT.2020 PQ H.264 clip with ST 2086 and CTA-861.3 SEI."""
    return make_clip("hdr10.mkv", pix_fmt="yuv420p10le", frames=20, colour=(9, False),
                     options={"x264-params": X264, "color_trc": "smpte2084"})


def keyframe_hdr(path) -> list[HdrMetadata | None]:
    """The metadata of each decoded keyframe (x264 sends it with each IDR picture, as SEI)."""
    with av.open(str(path)) as container:
        return [hdr_of(frame) for frame in container.decode(video=0) if frame.key_frame]


def test_the_probe_reads_what_the_file_says(hdr10_clip):
    info = probe(hdr10_clip)
    assert info.hdr == HDR10 and info.colour.matrix == 9 and info.bit_depth == 10


def test_the_options_for_each_encoder():
    """libx264 and libx265 get the metadata after the user's own params (a key the user gave stays the
    user's); other encoders nothing."""
    assert hdr_options("libx264", HDR10, {"crf": "18"}) == {"crf": "18", "x264-params": X264}
    assert hdr_options("libx264", HDR10, {"x264-params": "aq-mode=3"})["x264-params"] == f"aq-mode=3:{X264}"
    x265 = X264.replace("mastering-display", "master-display").replace("cll", "max-cll")
    assert hdr_options("libx265", HDR10, {}) == {"x265-params": x265}
    light_only = HdrMetadata(light_level=(600, 200))
    assert hdr_options("libx265", light_only, {}) == {"x265-params": "max-cll=600,200"}
    own = {"x264-params": "cll=4000,1000"}  # what the user gives wins
    assert hdr_options("libx264", HDR10, own)["x264-params"] == f"cll=4000,1000:{X264.split(':')[0]}"
    assert hdr_options("libvpx-vp9", HDR10, {"crf": "18"}) == {"crf": "18"}
    assert hdr_options("libx264", None, {"crf": "18"}) == {"crf": "18"}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_the_writer_carries_it_into_every_segment(hdr10_clip, tmp_path, suffix):
    """Each segment's keyframe in the output (three segments joined) has the input's metadata, and the
    stream's transfer tag is PQ."""
    info = probe(hdr10_clip)
    target = tmp_path / f"out{suffix}"
    with VideoWriter(target, info, segment_frames=8) as writer:
        for piece in open_reader(info, "pyav", "cpu", 8, deep=True):
            writer.write(piece.frames, piece.pts)
    assert keyframe_hdr(hdr10_clip) == [HDR10] and keyframe_hdr(target) == [HDR10] * 3
    assert probe(target).hdr == HDR10 and probe(target).colour.transfer == PQ


def test_an_encoder_that_cannot_carry_it_is_warned_about(hdr10_clip, tmp_path, caplog):
    Output(tmp_path / "out.webm", probe(hdr10_clip), codec="libvpx-vp9")
    message = "HDR mastering metadata not written (libvpx-vp9 cannot carry it; libx264, libx265 can)"
    assert message in caplog.text
