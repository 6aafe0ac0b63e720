"""Readers, prefetch and layout conversion: every frame once, in order, upright RGB, from any backend."""

import dataclasses
import threading
import time

import numpy as np
import pytest
import torch

from pipeline.errors import VideoError
from pipeline.video import readers
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.prefetch import prefetch
from pipeline.video.probe import probe
from pipeline.video.readers import Chunk, open_reader

from .helpers import needs_dali


def needs_cuda(test):
    return pytest.mark.cuda(
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test)
    )


CODEC_TOLERANCE = 3.0  # mean |difference| between two decoders' YUV -> RGB conversions (measured ~1.2)


def read(path, kind="auto", chunk=8, start_frame=0, device="cpu") -> tuple[str, list[Chunk]]:
    reader = open_reader(probe(path), kind, device, chunk, start_frame=start_frame)
    return reader.name, list(reader)


def frames_of(chunks: list[Chunk]) -> torch.Tensor:
    return torch.cat([chunk.frames for chunk in chunks])


def pts_of(chunks: list[Chunk]) -> list[int]:
    return [stamp for chunk in chunks for stamp in chunk.pts]


def mean_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.cpu().int() - b.cpu().int()).abs().float().mean().item()


@pytest.mark.parametrize("clip", ["vp9_clip", "mjpeg_clip"])
def test_dali_cpu_matches_pyav(request, clip):
    """DALI on the CPU gives PyAV's frame count, timestamps and (within conversion tolerance) frames."""
    path = request.getfixturevalue(clip)
    dali_name, dali = read(path, "dali")
    pyav_name, pyav = read(path, "pyav")
    assert (dali_name, pyav_name) == ("dali-cpu", "pyav")
    assert frames_of(dali).shape == frames_of(pyav).shape == (30, 120, 160, 3)
    assert pts_of(dali) == pts_of(pyav)
    assert mean_difference(frames_of(dali), frames_of(pyav)) < CODEC_TOLERANCE


@pytest.mark.parametrize(
    "name, frames", [("realshort.mp4", 36), ("tree.avi", 68), ("carphone_pristine.mp4", 120)]
)
def test_pyav_on_real_footage(footage, name, frames):
    """PyAV reads every frame of the footage (H.264, Cinepak) in order, as probed."""
    info = probe(footage / name)
    chunks = list(open_reader(info, "auto", "cpu", 16))
    assert open_reader(info, "auto", "cpu", 16).name == "pyav"
    assert [chunk.start for chunk in chunks] == list(range(0, frames, 16))
    assert frames_of(chunks).shape == (frames, info.height, info.width, 3)
    assert pts_of(chunks) == sorted(set(pts_of(chunks)))


@pytest.mark.parametrize("kind", ["dali", "pyav"])
def test_tail_is_kept(vp9_clip, kind):
    """30 frames in chunks of 7: four full chunks and a tail of 2, nothing padded or dropped."""
    _, chunks = read(vp9_clip, kind, chunk=7)
    assert [(chunk.start, len(chunk.frames), len(chunk.pts)) for chunk in chunks] == [
        (0, 7, 7),
        (7, 7, 7),
        (14, 7, 7),
        (21, 7, 7),
        (28, 2, 2),
    ]
    assert len(set(pts_of(chunks))) == 30


@pytest.mark.parametrize("kind", ["dali", "pyav"])
def test_one_frame_video(one_frame_clip, kind):
    _, chunks = read(one_frame_clip, kind, chunk=8)
    assert [(chunk.start, tuple(chunk.frames.shape)) for chunk in chunks] == [(0, (1, 120, 160, 3))]


@pytest.mark.parametrize("kind, clip", [("dali", "vp9_clip"), ("pyav", "vp9_clip"), ("pyav", "h264_clip")])
def test_start_frame(request, kind, clip):
    """Starting at frame 13 yields exactly frames 13.. of a full read, numbered from 13."""
    path = request.getfixturevalue(clip)
    _, full = read(path, kind)
    _, resumed = read(path, kind, start_frame=13)
    assert [chunk.start for chunk in resumed] == [13, 21, 29]
    assert torch.equal(frames_of(resumed), frames_of(full)[13:])
    assert pts_of(resumed) == pts_of(full)[13:]


@pytest.mark.parametrize("kind", ["dali", "pyav"])
def test_start_at_end_yields_nothing(vp9_clip, kind):
    assert read(vp9_clip, kind, start_frame=30)[1] == []


def test_automatic_choice(vp9_clip, mjpeg_clip, h264_clip, footage):
    """On a CPU: DALI for VP9/MJPEG, PyAV for the rest, each with its reason."""
    cpu = torch.device("cpu")
    assert open_reader(probe(vp9_clip), device=cpu).name == "dali-cpu"
    assert open_reader(probe(mjpeg_clip), device=cpu).name == "dali-cpu"
    h264 = open_reader(probe(h264_clip), device=cpu)
    cinepak = open_reader(probe(footage / "tree.avi"), device=cpu)
    assert (h264.name, cinepak.name) == ("pyav", "pyav")
    assert "not h264" in h264.reason and "not cinepak" in cinepak.reason


