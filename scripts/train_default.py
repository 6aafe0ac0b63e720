"""Runs `pipeline.cli.train_default` (also installed as a console command)."""
import sys

from pipeline.cli.train_default import main

if __name__ == "__main__":
    sys.exit(main())
