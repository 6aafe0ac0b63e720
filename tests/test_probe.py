"""probe(): what a video holds, exact frame counts, and a clear VideoError for anything else."""

from fractions import Fraction

import av
import pytest

from pipeline.errors import VideoError
from pipeline.video.probe import probe


@pytest.mark.parametrize(
    "name, codec, size, frames, pix_fmt, audio",
    [
        ("cockatoo.mp4", "h264", (1280, 720), 280, "yuv444p", "mp3"),
        ("realshort.mp4", "h264", (320, 240), 36, "yuv420p", "aac"),
        ("tree.avi", "cinepak", (320, 240), 68, "rgb24", None),
        ("carphone_pristine.mp4", "h264", (176, 144), 120, "yuv420p", None),
    ],
)
def test_real_footage(footage, name, codec, size, frames, pix_fmt, audio):
    """The footage's codec, size, pixel format and audio, and its exact frame count.

    tree.avi's header claims 444 frames (its length in ticks of a variable-rate stream); 68 are there.
    """
    info = probe(footage / name)
    assert (info.codec, (info.width, info.height), info.num_frames, info.pix_fmt) == (
        codec,
        size,
        frames,
        pix_fmt,
    )
    assert (info.has_audio, info.audio_codec) == (audio is not None, audio)
    assert info.rotation == 0 and info.bit_depth == 8 and not info.has_alpha


def test_timing(h264_clip, mjpeg_clip, vfr_clip):
    """Frame rate and time base are exact fractions; a variable-rate clip reports its average rate."""
    h264, mjpeg, vfr = probe(h264_clip), probe(mjpeg_clip), probe(vfr_clip)
    assert h264.fps == mjpeg.fps == 25 and isinstance(h264.fps, Fraction)
    assert mjpeg.time_base == Fraction(1, 25) and h264.start_pts == 0
    assert vfr.num_frames == 24 and vfr.fps == Fraction(24 * 30, 46)  # 24 frames in 46 ticks of 1/30 s


def test_counts_without_container_frame_count(vp9_clip):
    """WebM stores no frame count: the packets are counted."""
    assert probe(vp9_clip).num_frames == 30


def test_pixel_formats(gray_clip, tenbit_clip, alpha_clip, h264_clip):
    """Gray, 10-bit and alpha formats are reported as such."""
    gray, tenbit, alpha, plain = map(probe, (gray_clip, tenbit_clip, alpha_clip, h264_clip))
    assert (gray.pix_fmt, gray.is_gray, gray.bit_depth) == ("gray", True, 8)
    assert (tenbit.pix_fmt, tenbit.bit_depth, tenbit.is_gray) == ("yuv420p10le", 10, False)
    assert (alpha.pix_fmt, alpha.has_alpha) == ("rgba", True)
    assert not (plain.is_gray or plain.has_alpha) and plain.bit_depth == 8


def test_rotation(rotated_clip):
    """A display rotation is read from the stream's side data; frame_size is the upright (H, W)."""
    info = probe(rotated_clip)
    assert (info.rotation, info.width, info.height, info.frame_size) == (90, 160, 120, (160, 120))


def test_audio(audio_clip, h264_clip):
    assert (probe(audio_clip).has_audio, probe(audio_clip).audio_codec) == (True, "aac")
    assert (probe(h264_clip).has_audio, probe(h264_clip).audio_codec) == (False, None)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match=r"nope\.mp4: no such file"):
        probe(tmp_path / "nope.mp4")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(VideoError, match=r"empty\.mp4: empty file"):
        probe(tmp_path / "empty.mp4")


def test_folder(tmp_path):
    with pytest.raises(VideoError, match="is a folder"):
        probe(tmp_path)


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4", "setup.cfg"])
def test_text_file(tmp_path, name):
    """Text is not a video, whatever its name (FFmpeg reads some text as subtitles: no video stream)."""
    path = tmp_path / name
    path.write_text("[metadata]\nname = not a video\nthis is text\n")
    with pytest.raises(VideoError, match=rf"{name}: (not a video file|has no video stream)"):
        probe(path)


def test_audio_only_file(audio_clip, tmp_path):
    """A file whose only stream is audio has no video stream."""
    path = tmp_path / "sound.m4a"
    with av.open(str(audio_clip)) as source, av.open(str(path), "w") as target:
        stream = target.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.size:
                packet.stream = stream
                target.mux(packet)
    with pytest.raises(VideoError, match=r"sound\.m4a: has no video stream"):
        probe(path)


def test_truncated_mp4_index_at_front(h264_clip, tmp_path):
    """An MP4 whose index (at the front) lists frames past the end of the file is truncated."""
    data = h264_clip.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(VideoError, match=r"cut\.mp4: truncated or corrupt \(data for \d+ of 30 frames\)"):
        probe(path)


def test_truncated_mp4_index_at_end(vfr_clip, tmp_path):
    """An MP4 cut before its index (written last) cannot be read at all."""
    data = vfr_clip.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut\.mp4: not a video file or corrupt"):
        probe(path)


def test_truncated_webm(vp9_clip, tmp_path):
    """A WebM cut short ends before the duration written in its header."""
    data = vp9_clip.read_bytes()
    path = tmp_path / "cut.webm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        VideoError, match=r"cut\.webm: truncated or corrupt \(video ends at [\d.]+ s of 1\.20 s\)"
    ):
        probe(path)


@pytest.mark.parametrize("suffix, codec", [("webm", "libvpx-vp9"), ("mkv", "libx264"), ("mp4", "libx264"),
                                           ("ts", "libx264")])
def test_a_video_that_starts_after_zero(make_clip, suffix, codec):
    """Frames from 2 s on (a trimmed file, a broadcast capture): accepted, every frame counted, the start
    kept; cut in half, the Matroska ones are still refused."""
    clip = make_clip(f"late.{suffix}", codec=codec, frames=20, pts=list(range(50, 70)))
    info = probe(clip)
    assert info.num_frames == 20
    assert info.start_pts * info.time_base == pytest.approx(2.0, abs=0.1)  # MPEG-TS adds its mux delay


@pytest.mark.parametrize("suffix, codec", [("webm", "libvpx-vp9"), ("mkv", "libx264")])
def test_a_late_start_matroska_cut_short_is_refused(make_clip, tmp_path, suffix, codec):
    clip = make_clip(f"late_cut.{suffix}", codec=codec, frames=20, pts=list(range(50, 70)))
    data = clip.read_bytes()
    path = tmp_path / f"cut.{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"truncated or corrupt \(video ends at [\d.]+ s of 2\.80 s\)"):
        probe(path)
