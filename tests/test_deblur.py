"""The `deblur` command end to end on small real clips: frames, timing, audio, faults and resume."""
import dataclasses
import json
import time

import av
import numpy as np
import pytest
import torch

from model import save_checkpoint
from model.init import zero_flow_
from pipeline.cli.deblur import main as deblur
from pipeline.config import DeblurConfig
from pipeline.errors import VideoError
from pipeline.stream.engine import StreamingEngine
from pipeline.stream.job import Job, deblur_video, resume_settings
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.probe import probe
from pipeline.video.segments import Segments
from pipeline.video.sequences import read_frames
from pipeline.video.workfolder import WorkFolder

from .helpers import TINY, TINY_ARGS, seeded_model

TINY_CHUNKS = [*TINY_ARGS, "--chunk", "4"]
SIZE = (64, 48)


@pytest.fixture(scope="module")
def clip(make_clip):
    """11 frames 64x48 H.264 with an AAC track."""
    return make_clip("deblur_audio.mp4", frames=11, size=SIZE, audio=True)


def _pts(path):
    with av.open(str(path)) as container:
        return sorted(frame.pts for frame in container.decode(video=0))


def test_video_out_keeps_frames_timestamps_and_audio(clip, tmp_path):
    """Every input frame gives one output frame at the same pts; the audio stream is copied."""
    out = tmp_path / "out.mp4"
    assert deblur([str(clip), "-o", str(out), *TINY_CHUNKS]) == 0
    source, result = probe(clip), probe(out)
    assert result.num_frames == source.num_frames == 11
    assert (result.width, result.height) == SIZE and result.fps == source.fps
    assert [p * result.time_base for p in _pts(out)] == [p * source.time_base for p in _pts(clip)]
    assert result.has_audio and result.audio_codec == source.audio_codec
    assert out.with_name("out.mp4.yaml").is_file()  # the resolved config is saved next to the output


def test_the_summary_says_what_ran_and_how_it_scored(clip, make_clip, tmp_path, capsys):
    """--summary JSON: when, at which commit, with which command and weights, and with --sharp the scores
    printed (input and output against the sharp video; here the same frames encoded losslessly)."""
    sharp = make_clip("deblur_lossless.mkv", frames=11, size=SIZE, options={"qp": "0"})
    summary = tmp_path / "summary.json"
    command = [str(clip), "-o", str(tmp_path / "out.mp4"), "--sharp", str(sharp), "--summary", str(summary)]
    assert deblur([*command, *TINY_CHUNKS]) == 0
    document = json.loads(summary.read_text())
    assert {"date", "commit", "device"} <= set(document)
    assert document["command"].endswith(" ".join(TINY_CHUNKS))
    assert document["weights"] == "untrained (seeded)" and document["videos"][0]["frames"] == 11
    scores = document["against_sharp"]
    assert 30 < scores["input"]["psnr"] < 60
    assert scores["gain_db"] == scores["output"]["psnr"] - scores["input"]["psnr"]
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps the line
    assert f"output PSNR {scores['output']['psnr']:.2f} dB" in printed
    assert f"gain {scores['gain_db']:+.2f} dB" in printed


def test_png_frames_equal_the_engine_on_decoded_input(clip, tiny_model, tmp_path):
    """The driver's frames, in order, are exactly the engine's output on the decoded input."""
    config = DeblurConfig(chunk=4, format="png")
    deblur_video(tiny_model, clip, tmp_path / "frames", config)
    decoded = torch.from_numpy(np.stack(list(read_frames(clip))))  # (F, H, W, 3)
    expected = to_uint8(torch.cat(list(StreamingEngine(tiny_model).run(to_model(decoded).split(4)))))
    written = np.stack(list(read_frames(tmp_path / "frames")))
    assert written.shape == (11, SIZE[1], SIZE[0], 3)
    assert np.array_equal(written, expected.numpy())


