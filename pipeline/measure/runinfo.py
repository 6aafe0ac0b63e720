"""Where a measurement was made: date, commit, device and command, stamped on every result file."""
import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from pipeline.checkout import ROOT
from pipeline.cli import add_device_option
from pipeline.config import Config, load_config
from pipeline.runtime import compute_device


def commit() -> str:
    """The checkout's short commit, with ``-dirty`` when it has uncommitted changes."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def _version(module: str) -> str | None:
    """``module.__version__``, or None where it is not installed (a GPU machine may lack DALI or PyAV)."""
    try:
        return importlib.import_module(module).__version__
    except (ImportError, OSError):
        return None


def driver_version() -> str | None:
    """The NVIDIA driver's version (``nvidia-smi``), or None where there is none."""
    try:
        completed = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = completed.stdout.strip().splitlines()
    return lines[0].strip() if completed.returncode == 0 and lines else None


def device_info(device: torch.device) -> dict:
    """CPU model and cores, the GPU's name when ``device`` is CUDA, and the versions of the driver, CUDA
    (torch's build), cuDNN and the libraries (None for what is not there)."""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    return {"cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                         "driver": driver_version() if device.type == "cuda" else None,
                         "dali": _version("nvidia.dali"), "av": _version("av")}}


def describe(device: torch.device) -> str:
    """One line naming the device, for table titles."""
    info = device_info(device)
    return info["gpu"] or f"{info['cpu']} ({info['torch_threads']} threads)"


def command_line(argv: list[str] | None) -> str:
    """The command as typed: ``python <script> <args>``, from ``sys.argv`` or an explicit argument list."""
    script = os.path.relpath(sys.argv[0], ROOT) if sys.argv and sys.argv[0] else "?"
    return " ".join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def stamp(device: torch.device, command: str) -> dict:
    """The header of a result file: date (UTC), commit, device and the command that made it."""
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit(), "device": device_info(device), "command": command}


def add_result_options(parser: argparse.ArgumentParser) -> None:
    """A benchmark's common options: ``--config`` and ``--set`` (the config it runs with) and ``--json``
    (its result file, `write_result`)."""
    parser.add_argument("--config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="write the results here")


def parse_device_benchmark(parser: argparse.ArgumentParser, argv: list[str] | None
                           ) -> tuple[argparse.Namespace, Config, torch.device]:
    """The opening of a benchmark that runs on any device: ``--device`` and `add_result_options` added to
    ``parser``, ``argv`` parsed, the config loaded, the device picked, and torch seeded with 0 so that its
    untrained weights and synthetic frames are the same on every run."""
    add_device_option(parser)
    add_result_options(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    device = compute_device(args.device)
    torch.manual_seed(0)
    return args, config, device


def write_document(path: Path | None, benchmark: str, device: torch.device, argv: list[str] | None,
                   fields: dict) -> None:
    """A benchmark's result file at ``path`` (nothing when None): its name, `stamp` (run on ``device``, by
    ``argv``) and ``fields``, as indented JSON."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": benchmark, **stamp(device, command_line(argv)), **fields}
    path.write_text(json.dumps(document, indent=1) + "\n")


def write_result(path: Path | None, benchmark: str, device: torch.device, argv: list[str] | None,
                 settings: dict, results: dict) -> None:
    """`write_document` of a benchmark with the common layout: its settings and its results."""
    write_document(path, benchmark, device, argv, {"settings": settings, "results": results})
