"""Frame-folder discovery, the JSON manifest and the PNG window dataset (the baseline loader)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from pipeline.data.dali_loader import LoaderConfig, PairedVideoLoader
from pipeline.data.datasets import (
    Manifest,
    ManifestVideo,
    PngWindowDataset,
    dihedral,
    discover_frame_pairs,
    random_crop_box,
)
from pipeline.data.pairs import EncodeSettings
from pipeline.data.prepare import import_frame_pair

NAMES = ["9.png", "10.png", "11.png", "12.png", "13.png", "14.png"]  # sorted by name: 10 .. 14, then 9
ALL_FRAMES = len(NAMES)


def marker_picture(frame: int, height: int = 40, width: int = 48) -> np.ndarray:
    """(H, W, 3) uint8: a fixed random green texture, blue = 10 * frame."""
    picture = np.zeros((height, width, 3), np.uint8)
    picture[..., 1] = np.random.default_rng(0).integers(0, 256, (height, width))
    picture[..., 2] = 10 * frame
    return picture


def write_video(blur_dir, sharp_dir, count=ALL_FRAMES):
    """Frames named as in NAMES; frame i (in sorted-name order) has blue 10 * i; blurred = 255 - sharp."""
    blur_dir.mkdir(parents=True)
    sharp_dir.mkdir(parents=True)
    for index, name in enumerate(sorted(NAMES[:count])):
        sharp = marker_picture(index)
        Image.fromarray(sharp).save(sharp_dir / name)
        Image.fromarray(255 - sharp).save(blur_dir / name)


@pytest.mark.parametrize("layout", ["dvd", "custom", "gopro"])
def test_discovers_published_layouts(tmp_path, layout):
    """blur/<video> + gt/<video>, <video>/blur + <video>/gt, and GOPRO's <video>/blur + <video>/sharp."""
    for video in ("b_video", "a_video"):
        if layout == "dvd":
            write_video(tmp_path / "blur" / video, tmp_path / "gt" / video)
        else:
            sharp_name = "gt" if layout == "custom" else "sharp"
            write_video(tmp_path / video / "blur", tmp_path / video / sharp_name)
            (tmp_path / video / "blur_gamma").mkdir()
    pairs = discover_frame_pairs(tmp_path)
    assert [p.name for p in pairs] == ["a_video", "b_video"]
    assert [p.name for p in pairs[0].sharp] == sorted(NAMES)
    assert all(b.name == s.name and b.parent != s.parent for b, s in zip(pairs[0].blurred, pairs[0].sharp))


def test_unequal_frame_counts_are_an_error(tmp_path):
    write_video(tmp_path / "blur" / "v", tmp_path / "gt" / "v")
    (tmp_path / "blur" / "v" / "9.png").unlink()
    with pytest.raises(ValueError, match="5 blurred vs 6 sharp"):
        discover_frame_pairs(tmp_path)


@pytest.fixture
def frame_pairs(tmp_path):
    write_video(tmp_path / "blur" / "long", tmp_path / "gt" / "long")
    write_video(tmp_path / "blur" / "short", tmp_path / "gt" / "short", count=3)
    return discover_frame_pairs(tmp_path)


def test_png_windows_are_paired_and_consecutive(frame_pairs):
    """Every item is F consecutive frames of one video in both halves, under one crop and transform."""
    dataset = PngWindowDataset(frame_pairs, frames=3, crop=16, seed=4)
    assert len(dataset) == 4 + 1
    for index in range(len(dataset)):
        blurred, sharp = dataset[index]
        assert blurred.shape == sharp.shape == (3, 3, 16, 16) and blurred.dtype == torch.float32
        assert torch.allclose(blurred + sharp, torch.ones(()), atol=1e-6)
        start = dataset.windows[index][1]
        assert (sharp[:, 2] * 255).round().tolist() == [[[10.0 * (start + k)] * 16] * 16 for k in range(3)]


