"""The pure-PyTorch cost volume against a direct loop over pixels, and its fused (compiled) version
against the pure one."""
import torch

from model import CDVDTSP
from model.correlation import correlation
from pipeline.compiling import compile_model

from .helpers import TINY


def _direct(first, second, d):
    batch, channels, height, width = first.shape
    out = torch.zeros(batch, (2 * d + 1) ** 2, height, width, dtype=torch.float64)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                for dy in range(-d, d + 1):
                    for dx in range(-d, d + 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < height and 0 <= xx < width:
                            value = (first[b, :, y, x].double()
                                     * second[b, :, yy, xx].double()).sum() / channels
                            out[b, (dy + d) * (2 * d + 1) + (dx + d), y, x] = value
    return out


def test_matches_direct_loop():
    """81 channels, dy-major order, mean over channels, zero padding."""
    torch.manual_seed(0)
    first, second = torch.randn(2, 5, 7, 9), torch.randn(2, 5, 7, 9)
    result = correlation(first, second)
    assert result.shape == (2, 81, 7, 9)
    assert torch.allclose(result.double(), _direct(first, second, 4), atol=1e-5)


def test_channel_order_is_dy_major():
    """A feature impulse displaced by (dx=+3, dy=-2) lights channel (dy+4)*9 + (dx+4) = 25."""
    first, second = torch.zeros(1, 1, 11, 11), torch.zeros(1, 1, 11, 11)
    first[0, 0, 5, 5] = 1.0
    second[0, 0, 3, 8] = 1.0
    result = correlation(first, second)
    assert result[0, :, 5, 5].argmax().item() == 2 * 9 + 7


def test_the_fused_kernel_equals_the_pure_version_at_every_level_size():
    """`pipeline.compiling`'s ``correlation`` mode: one inductor compile with dynamic shapes serves levels of
    different sizes and channel counts, each within 1e-6 of the pure version (the oracle)."""
    model = CDVDTSP(TINY)
    compile_model(model, "correlation")
    kernels = {decoder.cost_volume.kernel for decoder in model.flow.decoders}
    assert len(kernels) == 1 and kernels != {correlation}
    (fused,) = kernels
    generator = torch.Generator().manual_seed(0)
    for shape in ((2, 32, 24, 40), (1, 196, 6, 10)):
        first, second = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
        assert (fused(first, second) - correlation(first, second)).abs().max() <= 1e-6