def test_channels_last_writes_the_same_frames_in_its_own_segments(clip, tiny_model, tmp_path):
    """``--channels-last`` writes the frames the default layout writes (to one level of rounding); its
    segments are told apart from the default layout's (the fingerprint), so neither resumes the other."""
    args = [str(clip), "--format", "png", *TINY_CHUNKS]
    assert deblur([*args, "-o", str(tmp_path / "default")]) == 0
    assert deblur([*args, "-o", str(tmp_path / "nhwc"), "--channels-last"]) == 0
    default, nhwc = (np.stack(list(read_frames(tmp_path / name))).astype(int) for name in ("default", "nhwc"))
    assert default.shape == nhwc.shape and np.abs(default - nhwc).max() <= 1
    nhwc_config = DeblurConfig(memory_format="channels_last")
    assert resume_settings(tiny_model, nhwc_config) != resume_settings(tiny_model, DeblurConfig())


def test_a_resume_with_another_group_size_is_refused(clip, tiny_model, tmp_path):
    """The group size can move bits (batch-dependent rounding), so it is in the fingerprint: segments made
    with groups of 4 are not resumed with groups of 2."""
    groups = [resume_settings(tiny_model, DeblurConfig(group=group)) for group in (2, 4)]
    assert groups[0] != groups[1]
    config = DeblurConfig(chunk=3, segment=4, group=4)
    Job(tiny_model, config).open_output(clip, tmp_path / "out.mp4", prepare=True)
    other = Job(tiny_model, dataclasses.replace(config, group=2))
    with pytest.raises(VideoError, match="was made with other settings"):
        other.open_output(clip, tmp_path / "out.mp4", prepare=True, resume=True)


def test_compare_writes_input_beside_output(clip, tmp_path):
    out = tmp_path / "cmp.mp4"
    assert deblur([str(clip), "-o", str(out), "--compare", *TINY_CHUNKS]) == 0
    assert (probe(out).width, probe(out).height) == (2 * SIZE[0], SIZE[1])


def test_one_frame_video(make_clip, tmp_path):
    one = make_clip("deblur_one.webm", codec="libvpx-vp9", frames=1, size=SIZE)
    out = tmp_path / "one.mp4"
    assert deblur([str(one), "-o", str(out), *TINY_CHUNKS]) == 0
    assert probe(out).num_frames == 1


def test_resume_after_interrupt_equals_uninterrupted_run(clip, tiny_model, tmp_path):
    """Stopped mid-video (Ctrl-C), then resumed: the decoded output equals an uninterrupted run's."""
    config = DeblurConfig(chunk=3, segment=4)
    whole = deblur_video(tiny_model, clip, tmp_path / "whole.mp4", config)
    seen = []

    work = WorkFolder(tmp_path / "resumed.mp4", Segments(config.segment))

    def interrupt(count):  # once a segment is on disk (the encoder thread runs behind the model)
        seen.append(count)
        if sum(seen) >= 6:
            deadline = time.monotonic() + 30
            while work.done_frames() < config.segment and time.monotonic() < deadline:
                time.sleep(0.01)
            assert work.done_frames() >= config.segment, "no segment finished in 30 s"
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deblur_video(tiny_model, clip, tmp_path / "resumed.mp4", config, on_frames=interrupt)
    assert not (tmp_path / "resumed.mp4").exists()  # nothing that looks complete
    resumed = deblur_video(tiny_model, clip, tmp_path / "resumed.mp4", config, resume=True)
    assert 0 < resumed.resumed_from < 11 and whole.frames == 11
    got, expected = (np.stack(list(read_frames(tmp_path / name))) for name in ("resumed.mp4", "whole.mp4"))
    differ = [i for i, (a, b) in enumerate(zip(got, expected)) if not np.array_equal(a, b)]
    assert got.shape == expected.shape
    assert not differ, f"resumed at frame {resumed.resumed_from}: frames {differ} differ"


def test_bad_inputs_are_reported_and_the_rest_still_run(clip, tmp_path, capsys):
    """Missing, empty and non-video files fail one line each; the good file is still deblurred; exit 1."""
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video\n")
    out = tmp_path / "out"
    code = deblur([str(tmp_path / "missing.mp4"), str(tmp_path / "empty.mp4"), str(tmp_path / "notes.mp4"),
                   str(clip), "-o", str(out), *TINY_CHUNKS])
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and all(str(tmp_path) in line for line in errors)
    assert sorted(p.name for p in out.iterdir()) == [f"{clip.stem}.mp4", f"{clip.stem}.mp4.yaml"]


