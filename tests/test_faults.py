"""Faults a render farm meets, each survived by `deblur` with one line on stderr, a non-zero exit and nothing
lost: the output named as the input, a full disk, two launches on one output, SIGTERM, an input deleted
while it is read, an output folder that is a file or read-only; and the ``.yaml`` beside an output records
the model that ran."""
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
import yaml

from model import CDVDTSP, ModelConfig, save_checkpoint
from model.init import identity_restoration_, zero_flow_
from pipeline.checkout import ROOT
from pipeline.cli.deblur import main as deblur
from pipeline.video.probe import probe
from pipeline.video.segments import Segments
from pipeline.video.workfolder import WorkFolder

SEGMENT = ["--set", "deblur.segment=4", "--chunk", "4"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny model (4 features, 1 residual block) that returns its centre frame: zero flow (which the
    engine skips) and a zeroed residual; noise stays noise, which fills a disk."""
    model = CDVDTSP(ModelConfig(residual=True, features=4, resblocks=1))
    zero_flow_(model.flow)
    path = tmp_path_factory.mktemp("weights") / "identity.pt"
    save_checkpoint(identity_restoration_(model).eval(), path)
    return path


@pytest.fixture(scope="module")
def clip(make_clip):
    """12 frames 64x48 H.264."""
    return make_clip("faults.mp4", frames=12, size=(64, 48))


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """12 frames of seeded noise, 96x64 (about 20 KB per 4-frame segment at CRF 18)."""
    path = tmp_path_factory.mktemp("noise") / "noise.mp4"
    images = np.random.default_rng(0).integers(0, 256, (12, 64, 96, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for index, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def run(capsys, *args) -> tuple[int, list[str], str]:
    """``deblur args``: (exit status, its error lines, all of stderr)."""
    code = deblur([str(arg) for arg in args])
    err = capsys.readouterr().err
    return code, errors(err), err


def command(*args) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "deblur.py"), *map(str, args)]


@pytest.mark.parametrize("spelling", ["same path", "relative path", "symlink", "hard link"])
def test_the_output_is_never_the_input(spelling, clip, checkpoint, tmp_path, monkeypatch, capsys):
    """``deblur a.mp4 -o a.mp4 --overwrite``, however the output is spelt, is refused in one line (exit 1)
    and the original stays as it was. Before, it was replaced by the deblurred copy (exit 0, nothing said)."""
    original = tmp_path / "a.mp4"
    original.write_bytes(clip.read_bytes())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    output = {"same path": original, "relative path": "sub/../a.mp4", "symlink": "link.mp4",
              "hard link": "hard.mp4"}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.mp4").symlink_to(original)
    if spelling == "hard link":
        os.link(original, tmp_path / "hard.mp4")
    code, lines, err = run(capsys, "a.mp4", "-o", output, "--overwrite", "--checkpoint", checkpoint)
    assert code == 1 and len(lines) == 1 and "is the input a.mp4 itself" in lines[0], err
    assert original.read_bytes() == clip.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock, no work


@contextlib.contextmanager
def mounted_tmpfs(folder, options: str):
    """A tmpfs mounted on ``folder`` with mount ``options`` for the block; the test is skipped where mounting
    is not permitted (not root)."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, most of it taken by a ballast file that the test deletes to free space; skipped where
    mounting is not permitted (not root)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    with mounted_tmpfs(folder, "size=1m"):
        yield folder


def test_a_full_disk_keeps_its_segments_and_resumes_to_the_same_file(noise, checkpoint, small_disk, tmp_path,
                                                                      capsys):
    """The output's disk fills up mid-run: one line naming the output and what to do (exit 1), no traceback,
    no final file, the finished segments kept; with space freed, ``--resume`` gives the bytes of an
    uninterrupted run. Before: three tracebacks (the encoder's, and a crash writing the failure marker)."""
    whole = tmp_path / "whole.mp4"
    assert deblur([str(noise), "-o", str(whole), "--checkpoint", str(checkpoint), *SEGMENT]) == 0
    capsys.readouterr()
    ballast = small_disk / "ballast"
    # room for half the video and 16 KiB (the lock and the work folder's records take a 4 KiB page each)
    ballast.write_bytes(bytes(1024 * 1024 - 16 * 1024 - whole.stat().st_size // 2))
    output = small_disk / "out.mp4"
    code, lines, err = run(capsys, noise, "-o", output, "--checkpoint", checkpoint, *SEGMENT)
    assert code == 1 and "Traceback" not in err and len(lines) == 1, err
    assert f"{output}: cannot write it (no space left on device); free some space and rerun with --resume" \
           in lines[0]
    assert not output.exists() and not list(small_disk.glob(".*.lock"))
    kept = WorkFolder(output, Segments(4)).finished()
    assert 1 <= len(kept) < 3, kept
    ballast.unlink()
    code, lines, err = run(capsys, noise, "-o", output, "--checkpoint", checkpoint, *SEGMENT, "--resume")
    assert code == 0 and not lines, err
    assert output.read_bytes() == whole.read_bytes()


@pytest.mark.slow
def test_two_launches_on_one_output(noise, checkpoint, tmp_path):
    """A job submitted twice, both started together: one writes the output (the file one launch writes), the
    other is refused in one line naming the first (pid and host; exit 1) and touches nothing of its work.
    Before, both prepared the same work folder: one crashed with a traceback, or both failed."""
    single = tmp_path / "single.mp4"
    assert subprocess.run(command(noise, "-o", single, "--checkpoint", checkpoint, *SEGMENT), cwd=ROOT,
                          capture_output=True).returncode == 0
    output = tmp_path / "out" / "out.mp4"
    launch = command(noise, "-o", output, "--checkpoint", checkpoint, *SEGMENT)
    launches = [subprocess.Popen(launch, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
    results = sorted((run.wait(timeout=300), run.pid, errors(run.stderr.read())) for run in launches)
    (first, winner, first_errors), (second, _, second_errors) = results
    assert (first, second) == (0, 1) and first_errors == [], results
    assert len(second_errors) == 1 and f"{output}: is being written by another launch (pid {winner} on " \
           f"{socket.gethostname()}, since " in second_errors[0], second_errors
    assert output.read_bytes() == single.read_bytes()
    assert sorted(p.name for p in output.parent.iterdir()) == ["out.mp4", "out.mp4.yaml"]  # lock gone


def test_a_lock_left_by_a_dead_launch_is_taken_over(clip, checkpoint, tmp_path, capsys, caplog):
    """A lock file whose owner died (killed, the node rebooted) does not stop the next launch, which logs
    whose it was (shown with -v) and removes it at the end."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    output = tmp_path / "out.mp4"
    lock = tmp_path / ".out.mp4.lock"
    lock.write_text(f'{{"pid": {gone.pid}, "host": "{socket.gethostname()}", "started": "yesterday"}}')
    caplog.set_level(logging.INFO, logger="pipeline.video.lock")
    code, lines, err = run(capsys, clip, "-o", output, "--checkpoint", checkpoint)
    assert code == 0 and not lines, err
    assert f"taking over the lock of a launch that is gone (pid {gone.pid} on" in caplog.text
    assert probe(output).num_frames == 12 and not lock.exists()


def test_sigterm_stops_cleanly_and_resumes(noise, checkpoint, tmp_path, capsys, monkeypatch):
    """SIGTERM from a scheduler once a segment is finished: one line, exit 143 (128 + SIGTERM), no output,
    the finished segments kept; ``--resume`` gives an uninterrupted run's bytes. Before: killed silently."""
    whole = tmp_path / "whole.mp4"
    assert deblur([str(noise), "-o", str(whole), "--checkpoint", str(checkpoint), *SEGMENT]) == 0
    capsys.readouterr()
    seal = WorkFolder.seal

    def sealed_then_stopped(work, segment, frames, reader):  # on the encoder thread, as a scheduler would
        seal(work, segment, frames, reader)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(WorkFolder, "seal", sealed_then_stopped)
    output = tmp_path / "out.mp4"
    code, lines, err = run(capsys, noise, "-o", output, "--checkpoint", checkpoint, *SEGMENT)
    assert code == 143 and "Traceback" not in err, err
    stopped = "stopped (SIGTERM): finished segments are kept, rerun with --resume"
    assert err.strip().splitlines()[-1] == stopped
    assert not output.exists() and 1 <= len(WorkFolder(output, Segments(4)).finished()) < 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the command gave the handler back
    monkeypatch.undo()
    code, lines, err = run(capsys, noise, "-o", output, "--checkpoint", checkpoint, *SEGMENT, "--resume")
    assert code == 0 and not lines, err
    assert output.read_bytes() == whole.read_bytes()


def test_an_input_deleted_while_it_is_read(clip, checkpoint, tmp_path, capsys, monkeypatch):
    """The input deleted (or moved) after its first segment: one line that says so about the input, exit 1,
    no output, the finished segments kept. Before: "out.mp4: cannot write it (No such file or directory)",
    blaming the output."""
    source = tmp_path / "in.mp4"
    source.write_bytes(clip.read_bytes())
    seal = WorkFolder.seal

    def sealed_then_deleted(work, segment, frames, reader):
        seal(work, segment, frames, reader)
        source.unlink(missing_ok=True)

    monkeypatch.setattr(WorkFolder, "seal", sealed_then_deleted)
    output = tmp_path / "out.mp4"
    code, lines, err = run(capsys, source, "-o", output, "--checkpoint", checkpoint, *SEGMENT)
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == (f"error: {source}: was deleted or moved while it was being read; put it back and "
                        "rerun with --resume")
    assert not output.exists() and WorkFolder(output, Segments(4)).finished()


def test_an_output_folder_that_is_a_file(clip, checkpoint, tmp_path, capsys):
    """``-o notes.txt`` for several inputs, or a file in the output's path: one line naming it, exit 1.
    Before, several inputs raised FileExistsError with a traceback."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder\n")
    other = tmp_path / "other.mp4"
    other.write_bytes(clip.read_bytes())
    for output in (blocker, blocker / "out.mp4"):
        inputs = [clip, other] if output == blocker else [clip]
        code, lines, err = run(capsys, *inputs, "-o", output, "--checkpoint", checkpoint)
        assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
        assert f"{blocker}: cannot create the folder (a file is in the way)" in lines[0]
    assert blocker.read_text() == "not a folder\n"


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write to: a read-only tmpfs for root (whom permissions do not stop), a folder
    without write permission for others."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "ro,size=64k"):
        yield folder


def test_a_read_only_output_folder(clip, checkpoint, read_only, tmp_path, capsys):
    """An output in a read-only folder, or a new folder under it for several inputs: one line, exit 1.
    Before, the second raised PermissionError (OSError, as root) with a traceback."""
    other = tmp_path / "other.mp4"
    other.write_bytes(clip.read_bytes())
    for inputs, output, problem in (([clip], read_only / "out.mp4", f"{read_only}: folder is not writable"),
                                    ([clip, other], read_only / "new",
                                     f"{read_only / 'new'}: cannot create the folder (permission denied)")):
        code, lines, err = run(capsys, *inputs, "-o", output, "--checkpoint", checkpoint)
        assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
        assert problem in lines[0]


def test_the_yaml_records_the_model_that_ran(clip, checkpoint, tmp_path, capsys):
    """The config saved beside the output has the checkpoint's architecture (4 features, 1 residual block,
    a global residual), not the config's defaults (32, 3, none: what it recorded before)."""
    output = tmp_path / "out.mp4"
    code, lines, err = run(capsys, clip, "-o", output, "--checkpoint", checkpoint)
    assert code == 0, err
    recorded = yaml.safe_load(output.with_name("out.mp4.yaml").read_text())["model"]
    assert (recorded["features"], recorded["resblocks"], recorded["residual"]) == (4, 1, True)
