"""A machine without DALI (a GPU machine with torch and PyAV only, or a user who did not install it): the
CUDA tests still collect and skip or run, ``reader: auto`` decodes with PyAV and says why, ``--reader dali``
is one line and exit 2, and a DALI that fails to import while decoding is a DALI failure (retried with
PyAV under ``auto``). Each check runs in a fresh interpreter where ``import nvidia.dali`` fails."""
import json

from .helpers import without_dali


def test_cuda_tests_collect_and_skip_cleanly():
    """``pytest -m cuda`` (what the GPU check runs) without DALI: no collection error, every CUDA test
    collected, and here (no GPU) every one skipped."""
    completed = without_dali("import pytest, sys\nsys.exit(pytest.main(['-q', '-m', 'cuda', '-p', "
                             "'no:cacheprovider', '-o', 'addopts=', 'tests']))", timeout=600)
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "error" not in lines[-1] and "skipped" in lines[-1] and "passed" not in lines[-1], lines[-1]


def test_auto_reads_with_pyav_and_says_why(vp9_clip):
    """VP9 on a CPU is DALI's (`test_readers`); without DALI ``auto`` takes PyAV, with the reason, and the
    readers to compare leave DALI out; forcing DALI is one line naming the file."""
    completed = without_dali(f"""
import json
from pipeline.errors import VideoError
from pipeline.video.probe import probe
from pipeline.video.readers import open_reader, readers_for

info = probe({str(vp9_clip)!r})
reader = open_reader(info, "auto", "cpu", 8)
try:
    open_reader(info, "dali", "cpu", 8)
    forced = None
except VideoError as error:
    forced = str(error)
frames = sum(len(chunk.pts) for chunk in reader)
print(json.dumps({{"name": reader.name, "reason": reader.reason, "readers": readers_for(info, "cpu"),
                   "forced": forced, "frames": frames}}))
""")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["name"] == "pyav" and "DALI is not usable here" in result["reason"]
    assert result["readers"] == ["pyav"] and result["frames"] == 30
    forced = result["forced"]
    assert forced.startswith(f"{vp9_clip}: DALI is not usable here") and "\n" not in forced


def test_a_dali_that_cannot_import_is_a_dali_failure(vp9_clip):
    """DALI missing when the DALI reader decodes (installed but broken, say) raises `DaliDecodeError`, the
    error `deblur` retries with PyAV under ``auto`` (`test_deblur`), not an ImportError."""
    completed = without_dali(f"""
from pipeline.errors import DaliDecodeError
from pipeline.video.probe import probe
from pipeline.video.readers import DaliReader

try:
    next(iter(DaliReader(probe({str(vp9_clip)!r}), backend="cpu", device="cpu", chunk=8)))
except DaliDecodeError as error:
    print(error)
""")
    assert completed.returncode == 0, completed.stderr
    assert "DALI could not decode it" in completed.stdout and "nvidia" in completed.stdout


def test_deblur_without_dali(make_clip, tmp_path):
    """``deblur`` decodes with PyAV (the reason in ``-v``'s log) and writes every frame; ``--reader dali``
    is refused up front in one line with exit status 2."""
    clip = make_clip("no_dali.webm", codec="libvpx-vp9", frames=3, size=(64, 48))
    completed = without_dali(f"""
import sys
from pipeline.cli.deblur import main

out = {str(tmp_path)!r}
print("auto", main([{str(clip)!r}, "-o", out + "/auto.mp4", "-v"]))  # -v first: logging is set up once
print("forced", main([{str(clip)!r}, "-o", out + "/forced.mp4", "--reader", "dali"]))
""", timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert "auto 0" in completed.stdout and "forced 2" in completed.stdout
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: --reader dali: DALI is not usable here")
    assert "reader pyav (DALI is not usable here" in " ".join(completed.stderr.split())
    assert (tmp_path / "auto.mp4").is_file() and not (tmp_path / "forced.mp4").exists()