def test_png_windows_are_seeded_per_epoch(frame_pairs):
    """(seed, epoch, index) fixes an item; another epoch or seed changes the crop and transform."""
    dataset = PngWindowDataset(frame_pairs, frames=3, crop=16, seed=4)
    first = [dataset[i][1] for i in range(len(dataset))]
    assert all(torch.equal(a, dataset[i][1]) for i, a in enumerate(first))
    dataset.set_epoch(1)
    assert any(not torch.equal(a, dataset[i][1]) for i, a in enumerate(first))
    other = PngWindowDataset(frame_pairs, frames=3, crop=16, seed=5)
    assert any(not torch.equal(a, other[i][1]) for i, a in enumerate(first))


def test_png_windows_shard_with_distributed_sampler(frame_pairs):
    """Ranks get disjoint indices covering the data, and workers return what direct indexing does."""
    dataset = PngWindowDataset(frame_pairs, frames=2, crop=None, augment=False)  # 5 + 2 = 7 windows
    ranks = [list(DistributedSampler(dataset, num_replicas=2, rank=r, shuffle=True, seed=0, drop_last=True))
             for r in range(2)]
    assert set(ranks[0]).isdisjoint(ranks[1]) and len(set(ranks[0]) | set(ranks[1])) == 6
    loader = DataLoader(dataset, batch_size=1, sampler=ranks[1], num_workers=2)
    for index, (blurred, sharp) in zip(ranks[1], loader):
        assert torch.equal(sharp[0], dataset[index][1]) and blurred.shape == (1, 2, 3, 40, 48)


def test_dihedral_gives_eight_distinct_symmetries():
    clip = np.arange(12).reshape(1, 3, 4, 1)
    variants = {dihedral(clip, hflip=h, vflip=v, rot90=r).tobytes()
                for h in (0, 1) for v in (0, 1) for r in (0, 1)}
    assert len(variants) == 8
    rotated = dihedral(clip, hflip=False, vflip=False, rot90=True)
    assert np.array_equal(rotated[0, :, :, 0], np.rot90(clip[0, :, :, 0]))


def test_crop_box_bounds():
    rng = np.random.default_rng(0)
    boxes = {random_crop_box(rng, 5, 6, 4) for _ in range(200)}
    assert boxes == {(y, x) for y in range(2) for x in range(3)}
    with pytest.raises(ValueError, match="crop 8"):
        random_crop_box(rng, 5, 6, 8)


def test_manifest_round_trip_and_checks(tmp_path):
    video = ManifestVideo(name="v", path="videos/v.webm", split="val", frames=30, width=64, height=48,
                          fps=25.0, codec="vp9", keyint=8, source={"video": "x.mp4", "first_frame": 3},
                          psnr={"blurred": 41.5, "sharp": None})
    path = Manifest([video]).save(tmp_path / "manifest.json")
    loaded = Manifest.load(path)
    assert loaded.videos == [video] and loaded.video_path(video) == tmp_path / "videos" / "v.webm"
    with pytest.raises(ValueError, match="'train'"):
        loaded.split("train")
    data = json.loads(path.read_text())
    data["videos"][0]["frame_count"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="frame_count"):
        Manifest.load(path)


def test_imported_videos_read_like_the_png_folders(frame_pairs, tmp_path):
    """import_frame_pair keeps every frame in place: DALI's whole-frame windows of the imported videos match
    the PNG dataset's windows within coding error, and the measured transcode PSNR is recorded."""
    settings = EncodeSettings(codec="mjpeg")
    videos = [import_frame_pair(pair, tmp_path / f"{pair.name}{settings.suffix}", settings=settings,
                                split="train", fps=30) for pair in frame_pairs]
    assert [(v.name, v.frames, v.width, v.height) for v in videos] == [("long", 6, 48, 40),
                                                                        ("short", 3, 48, 40)]
    assert all(v.psnr["blurred"] > 30 and v.psnr["sharp"] > 30 for v in videos)
    config = LoaderConfig(frames=3, crop=None, augment=False, batch_size=1, drop_last=False)
    loader = PairedVideoLoader(Manifest(videos, root=tmp_path), "train", config)
    png = PngWindowDataset(frame_pairs, frames=3, crop=None, augment=False)
    read = 0
    for batch in loader.batches():
        blurred, sharp = png[png.windows.index((int(batch.clips[0]), int(batch.frame_numbers[0, 0])))]
        assert (batch.blurred[0] - blurred).abs().mean() < 0.03
        assert (batch.sharp[0] - sharp).abs().mean() < 0.03
        read += 1
    assert read == len(png) == 5
