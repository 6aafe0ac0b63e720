"""Runs `pipeline.cli.deblur` (also installed as a console command)."""
import sys

from pipeline.cli.deblur import main

if __name__ == "__main__":
    sys.exit(main())
