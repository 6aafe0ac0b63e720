"""The workers of a deblurring job (`pipeline.stream.job`): parts shared out, each output joined once.

    rank 0 (`Job.open`): probe + prepare every output's work folder, plan the parts -> the work list
    every worker: take the next unclaimed part (an O_EXCL claim file in its video's work folder), restore
        it (`deblur_part`), mark it done; whoever finishes a video's last part joins its output

Workers share nothing but the filesystem (a shared one across nodes) and the work list, so one worker or
many (torchrun) run the same code, and a video's output does not depend on how its parts were shared out.
A failed part marks its video failed (the others skip it); a killed worker leaves its finished segments for
``--resume``. The claims of a launch are cleared by the next launch's preparation.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model import CDVDTSP
from pipeline.errors import DaliDecodeError, VideoError, cannot_write
from pipeline.stream.deblur_part import deblur_part
from pipeline.stream.parts import Part, plan
from pipeline.video.writer import Output

if TYPE_CHECKING:  # pipeline.config imports this package's vocabularies (`windows.BORDERS`)
    from pipeline.config import DeblurConfig

log = logging.getLogger(__name__)

JOIN = "join"  # the claim of the worker that joins a video's output


@dataclass
class JobInput:
    """One input of a job: its source and its output, or why it cannot be deblurred."""

    source: Path
    output: Output | None = None
    error: str | None = None


@dataclass(frozen=True)
class PartResult:
    """What one worker did with one part (or, with ``start`` None, with a video's join)."""

    video: int
    start: int | None
    frames: int
    seconds: float
    worker: int
    reader: str = "-"
    error: str | None = None
    ended: float = field(default_factory=time.time)  # wall clock, comparable between workers


@dataclass
class Worker:
    """One process's share of a job: claims parts from ``parts`` in order until none is left.

    Args:
        videos, parts: the job (the same on every worker).
        rank: this worker's number, recorded in its results.
        keep_going: record a failed part and go on (the command); False: raise its error (one video).
        on_frames: called with the number of frames just written.
        on_part: called with each `PartResult` as it is made.
    """

    model: CDVDTSP
    videos: list[JobInput]
    parts: list[Part]
    config: DeblurConfig
    device: torch.device
    rank: int = 0
    keep_going: bool = True
    on_frames: Callable[[int], None] | None = None
    on_part: Callable[[PartResult], None] | None = None
    results: list[PartResult] = field(default_factory=list)

    def run(self) -> list[PartResult]:
        """Do every part nobody else has claimed, and join every output whose parts are all done."""
        for part in self.parts:
            output = self.videos[part.video].output
            if output is None:  # rank 0 opened it, this worker could not (and said why)
                continue
            work, started = output.work, time.perf_counter()
            try:
                if work.failure() is None and work.claim(part.name):
                    self._record(self._run_part(part))
                    work.mark_done(part.name)
                    self._join(part.video)
            except OSError as error:  # the work folder's claims and marks (a full disk, a folder gone)
                problem = cannot_write(output.path, error)
                if not self.keep_going:
                    raise problem from error
                self._record(self._failed(part.video, part.start, 0, started, problem))
        for index, video in enumerate(self.videos):  # outputs with no part left, e.g. a failed join resumed
            if video.output is not None:
                self._join(index)
        return self.results

    def _run_part(self, part: Part) -> PartResult:
        output, started = self.videos[part.video].output, time.perf_counter()
        written = 0

        def count(frames: int) -> None:
            nonlocal written
            written += frames
            output.work.report(part.name, self.rank, written)
            if self.on_frames:
                self.on_frames(frames)

        try:
            reader = self._deblur(output, part, count)
        except (VideoError, ValueError, OSError) as error:
            if not self.keep_going:
                raise
            return self._failed(part.video, part.start, written, started, error)
        return PartResult(part.video, part.start, written, time.perf_counter() - started, self.rank, reader)

    def _deblur(self, output: Output, part: Part, count: Callable[[int], None]) -> str:
        """`deblur_part` with the video's reader; where DALI fails under ``auto``, the part again with PyAV,
        and every other part of the video with PyAV from then on (`_join` redoes those done before)."""
        kind = output.work.required_reader() or self.config.reader
        try:
            return deblur_part(self.model, output, part, self.config, device=self.device, reader=kind,
                               on_frames=count)
        except DaliDecodeError as error:
            if kind != "auto":
                raise
            log.warning("%s; decoding it again with PyAV", error)
            output.work.require_reader("pyav")
            return deblur_part(self.model, output, part, self.config, device=self.device, reader="pyav",
                               on_frames=count)

    def _join(self, index: int) -> None:
        """Join video ``index``'s output if all its parts are done, nothing failed and nobody else has."""
        output = self.videos[index].output
        work = output.work
        mine = [part for part in self.parts if part.video == index]
        if not work.active or work.failure() is not None or not all(work.is_done(p.name) for p in mine):
            return
        if not work.claim(JOIN):
            return
        started = time.perf_counter()
        try:
            # Segments made before a failover to PyAV (or by no part at all) are redone here.
            frames = output.work.end() or output.info.num_frames
            for part in plan([work.missing(frames)], [frames], output.segments, 1):
                self._record(self._run_part(Part(index, part.start, part.stop)))
                if work.failure() is not None:
                    return
            output.join()
        except (VideoError, ValueError, OSError) as error:
            if not self.keep_going:
                raise
            self._record(self._failed(index, None, 0, started, error))
            return
        self._record(PartResult(index, None, 0, time.perf_counter() - started, self.rank))

    def _failed(self, index: int, start: int | None, frames: int, started: float,
                error: BaseException) -> PartResult:
        """The result of video ``index``'s part at ``start`` (None: its join) that ``error`` stopped after
        ``frames`` frames; the video is marked failed, so that the other workers skip it. An input that has
        gone since it was opened is said to have gone, whatever failed on its account (its reader, or the
        join that copies its audio)."""
        source = self.videos[index].source
        message = one_line(source, error) if source.is_file() else (
            f"{source}: was deleted or moved while it was being read; put it back and rerun with --resume")
        self.videos[index].output.work.fail(message)
        return PartResult(index, start, frames, time.perf_counter() - started, self.rank, error=message)

    def _record(self, result: PartResult) -> None:
        self.results.append(result)
        if self.on_part:
            self.on_part(result)


def one_line(source: Path, error: BaseException) -> str:
    """``error`` as one line that names ``source`` once."""
    return str(error) if str(error).startswith(str(source)) else f"{source}: {error}"
