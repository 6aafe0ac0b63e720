"""Colour end to end: readers convert with the file's matrix and range, the writer converts back and tags.

Clips are colour bars encoded losslessly by FFmpeg (swscale converts RGB to YUV with the matrix and range
under test). Two oracles for YUV -> RGB, neither the project's code: the standards' own arithmetic written
out here (BT.601 / BT.709 luma weights, 219/224 limited-range scaling), and FFmpeg's own tag-aware
conversion (libavfilter's scale filter reading each frame's matrix and range, `ffmpeg_rgb`).
"""

import av
import numpy as np
import pytest
import torch

from pipeline.video import readers
from pipeline.video.colour import BT709, BT2020_NCL, SMPTE170M, Colour, DaliCorrection
from pipeline.video.probe import probe
from pipeline.video.readers import open_reader

from .helpers import VideoWriter

BARS = np.array(
    [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 0],
        [0, 255, 255],
        [255, 0, 255],
        [192, 128, 64],
        [40, 90, 200],
    ],
    dtype=np.uint8,
)  # (8, 3)
MID_TONES = np.array(
    [
        [180, 60, 60],
        [60, 170, 70],
        [70, 80, 190],
        [160, 160, 60],
        [60, 150, 160],
        [150, 70, 150],
        [192, 128, 64],
        [40, 90, 200],
    ],
    dtype=np.uint8,
)  # no channel clips
BAR = 16  # px per bar
TOLERANCE = 2  # levels per channel
SWSCALE = {BT709: 1, SMPTE170M: 5, BT2020_NCL: 9}
PRIMARIES = {BT709: 1, SMPTE170M: 6, BT2020_NCL: 9}  # AVColorPrimaries of each matrix's standard
TRANSFER = {BT709: 1, SMPTE170M: 6, BT2020_NCL: 14}  # AVColorTransferCharacteristic (BT.2020 10-bit)


def bars(height: int = 32, colours: np.ndarray = BARS) -> np.ndarray:
    """(H, 8 * BAR, 3) uint8 vertical bars of the 8 ``colours``."""
    return np.repeat(np.repeat(colours[None], height, axis=0), BAR, axis=1)


def interiors(image: np.ndarray) -> np.ndarray:
    """(8, 3) mean colour inside each bar, away from its edges (where chroma subsampling blends)."""
    return np.stack([image[4:-4, i * BAR + 4 : (i + 1) * BAR - 4].reshape(-1, 3).mean(0) for i in range(8)])


def encode(path, image, *, matrix, full_range, tagged, codec="libx264", pix_fmt="yuv444p", frames=3):
    """Encode ``image`` losslessly after FFmpeg's RGB -> YUV with ``matrix`` and range; tag it or not."""
    options = {"qp": "0"} if codec == "libx264" else {"lossless": "1"}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], pix_fmt
        if tagged:
            context = stream.codec_context
            context.colorspace, context.color_range = matrix, 2 if full_range else 1
            context.color_primaries, context.color_trc = PRIMARIES[matrix], TRANSFER[matrix]
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=SWSCALE[matrix], dst_color_range=2 if full_range else 1
            )
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def standard_formula(yuv: np.ndarray, matrix: int, full_range: bool) -> np.ndarray:
    """(..., 3) float RGB of (..., 3) 8-bit YUV values by the standard's formula (unclipped)."""
    y, u, v = np.moveaxis(yuv.astype(float), -1, 0)
    kr, kb = {BT709: (0.2126, 0.0722), BT2020_NCL: (0.2627, 0.0593)}.get(matrix, (0.299, 0.114))
    if full_range:
        luma, pb, pr = y / 255, (u - 128) / 255, (v - 128) / 255
    else:
        luma, pb, pr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r = luma + 2 * (1 - kr) * pr
    b = luma + 2 * (1 - kb) * pb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], -1) * 255


def standard_rgb(frame: av.VideoFrame, matrix: int, full_range: bool) -> np.ndarray:
    """(H, W, 3) float RGB of a decoded frame by the standard's formula, clipped to 0..255."""
    yuv = np.moveaxis(frame.to_ndarray(format="yuv444p"), 0, -1)  # (H, W, 3)
    return np.clip(standard_formula(yuv, matrix, full_range), 0, 255)


SCALE_FILTER = "in_color_matrix=auto:in_range=auto:flags=accurate_rnd+full_chroma_int"