@pytest.mark.parametrize(
    "pix_fmt, bit_depth, gray, alpha",
    [("yuv420p10le", 10, False, False), ("gray", 8, True, False), ("yuva420p", 8, False, True)],
)
def test_unusual_pixel_formats_go_to_pyav(vp9_clip, pix_fmt, bit_depth, gray, alpha):
    """VP9 in 10-bit, gray or with alpha is left to PyAV, and forcing DALI on it is refused."""
    info = dataclasses.replace(
        probe(vp9_clip), pix_fmt=pix_fmt, bit_depth=bit_depth, is_gray=gray, has_alpha=alpha
    )
    reader = open_reader(info, "auto", "cpu", 8)
    assert reader.name == "pyav" and pix_fmt in reader.reason
    with pytest.raises(VideoError, match="use --reader pyav"):
        open_reader(info, "dali", "cpu", 8)


def test_forced_dali_on_h264_without_gpu(h264_clip):
    """Forcing DALI on H.264 without a GPU names the file and the codec and says what to do."""
    with pytest.raises(
        VideoError, match=r"h264\.mp4: DALI cannot decode it here: .*not h264; use --reader pyav"
    ):
        open_reader(probe(h264_clip), "dali", "cpu", 8)


def test_gray_is_rgb(gray_clip, h264_clip):
    """Gray video comes out as (F, H, W, 3) with R == G == B."""
    frames = frames_of(read(gray_clip)[1])
    assert frames.shape == (30, 120, 160, 3) and frames.dtype == torch.uint8
    assert torch.equal(frames[..., 0], frames[..., 1]) and torch.equal(frames[..., 1], frames[..., 2])


def test_ten_bit_and_alpha_are_rgb24(tenbit_clip, alpha_clip, h264_clip):
    """10-bit and RGBA video come out as 8-bit RGB close to the 8-bit encode of the same frames."""
    eight = frames_of(read(h264_clip)[1])
    ten = frames_of(read(tenbit_clip)[1])
    alpha = frames_of(read(alpha_clip)[1])
    assert ten.shape == eight.shape and alpha.shape == (8, 120, 160, 3)
    assert mean_difference(ten, eight) < CODEC_TOLERANCE
    assert mean_difference(alpha, eight[:8]) < CODEC_TOLERANCE  # alpha dropped, colour kept


def test_rotation_is_applied(rotated_clip, h264_clip):
    """A 90-degree display rotation gives upright frames: the stored ones turned counter-clockwise."""
    upright = frames_of(read(rotated_clip)[1])
    stored = frames_of(read(h264_clip)[1])[:8]
    assert upright.shape == (8, 160, 120, 3)
    assert mean_difference(upright, torch.rot90(stored, 1, dims=(1, 2))) < CODEC_TOLERANCE


@pytest.mark.parametrize("kind", ["dali", "pyav"])
def test_short_stream_raises(vp9_clip, kind):
    """A stream that ends before the probed count raises VideoError after the frames it has."""
    info = dataclasses.replace(probe(vp9_clip), num_frames=35)
    with pytest.raises(VideoError, match=r"vp9\.webm: truncated or corrupt \(decoded 30 of 35 frames\)"):
        list(open_reader(info, kind, "cpu", 8))


def test_corrupt_bytes_raise(h264_clip, tmp_path):
    """Garbage in the middle of the frame data is a VideoError, not a half result."""
    data = bytearray(h264_clip.read_bytes())
    middle = slice(len(data) * 6 // 10, len(data) * 8 // 10)
    data[middle] = (
        np.random.default_rng(0).integers(0, 256, middle.stop - middle.start, dtype=np.uint8).tobytes()
    )
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoError, match=r"corrupt\.mp4: truncated or corrupt"):
        list(open_reader(probe(path), "pyav", "cpu", 8))


def test_bad_arguments(vp9_clip):
    info = probe(vp9_clip)
    for kwargs in ({"kind": "opencv"}, {"chunk": 0}, {"start_frame": 31}):
        with pytest.raises(ValueError):
            open_reader(info, **kwargs)


@needs_cuda
@needs_dali
@pytest.mark.parametrize("clip", ["h264_clip", "vp9_clip"])
def test_dali_gpu_matches_pyav(request, clip):
    """On a GPU, DALI (NVDEC) reads H.264 and VP9 into CUDA tensors: PyAV's count, timestamps and frames."""
    path = request.getfixturevalue(clip)
    name, gpu = read(path, "auto", device="cuda")
    _, cpu = read(path, "pyav")
    assert name == "dali-gpu" and all(chunk.frames.is_cuda for chunk in gpu)
    assert pts_of(gpu) == pts_of(cpu)
    assert mean_difference(frames_of(gpu), frames_of(cpu)) < CODEC_TOLERANCE


