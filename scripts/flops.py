"""Runs `pipeline.cli.flops` (also installed as a console command)."""
import sys

from pipeline.cli.flops import main

if __name__ == "__main__":
    sys.exit(main())