def ffmpeg_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of the first frame by FFmpeg's own tag-aware conversion: libavfilter's scale
    filter taking the matrix and range from the frame's tags (``auto``, exact rounding), then rgb24."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        graph = av.filter.Graph()
        chain = [graph.add_buffer(template=stream), graph.add("scale", SCALE_FILTER),
                 graph.add("format", "rgb24"), graph.add("buffersink")]
        for source, target in zip(chain, chain[1:]):
            source.link_to(target)
        graph.configure()
        graph.push(frame)
        return graph.pull().to_ndarray()


def read_all(path, kind):
    return torch.cat([chunk.frames for chunk in open_reader(probe(path), kind, "cpu", 8)]).numpy()


@pytest.mark.parametrize(
    "matrix, full_range, tagged, height, expected",
    [
        (BT709, False, True, 32, "BT.709 limited range"),
        (BT709, True, True, 32, "BT.709 full range"),
        (SMPTE170M, False, True, 32, "BT.601 limited range"),
        (SMPTE170M, False, False, 32, "BT.601 limited range (untagged)"),  # SD without tags: BT.601
        (BT709, False, False, 720, "BT.709 limited range (untagged)"),  # HD without tags: BT.709
    ],
)
def test_pyav_reader_converts_with_the_files_colour(tmp_path, matrix, full_range, tagged, height, expected):
    path = encode(tmp_path / "bars.mp4", bars(height), matrix=matrix, full_range=full_range, tagged=tagged)
    assert probe(path).colour.name == expected
    frames = read_all(path, "pyav")
    assert np.abs(interiors(frames[0]) - BARS).max() <= TOLERANCE
    with av.open(str(path)) as container:
        truth = standard_rgb(next(container.decode(video=0)), matrix, full_range)
    assert np.abs(interiors(frames[0]) - interiors(truth)).max() <= TOLERANCE


def test_a_bt709_red_is_red(tmp_path):
    """The case that went wrong: BT.709 red decoded as BT.601 came back as (255, 23, 0)."""
    path = encode(tmp_path / "red.mp4", bars(), matrix=BT709, full_range=False, tagged=True)
    red = interiors(read_all(path, "pyav")[0])[0]
    assert np.abs(red - [255, 0, 0]).max() <= TOLERANCE


TAGGED = [(BT709, False), (BT709, True), (SMPTE170M, False), (BT2020_NCL, False), (BT2020_NCL, True)]


@pytest.mark.parametrize(
    "kind, matrix, full_range",
    [("pyav", *tagged) for tagged in TAGGED] + [("dali", *tagged) for tagged in TAGGED if not tagged[1]],
)
def test_every_reader_is_within_two_levels_of_ffmpegs_own_conversion(tmp_path, kind, matrix, full_range):
    """Tagged BT.601, BT.709 and BT.2020, limited and full range: each reader's RGB (DALI's CPU reader on
    VP9, corrected; PyAV on lossless H.264) is within 2 levels of FFmpeg's tag-aware conversion of the
    same frame. Mid tones for DALI, whose BT.601 conversion clips what lies outside 0..255 before the
    correction can map it back; full range never goes to DALI by itself (`test_full_range_is_pyavs`)."""
    colours, codec, pix_fmt, suffix = ((MID_TONES, "libvpx-vp9", "yuv420p", "webm") if kind == "dali"
                                       else (BARS, "libx264", "yuv444p", "mp4"))
    path = encode(tmp_path / f"bars.{suffix}", bars(32, colours), matrix=matrix, full_range=full_range,
                  tagged=True, codec=codec, pix_fmt=pix_fmt)
    assert probe(path).colour.matrix == matrix and probe(path).colour.full_range == full_range
    frames = read_all(path, kind)
    assert np.abs(interiors(frames[0]) - interiors(ffmpeg_rgb(path))).max() <= TOLERANCE
    assert np.abs(interiors(frames[0]) - colours).max() <= TOLERANCE