@needs_cuda
@needs_dali
def test_dali_gpu_metadata_arrives_on_the_host(h264_clip, tmp_path):
    """NVDEC frames stay on the GPU, their numbers and timestamps come to the host inside the pipeline:
    reading them each chunk does not wait for the CUDA stream."""
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    info = probe(h264_clip)
    pipe = readers.chunk_pipeline(file_list=readers.one_line_file_list(tmp_path, info, 0, None), chunk=4,
                                   backend="gpu", batch_size=1, num_threads=1, device_id=0)
    batch = next(iter(DALIGenericIterator([pipe], ["frames", "frame_num", "timestamps"],
                                          reader_name=readers.DALI_READER)))[0]
    assert batch["frames"].is_cuda and not batch["frame_num"].is_cuda and not batch["timestamps"].is_cuda


@needs_cuda
def test_gpu_choice_falls_back_for_444(footage):
    """H.264 4:4:4 is not for NVDEC: PyAV decodes it and the frames go to the GPU."""
    reader = open_reader(probe(footage / "cockatoo.mp4"), "auto", "cuda", 8)
    assert reader.name == "pyav" and "yuv444p" in reader.reason
    assert next(iter(reader)).frames.is_cuda


def test_prefetch_order_and_run_ahead():
    """Items arrive in order, and the producer runs ahead of a slow consumer by up to the queue depth."""
    produced = []

    def numbers():
        for i in range(6):
            produced.append(i)
            yield i

    items = prefetch(numbers(), depth=2)
    assert next(items) == 0
    time.sleep(0.2)
    assert len(produced) >= 3  # 1 handed over, 2 queued (+1 waiting to be queued)
    assert list(items) == [1, 2, 3, 4, 5]


def test_prefetch_forwards_exceptions():
    def failing():
        yield 1
        raise OSError("disk gone")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(items)


def test_prefetch_stops_when_consumer_stops():
    """Breaking out early stops the producer thread and closes its iterator."""
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    items = prefetch(endless(), depth=2)
    next(items)
    items.close()
    assert closed.is_set()
    assert not any(thread.name == "prefetch" for thread in threading.enumerate())


def test_layout_round_trip():
    """to_model: (F, H, W, 3) uint8 -> (F, 3, H, W) float in [0, 1]; to_uint8 inverts it exactly."""
    frames = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8)
    model = to_model(frames)
    assert model.shape == (2, 3, 5, 7) and model.dtype == torch.float32 and model.is_contiguous()
    assert torch.equal(model[1, 2], frames[1, ..., 2].float() / 255)
    assert torch.equal(to_uint8(model), frames)


def test_to_uint8_quantises_like_the_official_code():
    """clamp(x * 255, 0, 255).round(): out-of-range values clamp, halves round to even."""
    values = (
        torch.tensor([-0.1, 0.0, 0.5 / 255, 1.5 / 255, 0.4, 1.0, 1.2]).view(1, 1, 1, 7).expand(1, 3, 1, 7)
    )
    expected = torch.clamp(values * 255, 0, 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.equal(to_uint8(values), expected)
    assert to_uint8(values)[0, 0, :, 0].tolist() == [0, 0, 0, 2, 102, 255, 255]


def test_layout_checks():
    with pytest.raises(ValueError):
        to_model(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError):
        to_uint8(torch.zeros(2, 4, 4, 3))


@pytest.mark.parametrize("codec, suffix", [("libvpx-vp9", "webm"), ("mjpeg", "mkv")])
@pytest.mark.parametrize("start_frame", [0, 13])
def test_a_late_start_keeps_its_timestamps_on_every_reader(make_clip, codec, suffix, start_frame):
    """A file whose first frame is at 80 ms: DALI's timestamps (which count from the first frame) come out as
    the file's own pts, as PyAV's do, also when reading from a later frame."""
    path = make_clip(f"late80.{suffix}", codec=codec, pix_fmt="yuvj420p" if codec == "mjpeg" else "yuv420p",
                     pts=[2 + i for i in range(30)])
    info = probe(path)
    _, pyav = read(path, "pyav", start_frame=start_frame)
    _, dali = read(path, "dali", start_frame=start_frame)
    first = (2 + start_frame) / 25
    assert pts_of(pyav)[0] * info.time_base == pytest.approx(first, abs=1e-3)
    assert pts_of(dali) == pts_of(pyav)


def test_evaluation_reads_what_deblur_reads(rotated_clip, h264_clip):
    """`sequences.read_frames` (evaluation, --sharp, training sets) is the reader's PyAV path: the same
    frames, upright for a phone clip with display rotation."""
    from pipeline.video.sequences import read_frames

    for clip in (rotated_clip, h264_clip):
        _, chunks = read(clip, "pyav")
        assert np.array_equal(np.stack(list(read_frames(clip))), frames_of(chunks).numpy())
    assert np.stack(list(read_frames(rotated_clip))).shape[1:3] == probe(rotated_clip).frame_size
