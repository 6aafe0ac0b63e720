"""The training set from named sources (`pipeline.data.trainset`): layout, sequences, splits, sources."""

import gzip
import json
import shutil

import numpy as np
import pytest
import yaml

from pipeline.data.datasets import discover_frame_pairs
from pipeline.data.protocol import CONDITIONS, condition_pairs
from pipeline.data.trainset import MIN_SHOT, Sources, build, footage_items
from pipeline.video.sequences import frame_files, read_frames, read_image
from tests.conftest import encode_clip

BLURRED = [name for name, condition in CONDITIONS.items() if condition.blurred]


def _frames(folder):
    return [read_image(path) for path in frame_files(folder)]


def test_build_writes_sequences_validation_conditions_and_provenance(sources, tmp_path):
    """Training footage and camera-shake scenes become sharp sequences; the validation clip becomes a
    sequence and a pair folder per blurred condition of the protocol; the test clip is not read at all;
    sources.json names every file with its licence."""
    out = tmp_path / "set"
    record = build(sources, out, base=tmp_path, seed=0)
    assert sorted(p.name for p in (out / "sequences" / "train").iterdir()) == ["pan", "shake000", "shake001"]
    assert sorted(p.name for p in (out / "sequences" / "val").iterdir()) == ["held"]
    assert sorted(pair.name for pair in discover_frame_pairs(out / "val")) == sorted(
        f"held__{name}" for name in BLURRED)
    assert len(_frames(out / "sequences" / "train" / "pan")) == 26
    assert len(_frames(out / "sequences" / "train" / "shake000")) == 9
    assert not (out / "train").exists() and "judge" not in str(sorted(out.rglob("*")))
    assert sorted(p.name for p in (out / "photos" / "val").iterdir()) == ["coffee.png"]
    saved = json.loads((out / "sources.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["test"] == ["judge.mp4"] and saved["val_conditions"] == BLURRED
    assert saved["footage"][0] == {"file": "pan.mp4", "split": "train", "width": 64, "shots": {"pan": 26},
                                   "package": "", "licence": "made by the test"}


def test_validation_pairs_are_the_protocols_conditions_of_the_clip(sources, tmp_path):
    """Each validation pair folder holds exactly `condition_pairs` of the validation clip's frames."""
    out = tmp_path / "set"
    build(sources, out, base=tmp_path, seed=0)
    clip = list(read_frames(tmp_path / "footage" / "held.mp4"))
    assert all(np.array_equal(a, b) for a, b in zip(_frames(out / "sequences" / "val" / "held"), clip))
    folders = {pair.name: pair for pair in discover_frame_pairs(out / "val")}
    for name in ("linear3", "gamma7", "fast3"):
        expected = list(condition_pairs(clip, CONDITIONS[name]))
        pair = folders[f"held__{name}"]
        assert pair.frames == len(expected) > 0
        for k in (0, len(expected) - 1):
            assert np.array_equal(read_image(pair.blurred[k]), expected[k][0])
            assert np.array_equal(read_image(pair.sharp[k]), expected[k][1])


def test_scene_cuts_split_a_clip_and_short_shots_are_dropped(sources, tmp_path):
    """A clip of two shots (a hard cut to another photograph, its colours inverted) becomes two sequences
    named by shot; a shot shorter than MIN_SHOT frames is left out."""
    first = list(read_frames(tmp_path / "footage" / "pan.mp4"))
    second = [255 - frame for frame in read_frames(tmp_path / "footage" / "held.mp4")]
    for name, frames in (("cut", first + second), ("short", first + second[:MIN_SHOT - 4])):
        encode_clip(tmp_path / "footage" / f"{name}.mkv", np.stack(frames), codec="ffv1", pix_fmt="bgr0")
    footage = {**sources.footage, "train": ["cut.mkv", "short.mkv"]}
    out = tmp_path / "set"
    record = build(Sources(roots=sources.roots, photos=sources.photos, footage=footage), out, base=tmp_path)
    shots = {entry["file"]: entry["shots"] for entry in record["footage"] if entry["split"] == "train"}
    assert shots == {"cut.mkv": {"cut_0": 26, "cut_1": 24}, "short.mkv": {"short": 26}}


def test_build_refuses_an_existing_set_and_missing_roots(sources, tmp_path):
    out = tmp_path / "set"
    build(sources, out, base=tmp_path, seed=0)
    with pytest.raises(ValueError, match="already holds"):
        build(sources, out, base=tmp_path, seed=0)
    broken = Sources(
        roots={"stills": str(tmp_path / "nowhere")}, photos=sources.photos, footage=sources.footage
    )
    with pytest.raises(ValueError, match="not a folder"):
        build(broken, tmp_path / "other", base=tmp_path)


def test_a_clip_at_its_own_width_name_and_root_and_gzipped(sources, tmp_path):
    """A footage entry may give its own width (a folder named for the width), name, root, package and
    licence; a gzipped clip (Debian gzips large documentation files) is read decompressed."""
    clips = tmp_path / "packaged"
    clips.mkdir()
    with (tmp_path / "footage" / "pan.mp4").open("rb") as plain, gzip.open(clips / "pan.mp4.gz", "wb") as out:
        shutil.copyfileobj(plain, out)
    footage = {**sources.footage, "train": [
        "pan.mp4", {"file": "pan.mp4.gz", "width": 32, "root": "packaged", "package": "P 1.0",
                    "licence": "CC-BY-3.0"}, {"file": "held.mp4", "width": 32, "name": "other"}],
        "val": []}
    roots = {**sources.roots, "packaged": str(clips)}
    out = tmp_path / "set"
    record = build(Sources(roots=roots, photos=sources.photos, footage=footage), out, base=tmp_path)
    sequences = out / "sequences" / "train"
    assert {"pan", "pan_32", "other_32"} <= {p.name for p in sequences.iterdir()}
    assert _frames(sequences / "pan_32")[0].shape[1] == 32 and _frames(sequences / "pan")[0].shape[1] == 64
    assert record["footage"][1] == {"file": "pan.mp4.gz", "split": "train", "width": 32,
                                    "shots": {"pan_32": 26}, "package": "P 1.0", "licence": "CC-BY-3.0"}


def test_footage_entries_are_checked():
    footage = {"root": "clips", "width": 64, "train": [{"file": "a.mp4", "colour": "red"}], "val": []}
    with pytest.raises(ValueError, match="colour"):
        footage_items(footage)
    twice = {"root": "clips", "width": 64, "train": ["a.mp4", {"file": "a.mp4", "width": 64}], "val": []}
    with pytest.raises(ValueError, match="same folder"):
        footage_items(twice)
    leaked = {"root": "clips", "width": 64, "train": [{"file": "a.mp4", "width": 32}], "test": ["a.mp4"]}
    with pytest.raises(ValueError, match="a.mp4 is in more than one split"):
        footage_items(leaked)


def test_a_pack_of_the_package_files_builds_the_same_set(sources, tmp_path):
    """``--pack`` copies the files of package roots only (a path root travels with the checkout); a build
    with ``--packed`` from that folder alone, the package unreachable, is the build from the package."""
    from pipeline.cli.build_training_set import main

    spec = yaml.safe_load((tmp_path / "sources.yaml").read_text())
    spec["roots"]["stills"] = "python:skimage/data"  # the fixture's photographs, from the installed package
    path = tmp_path / "packaged.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["--sources", str(path), "--pack", str(tmp_path / "pack")]) == 0
    packed = tmp_path / "pack"
    assert sorted(p.relative_to(packed).as_posix() for p in packed.rglob("*")) == [
        "stills", "stills/astronaut.png", "stills/chelsea.png", "stills/coffee.png"]

    spec["roots"]["stills"] = "python:no_such_package/data"
    path.write_text(yaml.safe_dump(spec))
    assert main(["--sources", str(path), "--out", str(tmp_path / "unreachable")]) == 2
    assert main(["--sources", str(path), "--out", str(tmp_path / "from_pack"), "--packed", str(packed)]) == 0
    direct, from_pack = tmp_path / "direct", tmp_path / "from_pack"
    build(sources, direct, base=tmp_path, seed=0)
    for part in ("sequences", "val", "photos/train", "photos/val"):
        made = [p.relative_to(from_pack) for p in sorted((from_pack / part).rglob("*.png"))]
        assert made and made == [p.relative_to(direct) for p in sorted((direct / part).rglob("*.png"))]
        assert all((from_pack / name).read_bytes() == (direct / name).read_bytes() for name in made)
    nowhere = ["--sources", str(path), "--out", str(tmp_path / "x"), "--packed", str(tmp_path / "none")]
    assert main(nowhere) == 2
