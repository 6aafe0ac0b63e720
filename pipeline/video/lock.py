"""The lock that keeps two launches off one output: ``.{name}.lock`` beside it, held for the run's life.

A job submitted twice, or two nodes started on the same folder, would otherwise share the output's work
folder: each launch prepares it (deleting the other's segments) and both fail, or one joins the other's
half. The launch that prepares an output (rank 0) takes its lock first; a second launch is refused in one
line that names the owner, and nothing of the first one's work is touched.

The lock is an exclusive ``flock`` on the file, which the kernel drops when its owner exits, however it
exits (on NFS the server does, for a client that is gone); the file holds the owner's pid, host and start
time, for the message. A lock file left by a process that died is therefore not held: the next launch takes
it over, saying whose it was. The file is deleted when the run ends.
"""
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from pipeline.errors import VideoError, os_problem

log = logging.getLogger(__name__)


class OutputLock:
    """The lock of the output at ``output``: `acquire` it (once), `release` it when the run ends."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = output.parent / f".{output.name}.lock"
        self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock, or raise VideoError naming the launch that holds it. The output's folder exists.

        Filesystems without locks (some network ones) are written without one, with a warning.
        """
        if self.held:
            return
        while True:
            try:
                file = open(self.path, "a+")  # created if absent, never truncated: the owner's record stays
            except OSError as error:
                raise VideoError(self.output, f"cannot lock it ({os_problem(error)})") from error
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                owner = _owner(file.read())
                file.close()
                raise VideoError(self.output, f"is being written by another launch ({owner}); wait for it to "
                                              "finish, or stop it first") from None
            except OSError as error:
                file.seek(0, os.SEEK_END)
                if not file.tell():  # the empty file just made: not left behind
                    self.path.unlink(missing_ok=True)
                file.close()
                log.warning("%s: not locked (%s): two launches on it would not be detected", self.output,
                            error.strerror)
                return
            if _same_file(file, self.path):  # not a lock file its last owner deleted as we opened it
                break
            file.close()
        file.seek(0)
        previous = file.read()
        if previous.strip():
            log.info("%s: taking over the lock of a launch that is gone (%s)", self.output, _owner(previous))
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
        file.flush()
        self._file = file

    def release(self) -> None:
        """Delete the lock file and drop the lock (deleted first: a launch waiting on it sees it gone)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            file.close()


def _same_file(file, path: Path) -> bool:
    try:
        here, there = os.fstat(file.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _owner(record: str) -> str:
    """"pid 123 on host, since 2025-01-01 10:00:00" from a lock file's content."""
    try:
        owner = json.loads(record)
        return f"pid {owner['pid']} on {owner['host']}, since {owner['started']}"
    except (ValueError, KeyError, TypeError):
        return "starting"
