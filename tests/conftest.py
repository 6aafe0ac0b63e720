"""Shared fixtures: small clips re-encoded from the project's real footage (``samples/footage``).

`make_clip` encodes the first frames of a footage file, downscaled, with any PyAV encoder and pixel
format, optional irregular timestamps, display rotation and a sine-wave AAC track. The named fixtures
below are the clips the video I/O tests share; all are made once per session.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from PIL import Image
from skimage import data

from model import CDVDTSP
from pipeline.data.trainset import Sources

from .helpers import FOOTAGE, TINY, seeded_model

CLIP_FRAMES = 30  # not a multiple of the chunk sizes the tests use: the tail must survive
CLIP_SIZE = (160, 120)  # (W, H)


def footage_frames(path: Path, count: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """(count, H, W, 3) uint8: the first ``count`` frames of ``path``, resized to ``size`` = (W, H)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if size is not None:
                frame = frame.reformat(width=size[0], height=size[1])
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return np.stack(frames)


def encode_clip(
    path: Path,
    frames: np.ndarray,
    *,
    codec: str,
    pix_fmt: str,
    rate: Fraction = Fraction(25),
    pts: list[int] | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    rotation: int = 0,
    audio: bool = False,
    colour: tuple[int, bool] | None = None,
) -> Path:
    """Encode (F, H, W, 3) or (F, H, W, 4) uint8 frames into ``path``; pts in units of 1/rate by default.
    ``colour``: (AVColorSpace, full range) to convert with (swscale) and tag, with that standard's primaries
    and transfer (BT.709 or BT.2020); else swscale's default BT.601 conversion, untagged."""
    time_base = 1 / rate
    pts = list(range(len(frames))) if pts is None else pts
    layout = "rgba" if frames.shape[-1] == 4 else "rgb24"
    with av.open(str(path), "w", options=container_options or {}) as container:
        video = container.add_stream(codec, rate=rate, options=options or {})
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        if colour is not None:
            context = video.codec_context
            context.colorspace, context.color_range = colour[0], 2 if colour[1] else 1
            context.color_primaries, context.color_trc = {1: (1, 1), 9: (9, 14)}[colour[0]]
        sound = container.add_stream("aac", rate=48000, layout="mono") if audio else None
        for image, stamp in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(image, format=layout)
            if colour is not None:
                frame = frame.reformat(format=pix_fmt, dst_colorspace=colour[0],
                                       dst_color_range=2 if colour[1] else 1)
            frame.pts, frame.time_base = stamp, time_base
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            seconds = (pts[-1] + 1) * time_base
            samples = np.arange(int(48000 * seconds)) / 48000
            wave = (0.3 * np.sin(2 * np.pi * 440 * samples)).astype(np.float32)[None]  # (1, S)
            frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            for packet in [*sound.encode(frame), *sound.encode()]:
                container.mux(packet)
    return path


@pytest.fixture(scope="session")
def footage() -> Path:
    """The folder of real footage (cockatoo.mp4, realshort.mp4, tree.avi, carphone_pristine.mp4)."""
    return FOOTAGE


@pytest.fixture(scope="session")
def make_clip(footage, tmp_path_factory):
    """``make_clip(name, codec=, pix_fmt=, frames=30, size=(W, H), source="realshort.mp4", **encode_clip)``.

    Re-encodes the first ``frames`` frames of a footage file into a session folder; each name is made once.
    """
    folder = tmp_path_factory.mktemp("clips")
    made: dict[str, Path] = {}

    def make(
        name: str,
        *,
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        frames: int = CLIP_FRAMES,
        size: tuple[int, int] = CLIP_SIZE,
        source: str = "realshort.mp4",
        alpha: bool = False,
        **kwargs,
    ) -> Path:
        if name not in made:
            images = footage_frames(footage / source, frames, size)
            if alpha:  # a horizontal alpha ramp
                ramp = np.linspace(0, 255, size[0]).astype(np.uint8)
                images = np.concatenate(
                    (images, np.broadcast_to(ramp[None, None, :, None], (*images.shape[:3], 1))), -1
                )
            made[name] = encode_clip(folder / name, images, codec=codec, pix_fmt=pix_fmt, **kwargs)
        return made[name]

    return make


@pytest.fixture(scope="session")
def vp9_clip(make_clip) -> Path:
    """30 frames VP9 in WebM, keyframe every 10: DALI decodes it on the CPU."""
    return make_clip(
        "vp9.webm", codec="libvpx-vp9", options={"g": "10", "deadline": "realtime", "cpu-used": "8"}
    )


@pytest.fixture(scope="session")
def mjpeg_clip(make_clip) -> Path:
    """30 frames MJPEG in AVI: DALI decodes it on the CPU."""
    return make_clip("mjpeg.avi", codec="mjpeg", pix_fmt="yuvj420p")


@pytest.fixture(scope="session")
def h264_clip(make_clip) -> Path:
    """30 frames H.264 yuv420p in MP4 (index at the front), B-frames on."""
    return make_clip("h264.mp4", container_options={"movflags": "faststart"})


@pytest.fixture(scope="session")
def audio_clip(make_clip) -> Path:
    """30 frames H.264 in MP4 with a 440 Hz AAC track."""
    return make_clip("audio.mp4", audio=True)


