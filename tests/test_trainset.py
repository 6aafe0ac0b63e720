"""The training set from named sources (`pipeline.data.trainset`): layout, pairs, held-out split, sources."""

import json

import numpy as np
import pytest

from pipeline.data.datasets import discover_frame_pairs
from pipeline.data.synth import DVD_EXPOSURE as EXPOSURE
from pipeline.data.synth import blur_window
from pipeline.data.trainset import Sources, build
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
