"""Scene cuts: found where two real clips are joined, not found in handheld motion or steady pans."""
import itertools

import numpy as np
import pytest

from pipeline.data.pairs import EncodeSettings, VideoEncoder, resize
from pipeline.data.scenecut import cut_scores, detect_cuts, find_cuts, luma_thumbnail
from pipeline.video.sequences import read_frames

from .helpers import FOOTAGE


def footage(name: str, count: int, size=(320, 240)) -> list[np.ndarray]:
    return [resize(f, *size) for f in itertools.islice(read_frames(FOOTAGE / name), count)]


def test_cut_found_where_two_clips_are_joined(tmp_path):
    """A video made of 40 cockatoo frames then 30 tree frames (encoded, decoded) has one cut, at 40."""
    path = tmp_path / "joined.mp4"
    with VideoEncoder(path, fps=20, settings=EncodeSettings(codec="h264")) as encoder:
        for frame in footage("cockatoo.mp4", 40) + footage("tree.avi", 30):
            encoder.write(frame)
    assert detect_cuts(read_frames(path)) == [40]


@pytest.mark.parametrize("name", ["cockatoo.mp4", "carphone_pristine.mp4", "tree.avi"])
def test_no_cut_in_continuous_footage(name):
    """Strong handheld motion (the cockatoo) and small motion alike are one shot."""
    assert detect_cuts(footage(name, 120)) == []


def test_steady_pan_and_noise_are_not_cuts():
    """A pattern panning 4 px per frame under sensor noise has no cut; a jump to another picture has."""
    rng = np.random.default_rng(0)
    texture, other = (np.kron(rng.integers(0, 256, (3, 10, 3)), np.ones((32, 32, 1))) for _ in range(2))
    frames = [np.roll(texture, 4 * k, axis=1)[:, :160] for k in range(20)] + [other[:, :160]] * 5
    frames = [np.clip(f + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8) for f in frames]
    assert detect_cuts(frames) == [20]


def test_scores_and_thumbnails():
    """Identical frames score 0; thumbnails are block means of Rec. 601 luma."""
    flat = np.full((72, 128, 3), (255, 0, 0), np.uint8)
    thumb = luma_thumbnail(flat)
    assert thumb.shape == (36, 64) and np.allclose(thumb, 0.299)
    assert luma_thumbnail(flat[:10, :20]).shape == (10, 20)
    assert cut_scores([thumb, thumb, thumb * 0]).tolist() == pytest.approx([0, 0, 0.299])


def test_find_cuts_is_relative_to_the_neighbourhood():
    """A score must beat both the floor and ``ratio`` times the local median."""
    scores = np.array([0, 0.05, 0.05, 0.3, 0.05, 0.05, 0.2, 0.2, 0.2, 0.2, 0.2])
    assert find_cuts(scores) == [3]
    with pytest.raises(ValueError, match="radius"):
        find_cuts(scores, radius=0)
