"""The training data behind ``train.loader``, with one interface: ``set_epoch(epoch)``, ``len()`` (batches
per epoch on this rank) and iteration over (blurred, sharp) batches of (B, 2T+1, 3, crop, crop) float in
[0, 1], sharded by rank.

* ``dali``: the paired videos of a manifest (`pipeline.data.dali_loader`, on the GPU when there is one);
* ``png``: DVD/GOPRO frame folders through a ``DataLoader`` (`PngWindowDataset`);
* ``synth``: sharp frame folders blurred on the fly (`pipeline.data.exposures.BlurredWindows`).

`validation_videos` gives the held-out videos of ``train.val_data`` (or of the manifest's val/test split).
"""
import torch

from pipeline.config import BlurConfig, TrainConfig
from pipeline.data.dali_loader import LoaderConfig, PairedVideoLoader
from pipeline.data.datasets import Manifest, PngWindowDataset, discover_frame_pairs
from pipeline.data.exposures import BlurredWindows, load_sequences
from pipeline.data.pairs import split_pair
from pipeline.data.scored import Video, frame_folder_videos
from pipeline.video import dali
from pipeline.video.sequences import read_frames


def training_loader(train: TrainConfig, blur: BlurConfig, frames: int, *, rank: int, world_size: int,
                    device: torch.device):
    """Batches of (blurred, sharp) windows of ``frames`` frames for this rank; ``set_epoch`` each epoch."""
    if train.loader == "dali":
        if dali.unavailable():
            raise ValueError(f"train.loader=dali: {dali.unavailable()}; use train.loader=png or synth")
        return PairedVideoLoader(Manifest.load(train.data), "train", LoaderConfig.of(train, frames),
                                 rank=rank, world_size=world_size, device_id=dali.device_id(device))
    if train.loader == "synth":
        dataset = BlurredWindows(load_sequences(train.data), blur, frames=frames, crop=train.crop,
                                 seed=train.seed)
    else:
        dataset = PngWindowDataset(discover_frame_pairs(train.data), frames=frames, crop=train.crop,
                                   seed=train.seed, max_frames=train.max_frames)
    return EpochLoader(dataset, train, rank=rank, world_size=world_size, pin_memory=device.type == "cuda")


class EpochLoader:
    """A map-style dataset with ``set_epoch`` (its augmentation) through a ``DataLoader`` with a
    ``DistributedSampler``; one ``set_epoch`` sets both the sampler's order and the dataset's draws."""

    def __init__(self, dataset, train: TrainConfig, *, rank: int, world_size: int, pin_memory: bool):
        self.dataset = dataset
        self.sampler = torch.utils.data.DistributedSampler(self.dataset, world_size, rank, seed=train.seed,
                                                           drop_last=True)
        self.loader = torch.utils.data.DataLoader(self.dataset, batch_size=train.batch, sampler=self.sampler,
                                                  drop_last=True, num_workers=train.workers,
                                                  pin_memory=pin_memory, persistent_workers=False)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def validation_videos(train: TrainConfig) -> list[Video]:
    """The held-out videos; empty when there are none (validation is then skipped)."""
    if train.loader != "dali":  # frame folders
        return frame_folder_videos(train.val_data) if train.val_data else []
    manifest = Manifest.load(train.val_data or train.data)
    splits = {video.split for video in manifest.videos}
    split = "val" if "val" in splits else ("test" if "test" in splits else None)
    if split is None:
        return []
    videos = []
    for video in manifest.split(split):
        path = manifest.video_path(video)
        videos.append(Video(video.name, lambda p=path: (split_pair(f)[1] for f in read_frames(p)),
                            f"{path} (right half)",
                            lambda p=path: (split_pair(f)[0] for f in read_frames(p)), f"{path} (left half)"))
    return videos
