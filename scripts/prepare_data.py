"""Runs `pipeline.cli.prepare_data` (also installed as a console command)."""
import sys

from pipeline.cli.prepare_data import main

if __name__ == "__main__":
    sys.exit(main())
