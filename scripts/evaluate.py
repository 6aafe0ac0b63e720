"""Runs `pipeline.cli.evaluate` (also installed as a console command)."""
import sys

from pipeline.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
