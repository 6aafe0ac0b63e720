"""Runs `pipeline.cli.profiler` (also installed as a console command)."""
import sys

from pipeline.cli.profiler import main

if __name__ == "__main__":
    sys.exit(main())
