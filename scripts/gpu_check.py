"""Runs `pipeline.cli.gpu_check` (also installed as a console command)."""
import sys

from pipeline.cli.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
