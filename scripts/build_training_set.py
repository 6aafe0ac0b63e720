"""Runs `pipeline.cli.build_training_set` (also installed as a console command)."""
import sys

from pipeline.cli.build_training_set import main

if __name__ == "__main__":
    sys.exit(main())
