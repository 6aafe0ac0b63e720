"""VideoWriter: same timestamps, audio and size as the input; atomic; resumable to an identical result."""

import errno
import os
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from pipeline.errors import VideoError
from pipeline.video import segments
from pipeline.video import writer as writer_module
from pipeline.video.probe import probe
from pipeline.video.readers import open_reader

from .helpers import VideoWriter


def decoded(path) -> tuple[np.ndarray, list]:
    """(F, H, W, 3) uint8 frames and their presentation times in seconds (Fractions)."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return np.stack([f.to_ndarray(format="rgb24") for f in frames]), [f.pts * f.time_base for f in frames]


def copy_video(source, target, chunk=8, **options) -> VideoWriter:
    """Read ``source`` with PyAV and write its frames to ``target`` unchanged."""
    info = probe(source)
    with VideoWriter(target, info, **options) as writer:
        for piece in open_reader(info, "pyav", "cpu", chunk):
            writer.write(piece.frames, piece.pts)
    return writer


def wait_for_progress(work, frames: int, timeout: float = 20.0) -> None:
    """Wait until the encoder thread has recorded ``frames`` finished frames in the work folder."""
    deadline = time.monotonic() + timeout
    while work.done_frames() < frames:
        assert time.monotonic() < deadline, f"the encoder did not finish {frames} frames"
        time.sleep(0.02)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_timestamps_and_frames_kept(vfr_clip, tmp_path):
    """A variable-frame-rate clip keeps every frame's presentation time; frames survive x264 at crf 18."""
    target = tmp_path / "out.mp4"
    copy_video(vfr_clip, target, segment_frames=8)
    (source_frames, source_times), (out_frames, out_times) = decoded(vfr_clip), decoded(target)
    assert out_times == source_times and len(out_times) == 24
    assert psnr(out_frames, source_frames) > 35
    assert not (tmp_path / ".out.mp4.partial").exists() and sorted(tmp_path.iterdir()) == [target]


def test_audio_is_copied(audio_clip, tmp_path):
    """The AAC track is remuxed packet for packet (not re-encoded)."""
    target = tmp_path / "out.mp4"
    copy_video(audio_clip, target)
    assert probe(target).audio_codec == "aac"
    packets = []
    for path in (audio_clip, target):
        with av.open(str(path)) as container:
            packets.append([bytes(p) for p in container.demux(container.streams.audio[0]) if p.size])
    assert packets[0] == packets[1] and len(packets[0]) > 10


def test_audio_dropped_where_the_container_cannot_hold_it(audio_clip, tmp_path, caplog):
    """AAC cannot go into WebM: the video is written without audio, with a warning."""
    target = tmp_path / "out.webm"
    copy_video(audio_clip, target, codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"})
    assert not probe(target).has_audio and probe(target).num_frames == 30
    assert "audio stream 1 (aac) cannot go into .webm; the output leaves it out" in caplog.text


def streams_of(path) -> list[tuple[str, str, str | None]]:
    """(type, codec, language) of the file's video, audio and subtitle streams (MP4 adds a data stream for
    its chapters)."""
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name, s.metadata.get("language")) for s in container.streams
                if s.type in ("video", "audio", "subtitle")]


def packets_of(path, index: int) -> list[tuple[bytes, object]]:
    """(data, pts in seconds) of stream ``index``'s packets."""
    with av.open(str(path)) as container:
        stream = container.streams[index]
        return [(bytes(p), p.pts * p.time_base) for p in container.demux(stream) if p.size]


def test_every_track_subtitles_metadata_and_chapters_are_carried(tracks_clip, tmp_path):
    """Both audio tracks and the subtitles are remuxed packet for packet, with their languages; the
    title and the chapter stay. MP4 cannot hold SubRip: it keeps the rest and says what it left out."""
    target = tmp_path / "out.mkv"
    copy_video(tracks_clip, target)
    assert streams_of(target) == streams_of(tracks_clip)
    assert [(kind, language) for kind, _, language in streams_of(target)] == [
        ("video", None), ("audio", "eng"), ("audio", "fra"), ("subtitle", "eng")]
    with av.open(str(target)) as output:
        assert output.metadata["title"] == "Two tracks and subtitles"
        assert [chapter["metadata"]["title"] for chapter in output.chapters()] == ["Opening"]
    for index in (1, 2, 3):
        assert packets_of(target, index) == packets_of(tracks_clip, index) != []
    mp4 = tmp_path / "out.mp4"
    copy_video(tracks_clip, mp4)
    audio = [(kind, language) for kind, _, language in streams_of(mp4)[1:]]
    assert audio == [("audio", "eng"), ("audio", "fra")]


