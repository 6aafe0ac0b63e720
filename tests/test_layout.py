"""Project layout rules that would otherwise break things far from where they are made."""
import re
import sys

from .helpers import ROOT, without_dali


def test_no_script_shadows_a_standard_library_module():
    """``python scripts/X.py`` puts scripts/ first on sys.path: a scripts/profile.py, say, would replace the
    standard ``profile`` module for every script there (torch imports cProfile, which imports it)."""
    names = {path.stem for path in (ROOT / "scripts").glob("*.py")}
    assert not names & set(sys.stdlib_module_names)


def test_the_commands_and_benchmarks_import_without_dali():
    """A GPU machine without DALI (and PyAV-only users) can still deblur, train from PNG folders, profile,
    benchmark and stamp results: only the DALI readers and loader import DALI, and only when used."""
    script = """
import importlib, importlib.util, pathlib

for name in ("deblur", "evaluate", "train", "profiler", "flops", "train_default", "pretrain_flow",
             "gpu_check"):
    importlib.import_module(f"pipeline.cli.{name}")
import pipeline.data.dali_loader  # DALI is imported when it builds a pipeline
for path in ("benchmarks/deblur.py", "benchmarks/precision.py"):
    spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
import torch
from pipeline.measure.runinfo import stamp
assert stamp(torch.device("cpu"), "x")["device"]["versions"]["dali"] is None  # results still get stamped
"""
    completed = without_dali(script)
    assert completed.returncode == 0, completed.stderr


def test_no_module_imports_another_modules_private_names():
    """``from x import _name`` and ``module._name`` across modules couple them to internals."""
    imported = r"^\s*from (model|pipeline)[\w.]* import .*\b_[a-z]"
    called = r"\b(?!self\b|cls\b)[a-z]\w*\._[a-z]\w*\("  # a call of a private name on a module or object
    private = re.compile(f"{imported}|{called}")
    folders = ("model", "pipeline", "benchmarks", "tests")
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for folder in folders for path in (ROOT / folder).rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if private.search(line) and "torch._" not in line]
    assert not offenders


def test_names_say_what_they_are():
    """Under pipeline/ no two modules share a file name and no two classes a name (an import or a traceback
    names one thing), and the top holds at most 10 modules: the rest sits in sub-packages."""
    modules = [path for path in (ROOT / "pipeline").rglob("*.py") if path.name != "__init__.py"]
    names = [path.name for path in modules]
    assert sorted({n for n in names if names.count(n) > 1}) == []
    classes = [found for path in modules for found in re.findall(r"^class (\w+)", path.read_text(), re.M)]
    assert sorted({c for c in classes if classes.count(c) > 1}) == []
    assert len([path for path in modules if path.parent == ROOT / "pipeline"]) <= 10
