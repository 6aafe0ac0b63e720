"""Write configs/default.yaml from the config's dataclasses: every key at its default, with its description.

    python scripts/default_config.py            # after changing a default or a docstring in the schema
    python scripts/default_config.py --check    # exit 1 if the file differs from the dataclasses
"""
import sys
from pathlib import Path

from rich.console import Console

from pipeline.checkout import CONFIGS
from pipeline.cli import command_parser, fail
from pipeline.config import defaults_yaml

console = Console(stderr=True)


def get_args_parser():
    parser = command_parser(__doc__)
    parser.add_argument("--output", type=Path, default=CONFIGS / "default.yaml", help="default: %(default)s")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    text = defaults_yaml()
    if args.check:
        if not args.output.is_file() or args.output.read_text() != text:
            fail(console, f"{args.output} differs from pipeline/config.py's defaults; run "
                          "python scripts/default_config.py")
            return 1
        return 0
    args.output.write_text(text)
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
