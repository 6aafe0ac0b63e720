"""The hidden work folder beside an output, ``.{name}.partial/``: what makes the writer resumable, atomic and
shareable by several workers.

It holds the finished segments (or PNG frames) and, under ``.state/``:

* ``settings.json``: the settings the segments are made with (the `ResumeKey`); a resume keeps the
  segments only when it matches;
* ``done/{segment:06d}.json``: one file per finished segment, written once the segment is durable: its
  frame count and the reader that decoded it;
* ``end.json``: the frame count, written by the worker that decoded the video's last frame;
* ``reader``: the reader every segment must come from, once one failed over to PyAV;
* ``claims/``: this launch's claims (`WorkFolder.claim`): files created with ``O_EXCL``, so that among
  workers sharing the folder (also across nodes, on a shared filesystem) exactly one wins each; beside
  them what the launch's workers have done (``*.done``, ``*.progress``, ``failed``).

The segments are numbered by their first frame (segment k holds frames ``[k * S, (k + 1) * S)``), so any
split of a video into parts that start on segment boundaries writes the segments one run would. The output
appears by one rename at the end; a failed run leaves only this folder.
"""

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import VideoError, cannot_write, os_problem
from pipeline.video.segments import Segments

log = logging.getLogger(__name__)

STATE = ".state"
OUTPUT_NAME = "output"  # the joined video in the work folder, before its rename into place


@dataclass(frozen=True)
class ResumeKey:
    """Everything an output's segments depend on (``settings.json``): a resume keeps them, and workers join
    theirs, only when the keys are equal.

    Attributes:
        source, source_bytes, num_frames: the input.
        format, codec, crf, options, compare, bits, pix_fmt, segment_frames: how the writer encodes
            (`writer.Output`).
        settings: the job's part: the model, the engine options that move bits, the weights
            (`pipeline.stream.job.resume_settings`); JSON-serialisable (other values compare by ``str``).
    """

    source: str
    source_bytes: int
    num_frames: int
    format: str
    codec: str
    crf: int
    options: dict
    compare: bool
    bits: int
    pix_fmt: str | None
    segment_frames: int
    settings: dict

    def as_json(self) -> dict:
        """The key as it reads back from ``settings.json``."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass(frozen=True)
class Done:
    """A finished segment's record, ``done/{segment:06d}.json``: its frames, and the reader that decoded
    them."""

    frames: int
    reader: str


@dataclass(frozen=True)
class Progress:
    """A worker's report on the part it claimed, ``claims/{name}.progress``: frames written so far."""

    worker: int
    frames: int


