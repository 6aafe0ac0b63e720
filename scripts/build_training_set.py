"""Build the default checkpoint's training set from the named sources in configs/sources/training_set.yaml.

    python scripts/build_training_set.py --out runs/default/data
    python scripts/build_training_set.py --out DIR --root footage=/path/to/clips --root opencv-doc=DIR

Photographs and clips come from packages (Debian opencv-doc, scikit-image, matplotlib) and from the
team's footage folder; the Debian package is fetched with ``apt-get download`` into ``runs/sources/``
when its root is missing. What is made: ``train/`` and ``val/`` blurred/sharp frame folders (7-frame
exposures of footage and of camera-shake sequences rendered from the photographs), ``photos/`` and
``sources.json`` (every file, its package and licence, counts). See ``pipeline/trainset.py``.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from pipeline.trainset import Sources, build

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "configs" / "sources" / "training_set.yaml"
DEBIAN_ROOTS = {"opencv-doc": "opencv-doc"}  # root name -> Debian package that holds it

console = Console(stderr=True)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to build the set in (must be new)")
    parser.add_argument(
        "--sources", type=Path, default=SOURCES, help=f"sources file (default {SOURCES.name})"
    )
    parser.add_argument(
        "--root", action="append", default=[], metavar="NAME=DIR", help="override a source root"
    )
    parser.add_argument("--seed", type=int, default=0, help="camera-shake sequences (default 0)")
    return parser


def fetch_debian(package: str, dest: Path) -> None:
    """``apt-get download`` a Debian package and unpack it into ``dest`` (the package's own file tree)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ValueError(
            f"the Debian package {package} is needed and apt-get is not available: unpack it "
            f"yourself and pass --root"
        )
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True)
        (deb,) = Path(scratch).glob(f"{package}_*.deb")
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        overrides = dict(item.split("=", 1) for item in args.root)
        sources = Sources.load(args.sources, overrides)
        for name, package in DEBIAN_ROOTS.items():
            folder = ROOT / sources.roots[name]
            if name not in overrides and not folder.is_dir():
                console.print(f"fetching Debian package {package} for source root {name!r}")
                fetch_debian(package, ROOT / "runs" / "sources" / package)
        with console.status("building") as status:
            record = build(
                sources,
                args.out,
                base=ROOT,
                seed=args.seed,
                on_item=lambda name: status.update(f"building: {name}"),
            )
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        console.print(f"[bold red]error:[/] {error}", soft_wrap=True, highlight=False)
        return 2
    pairs = sum(item["pairs"] for item in record["footage"] + record["shake"])
    console.print(
        f"{args.out}: {len(record['photos'])} photographs, {len(record['footage'])} clips, "
        f"{len(record['shake'])} camera-shake sequences, {pairs} blurred/sharp pairs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