def test_existing_output_needs_overwrite(clip, tmp_path, capsys):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    assert deblur([str(clip), "-o", str(out), *TINY_CHUNKS]) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert deblur([str(clip), "-o", str(out), "--overwrite", *TINY_CHUNKS]) == 0
    assert probe(out).num_frames == 11


def test_forced_dali_on_h264_without_gpu(clip, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("NVDEC decodes H.264 here")
    assert deblur([str(clip), "-o", str(tmp_path / "x.mp4"), "--reader", "dali", *TINY_CHUNKS]) == 1
    assert "--reader pyav" in capsys.readouterr().err


def test_bad_config_is_a_one_line_error(clip, tmp_path, capsys):
    assert deblur([str(clip), "-o", str(tmp_path / "x.mp4"), "--set", "deblur.chunks=4"]) == 2
    assert "unknown config key deblur.chunks" in capsys.readouterr().err


def _starts(path) -> tuple[float, float]:
    """Seconds of the first video frame and of the first audio sample, as a player sees them."""
    with av.open(str(path)) as container:
        video = next(container.decode(video=0))
    with av.open(str(path)) as container:
        audio = next(container.decode(audio=0))
    return float(video.pts * video.time_base), float(audio.pts * audio.time_base)


@pytest.mark.parametrize("suffix, out_suffix, codec, reader", [
    ("mp4", "mp4", "libx264", "pyav"), ("mkv", "mkv", "libx264", "pyav"), ("ts", "mp4", "libx264", "pyav"),
    ("ts", "mkv", "libx264", "pyav"), ("mkv", "mkv", "libvpx-vp9", "dali"),
])
def test_a_late_start_stays_in_sync_with_its_audio(make_clip, tmp_path, suffix, out_suffix, codec, reader):
    """Video from 2 s on over audio from 0 (a trimmed file): the output's frames keep their times and the
    audio keeps its offset to them, whichever reader decoded the video."""
    clip = make_clip(f"late_audio_{codec}.{suffix}", codec=codec, frames=11, size=SIZE, audio=True,
                     pts=list(range(50, 61)))
    out = tmp_path / f"out.{out_suffix}"
    assert deblur([str(clip), "-o", str(out), "--reader", reader, *TINY_CHUNKS]) == 0
    (video_in, audio_in), (video_out, audio_out) = _starts(clip), _starts(out)
    assert video_out - audio_out == pytest.approx(video_in - audio_in, abs=0.03)
    source, result = probe(clip), probe(out)
    first_in = [p * source.time_base - source.start_pts * source.time_base for p in _pts(clip)]
    first_out = [p * result.time_base - result.start_pts * result.time_base for p in _pts(out)]
    assert first_out == pytest.approx(first_in, abs=1e-3) and result.num_frames == 11


def test_a_dali_failure_is_done_again_with_pyav(make_clip, tmp_path, monkeypatch, caplog):
    """DALI breaking down mid-file (reader auto): the file is decoded again from its start with PyAV, with a
    warning, and the output is exactly a PyAV run's; with --reader dali the error stands."""
    from pipeline.errors import DaliDecodeError
    from pipeline.video.readers import DaliReader

    clip = make_clip("fallback.webm", codec="libvpx-vp9", frames=11, size=SIZE)
    working = DaliReader._decode

    def breaks_after_one_chunk(self):
        chunks = working(self)
        yield next(chunks)
        raise DaliDecodeError(self.info.path, "DALI could not decode it (NVDEC: CUDA_ERROR_ILLEGAL_ADDRESS)")

    assert deblur([str(clip), "-o", str(tmp_path / "pyav.mp4"), "--reader", "pyav", *TINY_CHUNKS]) == 0
    monkeypatch.setattr(DaliReader, "_decode", breaks_after_one_chunk)
    assert deblur([str(clip), "-o", str(tmp_path / "auto.mp4"), *TINY_CHUNKS]) == 0
    assert "decoding it again with PyAV" in caplog.text
    assert np.array_equal(np.stack(list(read_frames(tmp_path / "auto.mp4"))),
                          np.stack(list(read_frames(tmp_path / "pyav.mp4"))))
    assert deblur([str(clip), "-o", str(tmp_path / "dali.mp4"), "--reader", "dali", *TINY_CHUNKS]) == 1
    assert not (tmp_path / "dali.mp4").exists()


def test_inputs_with_the_same_name_get_distinct_outputs(make_clip, tmp_path):
    """a/clip.mp4, b/clip.mp4 and clip.mov go to three outputs, named the same way on every rank."""
    from pipeline.stream.job import output_names

    sources = [tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", tmp_path / "a" / "clip.mov",
               tmp_path / "other.mp4"]
    assert output_names(sources) == ["a__clip", "b__clip", "clip.mov", "other"]
    clip = make_clip("same_name.mp4", frames=5, size=SIZE)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    both = [str(tmp_path / folder / "clip.mp4") for folder in ("a", "b")]
    assert deblur([*both, "-o", str(out), *TINY_CHUNKS]) == 0
    assert sorted(p.name for p in out.glob("*.mp4")) == ["a__clip.mp4", "b__clip.mp4"]


FEATURES = {  # name: (clip made by make_clip's arguments, or a fixture's name), reader
    "bt709 full range": (dict(name="f709.mp4", pix_fmt="yuv444p", colour=(1, True)), "pyav"),
    "bt2020": (dict(name="f2020.mkv", pix_fmt="yuv420p", colour=(9, False)), "pyav"),
    "bt601 vp9 on dali": (dict(name="f601.webm", codec="libvpx-vp9"), "dali"),
    "rotation": ("rotated_clip", "pyav"),
    "rotation, vp9 on dali": (dict(name="frot.webm", codec="libvpx-vp9", frames=8, rotation=90), "dali"),
    "odd size": ("odd_clip", "pyav"),
    "10-bit": ("tenbit_clip", "pyav"),
    "tracks and subtitles": ("tracks_clip", "pyav"),
}


@pytest.fixture(scope="module")
def fast_checkpoint(tmp_path_factory):
    """The tiny model with its flow net at zero flow, which the engine skips: file handling is under test."""
    model = seeded_model(TINY, seed=9)
    zero_flow_(model.flow)
    path = tmp_path_factory.mktemp("weights") / "tiny_zero_flow.pt"
    save_checkpoint(model, path)
    return path


@pytest.mark.parametrize("feature", FEATURES)
def test_what_cameras_and_editors_make_goes_through_deblur(feature, make_clip, request, tmp_path,
                                                           fast_checkpoint):
    """Each kind of real-world file through ``deblur`` on each reader that decodes it here: one output frame
    per input frame at its time, upright at the input's upright size, in the input's colour (tags and
    conversion), at its depth, with its audio tracks, subtitles and title."""
    made, reader = FEATURES[feature]
    clip = make_clip(**{"frames": 12, **made}) if isinstance(made, dict) else request.getfixturevalue(made)
    out = tmp_path / f"out{clip.suffix if clip.suffix in ('.mkv', '.mp4') else '.mkv'}"
    assert deblur([str(clip), "-o", str(out), "--reader", reader, "--checkpoint", str(fast_checkpoint)]) == 0
    source, result = probe(clip), probe(out)
    assert result.num_frames == source.num_frames
    times_in = [(p - source.start_pts) * source.time_base for p in _pts(clip)]
    times_out = [(p - result.start_pts) * result.time_base for p in _pts(out)]
    assert times_out == pytest.approx(times_in, abs=1e-3)
    assert result.rotation == 0 and result.frame_size == source.frame_size
    assert result.colour == dataclasses.replace(source.colour, tagged=True)
    assert result.bit_depth == source.bit_depth
    with av.open(str(clip)) as given, av.open(str(out)) as written:
        for kind in ("audio", "subtitles"):
            languages = [s.metadata.get("language") for s in getattr(given.streams, kind)]
            assert [s.metadata.get("language") for s in getattr(written.streams, kind)] == languages
        assert written.metadata.get("title") == given.metadata.get("title")