def test_odd_size_is_kept(odd_clip, tmp_path, caplog):
    """161x121 4:2:0 frames stay 161x121 (yuv444p: H.264 has no odd-sized 4:2:0), with a warning that says
    what that costs."""
    target = tmp_path / "out.mp4"
    copy_video(odd_clip, target)
    assert "odd frame size 161x121: encoded with libx264 as yuv444p" in caplog.text
    info = probe(target)
    assert (info.width, info.height, info.pix_fmt, info.num_frames) == (161, 121, "yuv444p", 12)
    assert psnr(decoded(target)[0], decoded(odd_clip)[0]) > 35


def test_png_frames(vp9_clip, tmp_path):
    """format='png' writes a folder 000000.png ... holding exactly the frames given."""
    info = probe(vp9_clip)
    frames = torch.cat([c.frames for c in open_reader(info, "pyav", "cpu", 8)])
    target = tmp_path / "frames"
    with VideoWriter(target, info, format="png", segment_frames=8) as writer:
        writer.write(frames[:20])
        writer.write(frames[20:])
    names = sorted(p.name for p in target.iterdir())
    assert names == [f"{i:06d}.png" for i in range(30)]
    assert np.array_equal(decoded(target / "000029.png")[0][0], frames[29].numpy())


def test_compare_side_by_side(h264_clip, tmp_path):
    """compare=True writes input | output, twice as wide."""
    info = probe(h264_clip)
    target = tmp_path / "compare.mp4"
    with VideoWriter(target, info, compare=True) as writer:
        for piece in open_reader(info, "pyav", "cpu", 8):
            writer.write(255 - piece.frames, piece.pts, source=piece.frames)
    frames = decoded(target)[0]
    source = decoded(h264_clip)[0]
    assert frames.shape == (30, 120, 320, 3)
    assert psnr(frames[:, :, :160], source) > 35 and psnr(frames[:, :, 160:], 255 - source) > 35


def test_existing_output_is_refused(h264_clip, tmp_path):
    """An existing output is an error naming it, unless overwrite=True, which replaces it."""
    target = tmp_path / "out.mp4"
    target.write_bytes(b"old")
    with pytest.raises(VideoError, match=r"out\.mp4: already exists \(use --overwrite"):
        VideoWriter(target, probe(h264_clip))
    copy_video(h264_clip, target, overwrite=True)
    assert probe(target).num_frames == 30


def test_unwritable_folder(h264_clip, tmp_path):
    """An output under a file (a folder that cannot exist) is an error naming that folder."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(VideoError, match=r"file: cannot create the folder"):
        VideoWriter(blocker / "out.mp4", probe(h264_clip))


def test_read_only_folder(h264_clip, tmp_path, monkeypatch):
    """A folder the user may not write to is an error naming it. Root may write anywhere: there the access
    check answers for that folder as it does for everyone else."""
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    if os.access(folder, os.W_OK):
        allowed = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != folder and allowed(path, mode))
    with pytest.raises(VideoError, match=r"locked: folder is not writable"):
        VideoWriter(folder / "out.mp4", probe(h264_clip))


def test_no_space_left(h264_clip, tmp_path, monkeypatch):
    """ENOSPC while encoding becomes a one-line VideoError; no output and no partial segment remain."""

    def full_disk(self, index, image, pts):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(segments.VideoSegments, "add", full_disk)
    target = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=r"out\.mp4: cannot write it \(no space left on device\)"):
        copy_video(h264_clip, target)
    assert not target.exists()
    assert not list((tmp_path / ".out.mp4.partial").glob("*.part"))


def test_abort_leaves_no_output(h264_clip, tmp_path):
    """An exception inside the writer's block leaves no output, only the hidden work folder."""
    info = probe(h264_clip)
    target = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(target, info, segment_frames=8) as writer:
            for piece in open_reader(info, "pyav", "cpu", 8):
                writer.write(piece.frames, piece.pts)
                if piece.start == 16:
                    raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == [".out.mp4.partial"]
    assert not list((tmp_path / ".out.mp4.partial").glob("output.*"))


