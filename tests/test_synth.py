"""Synthetic blur: window/stride/cut bookkeeping, the averaging itself, and a run on real footage."""
import itertools

import numpy as np
import pytest

from pipeline import metrics
from pipeline.data.pairs import EncodeSettings, VideoEncoder, resize, split_pair
from pipeline.data.prepare import holdout, synth_footage
from pipeline.data.synth import (
    SynthConfig,
    blur_window,
    exposure_weights,
    linear_to_srgb,
    srgb_to_linear,
    synthesize,
)
from pipeline.video.sequences import read_frames

from .helpers import FOOTAGE


def random_frames(count: int, height: int = 6, width: int = 8, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_window_of_one_is_identity():
    """window=1 makes every frame its own blurred version."""
    frames = random_frames(4)
    out = list(synthesize(frames, SynthConfig(window=1, linear_light=True, upsample=3)))
    assert [f.centre for f in out] == [0, 1, 2, 3]
    assert all(np.array_equal(f.blurred, f.sharp) and f.sharp is frames[f.centre] for f in out)


def test_centres_follow_window_stride_and_cuts():
    """Centres start window//2 into each shot, step by stride, and no window straddles a cut."""
    out = list(synthesize(random_frames(20), SynthConfig(window=5, stride=2), cuts=[9]))
    assert [(f.shot, f.index, f.centre) for f in out] == [
        (0, 0, 2), (0, 1, 4), (0, 2, 6), (1, 0, 11), (1, 1, 13), (1, 2, 15), (1, 3, 17)]
    assert all(f.centre + 2 < 9 or f.centre - 2 >= 9 for f in out)


def test_short_shot_yields_nothing():
    assert list(synthesize(random_frames(6), SynthConfig(window=5), cuts=[3])) == []


def test_streamed_frames_equal_blur_window():
    """The streaming generator and the one-window function compute the same frame."""
    frames = random_frames(7)
    config = SynthConfig(window=5, upsample=4)
    streamed = list(synthesize(frames, config))
    for f in streamed:
        assert np.array_equal(f.blurred, blur_window(np.stack(frames[f.centre - 2:f.centre + 3]), config))


@pytest.mark.parametrize("window,upsample", [(3, 2), (5, 4), (7, 3)])
def test_weights_equal_averaging_interpolated_frames(window, upsample):
    """exposure_weights is exactly the mean of the linearly interpolated sequence."""
    frames = np.random.default_rng(1).random((window, 4))
    times = np.arange((window - 1) * upsample + 1) / upsample
    interpolated = np.stack([np.interp(times, np.arange(window), frames[:, i]) for i in range(4)], axis=1)
    weights = exposure_weights(window, upsample)
    assert np.allclose(weights @ frames, interpolated.mean(axis=0))
    assert np.isclose(weights.sum(), 1) and np.allclose(weights, weights[::-1])


def test_plain_average_weights():
    assert np.allclose(exposure_weights(5), 0.2)


def test_linear_light_averages_light_not_code_values():
    """Half black, half white: the linear-light mean is sRGB 188 (half the light), not 128."""
    frames = np.stack([np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)])
    frames = frames[[0, 1, 0, 1, 1]]  # 3 of 5 white: 60% light
    assert (blur_window(frames, SynthConfig(window=5, linear_light=False)) == 153).all()
    linear = blur_window(frames, SynthConfig(window=5, linear_light=True))
    assert (linear == round(255 * linear_to_srgb(0.6))).all()


def test_srgb_round_trip():
    values = np.linspace(0, 1, 1001)
    assert np.allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-9)


def test_rejects_bad_windows_and_frames():
    with pytest.raises(ValueError, match="odd"):
        SynthConfig(window=4)
    with pytest.raises(ValueError, match="stride"):
        SynthConfig(stride=0)
    frames = random_frames(3) + random_frames(1, height=7)
    with pytest.raises(ValueError, match="frame 3"):
        list(synthesize(frames, SynthConfig(window=3)))


def test_real_footage_blur_stays_within_its_window():
    """On real video, each blurred pixel lies between the darkest and brightest of its window (a weighted
    mean, in any monotonic light encoding), and a longer exposure departs further from the sharp frame."""
    frames = list(itertools.islice(read_frames(FOOTAGE / "carphone_pristine.mp4"), 30))
    config = SynthConfig(window=5, linear_light=True, upsample=4)
    out = list(synthesize(frames, config))
    assert len(out) == 26
    for f in out:
        window = np.stack(frames[f.centre - 2:f.centre + 3]).astype(int)
        assert (f.blurred >= window.min(axis=0) - 1).all() and (f.blurred <= window.max(axis=0) + 1).all()

    def departure(window):
        return np.mean([np.abs(f.blurred.astype(int) - f.sharp).mean()
                        for f in synthesize(frames, SynthConfig(window=window)) if 3 <= f.centre < 27])

    assert 0 < departure(3) < departure(5) < departure(7)


def test_synth_footage_makes_one_paired_video_per_shot(tmp_path):
    """Two joined clips give two paired videos whose sharp halves are the source frames of each shot."""
    joined = tmp_path / "joined.mp4"
    parts = [[resize(f, 160, 120) for f in itertools.islice(read_frames(FOOTAGE / name), 16)]
             for name in ("cockatoo.mp4", "tree.avi")]
    with VideoEncoder(joined, fps=20, settings=EncodeSettings(codec="h264", quality=0)) as encoder:
        for frame in parts[0] + parts[1]:
            encoder.write(frame)
    settings = EncodeSettings(codec="mjpeg")
    videos = synth_footage(joined, tmp_path, config=SynthConfig(window=5), settings=settings, split="val",
                           min_frames=5)
    assert [(v.name, v.frames, v.width, v.height, v.split, v.source["first_centre"]) for v in videos] == [
        ("joined_shot0", 12, 160, 120, "val", 2), ("joined_shot1", 12, 160, 120, "val", 18)]
    decoded = [split_pair(frame)[1] for frame in read_frames(tmp_path / videos[1].path)]
    assert all(metrics.psnr(frame, source) > 30 for frame, source in zip(decoded, parts[1][2:]))
    too_long = synth_footage(joined, tmp_path, config=SynthConfig(window=5), settings=settings, split="train",
                             min_frames=13)
    assert too_long == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "joined.mp4", "joined_shot0.mkv", "joined_shot1.mkv"]


def test_holdout_is_by_whole_video():
    names = ["a", "b", "c", "d"]
    assert len(holdout(names, fraction=0.5, seed=1)) == 2
    assert holdout(names, fraction=0.5, seed=1) == holdout(names, fraction=0.5, seed=1)
    assert holdout(["a"], fraction=0.5) == set()
    assert holdout(names, fraction=0.5, chosen=["c"]) == {"c"}
    with pytest.raises(ValueError, match="'e'"):
        holdout(names, fraction=0.2, chosen=["e"])
