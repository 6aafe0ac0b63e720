"""Runs `pipeline.cli.make_sample` (also installed as a console command)."""
import sys

from pipeline.cli.make_sample import main

if __name__ == "__main__":
    sys.exit(main())
