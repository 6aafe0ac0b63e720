"""The training set from named sources (`pipeline.data.trainset`): layout, pairs, held-out split, sources."""

import dataclasses
import json

import numpy as np
import pytest
import yaml

from pipeline import metrics
from pipeline.data.datasets import discover_frame_pairs
from pipeline.data.synth import DVD_EXPOSURE as EXPOSURE
from pipeline.data.synth import blur_window
from pipeline.data.trainset import Compression, Sources, build, footage_items
from pipeline.video.sequences import read_frames, read_image


def test_build_makes_pairs_splits_and_provenance(sources, tmp_path):
    """Footage and camera-shake sequences become DVD-style pair folders; held-out footage goes to val only;
    sources.json names every file with its licence."""
    out = tmp_path / "set"
    record = build(sources, out, base=tmp_path, seed=0)
    train = {pair.name: pair for pair in discover_frame_pairs(out / "train")}
    val = {pair.name: pair for pair in discover_frame_pairs(out / "val")}
    assert set(train) == {"pan", "shake000", "shake001"} and set(val) == {"held"}
    assert train["pan"].frames == 12 - EXPOSURE.window + 1 and val["held"].frames == 10 - EXPOSURE.window + 1
    assert train["shake000"].frames == 9 - EXPOSURE.window + 1
    assert sorted(p.name for p in (out / "photos" / "val").iterdir()) == ["coffee.png"]
    saved = json.loads((out / "sources.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert {item["file"] for item in saved["photos"]} == {"astronaut.png", "chelsea.png", "coffee.png"}
    assert saved["footage"][0] == {
        "file": "pan.mp4",
        "split": "train",
        "width": 64,
        "pairs": 6,
        "package": "",
        "licence": "made by the test",
    }


def test_blurred_frames_are_exposures_of_their_sharp_neighbours(sources, tmp_path):
    """Footage pair k: the blurred frame is the 7-frame linear-light exposure of clip frames k .. k+6 and the
    sharp frame is clip frame k+3, the middle one."""
    out = tmp_path / "set"
    build(sources, out, base=tmp_path, seed=0)
    pair = next(p for p in discover_frame_pairs(out / "train") if p.name == "pan")
    clip = np.stack(list(read_frames(tmp_path / "footage" / "pan.mp4")))  # (12, 48, 64, 3)
    for k in (0, 5):
        assert np.array_equal(
            read_image(pair.blurred[k]), blur_window(clip[k : k + EXPOSURE.window], EXPOSURE)
        )
        assert np.array_equal(read_image(pair.sharp[k]), clip[k + EXPOSURE.window // 2])


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


def test_a_clip_at_its_own_width_and_from_its_own_root(sources, tmp_path):
    """A footage entry may give its own width (the same clip at twice the size: twice the motion, in a
    folder named for the width) and its own root, package and licence (a package's folder)."""
    footage = {**sources.footage, "train": ["pan.mp4", {"file": "pan.mp4", "width": 32},
                                           {"file": "held.mp4", "width": 32, "package": "P 1.0",
                                            "licence": "CC-BY-3.0"}]}
    out = tmp_path / "set"
    record = build(Sources(roots=sources.roots, photos=sources.photos, footage=footage), out, base=tmp_path)
    train = {pair.name: pair for pair in discover_frame_pairs(out / "train")}
    assert {"pan", "pan_32", "held_32"} <= set(train)
    assert read_image(train["pan_32"].sharp[0]).shape[1] == 32
    assert read_image(train["pan"].sharp[0]).shape[1] == 64
    assert record["footage"][2] | {"pairs": 0} == {"file": "held.mp4", "split": "train", "width": 32,
                                                    "pairs": 0, "package": "P 1.0", "licence": "CC-BY-3.0"}


def test_footage_entries_are_checked():
    footage = {"root": "clips", "width": 64, "train": [{"file": "a.mp4", "colour": "red"}], "val": []}
    with pytest.raises(ValueError, match="colour"):
        footage_items(footage)
    twice = {"root": "clips", "width": 64, "train": ["a.mp4", {"file": "a.mp4", "width": 64}], "val": []}
    with pytest.raises(ValueError, match="same folder"):
        footage_items(twice)


def test_compressed_inputs_are_the_exposures_through_h264(sources, tmp_path):
    """With ``compress``, each blurred sequence is the exposures round-tripped through H.264 at its recorded
    CRF (training: drawn from the range; held out: val_crf), close to but not equal to the exposure; the
    sharp targets and the camera-shake scenes are those of the uncompressed build."""
    plain, squeezed = tmp_path / "plain", tmp_path / "squeezed"
    build(sources, plain, base=tmp_path, seed=0)
    compress = Compression(train_crf=(18, 26), val_crf=12)
    record = build(dataclasses.replace(sources, compress=compress), squeezed, base=tmp_path, seed=0)
    crfs = {item.get("file", item.get("name")): item["crf"] for item in record["footage"] + record["shake"]}
    assert crfs["held.mp4"] == 12 and all(18 <= crfs[name] <= 26 for name in ("pan.mp4", "shake000"))
    assert record["compress"] == {"codec": "h264", "train_crf": [18, 26], "val_crf": 12, "keyint": 8}
    for part, name in (("train", "pan"), ("train", "shake001"), ("val", "held")):
        before = {pair.name: pair for pair in discover_frame_pairs(plain / part)}[name]
        after = {pair.name: pair for pair in discover_frame_pairs(squeezed / part)}[name]
        assert len(after.blurred) == len(before.blurred)
        for k in range(len(after.blurred)):
            assert np.array_equal(read_image(after.sharp[k]), read_image(before.sharp[k]))
            exposure, delivered = read_image(before.blurred[k]), read_image(after.blurred[k])
            assert not np.array_equal(delivered, exposure)
            assert metrics.psnr(delivered, exposure) > 30


def test_compression_is_checked(sources, tmp_path):
    with pytest.raises(ValueError, match="low, high"):
        Compression(train_crf=(23, 10), val_crf=12)
    with pytest.raises(ValueError, match="quality"):
        Compression(train_crf=(10, 60), val_crf=12)
    spec = tmp_path / "compressed.yaml"
    text = (tmp_path / "sources.yaml").read_text()
    spec.write_text(text + "compress: {train_crf: [10, 23]}\n")  # held out as the sample files are
    assert Sources.load(spec).compress == Compression(train_crf=(10, 23), val_crf=12, keyint=8)
    spec.write_text(text + "compress: {val_crf: 12}\n")
    with pytest.raises(ValueError, match="not a training-sources file"):
        Sources.load(spec)


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
    for part in ("train", "val", "photos/train", "photos/val"):
        made = [p.relative_to(from_pack) for p in sorted((from_pack / part).rglob("*.png"))]
        assert made and made == [p.relative_to(direct) for p in sorted((direct / part).rglob("*.png"))]
        assert all((from_pack / name).read_bytes() == (direct / name).read_bytes() for name in made)
    nowhere = ["--sources", str(path), "--out", str(tmp_path / "x"), "--packed", str(tmp_path / "none")]
    assert main(nowhere) == 2