@pytest.fixture(scope="session")
def tracks_clip(audio_clip, tmp_path_factory) -> Path:
    """`audio_clip` remuxed into Matroska with what editors and rippers leave in files: two audio tracks
    (English and French), SubRip subtitles, a title and a chapter."""
    folder = tmp_path_factory.mktemp("tracks")
    subtitles = folder / "clip.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:00,500\nHello\n\n"
                         "2\n00:00:00,600 --> 00:00:01,100\nAgain\n")
    path = folder / "tracks.mkv"
    with (av.open(str(audio_clip)) as source, av.open(str(subtitles)) as srt,
          av.open(str(path), "w") as target):
        target.metadata["title"] = "Two tracks and subtitles"
        video = target.add_stream_from_template(source.streams.video[0])
        tracks = [target.add_stream_from_template(source.streams.audio[0]) for _ in range(2)]
        for track, language in zip(tracks, ("eng", "fra")):
            track.metadata["language"] = language
        text = target.add_stream_from_template(srt.streams.subtitles[0])
        text.metadata["language"] = "eng"
        target.set_chapters([{"id": 1, "start": 0, "end": 1000, "time_base": Fraction(1, 1000),
                              "metadata": {"title": "Opening"}}])
        for packet in source.demux():
            if not packet.size:
                continue
            if packet.stream.type == "video":
                packet.stream = video
                target.mux(packet)
                continue
            for track in tracks:  # the same sound on both tracks
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts, copy.duration, copy.time_base = (packet.pts, packet.dts, packet.duration,
                                                                     packet.time_base)
                copy.stream = track
                target.mux(copy)
        for packet in srt.demux(srt.streams.subtitles[0]):
            if packet.size:
                packet.stream = text
                target.mux(packet)
    return path


@pytest.fixture(scope="session")
def vfr_clip(make_clip) -> Path:
    """24 frames H.264 in MP4 with irregular frame durations (1, 2 or 3 ticks of 1/30 s)."""
    pts = np.cumsum([0] + [1, 2, 3] * 7 + [1, 2]).tolist()
    return make_clip("vfr.mp4", frames=len(pts), pts=pts, rate=Fraction(30))


@pytest.fixture(scope="session")
def gray_clip(make_clip) -> Path:
    """Gray FFV1 in Matroska."""
    return make_clip("gray.mkv", codec="ffv1", pix_fmt="gray")


@pytest.fixture(scope="session")
def tenbit_clip(make_clip) -> Path:
    """10-bit H.264 (High 10, yuv420p10le) in MP4."""
    return make_clip("10bit.mp4", pix_fmt="yuv420p10le")


@pytest.fixture(scope="session")
def alpha_clip(make_clip) -> Path:
    """PNG frames with an alpha ramp (rgba) in QuickTime."""
    return make_clip("alpha.mov", codec="png", pix_fmt="rgba", alpha=True, frames=8)


@pytest.fixture(scope="session")
def rotated_clip(make_clip) -> Path:
    """H.264 stored landscape with a 90-degree display rotation (as phones record portrait video)."""
    return make_clip("rotated.mp4", frames=8, rotation=90)


@pytest.fixture(scope="session")
def one_frame_clip(make_clip) -> Path:
    """A 1-frame VP9 clip (DALI and PyAV can both read it)."""
    return make_clip("one.webm", codec="libvpx-vp9", frames=1)


@pytest.fixture(scope="session")
def odd_clip(make_clip) -> Path:
    """161x121 frames (odd sizes) as 4:2:0 in lossless FFV1 (which, unlike H.264, takes odd 4:2:0)."""
    return make_clip("odd.mkv", codec="ffv1", pix_fmt="yuv420p", frames=12, size=(161, 121))


def _panned_clip(path, photo: np.ndarray, frames: int) -> None:
    """A real photograph panned 2 px per frame, encoded losslessly (H.264 yuv444p, qp 0)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv444p"
        for k in range(frames):
            image = np.ascontiguousarray(photo[40:104, 100 + 2 * k : 164 + 2 * k])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def sources(tmp_path):
    """A training-set sources file (`pipeline.data.trainset.Sources`) over three scikit-image photographs
    and three clips panned across them: one for training, one for validation, one for the test."""
    photos, footage = tmp_path / "photos", tmp_path / "footage"
    photos.mkdir()
    footage.mkdir()
    for name, image in (
        ("astronaut.png", data.astronaut()),
        ("coffee.png", data.coffee()),
        ("chelsea.png", data.chelsea()),
    ):
        Image.fromarray(image).save(photos / name)
    _panned_clip(footage / "pan.mp4", data.astronaut(), 26)
    _panned_clip(footage / "held.mp4", data.coffee(), 24)
    _panned_clip(footage / "judge.mp4", data.chelsea(), 24)
    (footage / "sources.yaml").write_text(yaml.safe_dump({"pan.mp4": {"licence": "made by the test"}}))
    spec = {
        "roots": {"stills": str(photos), "clips": str(footage)},
        "photos": [
            {
                "root": "stills",
                "package": "scikit-image",
                "licence": "CC0 / public domain",
                "train": ["astronaut.png", "chelsea.png"],
                "val": ["coffee.png"],
            }
        ],
        "footage": {
            "root": "clips",
            "width": 64,
            "train": ["pan.mp4"],
            "val": ["held.mp4"],
            "test": ["judge.mp4"],
        },
        "shake": {"sequences": 1, "frames": 9, "width": 64, "height": 48},
    }
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(spec))
    return Sources.load(path)


@pytest.fixture(scope="module")
def tiny_model() -> CDVDTSP:
    """The seeded tiny cascade (`helpers.TINY`) that a module's streaming tests share, in eval mode. Jobs
    prepare it in place: a test that asks for another layout or compile mode makes its own."""
    return seeded_model(TINY, seed=3)
