"""A deblurring job: inputs in, outputs out, on one worker or many (torchrun), as ``cdvd-deblur`` and
`deblur_video` run it.

    with Job(model, config, weights=..., device=..., process=...) as job:  # the model prepared
        problems = job.open(sources, outputs)   # rank 0 opens the outputs and plans the parts; all get them
        results = job.run()                     # this worker's parts; every worker's results
        summary = job.summary(results)          # what happened, as data
                                                # leaving the block releases the outputs' locks

`expand_inputs` and `output_paths` turn a command's arguments into sources and output paths. An output's
resume key is the writer's part (`writer.Output`: the source, the encoder, the segments) and the job's
(`resume_settings`: the model, the engine options that move bits, the weights): segments are resumed, or
joined with other workers' segments, only when both match.
"""
from __future__ import annotations

import glob
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from model import CDVDTSP
from pipeline.distributed import Process, broadcast, gather
from pipeline.errors import VideoError
from pipeline.runtime import prepare_model
from pipeline.stream.parts import Part, plan
from pipeline.stream.workers import JobInput, PartResult, Worker, one_line
from pipeline.video.probe import probe
from pipeline.video.segments import Segments, chroma_of
from pipeline.video.workfolder import make_folder
from pipeline.video.writer import Output

if TYPE_CHECKING:  # pipeline.config imports this package's vocabularies (`windows.BORDERS`)
    from pipeline.config import DeblurConfig

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv",
                  ".wmv"}
ALONE = Process(rank=0, world_size=1, local_rank=0)  # a process that is not part of a torchrun launch


def expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """Files, folders (their videos, sorted) and globs -> video paths, in order, without duplicates."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            found.append(Path(pattern))  # reported as missing later, with the others
        for match in map(Path, matches):
            if match.is_dir():
                found += sorted(p for p in match.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            else:
                found.append(match)
    return list(dict.fromkeys(found))


def output_names(sources: Sequence[Path]) -> list[str]:
    """A distinct output name (no suffix) per input: its stem; its file name where stems repeat
    (``clip.mov``, ``clip.mp4``); its folders from the inputs' common one and its stem where file names
    repeat too (``a__clip``, ``b__clip``)."""
    stems = Counter(source.stem for source in sources)
    names = [source.stem if stems[source.stem] == 1 else source.name for source in sources]
    repeated = Counter(names)
    if any(count > 1 for count in repeated.values()):
        base = Path(os.path.commonpath([source.resolve().parent for source in sources]))
        names = [name if repeated[name] == 1 else "__".join((*source.resolve().parent.relative_to(base).parts,
                                                              source.stem))
                 for name, source in zip(names, sources)]
    return names


def output_paths(sources: Sequence[Path], output: Path, png: bool) -> list[Path]:
    """Where each source's output goes: ``output`` itself for one source when it is named like one (a video
    file's suffix, or none for PNG frames) and is not a folder; else ``output/<name>`` (`output_names`),
    with the folder made for several sources.

    Raises:
        VideoError: the folder for several outputs cannot be made.
    """
    single = len(sources) == 1
    if single and (output.suffix.lower() in VIDEO_SUFFIXES) != png and not output.is_dir():
        return [output]
    if not single:
        make_folder(output)
    return [output / (name if png else f"{name}.mp4") for name in output_names(sources)]


def resume_settings(model: CDVDTSP, config: DeblurConfig, weights: str | None = None) -> dict:
    """The job's part of an output's resume key: what its segments depend on besides the source and the
    encoder (the model, the engine options that move bits, and the ``weights`` when named)."""
    return {"model": asdict(model.config), "border": config.border, "group": config.group,
            "precision": config.precision, "compile": config.compile, "memory_format": config.memory_format,
            **({} if weights is None else {"weights": weights})}


@dataclass(frozen=True)
class DeblurResult:
    """What `deblur_video` did."""

    source: Path
    output: Path
    frames: int  # frames written by this run (fewer than the video's when it resumed)
    seconds: float
    reader: str
    resumed_from: int


class Job:
    """Deblurring videos with one model: the model prepared once, the outputs opened once (rank 0), the
    parts shared by every worker of the launch (``process``), the results gathered.

    Args:
        model: the cascade in eval mode; prepared here (`runtime.prepare_model`: ``device``, the weights'
            layout, compile).
        config: border, chunking, precision, reader, output and compile options.
        weights: what the weights are (a checkpoint's path, ...): in the summary and the resume key.
        process: this worker's place in a torchrun launch (`distributed.init_process`); alone by default.
        keep_going: a failed input or part is recorded and the others go on (the command); False: its error
            is raised (`deblur_video`).
    """

    def __init__(self, model: CDVDTSP, config: DeblurConfig, *, weights: str | None = None,
                 device: torch.device | str = "cpu", process: Process = ALONE,
                 keep_going: bool = True) -> None:
        self.device = torch.device(device)
        self.model = prepare_model(model, config, self.device)
        self.config, self.weights, self.process, self.keep_going = config, weights, process, keep_going
        self.settings = resume_settings(self.model, config, weights)
        self.inputs: list[JobInput] = []  # every source, with its output or why it has none
        self.parts: list[Part] = []  # the work list, the same on every worker

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def open_output(self, source: Path, output: Path, *, prepare: bool, overwrite: bool = False,
                    resume: bool = False, inputs: Sequence[Path] = ()) -> Output:
        """The output of ``source`` at ``output``; ``prepare``: take its lock and make its work folder ready
        (rank 0, once; `release` when the job ends), refusing an output that is ``source`` or one of the
        job's ``inputs``.

        Raises:
            VideoError: unreadable input or unusable output.
        """
        config = self.config
        result = Output(output, probe(source), format=config.format, codec=config.codec, crf=config.crf,
                        compare=config.compare, segment_frames=config.segment, bits=config.bits,
                        settings=self.settings)
        if prepare:
            result.prepare(overwrite=overwrite, resume=resume, inputs=inputs)
        return result

    def open(self, sources: Sequence[Path], outputs: Sequence[Path], *, overwrite: bool = False,
             resume: bool = False) -> list[str]:
        """Open every source's output (rank 0 prepares them and plans the parts, `plan_parts`) and share the
        work list with every worker: afterwards `inputs` and `parts` are the same everywhere.

        Returns:
            The problems this worker reports, one line each: rank 0 every input it cannot open (they are
            not part of the job); another worker those that rank 0 opened and it cannot (it skips them).
        """
        main = self.process.main
        self.inputs = []
        for source, output in zip(sources, outputs):
            try:
                opened = self.open_output(source, output, prepare=main, overwrite=overwrite, resume=resume,
                                          inputs=sources)
                self.inputs.append(JobInput(source, opened))
            except (VideoError, ValueError, OSError) as error:
                if not self.keep_going:
                    raise
                self.inputs.append(JobInput(source, error=one_line(source, error)))
        problems = [video.error for video in self.inputs if video.error] if main else []
        work = ([i for i, v in enumerate(self.inputs) if v.output], self.plan_parts()) \
            if main else None  # the other ranks must not read work folders rank 0 is preparing
        opened, self.parts = broadcast(work)
        for index, video in enumerate(self.inputs):
            if index not in opened:  # rank 0 could not open it: not part of the job
                video.output = None
            elif video.output is None:  # rank 0 could: this worker cannot, and reports why
                problems.append(f"rank {self.process.rank}: {video.error}")
        return problems

    def plan_parts(self) -> list[Part]:
        """The work list: every unfinished segment of every opened output, in parts for the launch's workers
        (`parts.plan`)."""
        outputs = [video.output for video in self.inputs]
        missing = [output.work.missing(output.info.num_frames) if output else [] for output in outputs]
        frames = [(output.work.end() or output.info.num_frames) if output else 0 for output in outputs]
        pixels = [output.info.width * output.info.height if output else 1 for output in outputs]
        return plan(missing, frames, Segments(self.config.segment), self.process.world_size, pixels)

    def run(self, *, on_frames: Callable[[int], None] | None = None,
            on_part: Callable[[PartResult], None] | None = None) -> list[PartResult]:
        """This worker's share of the parts (`workers.Worker`), then every worker's results, on every worker.

        Args:
            on_frames: called with the number of frames this worker just wrote.
            on_part: called with each of this worker's `PartResult` as it is made.
        """
        worker = Worker(self.model, self.inputs, self.parts, self.config, self.device, rank=self.process.rank,
                        keep_going=self.keep_going, on_frames=on_frames, on_part=on_part)
        return [result for results in gather(worker.run()) for result in results]

    def failed(self, results: Sequence[PartResult]) -> bool:
        """Whether an input could not be opened or a part or join failed."""
        return any(result.error for result in results) or any(video.error for video in self.inputs)

    def summary(self, results: Sequence[PartResult]) -> dict:
        """The job's figures: the weights, its wall seconds (first part started to last join finished), per
        video (frames, parts, workers, wall seconds, fps, reader, output or error, bits and chroma in and
        out), per worker (parts, frames, busy seconds), and the balance (busiest / idlest busy time)."""
        by_video, by_worker = defaultdict(list), defaultdict(list)
        for result in results:
            by_video[result.video].append(result)
            by_worker[result.worker].append(result)
        rows = [_video_row(video, by_video[index]) for index, video in enumerate(self.inputs)]
        ranks = [{"rank": rank, "parts": sum(r.start is not None for r in by_worker[rank]),
                  "frames": sum(r.frames for r in by_worker[rank]),
                  "busy_seconds": sum(r.seconds for r in by_worker[rank])}
                 for rank in range(self.process.world_size)]
        busy = [rank["busy_seconds"] for rank in ranks]
        return {"weights": self.weights, "workers": self.process.world_size, "seconds": _wall(results),
                "videos": rows, "ranks": ranks, "balance": max(busy) / min(busy) if min(busy) > 0 else None}

    def release(self) -> None:
        """End this launch's hold on the outputs it opened (their locks), however the job ended."""
        for video in self.inputs:
            if video.output is not None:
                video.output.release()


def _wall(results: Sequence[PartResult]) -> float:
    """Seconds from the first of ``results`` started to the last ended (0 for none)."""
    return max(r.ended for r in results) - min(r.ended - r.seconds for r in results) if results else 0.0


def _video_row(video: JobInput, done: list[PartResult]) -> dict:
    """One video's line of `Job.summary`, from every worker's ``done`` parts and join."""
    parts = [r for r in done if r.start is not None]
    errors = [r.error for r in done if r.error] + ([video.error] if video.error else [])
    joined = any(r.start is None and r.error is None for r in done)
    frames, seconds, output = sum(r.frames for r in parts), _wall(done), video.output
    return {
        "input": str(video.source), "frames": frames, "parts": len(parts),
        "workers": sorted({r.worker for r in parts}), "seconds": seconds,
        "fps": frames / seconds if seconds and frames else None,
        "reader": ", ".join(sorted({r.reader for r in parts if r.error is None})) or "-",
        "output": str(output.path) if joined else None,
        "bits": None if output is None else {"input": output.info.bit_depth, "output": output.bits},
        "chroma": None if output is None or output.pix_fmt is None else {
            "input": output.chroma, "output": chroma_of(output.pix_fmt), "loss": output.chroma_loss},
        "error": errors[0] if errors else (None if joined else "not finished"),
    }


def deblur_video(
    model: CDVDTSP, source: str | Path, output: str | Path, config: DeblurConfig, *,
    device: torch.device | str = "cpu", overwrite: bool = False, resume: bool = False,
    on_frames: Callable[[int], None] | None = None, weights: str | None = None,
) -> DeblurResult:
    """Deblur ``source`` into ``output`` (a video file, or a PNG folder with ``config.format == "png"``) in
    this process: a `Job` of one video.

    Args:
        model: the cascade in eval mode; prepared as the job prepares it (``device``, layout, compile).
        config: border, chunking, precision, reader, output and compile options.
        overwrite: replace an existing output (otherwise it is an error).
        resume: continue an interrupted run's finished segments; the result equals an uninterrupted run.
        on_frames: called with the number of frames just handed to the writer.
        weights: what the weights are (a checkpoint's path): a resume must have the same.

    A file that DALI fails to decode with ``config.reader == "auto"`` is done again with PyAV (a warning
    says so), so one output never mixes two decoders' colour conversions.

    Raises:
        VideoError: unreadable or corrupt input, an unusable output path, or an encoder failure.
    """
    with Job(model, config, weights=weights, device=device, keep_going=False) as job:
        job.open([Path(source)], [Path(output)], overwrite=overwrite, resume=resume)
        started = time.perf_counter()
        done = [result for result in job.run(on_frames=on_frames) if result.start is not None]
    written = job.inputs[0].output
    return DeblurResult(written.info.path, written.path, sum(result.frames for result in done),
                        time.perf_counter() - started, done[-1].reader if done else "none",
                        job.parts[0].start if job.parts else written.info.num_frames)
