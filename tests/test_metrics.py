"""PSNR/SSIM under the official protocol, checked by hand and against scikit-image."""
import math

import av
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from pipeline.metrics import Scores, psnr, ssim

from .helpers import FOOTAGE

# scikit-image's Gaussian SSIM is the same computation: truncate=3.5 at sigma=1.5 gives the same 11-tap
# window, and it drops (11 - 1) // 2 = 5 px per side of the SSIM map before averaging, which is exactly the
# valid region (its reflect padding never reaches the kept pixels). Only float64 summation order differs.
SKIMAGE_TOLERANCE = 1e-10


def _skimage_ssim(a: np.ndarray, b: np.ndarray, crop: int) -> float:
    region = (slice(crop, a.shape[0] - crop), slice(crop, a.shape[1] - crop))
    return structural_similarity(a[region], b[region], gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255, channel_axis=-1)


@pytest.fixture(scope="module")
def real_pair() -> tuple[np.ndarray, np.ndarray]:
    """A 240x320 camera frame and a motion-blurred copy (mean of it and its 4 neighbours, as DVD/GOPRO)."""
    path = FOOTAGE / "realshort.mp4"
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(7), container.decode(video=0))]
    blurred = np.mean(frames[1:6], axis=0).round().astype(np.uint8)
    return frames[3], blurred


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 236, shape, dtype=np.uint8)


def test_psnr_identical_is_inf():
    """Equal images have MSE 0: PSNR is +inf, not an error or a huge finite number."""
    image = _noise((24, 32, 3))
    assert psnr(image, image) == math.inf


def test_psnr_constant_offset():
    """An offset of d on every pixel and channel gives 10 log10(255^2 / d^2)."""
    image = _noise((24, 32, 3))
    assert psnr(image + np.uint8(5), image) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)


def test_psnr_crop_ignores_border():
    """Differences only in the 4-px border do not count with crop=4, and count over the whole frame with 0."""
    image = _noise((24, 32, 3))
    edited = image.copy()
    edited[:4] += 10  # top 4 rows, all 32 columns
    assert psnr(edited, image, crop=4) == math.inf
    mse = 100 * (4 * 32) / (24 * 32)
    assert psnr(edited, image, crop=0) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)


def test_psnr_batch_matches_single():
    """A batch (N, H, W, C) gives one PSNR per image."""
    a, b = _noise((3, 24, 32, 3), seed=1), _noise((3, 24, 32, 3), seed=2)
    np.testing.assert_allclose(psnr(a, b), [psnr(x, y) for x, y in zip(a, b)], rtol=0)


@pytest.mark.parametrize("crop", [0, 4])
def test_ssim_matches_skimage(real_pair, crop):
    """MATLAB-style SSIM equals scikit-image's Gaussian SSIM on the same cropped region."""
    sharp, blurred = real_pair
    value = ssim(blurred, sharp, crop=crop)
    assert 0.5 < value < 0.99  # a real difference, not a trivial case
    assert abs(value - _skimage_ssim(blurred, sharp, crop)) < SKIMAGE_TOLERANCE


def test_ssim_identical_is_one(real_pair):
    """SSIM of an image with itself is exactly 1 (the map is 1 everywhere)."""
    sharp, _ = real_pair
    assert ssim(sharp, sharp) == pytest.approx(1.0, abs=1e-12)


def test_ssim_batch_matches_single(real_pair):
    """A batch (N, H, W, C) gives one SSIM per image."""
    sharp, blurred = real_pair
    np.testing.assert_allclose(ssim(np.stack([sharp, blurred]), np.stack([blurred, blurred])),
                               [ssim(sharp, blurred), 1.0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("a, b, match", [
    (np.zeros((24, 32, 3), np.uint8), np.zeros((24, 30, 3), np.uint8), "differ in shape"),
    (np.zeros((24, 32, 3), np.float32), np.zeros((24, 32, 3), np.float32), "uint8"),
    (np.zeros((18, 32, 3), np.uint8), np.zeros((18, 32, 3), np.uint8), "too small"),
])
def test_ssim_rejects_bad_input(a, b, match):
    """Mismatched shapes, non-uint8 data and images smaller than the window after the crop are ValueErrors."""
    with pytest.raises(ValueError, match=match):
        ssim(a, b)


def test_scores_average_is_mean_over_frames():
    """Per-video means, and an overall mean over all frames (not the mean of the video means)."""
    target = _noise((24, 32, 3))
    scores = Scores(crop=4)
    scores.add("short", target + np.uint8(1), target)
    for _ in range(3):
        scores.add("long", target + np.uint8(10), target)
    near, far = 20 * math.log10(255), 20 * math.log10(25.5)
    per_video = scores.per_video()
    assert list(per_video) == ["short", "long"]
    assert per_video["long"].psnr == pytest.approx(far) and per_video["long"].frames == 3
    assert scores.overall().psnr == pytest.approx((near + 3 * far) / 4)
    assert scores.overall().frames == 4
    assert [s.index for s in scores.frames] == [0, 0, 1, 2]
