"""Project layout rules that would otherwise break things far from where they are made."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_script_shadows_a_standard_library_module():
    """``python scripts/X.py`` puts scripts/ first on sys.path: a scripts/profile.py, say, would replace the
    standard ``profile`` module for every script there (torch imports cProfile, which imports it)."""
    names = {path.stem for path in (ROOT / "scripts").glob("*.py")}
    assert not names & set(sys.stdlib_module_names)