@pytest.mark.parametrize(
    "matrix, tagged, height", [(BT709, True, 32), (SMPTE170M, True, 32), (BT709, False, 720)]
)
def test_dali_is_corrected_to_the_files_colour(tmp_path, matrix, tagged, height):
    """DALI's CPU reader converts every file with BT.601; after the correction (forced DALI) it agrees with
    the file's colour wherever DALI did not clip; ``auto`` gives non-BT.601 files to PyAV on a CPU."""
    path = encode(
        tmp_path / "bars.webm",
        bars(height, MID_TONES),
        matrix=matrix,
        full_range=False,
        tagged=tagged,
        codec="libvpx-vp9",
        pix_fmt="yuv420p",
    )
    frames = read_all(path, "dali")
    assert np.abs(interiors(frames[0]) - MID_TONES).max() <= TOLERANCE
    with av.open(str(path)) as container:
        truth = standard_rgb(next(container.decode(video=0)), matrix, False)
    assert np.abs(interiors(frames[0]) - interiors(truth)).max() <= TOLERANCE
    expected = "dali-cpu" if matrix == SMPTE170M else "pyav"
    assert open_reader(probe(path), "auto", "cpu").name == expected


def test_the_correction_is_exact_for_unclipped_colours():
    """Through the correction, BT.601-limited RGB of a YUV value becomes its BT.709-limited RGB."""
    yuv = np.array([[120.0, 100.0, 150.0], [60.0, 140.0, 120.0]])  # mid-range YUV: no channel clips
    as_601 = standard_formula(yuv, SMPTE170M, False).round()
    as_dali = torch.from_numpy(as_601).to(torch.uint8)[None, None]  # (1, 1, 2, 3)
    corrected = DaliCorrection(Colour(matrix=BT709, tagged=True), "yuv420p")(as_dali)[0, 0].numpy()
    assert np.abs(corrected - standard_formula(yuv, BT709, False)).max() <= 1


@pytest.mark.parametrize(
    "matrix, full_range, tagged, height",
    [(BT709, False, True, 32), (BT709, True, True, 32), (SMPTE170M, False, True, 32),
     (BT2020_NCL, False, True, 32), (BT2020_NCL, True, True, 32), (BT709, False, False, 720)],
)
def test_the_writer_converts_and_tags_with_the_inputs_colour(tmp_path, matrix, full_range, tagged, height):
    """The output, decoded with its own tags (by the standard's formula and by FFmpeg), is the RGB it was
    given; it is tagged with the input's colour: matrix, range, primaries and transfer (untagged HD as
    BT.709)."""
    source = encode(tmp_path / "in.mp4", bars(height), matrix=matrix, full_range=full_range, tagged=tagged)
    info = probe(source)
    out = tmp_path / "out.mp4"
    image = bars(height)
    with VideoWriter(out, info, options={"qp": "0"}) as writer:  # lossless, so the conversion alone is seen
        writer.write(np.stack([image] * 3))
    with av.open(str(out)) as container:
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_range) == (matrix, 2 if full_range else 1)
        assert (context.color_primaries, context.color_trc) == (PRIMARIES[matrix], TRANSFER[matrix])
        frame = next(container.decode(video=0))
        truth = standard_rgb(frame.reformat(format="yuv444p"), matrix, full_range)
    assert np.abs(interiors(ffmpeg_rgb(out)) - BARS).max() <= TOLERANCE
    # swscale's RGB -> YUV (PyAV gives no exact-rounding flag) is up to 2.3 levels from the formula's
    # inverse for BT.2020 full range; FFmpeg's own decode above stays within 2
    assert np.abs(interiors(truth) - BARS).max() <= TOLERANCE + 0.5
    assert probe(out).colour == info.colour.__class__(**{**info.colour.__dict__, "tagged": True})


@pytest.mark.parametrize("full_range", [False, True])
def test_full_range_is_pyavs(tmp_path, monkeypatch, full_range):
    """DALI converts these files as limited range and clips what a correction would need, so ``auto``
    gives a full-range file to PyAV even where NVDEC could decode it (pretended here), with the reason;
    a limited-range BT.709 file still goes to NVDEC, corrected there."""
    path = encode(tmp_path / "bars.webm", bars(32, MID_TONES), matrix=BT709, full_range=full_range,
                  tagged=True, codec="libvpx-vp9", pix_fmt="yuv420p")
    monkeypatch.setattr(readers.dali, "gpu_problem", lambda info, device: None)
    reader = open_reader(probe(path), "auto", "cuda")
    assert reader.name == ("pyav" if full_range else "dali-gpu")
    if full_range:
        assert "DALI converts BT.709 full range as BT.601 limited range" in reader.reason
