"""OutputLock: one launch per output, the owner named to the other, nothing left behind."""
import errno
import json
import os
import socket

import pytest

from pipeline.errors import VideoError
from pipeline.video import lock as lock_module
from pipeline.video.lock import OutputLock


def test_a_second_lock_on_one_output_is_refused_naming_the_first(tmp_path):
    """Two holders (two open files, as two processes have) of one output: the second is refused with the
    first's pid and host; once the first releases, the file is gone and the lock can be taken again."""
    output = tmp_path / "out.mp4"
    first, second = OutputLock(output), OutputLock(output)
    first.acquire()
    record = json.loads(first.path.read_text())
    assert (record["pid"], record["host"]) == (os.getpid(), socket.gethostname())
    with pytest.raises(VideoError, match=rf"out\.mp4: is being written by another launch \(pid {os.getpid()} "
                                         rf"on {socket.gethostname()}, since "):
        second.acquire()
    first.release()
    assert not first.path.exists()
    second.acquire()
    assert second.held and first.path.exists()
    second.release()


def test_a_filesystem_without_locks_is_written_with_a_warning(tmp_path, monkeypatch, caplog):
    """Where ``flock`` is not supported (some network filesystems) the output is written unlocked, and the
    log says that two launches would not be detected."""
    def unsupported(file, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module.fcntl, "flock", unsupported)
    lock = OutputLock(tmp_path / "out.mp4")
    lock.acquire()
    assert not lock.held and "not locked (No locks available)" in caplog.text
    assert list(tmp_path.iterdir()) == []
