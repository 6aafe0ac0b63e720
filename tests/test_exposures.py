"""Blurred windows drawn on the fly (`pipeline.data.exposures`) and the protocol's conditions
(`pipeline.data.protocol`)."""

import numpy as np
import pytest
import torch
from skimage import data

from pipeline.config import BlurConfig, ConfigError, load_config
from pipeline.data.exposures import BlurredWindows, draw
from pipeline.data.protocol import CONDITIONS, condition_pairs
from pipeline.data.synth import synthesize
from pipeline.metrics import psnr
from pipeline.video.frames import to_uint8

PLAIN = dict(noise_share=0.0, compress=0.0)  # no noise, no compression: exact arithmetic


def flat_sequence(levels: np.ndarray, size: int = 16) -> np.ndarray:
    """(N, size, size, 3) uint8 frames, frame t filled with ``levels[t]``: crops and symmetries leave such a
    frame as it is, so a window's values say which frames made it."""
    return np.broadcast_to(levels[:, None, None, None], (len(levels), size, size, 3)).astype(np.uint8)


def test_draws_stay_inside_the_configured_ranges():
    blur = BlurConfig(windows=[3, 9], weights=[1, 3], strides=[2, 3], noise=[1, 2], noise_share=0.5,
                      compress=0.5, crf=[20, 22])
    made = [draw(blur, np.random.default_rng(i)) for i in range(200)]
    assert {m.exposure.window for m in made} == {3, 9} and {m.exposure.stride for m in made} == {2, 3}
    assert {m.exposure.linear_light for m in made} == {True, False}
    assert 100 < sum(m.exposure.window == 9 for m in made) < 190  # weights 1 : 3
    assert all(m.noise == 0 or 1 <= m.noise <= 2 for m in made) and any(m.noise for m in made)
    assert {m.crf for m in made} == {None, 20, 21, 22}


def test_a_window_is_exposures_at_stride_apart_centres_and_their_sharp_frames():
    """Every item of gamma 3-frame exposures at stride 2: blurred frame k is the mean of the three frames
    around centre c_k, sharp frame k is frame c_k, and the centres are 2 apart."""
    levels = np.random.default_rng(0).permutation(200)[:40].astype(np.uint8)  # distinct: a level is a frame
    blur = BlurConfig(windows=[3], weights=[1], gamma=1.0, strides=[2, 2], **PLAIN)
    dataset = BlurredWindows([flat_sequence(levels)], blur, frames=3, crop=8, seed=0)
    for index in range(0, len(dataset), 7):
        blurred, sharp = (to_uint8(t)[:, 0, 0, 0].numpy() for t in dataset[index])  # (3,) levels
        centres = [int(np.flatnonzero(levels == value)[0]) for value in sharp]
        assert np.diff(centres).tolist() == [2, 2]
        expected = [np.rint(levels[c - 1:c + 2].astype(np.float64).mean()) for c in centres]
        assert blurred.tolist() == expected


def test_one_frame_exposures_are_identity_pairs_and_items_are_reproducible():
    sequence = np.random.default_rng(1).integers(0, 256, (20, 24, 24, 3), dtype=np.uint8)
    blur = BlurConfig(windows=[1], weights=[1], strides=[1, 3], **PLAIN)
    dataset = BlurredWindows([sequence], blur, frames=5, crop=16, seed=3)
    blurred, sharp = dataset[4]
    assert blurred.shape == sharp.shape == (5, 3, 16, 16) and torch.equal(blurred, sharp)
    assert all(torch.equal(a, b) for a, b in zip(dataset[4], BlurredWindows([sequence], blur, frames=5,
                                                                             crop=16, seed=3)[4]))
    dataset.set_epoch(1)
    assert not torch.equal(dataset[4][0], blurred)


def test_noise_and_compression_reach_the_input_only():
    """Noise of sigma 2 levels and an H.264 round trip change the blurred frames by about that much; the
    sharp targets stay exact."""
    photo = data.astronaut()
    sequence = np.stack([photo[100:132, 200 + 2 * t:232 + 2 * t] for t in range(12)])  # a photograph, panned
    noisy = BlurredWindows([sequence], BlurConfig(windows=[1], weights=[1], noise=[2.0, 2.0],
                                                  noise_share=1.0, compress=0.0), frames=3, crop=32)
    blurred, sharp = noisy[0]
    assert (blurred - sharp).std().item() * 255 == pytest.approx(2.0, rel=0.15)
    compressed = BlurredWindows([sequence], BlurConfig(windows=[1], weights=[1], noise_share=0.0,
                                                       compress=1.0, crf=[18, 18]), frames=3, crop=32)
    blurred, sharp = (to_uint8(t).numpy() for t in compressed[0])
    assert not np.array_equal(blurred, sharp) and min(psnr(blurred, sharp, crop=0)) > 25


def test_sequences_too_short_or_small_are_refused():
    sequence = np.zeros((6, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="frames the widest draw needs"):
        BlurredWindows([sequence], BlurConfig(), frames=3, crop=16)
    with pytest.raises(ValueError, match="smaller than the crop"):
        BlurredWindows([np.zeros((40, 16, 16, 3), np.uint8)], BlurConfig(), frames=3, crop=32)


def test_the_blur_section_is_checked():
    assert load_config(overrides=["blur.strides=[1, 2]"]).blur.strides == [1, 2]
    for bad, message in (("blur.windows=[2]", "odd"), ("blur.weights=[1]", "one non-negative chance"),
                         ("blur.strides=[3, 1]", "range"), ("blur.crf=[10, 60]", "0..51"),
                         ("blur.gamma=2", "share")):
        with pytest.raises(ConfigError, match=message):
            load_config(overrides=[bad, *(["blur.weights=[1]"] if "windows" in bad else [])])


def test_the_protocols_conditions():
    """Blurred conditions are `synthesize` of the clip with their exposure; ``sharp`` gives each frame as
    its own target; ``still`` holds the middle frame; ``limit`` keeps the first pairs."""
    clip = list(np.random.default_rng(4).integers(0, 256, (30, 8, 8, 3), dtype=np.uint8))
    assert [name for name, c in CONDITIONS.items() if not c.blurred] == ["sharp", "still"]
    fast = list(condition_pairs(clip, CONDITIONS["fast3"]))
    reference = list(synthesize(clip, CONDITIONS["fast3"].exposure))
    assert len(fast) == len(reference) == 8
    assert all(np.array_equal(a, r.blurred) and np.array_equal(b, r.sharp)
               for (a, b), r in zip(fast, reference))
    sharp = list(condition_pairs(clip, CONDITIONS["sharp"], limit=5))
    assert len(sharp) == 5
    assert all(np.array_equal(a, clip[k]) and b is clip[k] for k, (a, b) in enumerate(sharp))
    still = list(condition_pairs(clip, CONDITIONS["still"], limit=4))
    assert len(still) == 4 and all(a is clip[15] and b is clip[15] for a, b in still)
