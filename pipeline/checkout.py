"""The source checkout around the packages: ``configs/``, ``samples/`` and the git history live there, not
in an installed wheel. Commands default to files from it only where a checkout is the natural place to run
them (the recipe, the profiler's sample clip); installed, they take those paths as arguments."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SAMPLES = ROOT / "samples"
FOOTAGE = SAMPLES / "footage"  # real clips with their sources (samples/footage/sources.yaml)
