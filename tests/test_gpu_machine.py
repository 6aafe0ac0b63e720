"""The GPU test machine's scripts (benchmarks/gpu_machine/): a file split there comes back whole once
every piece has come, and the jobs wait for PyAV (unpacked from its archive) and the training-set sources
before they start."""
import io
import os
import shutil
import subprocess
import tarfile

import numpy as np

from .helpers import ROOT

SCRIPTS = ROOT / "benchmarks" / "gpu_machine"


def split_file(folder, *arguments: str) -> subprocess.CompletedProcess:
    """``split_file.sh`` run in ``folder``."""
    return subprocess.run(["bash", str(SCRIPTS / "split_file.sh"), *arguments], cwd=folder,
                          capture_output=True, text=True)


def blob(folder, size: int = 12_000):
    path = folder / "default.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def test_a_file_split_there_is_joined_here_once_its_last_piece_comes(tmp_path):
    there, here = tmp_path / "there", tmp_path / "here"
    there.mkdir()
    split = split_file(there, "split", str(blob(tmp_path)), "default", "5K", "out")
    assert split.returncode == 0, split.stderr
    pieces = sorted((there / "out").glob("default.part*[0-9]"))
    assert [p.name for p in pieces] == ["default.part00", "default.part01", "default.part02"]
    assert (there / "out" / "default.parts").read_text().strip() == "3"

    (here / "back").mkdir(parents=True)
    for name in ("default.sha256", "default.parts"):
        shutil.copy(there / "out" / name, here / "back")
    for piece in pieces:  # one piece a run; the previous run's piece is gone
        for old in (here / "back").glob("default.part??"):
            old.unlink()
        shutil.copy(piece, here / "back")
        joined = split_file(here, "join", "default", "back", "build/joined")
        if piece != pieces[-1]:
            assert joined.returncode == 3 and not joined.stdout
            assert joined.stderr.startswith(f"split_file: {pieces.index(piece) + 1} of 3 pieces")
    assert joined.returncode == 0, joined.stderr
    assert (here / joined.stdout.strip()).read_bytes() == (tmp_path / "default.pt").read_bytes()


def test_a_missing_piece_is_named_and_a_corrupt_one_refused(tmp_path):
    assert split_file(tmp_path, "split", str(blob(tmp_path)), "default", "5K", "out").returncode == 0
    (tmp_path / "out" / "default.part01").unlink()
    missing = split_file(tmp_path, "join", "default", "out", "build/joined")
    assert missing.returncode == 3 and "still to come: out/default.part01" in missing.stderr

    stage = next((tmp_path / "build" / "joined").iterdir())
    (stage / "default.part01").write_bytes(b"not the file's bytes")
    corrupt = split_file(tmp_path, "join", "default", "out", "build/joined")
    assert corrupt.returncode == 1 and not corrupt.stdout and "does not match its hash" in corrupt.stderr

    shutil.rmtree(tmp_path / "out")
    nothing = split_file(tmp_path, "join", "default", "out", "build/joined")
    assert nothing.returncode == 3 and "split_file.sh split makes them" in nothing.stderr


def test_the_jobs_wait_for_pyav_and_the_sources(tmp_path):
    """No PyAV archive: exit 3 naming it, nothing unpacked; a corrupt one refused; a good one unpacked into
    the scratch folder, then the recipe waits for the sources; an unknown job is refused."""
    shutil.copytree(SCRIPTS, tmp_path / "benchmarks" / "gpu_machine")
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}

    def job(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "benchmarks/gpu_machine/run.sh", *arguments], cwd=tmp_path, env=env,
                              capture_output=True, text=True)

    waiting = job("check", "--tiny")
    assert waiting.returncode == 3 and "bring build/gpu_machine/av.tar.xz" in waiting.stderr
    assert not (tmp_path / "tmp").exists() and not waiting.stdout
    bundle = tmp_path / "build" / "gpu_machine"
    bundle.mkdir(parents=True)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:xz") as tar:
        source = b"__version__ = 'toy'\n"
        member = tarfile.TarInfo("./av/__init__.py")
        member.size = len(source)
        tar.addfile(member, io.BytesIO(source))
    (bundle / "av.tar.xz").write_bytes(archive.getvalue())
    (bundle / "av.sha256").write_text("0" * 64 + "\n")
    assert job("check").returncode == 1 and not (tmp_path / "tmp").exists()
    hashed = subprocess.run(["sha256sum"], input=archive.getvalue(), capture_output=True, check=True)
    (bundle / "av.sha256").write_text(hashed.stdout.decode().split()[0] + "\n")
    sources = job("recipe")
    assert sources.returncode == 3 and "bring build/gpu_machine/sources" in sources.stderr
    assert (tmp_path / "tmp" / "cdvd-site" / "av" / "__init__.py").read_bytes() == source
    assert job("profile").returncode == 2
