"""Time-sharded deblurring: parts of a video on any number of workers give the single-process file."""
import json
import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import torch

from pipeline.checkout import ROOT
from pipeline.config import DeblurConfig
from pipeline.errors import VideoError
from pipeline.stream.deblur_part import deblur_part
from pipeline.stream.job import Job, deblur_video
from pipeline.stream.parts import Part, decode_range, plan
from pipeline.stream.windows import BORDERS
from pipeline.video.probe import probe
from pipeline.video.segments import Segments
from pipeline.video.sequences import read_image

from .helpers import TINY, TINY_ARGS, seeded_model

TINY_CHUNKS = [*TINY_ARGS, "--chunk", "3"]
SIZE = (64, 48)


@pytest.fixture(scope="module")
def clip(make_clip):
    """24 frames 64x48 H.264 with an AAC track."""
    return make_clip("shards_audio.mp4", frames=24, size=SIZE, audio=True)


def packets(path) -> list[tuple[str, int | None, bytes]]:
    """Every packet of every stream: (stream type, pts, payload)."""
    with av.open(str(path)) as container:
        return [(p.stream.type, p.pts, bytes(p)) for p in container.demux() if p.size]


def torchrun(workers: int, *args: str, port: int, **options) -> subprocess.Popen:
    """``scripts/deblur.py`` under torchrun with ``workers`` CPU processes of one thread each."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(workers),
               "--master-port", str(port), str(ROOT / "scripts" / "deblur.py"), *args, *TINY_CHUNKS]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, **options)


def one_process(*args: str) -> int:
    """``scripts/deblur.py`` in one process of one thread, the workers' thread count (the bits are the same
    at the same thread count per worker); its exit status."""
    command = [sys.executable, str(ROOT / "scripts" / "deblur.py"), *args, *TINY_CHUNKS]
    return subprocess.run(command, cwd=ROOT, capture_output=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode


def finished(run: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = run.communicate(timeout=timeout)
    return run.returncode, err


def test_plan_cuts_by_frames_longest_first():
    """A 1000-frame video and two 40-frame ones on 2 workers: parts of about 1080 / 8 frames, on segment
    boundaries, covering every frame once; the part with the last segment reads to the end."""
    parts = plan([list(range(16)), [0], [0]], [1000, 40, 40], Segments(64), workers=2)
    long = sorted((p for p in parts if p.video == 0), key=lambda p: p.start)
    assert [(p.start, p.stop) for p in long] == [(0, 128), (128, 256), (256, 384), (384, 512), (512, 640),
                                                  (640, 768), (768, 896), (896, None)]
    assert [p.video for p in parts[-2:]] == [1, 2]  # the short videos last: they fill the gaps
    assert plan([list(range(16))], [1000], Segments(64), workers=1) == [Part(0, 0, None)]


def test_plan_weighs_frames_by_their_pixels():
    """Two 1024-frame videos, one with 4x the pixels: its parts hold a quarter of the frames."""
    parts = plan([list(range(16)), list(range(16))], [1024, 1024], Segments(64), workers=2, pixels=[4, 1])
    sizes = {video: {p.frames(1024) for p in parts if p.video == video} for video in (0, 1)}
    assert sizes == {0: {128}, 1: {512}}


def test_plan_keeps_finished_segments_and_a_video_shorter_than_the_workers():
    assert plan([[1, 2, 5, 6]], [400], Segments(64), workers=1) == [Part(0, 64, 192), Part(0, 320, None)]
    assert plan([[0]], [3], Segments(64), workers=8) == [Part(0, 0, None)]
    assert plan([[0, 1, 2]], [3], Segments(1), workers=2) == [Part(0, 0, 1), Part(0, 1, 2), Part(0, 2, None)]


def test_decode_range_adds_context_within_the_video():
    """T = 2: two groups each side of the part's groups, none past the ends (the border policy covers
    those): 2 frames with groups of 1, 8 with groups of 4, more where the part cuts a group."""
    middle = decode_range(Part(0, 64, 128), 1000, 2, 1)
    assert (middle.first, middle.stop, middle.ends_video) == (62, 130, False)
    near_start, near_end = decode_range(Part(0, 2, 3), 6, 2, 1), decode_range(Part(0, 3, 4), 6, 2, 1)
    assert (near_start.first, near_start.stop) == (0, 5) and (near_end.first, near_end.stop) == (1, None)
    grouped, cut = decode_range(Part(0, 64, 128), 1000, 2, 4), decode_range(Part(0, 66, 126), 1000, 2, 4)
    assert (grouped.first, grouped.stop) == (56, 136) and (cut.first, cut.stop) == (56, 136)
    assert decode_range(Part(0, 8, 64), 1000, 2, 4).first == 0  # its context reaches the start


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("codec, reader", [("libx264", "pyav"), ("libvpx-vp9", "dali")])
def test_parts_in_any_order_join_to_the_whole_run(make_clip, tiny_model, tmp_path, border, codec, reader):
    """Every part of a 3-frame-segment plan, restored out of order by `deblur_part`, joins into a file
    whose every packet equals a whole run's: for each border policy and reader (DALI on VP9 here)."""
    source = make_clip(f"shards_{codec}.mkv", codec=codec, frames=10, size=SIZE)
    config = DeblurConfig(chunk=3, segment=3, border=border, reader=reader)
    deblur_video(tiny_model, source, tmp_path / "whole.mp4", config)
    output = Job(tiny_model, config).open_output(source, tmp_path / "parts.mp4", prepare=True)
    frames = output.info.num_frames
    parts = plan([output.work.missing(frames)], [frames], Segments(3), workers=3)
    assert [part.start for part in parts] == [0, 3, 6, 9]  # the last part, frame 9, holds one frame
    for part in reversed(parts):
        deblur_part(tiny_model, output, part, config, device=torch.device("cpu"), reader=reader)
    output.join()
    assert packets(tmp_path / "parts.mp4") == packets(tmp_path / "whole.mp4")


