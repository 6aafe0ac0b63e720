"""Files sent to or from a GPU lease in parts (scripts/lease_parts.sh): packed on one side, one part a
call, rebuilt on the other once every part has come and the whole matches its hash."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from pipeline.checkout import ROOT

SCRIPT = ROOT / "scripts" / "lease_parts.sh"


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
    """The script run in ``folder``."""
    return subprocess.run(["bash", str(SCRIPT), *arguments], cwd=folder, capture_output=True, text=True)


def test_a_wheel_sent_in_parts_installs_once_its_last_part_arrives(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    packed = lease(here, "pack", str(make_wheel(tmp_path)), "toy", "5K", "lease")
    assert packed.returncode == 0, packed.stderr
    parts = sorted((here / "lease").glob("toy.part*[0-9]"))
    assert [p.name for p in parts] == ["toy.part00", "toy.part01", "toy.part02"]
    assert (here / "lease" / "toy.parts").read_text().strip() == "3"

    (there / "lease").mkdir(parents=True)
    for name in ("toy.sha256", "toy.parts"):
        shutil.copy(here / "lease" / name, there / "lease")
    for part in parts:  # each call carries one part; the previous call's part is gone from lease/
        for old in (there / "lease").glob("toy.part??"):
            old.unlink()
        shutil.copy(part, there / "lease")
        call = lease(there, "join", "toy", "lease", "build/lease")
        if part != parts[-1]:
            assert call.returncode == 3 and not call.stdout
            assert call.stderr.startswith(f"lease_parts: {parts.index(part) + 1} of 3 parts")
    assert call.returncode == 0, call.stderr
    wheel = there / call.stdout.strip()
    assert wheel.name == "leasetoy-0.1-py3-none-any.whl"
    assert wheel.read_bytes() == (tmp_path / wheel.name).read_bytes()
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    installed = subprocess.run([sys.executable, "-c", "import leasetoy; print(leasetoy.VALUE)"],
                               env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True)
    assert installed.stdout.strip() == "7"


def test_a_missing_part_is_named_and_a_corrupt_one_refused(tmp_path):
    assert lease(tmp_path, "pack", str(make_wheel(tmp_path)), "toy", "5K", "lease").returncode == 0
    (tmp_path / "lease" / "toy.part01").unlink()
    missing = lease(tmp_path, "join", "toy", "lease", "build/lease")
    assert missing.returncode == 3
    assert "carry lease/toy.part01 in the next call" in missing.stderr

    stage = next((tmp_path / "build" / "lease").iterdir())
    (stage / "toy.part01").write_bytes(b"not the wheel's bytes")
    corrupt = lease(tmp_path, "join", "toy", "lease", "build/lease")
    assert corrupt.returncode == 1 and not corrupt.stdout
    assert "does not match its hash" in corrupt.stderr

    shutil.rmtree(tmp_path / "lease")
    nothing = lease(tmp_path, "join", "toy", "lease", "build/lease")
    assert nothing.returncode == 3 and "pack makes them" in nothing.stderr


def test_the_lease_command_waits_for_the_wheel_before_any_job(tmp_path):
    """`gpu_lease.sh` on a machine where the PyAV wheel has not fully come: exit 3 naming the missing part,
    nothing installed, no job started; an unknown job is refused."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    assert lease(tmp_path, "pack", str(make_wheel(tmp_path)), "av", "5K", "lease").returncode == 0
    (tmp_path / "lease" / "av.part02").unlink()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}

    def job(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "scripts/gpu_lease.sh", *arguments], cwd=tmp_path, env=env,
                              capture_output=True, text=True)

    waiting = job("check", "--tiny")
    assert waiting.returncode == 3 and "carry lease/av.part02 in the next call" in waiting.stderr
    assert not (tmp_path / "tmp").exists() and not waiting.stdout
    assert job("profile").returncode == 2
