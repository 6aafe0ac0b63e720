"""Runs `pipeline.cli.fetch_footage` (also installed as a console command)."""
import sys

from pipeline.cli.fetch_footage import main

if __name__ == "__main__":
    sys.exit(main())