def test_join_refuses_missing_and_mismatched_parts(clip, tiny_model, tmp_path):
    config = DeblurConfig(chunk=3, segment=4)
    output = Job(tiny_model, config).open_output(clip, tmp_path / "out.mp4", prepare=True)
    deblur_part(tiny_model, output, Part(0, 0, 8), config, device=torch.device("cpu"), reader="pyav")
    deblur_part(tiny_model, output, Part(0, 16, None), config, device=torch.device("cpu"), reader="pyav")
    with pytest.raises(VideoError, match=r"is incomplete: frames 8-11 \(2 segment\(s\)\) are not finished"):
        output.join()
    output.work.seal(2, 4, "dali-gpu")
    output.work.seal(3, 4, "dali-gpu")
    with pytest.raises(VideoError, match=r"parts were decoded by different readers \(dali-gpu, pyav\)"):
        output.join()
    other = Job(tiny_model, config, weights="other.pt").open_output(clip, tmp_path / "out.mp4", prepare=False)
    with pytest.raises(VideoError, match="was prepared for other settings"):
        other.writer(8)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3])
def test_torchrun_workers_write_the_single_process_file(clip, tmp_path, workers):
    """torchrun with 2 and 3 CPU workers: the same bytes as one process (frames, pts, audio, container);
    the summary says how many parts each worker did."""
    single = tmp_path / "single.mp4"
    assert one_process(str(clip), "-o", str(single), "--set", "deblur.segment=4") == 0
    shared = tmp_path / "shared.mp4"
    code, err = finished(torchrun(workers, str(clip), "-o", str(shared), "--set", "deblur.segment=4",
                                  "--summary", str(tmp_path / "summary.json"), port=29540 + workers))
    assert code == 0, err[-3000:]
    assert shared.read_bytes() == single.read_bytes()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["workers"] == workers and sum(r["parts"] for r in summary["ranks"]) == 6
    assert summary["videos"][0]["output"] == str(shared) and summary["videos"][0]["frames"] == 24


@pytest.mark.slow
def test_three_frames_on_two_workers_in_one_frame_parts(make_clip, tmp_path):
    """A 3-frame clip, 1-frame segments, 2 workers: three one-frame parts, and one process's file."""
    three = make_clip("shards_three.mp4", frames=3, size=SIZE, audio=True)
    single, shared = tmp_path / "single.mp4", tmp_path / "shared.mp4"
    assert one_process(str(three), "-o", str(single), "--set", "deblur.segment=1") == 0
    code, err = finished(torchrun(2, str(three), "-o", str(shared), "--set", "deblur.segment=1", port=29550))
    assert code == 0, err[-3000:]
    assert shared.read_bytes() == single.read_bytes() and probe(shared).num_frames == 3


@pytest.mark.slow
def test_a_video_shorter_than_the_workers(make_clip, tmp_path):
    """A 1-frame clip on 3 workers: one part, two workers with nothing to do, the single-process file."""
    one = make_clip("shards_one.mp4", frames=1, size=SIZE, audio=True)
    single, shared = tmp_path / "single.mp4", tmp_path / "shared.mp4"
    assert one_process(str(one), "-o", str(single)) == 0
    code, err = finished(torchrun(3, str(one), "-o", str(shared), port=29555))
    assert code == 0, err[-3000:]
    assert shared.read_bytes() == single.read_bytes()


