"""The hidden work folder beside an output, ``.{name}.partial/``: what makes the writer resumable and atomic.

It holds the finished segments (or PNG frames) and ``progress.json``: the frames in finished segments and
the settings they were made with (the *fingerprint*). A resume continues after those frames only when the
fingerprint matches. The output appears by one rename at the end; a failed run leaves only this folder.
"""

import json
import logging
import os
import shutil
from pathlib import Path

from pipeline.errors import VideoError, os_problem

log = logging.getLogger(__name__)

PROGRESS = "progress.json"
OUTPUT_NAME = "output"  # the joined video in the work folder, before its rename into place


class WorkFolder:
    """``.{output.name}.partial/`` next to ``output``, for a run with settings ``fingerprint`` (JSON-able)."""

    def __init__(self, output: Path, fingerprint: dict) -> None:
        self.output = output
        self.path = output.parent / f".{output.name}.partial"
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))  # as it reads back from JSON

    def check_output(self, overwrite: bool, folder: bool) -> None:
        """Raise VideoError unless the output (a ``folder`` or a file) may be written where it goes."""
        output = self.output
        if output.exists() and not overwrite:
            raise VideoError(output, "already exists (use --overwrite to replace it)")
        if output.exists() and output.is_dir() != folder:
            raise VideoError(output, "is a file, not a folder" if folder else "is a folder")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VideoError(output.parent, f"cannot create the folder ({os_problem(error)})") from error
        if not os.access(output.parent, os.W_OK | os.X_OK):
            raise VideoError(output.parent, "folder is not writable")

    def start(self, resume: bool) -> tuple[int, bool]:
        """Prepare the folder; returns (first frame to write, whether every frame is written already)."""
        progress = self._progress()
        if resume and progress is not None:
            if progress.get("settings") != self.fingerprint:
                raise VideoError(
                    self.path, "was made with other settings or another source; delete it to start over"
                )
            frames, complete = int(progress["frames"]), bool(progress["complete"])
            log.info("resuming %s at frame %d", self.output, frames)
            return frames, complete
        if self.path.exists():
            log.info("%s: discarding unfinished work in %s", self.output, self.path)
        try:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir()
            self.save(0, complete=False)
        except OSError as error:
            raise VideoError(self.path, f"cannot write ({os_problem(error)})") from error
        return 0, False

    def save(self, frames: int, complete: bool) -> None:
        """Record ``frames`` finished frames, atomically."""
        temporary = self.path / f"{PROGRESS}.tmp"
        temporary.write_text(json.dumps({"settings": self.fingerprint, "frames": frames,
                                         "complete": complete}))
        os.replace(temporary, self.path / PROGRESS)

    def done_frames(self) -> int:
        progress = self._progress()
        return int(progress["frames"]) if progress else 0

    def joined(self) -> Path:
        """Where the joined video is made before it is renamed over the output."""
        return self.path / f"{OUTPUT_NAME}{self.output.suffix}"

    def remove_joined(self) -> None:
        """Delete a partly joined output, so that nothing that looks finished is left."""
        for joined in self.path.glob(f"{OUTPUT_NAME}.*"):
            joined.unlink()

    def become_output(self) -> None:
        """The folder itself is the output (PNG frames): rename it over the output folder."""
        (self.path / PROGRESS).unlink()
        old = self.output.with_name(f".{self.output.name}.old")
        if self.output.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.output, old)
        os.replace(self.path, self.output)
        shutil.rmtree(old, ignore_errors=True)

    def _progress(self) -> dict | None:
        try:
            return json.loads((self.path / PROGRESS).read_text())
        except (OSError, ValueError):
            return None
