"""Runs `pipeline.cli.train` (also installed as a console command)."""
import sys

from pipeline.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
