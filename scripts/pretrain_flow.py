"""Runs `pipeline.cli.pretrain_flow` (also installed as a console command)."""
import sys

from pipeline.cli.pretrain_flow import main

if __name__ == "__main__":
    sys.exit(main())