class WorkFolder:
    """``.{output.name}.partial/`` next to ``output``, for ``segments`` made with ``key`` (None: the folder
    is only read, e.g. for its finished segments)."""

    def __init__(self, output: Path, segments: Segments, key: ResumeKey | None = None) -> None:
        self.output, self.segments = output, segments
        self.path = output.parent / f".{output.name}.partial"
        self.state = self.path / STATE
        self.key = None if key is None else key.as_json()

    def make_folder(self, inputs: Sequence[Path]) -> None:
        """Make the output's folder, checking first that the output is none of ``inputs`` (however the
        paths are spelt: relative, through a symlink, a hard link), which is refused whatever the flags, as
        FFmpeg refuses it.

        Raises:
            VideoError: the output is an input, or its folder cannot be made or written.
        """
        output = self.output
        for source in inputs if output.exists() else ():
            if _same_file(output, source):
                raise VideoError(output, f"is the input {source} itself (the same file); write the output "
                                         "elsewhere, or the original would be lost")
        make_folder(output.parent)
        if not os.access(output.parent, os.W_OK | os.X_OK):
            raise VideoError(output.parent, "folder is not writable")

    def check_output(self, overwrite: bool, folder: bool) -> None:
        """Raise VideoError unless the output (a ``folder`` or a file) may be written where it goes: it
        does not exist, or ``overwrite`` and of the same kind."""
        output = self.output
        if output.exists() and not overwrite:
            raise VideoError(output, "already exists (use --overwrite to replace it)")
        if output.exists() and output.is_dir() != folder:
            raise VideoError(output, "is a file, not a folder" if folder else "is a folder")

    def prepare(self, resume: bool) -> None:
        """Keep the finished segments (``resume`` and the same settings) or start an empty folder; either
        way without claims. Called once per launch, before any worker writes.

        Raises:
            VideoError: ``resume`` with segments made with other settings, or the folder cannot be written.
        """
        try:
            if resume and self._settings() is not None:
                if self._settings() != self.key:
                    raise VideoError(
                        self.path, "was made with other settings or another source; delete it to start over"
                    )
                shutil.rmtree(self.state / "claims", ignore_errors=True)
                log.info("resuming %s: %d segments finished", self.output, len(self.finished()))
            else:
                if self.path.exists():
                    log.info("%s: discarding unfinished work in %s", self.output, self.path)
                shutil.rmtree(self.path, ignore_errors=True)
                (self.state / "done").mkdir(parents=True)
                _write_json(self.state / "settings.json", self.key)
            (self.state / "claims").mkdir(exist_ok=True)
        except OSError as error:
            raise cannot_write(self.path, error) from error

    def check(self) -> None:
        """Raise VideoError unless the folder is prepared for these settings (a worker's check)."""
        if self.key is None or self._settings() != self.key:
            raise VideoError(self.path, "was prepared for other settings, or not at all")

    def finished(self) -> dict[int, Done]:
        """Segment number -> its record, for every finished segment."""
        records = {}
        for record in sorted((self.state / "done").glob("*.json")):
            content = _read_json(record)
            if content is not None:
                records[int(record.stem)] = Done(**content)
        return records

    def seal(self, segment: int, frames: int, reader: str) -> None:
        """Record segment ``segment`` (``frames`` frames, decoded by ``reader``) as finished, atomically."""
        _write_json(self.state / "done" / f"{segment:06d}.json", asdict(Done(frames, reader)))

    def mark_end(self, frames: int) -> None:
        """Record that the video ends after ``frames`` frames (its last segment is finished)."""
        _write_json(self.state / "end.json", {"frames": frames})

    def end(self) -> int | None:
        """The video's frame count once its last segment is finished, else None."""
        content = _read_json(self.state / "end.json")
        return None if content is None else int(content["frames"])

    def required_reader(self) -> str | None:
        """The reader every segment must come from (set after a decoder failed over), or None."""
        path = self.state / "reader"
        return path.read_text() if path.exists() else None

    def require_reader(self, reader: str) -> None:
        (self.state / "reader").write_text(reader)

    def missing(self, num_frames: int) -> list[int]:
        """The segments still to make, in order, for a video of ``num_frames`` frames (as probed).

        Until the end is recorded the last segment is among them, so that some part decodes to the end
        (where a stream holds more frames than its container said, the part goes on past them).
        """
        done, reader = self.finished(), self.required_reader()
        total = self.end() or num_frames
        count = self.segments.count(total)
        missing = [k for k in range(count)
                   if k not in done or (reader is not None and done[k].reader != reader)]
        if self.end() is None and count - 1 not in missing:
            missing.append(count - 1)
        return missing

    def done_frames(self) -> int:
        """Frames in the finished segments."""
        return sum(record.frames for record in self.finished().values())

    def claim(self, name: str) -> bool:
        """Create this launch's claim ``name`` unless it exists; True for the one caller that created it.
        False as well once the output is joined (the folder is gone: nothing is left to claim)."""
        try:
            os.close(os.open(self.state / "claims" / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except (FileExistsError, FileNotFoundError):
            return False
        return True

    def mark_done(self, name: str) -> None:
        """Record that the work claimed as ``name`` is finished."""
        (self.state / "claims" / f"{name}.done").touch()

    def is_done(self, name: str) -> bool:
        return (self.state / "claims" / f"{name}.done").exists()

    def report(self, name: str, worker: int, frames: int) -> None:
        """Record that ``worker`` has written ``frames`` frames of the work claimed as ``name``: progress for
        the live view, skipped when it cannot be written (a full disk stops the segments soon enough)."""
        try:
            _write_json(self.state / "claims" / f"{name}.progress", asdict(Progress(worker, frames)))
        except OSError as error:
            log.debug("%s: progress not recorded (%s)", self.path, error)

    def reports(self) -> list[Progress]:
        """Every `report` of this launch (none once joined)."""
        reports = map(_read_json, sorted((self.state / "claims").glob("*.progress")))
        return [Progress(**report) for report in reports if report]

    @property
    def active(self) -> bool:
        """Whether the folder is prepared and not yet joined into the output."""
        return self.state.is_dir()

    def fail(self, message: str) -> None:
        """Record that a worker gave up on this video (the others skip its remaining parts), where that can
        be written: on a full disk, or with the folder gone, the others find out by themselves."""
        try:
            (self.state / "claims" / "failed").write_text(message)
        except OSError as error:
            log.debug("%s: failure not recorded (%s)", self.path, error)

    def failure(self) -> str | None:
        path = self.state / "claims" / "failed"
        return path.read_text() if path.exists() else None

    def joined(self) -> Path:
        """Where the joined video is made before it is renamed over the output."""
        return self.path / f"{OUTPUT_NAME}{self.output.suffix}"

    def remove_joined(self) -> None:
        """Delete a partly joined output, so that nothing that looks finished is left."""
        for joined in self.path.glob(f"{OUTPUT_NAME}.*"):
            joined.unlink()

    def become_output(self) -> None:
        """The folder itself is the output (PNG frames): rename it over the output folder."""
        shutil.rmtree(self.state)
        old = self.output.with_name(f".{self.output.name}.old")
        if self.output.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.output, old)
        os.replace(self.path, self.output)
        shutil.rmtree(old, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _settings(self) -> dict | None:
        return _read_json(self.state / "settings.json")


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents where missing.

    Raises:
        VideoError: naming the folder, when it cannot be made: a file in the way (the folder's name, or a
            parent's), no permission, a read-only or full disk.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise VideoError(folder, "cannot create the folder (a file is in the way)") from error
    except OSError as error:
        raise VideoError(folder, f"cannot create the folder ({os_problem(error)})") from error


def _same_file(a: Path, b: Path) -> bool:
    """Whether both paths exist and are one file (the same device and inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _write_json(path: Path, content: object) -> None:
    """Write ``path`` atomically (a reader sees the old file or the new one, never half of one)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(content))
    os.replace(temporary, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