def test_failed_join_leaves_no_output(h264_clip, tmp_path, monkeypatch):
    """A failure while joining the segments removes the half-joined file; a resume only joins them."""

    def broken_join(work, info, output, *args):
        output.write_bytes(b"half a video")
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer_module, "join_segments", broken_join)
    target = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=r"out\.mp4: cannot write it \(Input/output error\)"):
        copy_video(h264_clip, target)
    assert not target.exists() and not list((tmp_path / ".out.mp4.partial").glob("output.*"))
    monkeypatch.undo()
    with VideoWriter(target, probe(h264_clip), resume=True) as writer:
        assert writer.resume_frame == 30
    assert probe(target).num_frames == 30 and not (tmp_path / ".out.mp4.partial").exists()


@pytest.mark.parametrize("format, name", [("video", "out.mp4"), ("png", "frames")])
def test_resume_gives_the_uninterrupted_result(audio_clip, tmp_path, format, name):
    """Stop after 20 frames (2 segments of 8 done), resume at 16: decodes exactly as an uninterrupted run."""
    info = probe(audio_clip)
    frames = torch.cat([c.frames for c in open_reader(info, "pyav", "cpu", 30)])
    pts = [stamp for c in open_reader(info, "pyav", "cpu", 30) for stamp in c.pts]
    options = dict(format=format, segment_frames=8, settings={"model": "tiny"})

    whole = tmp_path / "whole" / name
    with VideoWriter(whole, info, **options) as writer:
        writer.write(frames, pts)

    resumed = tmp_path / "resumed" / name
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(resumed, info, **options) as writer:
            writer.write(frames[:20], pts[:20])
            wait_for_progress(writer.work, 16)
            raise KeyboardInterrupt
    with VideoWriter(resumed, info, resume=True, **options) as writer:
        assert writer.resume_frame == 16
        writer.write(frames[16:], pts[16:])

    if format == "png":
        assert sorted(p.name for p in resumed.iterdir()) == sorted(p.name for p in whole.iterdir())
        assert all(
            np.array_equal(decoded(resumed / f)[0], decoded(whole / f)[0])
            for f in ("000015.png", "000016.png")
        )
    else:
        (a, times_a), (b, times_b) = decoded(whole), decoded(resumed)
        assert np.array_equal(a, b) and times_a == times_b and probe(resumed).has_audio


def test_resume_with_other_settings_is_refused(h264_clip, tmp_path):
    info = probe(h264_clip)
    target = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(target, info, segment_frames=8, settings={"model": "a"}) as writer:
            writer.write(np.zeros((8, 120, 160, 3), np.uint8))
            raise KeyboardInterrupt
    with pytest.raises(VideoError, match=r"\.out\.mp4\.partial: was made with other settings"):
        VideoWriter(target, info, resume=True, segment_frames=8, settings={"model": "b"})
    assert VideoWriter(target, info, resume=False, segment_frames=8).resume_frame == 0  # starts over


def test_write_does_not_wait_for_the_encoder(h264_clip, tmp_path, monkeypatch):
    """write() returns at once while the queue has room, even when encoding is slow."""
    release = threading.Event()
    original = segments.VideoSegments.add

    def slow_add(self, index, image, pts):
        release.wait()
        original(self, index, image, pts)

    monkeypatch.setattr(segments.VideoSegments, "add", slow_add)
    frames = np.zeros((4, 120, 160, 3), np.uint8)
    with VideoWriter(tmp_path / "out.mp4", probe(h264_clip), queue_depth=3) as writer:
        start = time.perf_counter()
        for _ in range(3):
            writer.write(frames)
        assert time.perf_counter() - start < 0.5
        release.set()


def test_write_checks_its_input(h264_clip, tmp_path):
    with VideoWriter(tmp_path / "out.mp4", probe(h264_clip)) as writer:
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((2, 120, 160, 3), np.float32))
        with pytest.raises(ValueError, match="pts must increase"):
            writer.write(np.zeros((2, 120, 160, 3), np.uint8), [5, 5])
        writer.write(np.zeros((2, 120, 160, 3), np.uint8), [0, 512])
        with pytest.raises(ValueError, match="earlier frames were 160x120"):
            writer.write(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="cannot hold h264"):
        VideoWriter(tmp_path / "out.webm", probe(h264_clip))
