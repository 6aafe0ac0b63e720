"""The DALI paired loader: blurred and sharp windows are the same frames of the same clip, transformed alike.

Marker clips: in sharp frame k of clip c, red is flat at ``_red(c)``, blue flat at ``_blue(k)`` and green a
texture that moves 8 px per frame; the blurred half is the negative of the sharp half. Means survive any
crop, flip or rotation (and lossy coding), so every sample names its clip and frame numbers, and
``blurred + sharp == 1`` pixel by pixel holds only if both halves got the same box and the same transform.
"""
import numpy as np
import pytest
import torch

from pipeline.data.dali_loader import LoaderConfig, PairedVideoLoader, epoch_windows, list_windows
from pipeline.data.datasets import Manifest, ManifestVideo
from pipeline.data.pairs import EncodeSettings, VideoEncoder, stack_pair

from .helpers import needs_dali

HEIGHT, WIDTH, CROP = 48, 64, 32
LENGTHS = (12, 9, 15)


def _red(clip: int) -> int:
    return 40 + 50 * clip


def _blue(frame: int) -> int:
    return 16 + 8 * frame


def marker_frame(clip: int, frame: int) -> np.ndarray:
    """(HEIGHT, WIDTH, 3) uint8 sharp frame ``frame`` of marker clip ``clip``."""
    blocks = np.random.default_rng(clip).integers(30, 226, (HEIGHT // 8, WIDTH // 4))
    texture = np.kron(blocks, np.ones((8, 4)))  # (HEIGHT, WIDTH)
    sharp = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    sharp[..., 0], sharp[..., 2] = _red(clip), _blue(frame)
    sharp[..., 1] = np.roll(texture, 8 * frame, axis=1)
    return sharp


def make_marker_dataset(root, codec: str = "mjpeg") -> Manifest:
    settings = EncodeSettings(codec=codec, keyint=4, quality=2 if codec == "mjpeg" else 10)
    videos = []
    for clip, length in enumerate(LENGTHS):
        path = root / f"clip{clip}{settings.suffix}"
        with VideoEncoder(path, fps=25, settings=settings) as encoder:
            for frame in range(length):
                sharp = marker_frame(clip, frame)
                encoder.write(stack_pair(255 - sharp, sharp))
        videos.append(ManifestVideo(name=f"clip{clip}", path=path.name, split="train", frames=length,
                                    width=WIDTH, height=HEIGHT, fps=25.0, codec=codec, keyint=4))
    manifest = Manifest(videos=videos, root=root)
    manifest.save(root / "manifest.json")
    return Manifest.load(root / "manifest.json")


@pytest.fixture(scope="module")
def marker_manifest(tmp_path_factory):
    return make_marker_dataset(tmp_path_factory.mktemp("markers"))


def decode_markers(clip: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(F, 3, h, w) sharp-looking frames -> (clip numbers (F,), frame numbers (F,)) from channel means."""
    means = clip.double().mean(dim=(2, 3)).cpu().numpy() * 255  # (F, 3)
    return np.rint((means[:, 0] - 40) / 50).astype(int), np.rint((means[:, 2] - 16) / 8).astype(int)


def check_pairing(batch) -> list[tuple[int, int]]:
    """Assert every sample of a PairedBatch is one clip's consecutive frames in both halves; return
    the (clip, start) of each sample."""
    read = []
    for blurred, sharp, clip, numbers in zip(batch.blurred, batch.sharp, batch.clips, batch.frame_numbers):
        numbers = numbers.cpu().numpy()
        assert (np.diff(numbers) == 1).all(), numbers
        for half in (sharp, 1 - blurred):
            clips, frames = decode_markers(half)
            assert (clips == int(clip)).all(), (clips, int(clip))
            assert (frames == numbers).all(), (frames, numbers)
        assert (blurred + sharp - 1).abs().mean() < 0.01
        assert (blurred + sharp - 1).abs().max() < 0.1
        read.append((int(clip), int(numbers[0])))
    return read


def test_pairs_survive_crops_flips_and_rotations(marker_manifest):
    """With random crops and dihedral augmentation, the two halves of every sample are the same frames
    (by painted marker and by DALI's frame numbers) of the same clip, under the same transform."""
    config = LoaderConfig(frames=5, crop=CROP, batch_size=4, drop_last=False, shuffle_buffer=1)
    loader = PairedVideoLoader(marker_manifest, "train", config)
    read = []
    for batch in loader.batches():
        assert batch.blurred.shape[1:] == (5, 3, CROP, CROP) and batch.blurred.dtype == torch.float32
        read += check_pairing(batch)
    assert read == [(w.clip, w.start) for w in loader.epoch_windows()]  # no shuffle buffer: in order


def test_runs_open_a_decoder_per_run_and_the_buffer_mixes_clips(marker_manifest):
    """Runs of 8 windows read from one file-list line each (24 windows, 3 clips: 4 lines, not 24); DALI's
    shuffle buffer still mixes clips within batches, and every window is read once."""
    config = LoaderConfig(frames=5, crop=CROP, batch_size=6, drop_last=False, run=8, shuffle_buffer=12)
    loader = PairedVideoLoader(marker_manifest, "train", config)
    batches = [check_pairing(batch) for batch in loader.batches()]
    windows = [(w.clip, w.start) for w in loader.epoch_windows()]
    assert loader.lines < len(windows) // 4 and len(windows) == 24
    assert sorted(sum(batches, [])) == sorted(windows)
    assert any(len({clip for clip, _ in batch}) > 1 for batch in batches)


def test_whole_frames_match_the_encoded_pictures(marker_manifest):
    """Uncropped and unaugmented, each half is the picture that was encoded for that frame number."""
    config = LoaderConfig(frames=3, crop=None, augment=False, batch_size=2, step=4)
    for batch in PairedVideoLoader(marker_manifest, "train", config).batches():
        check_pairing(batch)
        for sharp, clip, numbers in zip(batch.sharp, batch.clips, batch.frame_numbers):
            expected = np.stack([marker_frame(int(clip), int(k)) for k in numbers])  # (F, H, W, 3)
            expected = expected.transpose(0, 3, 1, 2) / 255
            assert np.abs(sharp.numpy() - expected).mean() < 0.01


def test_vp9_clips_pair_too(tmp_path):
    """Inter-coded short-GOP VP9 (seeks to keyframes) keeps the pairing."""
    manifest = make_marker_dataset(tmp_path, codec="vp9")
    loader = PairedVideoLoader(manifest, "train", LoaderConfig(frames=5, crop=CROP, batch_size=8, step=2))
    assert sum(len(check_pairing(batch)) for batch in loader.batches()) == len(loader) * 8


def test_epochs_reorder_and_repeat(marker_manifest):
    """One (seed, epoch) reads the same windows in the same order with the same pixels; another epoch
    reads another order of the same windows."""
    loader = PairedVideoLoader(marker_manifest, "train", LoaderConfig(frames=5, crop=CROP, batch_size=6))

    def run(epoch):
        loader.set_epoch(epoch)
        batches = list(loader.batches())
        return [check_pairing(b) for b in batches], torch.cat([b.sharp for b in batches])

    order0, pixels0 = run(0)
    again, pixels_again = run(0)
    order1, _ = run(1)
    assert order0 == again and torch.equal(pixels0, pixels_again)
    assert order0 != order1
    assert sorted(sum(order0, [])) == sorted(sum(order1, []))


def test_ranks_read_disjoint_shards(marker_manifest):
    """Two ranks read disjoint window sets that together cover the epoch."""
    config = LoaderConfig(frames=5, crop=CROP, batch_size=3, drop_last=False)
    shards = []
    for rank in range(2):
        loader = PairedVideoLoader(marker_manifest, "train", config, rank=rank, world_size=2)
        shards.append([pair for batch in loader.batches() for pair in check_pairing(batch)])
    all_windows = {(w.clip, w.start) for w in loader.windows}
    assert len(shards[0]) == len(shards[1]) == len(all_windows) // 2  # 8 + 5 + 11 = 24 windows
    assert set(shards[0]).isdisjoint(shards[1]) and set(shards[0]) | set(shards[1]) == all_windows


def test_epoch_windows_shard_and_pad():
    """Shards of an uneven count have equal lengths, cover everything, and repeat only the wrap-around."""
    windows = list_windows(["a", "b"], [10, 7], frames=5)  # 6 + 3 windows
    shards = [epoch_windows(windows, seed=3, epoch=2, rank=r, world_size=4) for r in range(4)]
    assert [len(s) for s in shards] == [3, 3, 3, 3]
    flat = sum(shards, [])
    assert set(flat) == set(windows) and len(flat) - len(set(flat)) == 12 - 9
    assert epoch_windows(windows, seed=3, epoch=2) == epoch_windows(windows, seed=3, epoch=2)
    assert epoch_windows(windows, seed=3, epoch=2) != epoch_windows(windows, seed=3, epoch=3)


def test_list_windows_step_and_limit():
    windows = list_windows(["a"], [20], frames=5, step=3, max_frames=12)
    assert [w.start for w in windows] == [0, 3, 6]


def test_rejects_what_cpu_dali_cannot_read(marker_manifest):
    """H.264 clips on the CPU and crops larger than the clip are refused up front."""
    h264 = Manifest(videos=[ManifestVideo(**{**vars(marker_manifest.videos[0]), "codec": "h264"})],
                    root=marker_manifest.root)
    with pytest.raises(ValueError, match="h264"):
        PairedVideoLoader(h264, "train", LoaderConfig())
    with pytest.raises(ValueError, match="crop 256"):
        PairedVideoLoader(marker_manifest, "train", LoaderConfig(crop=256))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@needs_dali
def test_gpu_decode_pairs(tmp_path):
    """NVDEC-decoded H.264 clips, augmented on the GPU, arrive as CUDA tensors and stay paired."""
    manifest = make_marker_dataset(tmp_path, codec="h264")
    config = LoaderConfig(frames=5, crop=CROP, batch_size=4)
    loader = PairedVideoLoader(manifest, "train", config, device_id=0)
    for batch in loader.batches():
        assert batch.blurred.is_cuda and batch.sharp.is_cuda
        check_pairing(batch)