@pytest.mark.slow
def test_a_killed_worker_is_finished_by_resume(make_clip, tmp_path):
    """One of two workers killed mid-run: torchrun stops the launch, no output appears, finished segments
    stay; ``--resume`` does the rest and gives one process's file."""
    long = make_clip("shards_long.mp4", frames=60, size=SIZE, audio=True)
    single, shared = tmp_path / "single.mp4", tmp_path / "shared.mp4"
    segment = ["--set", "deblur.segment=4"]
    assert one_process(str(long), "-o", str(single), *segment) == 0
    run = torchrun(2, str(long), "-o", str(shared), *segment, port=29560, start_new_session=True)
    done = tmp_path / ".shared.mp4.partial" / ".state" / "done"
    deadline = time.monotonic() + 120
    while len(list(done.glob("*.json"))) < 2:
        assert run.poll() is None and time.monotonic() < deadline, "the launch ended before any kill"
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(workers[-1]), signal.SIGKILL)
    code, _ = finished(run)
    assert code != 0 and not shared.exists()
    kept = len(list(done.glob("*.json")))
    assert 2 <= kept < 15  # 60 frames: 15 segments
    code, err = finished(torchrun(2, str(long), "-o", str(shared), *segment, "--resume", port=29561))
    assert code == 0, err[-3000:]
    assert shared.read_bytes() == single.read_bytes()


@pytest.mark.slow
def test_a_bad_video_fails_alone(clip, make_clip, tmp_path):
    """Two workers, a good clip and a cut one: the good output is complete, the bad one is one error line,
    nothing half-written appears, and the exit status is 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.mp4").write_bytes(clip.read_bytes())
    data = make_clip("shards_cut.mp4", frames=24, size=SIZE).read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    code, err = finished(torchrun(2, str(folder), "-o", str(tmp_path / "out"), "--set", "deblur.segment=4",
                                  port=29570))
    assert code == 1
    assert probe(tmp_path / "out" / "good.mp4").num_frames == 24
    assert not (tmp_path / "out" / "cut.mp4").exists()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {folder / 'cut.mp4'}: not a video file or corrupt (Invalid data found when "
                      "processing input)"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_parts_on_cuda_join_to_the_whole_run(make_clip, tmp_path):
    """On the GPU, where batch shapes could pick other kernels, parts (chunk 3, segment 3) still join into
    the whole run's packets: the per-frame arithmetic does not depend on where a part starts."""
    model = seeded_model(TINY, seed=3).cuda().eval()
    source = make_clip("shards_cuda.mp4", frames=10, size=SIZE)
    config = DeblurConfig(chunk=3, segment=3)
    deblur_video(model, source, tmp_path / "whole.mp4", config, device="cuda")
    output = Job(model, config, device="cuda").open_output(source, tmp_path / "parts.mp4", prepare=True)
    for part in reversed(plan([output.work.missing(10)], [10], Segments(3), workers=3)):
        deblur_part(model, output, part, config, device=torch.device("cuda"), reader="auto")
    output.join()
    assert packets(tmp_path / "parts.mp4") == packets(tmp_path / "whole.mp4")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_deblur_video_on_cuda_gives_the_cpus_frames(make_clip, tmp_path):
    """`deblur_video` on the GPU (side stream, pinned host copies, events) writes the frames the CPU
    writes: both decode with PyAV, and fp32 with TF32 off differs from the CPU by rounding only, so no
    pixel moves by more than one level and few move at all."""
    model = seeded_model(TINY, seed=3).eval()
    source = make_clip("cuda_vs_cpu.mp4", frames=12, size=SIZE)
    config = DeblurConfig(chunk=5, format="png", reader="pyav")
    deblur_video(model, source, tmp_path / "cpu", config, device="cpu")
    deblur_video(model.cuda(), source, tmp_path / "cuda", config, device="cuda")
    names = sorted(p.name for p in (tmp_path / "cpu").glob("*.png"))
    assert names == sorted(p.name for p in (tmp_path / "cuda").glob("*.png")) and len(names) == 12
    cpu = np.stack([read_image(tmp_path / "cpu" / name) for name in names]).astype(int)
    cuda = np.stack([read_image(tmp_path / "cuda" / name) for name in names]).astype(int)
    assert np.abs(cpu - cuda).max() <= 1 and (cpu != cuda).mean() < 1e-2
