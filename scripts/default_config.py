"""Runs `pipeline.cli.default_config`."""
import sys

from pipeline.cli.default_config import main

if __name__ == "__main__":
    sys.exit(main())
