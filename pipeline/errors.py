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


def os_problem(error: BaseException) -> str:
    """A short description of an OS or FFmpeg error: "no space left on device", "permission denied", ..."""
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC:
        return "no space left on device"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
