"""Wheels carried to an offline machine in parts (scripts/lease_wheels.sh): packed here, one part a call
there, installed once every part has come and the rebuilt wheel matches its hash."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from pipeline.checkout import ROOT

SCRIPT = ROOT / "scripts" / "lease_wheels.sh"


def make_wheel(folder: Path) -> Path:
    """A real pure-Python wheel of about 12 KB (a stored, incompressible blob), installable by pip."""
    wheel = folder / "leasetoy-0.1-py3-none-any.whl"
    blob = np.random.default_rng(0).integers(0, 256, 12_000, dtype=np.uint8).tobytes()
    files = {"leasetoy/__init__.py": b"VALUE = 7\n", "leasetoy/blob.bin": blob,
             "leasetoy-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: leasetoy\nVersion: 0.1\n",
             "leasetoy-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                              b"Tag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + "leasetoy-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("leasetoy-0.1.dist-info/RECORD", record)
    return wheel


def lease(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    """The script from ``folder`` as the repository root, with this interpreter as ``python3``."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", str(SCRIPT), *arguments], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "PATH": path})


def test_a_wheel_packed_in_parts_installs_after_its_last_part_arrives(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    packed = lease(here, "pack", str(make_wheel(tmp_path)), "toy", "5K")
    assert packed.returncode == 0, packed.stderr
    parts = sorted((here / "wheels").glob("toy.part*[0-9]"))
    assert [p.name for p in parts] == ["toy.part00", "toy.part01", "toy.part02"]
    assert (here / "wheels" / "toy.parts").read_text().strip() == "3"

    site = tmp_path / "site"
    (there / "wheels").mkdir(parents=True)
    for name in ("toy.sha256", "toy.parts"):
        shutil.copy(here / "wheels" / name, there / "wheels")
    for part in parts:  # each call carries one part; the previous call's part is gone from wheels/
        for old in (there / "wheels").glob("toy.part??"):
            old.unlink()
        shutil.copy(part, there / "wheels")
        call = lease(there, "unpack", "toy", str(site))
        if part != parts[-1]:
            assert call.returncode == 3
            assert call.stderr.startswith(f"lease_wheels: {parts.index(part) + 1} of 3 parts")
            assert not site.exists()
    assert call.returncode == 0, call.stderr
    installed = subprocess.run([sys.executable, "-c", "import leasetoy; print(leasetoy.VALUE)"],
                               env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True)
    assert installed.stdout.strip() == "7"


def test_a_missing_part_is_named_and_a_corrupt_one_refused(tmp_path):
    assert lease(tmp_path, "pack", str(make_wheel(tmp_path)), "toy", "5K").returncode == 0
    (tmp_path / "wheels" / "toy.part01").unlink()
    missing = lease(tmp_path, "unpack", "toy", str(tmp_path / "site"))
    assert missing.returncode == 3
    assert "carry wheels/toy.part01 in the next call" in missing.stderr

    stage = next((tmp_path / "build" / "lease").iterdir())
    (stage / "toy.part01").write_bytes(b"not the wheel's bytes")
    corrupt = lease(tmp_path, "unpack", "toy", str(tmp_path / "site"))
    assert corrupt.returncode == 1
    assert "does not match its hash" in corrupt.stderr
    assert not (tmp_path / "site").exists()

    shutil.rmtree(tmp_path / "wheels")
    nothing = lease(tmp_path, "unpack", "toy", str(tmp_path / "site"))
    assert nothing.returncode == 3 and "make wheels makes them" in nothing.stderr
