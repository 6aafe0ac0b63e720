"""The error users see when a video cannot be read or written."""

import errno
from os import PathLike


class VideoError(ValueError):
    """A video that cannot be read or written; the message is one line, ``"{path}: {problem}"``.

    Scripts print ``str(error)`` and exit non-zero instead of showing a traceback.
    """

    def __init__(self, path: str | PathLike, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


class DaliDecodeError(VideoError):
    """DALI failed on a video it was expected to decode (NVDEC or its CPU decoder); PyAV may still read it."""


# what a full disk, a full quota and a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) raise
FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large for its disk or limit"}


def os_problem(error: BaseException) -> str:
    """A short description of an OS or FFmpeg error: "no space left on device", "permission denied", ..."""
    code = getattr(error, "errno", None)
    if code in FULL:
        return FULL[code]
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def cannot_write(path: str | PathLike, error: BaseException) -> VideoError:
    """The error for an output (or its work folder) at ``path`` that ``error`` stopped: one line that says
    what to do when the disk is full (the finished segments stay for ``--resume``)."""
    problem = f"cannot write it ({os_problem(error)})"
    if getattr(error, "errno", None) in FULL:
        problem += "; free some space and rerun with --resume, which keeps the finished segments"
    return VideoError(path, problem)
