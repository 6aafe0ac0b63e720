"""What `deblur` shows of a job that one or many workers share: a live view, log lines, one summary.

* `LiveView`: rank 0's progress bars on a terminal, one per video, from what every worker reports in the
  work folders (`WorkFolder.report`), polled by a thread: the other workers print nothing on a terminal.
* `part_line`: off a terminal (logs, batch schedulers), each worker prints one line per part instead.
* `summary_tables`: rank 0's table of the videos and, with several workers, of the workers (busy time, and
  the balance: the busiest worker's busy time over the idlest's), from the job's summary (`Job.summary`).
"""
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pipeline.stream.parts import Part
from pipeline.stream.workers import JobInput, PartResult

POLL_S = 0.5  # how often the live view reads the workers' reports


class LiveView:
    """Progress bars of ``videos`` (those the job holds: with an output) while ``parts`` are worked on."""

    def __init__(self, console: Console, videos: list[JobInput], parts: list[Part]) -> None:
        self.videos = videos
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[workers]}"), TimeRemainingColumn(), console=console)
        self.tasks, self.planned = {}, {}  # per video: its bar, and the frames this launch restores
        for index, video in enumerate(videos):
            if video.output is not None:
                total = video.output.info.num_frames
                self.tasks[index] = self.progress.add_task(video.source.name, total=total, workers="")
                self.planned[index] = sum(part.frames(total) for part in parts if part.video == index)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="live-view", daemon=True)

    def __enter__(self) -> "LiveView":
        self.progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._refresh()
        self.progress.stop()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            self._refresh()

    def _refresh(self) -> None:
        for index, task in self.tasks.items():
            output = self.videos[index].output
            total, planned = output.info.num_frames, self.planned[index]
            if not output.work.active:  # joined (or not started by this launch)
                self.progress.update(task, completed=total if output.path.exists() else total - planned,
                                     workers="")
                continue
            reports = output.work.reports()
            workers = sorted({report.worker for report in reports})
            self.progress.update(task, completed=total - planned + sum(r.frames for r in reports),
                                 workers=" ".join(f"r{worker}" for worker in workers))


def part_line(videos: list[JobInput], result: PartResult) -> str:
    """One log line for a finished part or join."""
    name = videos[result.video].source.name
    if result.start is None:
        what = f"{name}: joined" if result.error is None else f"{name}: join failed"
        return f"rank {result.worker} · {what} in {result.seconds:.1f} s"
    fps = result.frames / result.seconds if result.seconds else 0.0
    status = "" if result.error is None else " [red]failed[/]"
    return (f"rank {result.worker} · {name} from frame {result.start}: {result.frames} frames in "
            f"{result.seconds:.1f} s ({fps:.2f} fps, {result.reader}){status}")


def summary_tables(summary: dict) -> list[Table]:
    """The videos' table and, with several workers, the workers', of a `Job.summary`."""
    workers = summary["workers"]
    title = f"deblurred with {summary['weights']}" + (f" by {workers} workers" if workers > 1 else "")
    videos = Table(title=title)
    for column in ("input", "frames", "parts", "seconds", "fps", "reader", "output"):
        numeric = column in ("frames", "parts", "seconds", "fps")
        videos.add_column(column, justify="right" if numeric else "left")
    for row in summary["videos"]:
        output = row["output"] if row["error"] is None else f"[red]failed: {row['error']}[/]"
        bits = row["bits"]
        if row["error"] is None and bits and bits["input"] > bits["output"]:
            output += f" [yellow]({bits['input']}-bit input written at {bits['output']} bits)[/]"
        if row["error"] is None and row["chroma"] and row["chroma"]["loss"]:
            output += f" [yellow]({row['chroma']['loss']})[/]"
        fps = f"{row['fps']:.2f}" if row["fps"] else "-"
        videos.add_row(Path(row["input"]).name, str(row["frames"]), str(row["parts"]),
                       f"{row['seconds']:.1f}", fps, row["reader"], output)
    if workers == 1:
        return [videos]
    balance = summary["balance"]
    ranks = Table(title="workers" + (f": busiest / idlest {balance:.2f}" if balance else ""))
    for column in ("rank", "parts", "frames", "busy s"):
        ranks.add_column(column, justify="right")
    for row in summary["ranks"]:
        ranks.add_row(str(row["rank"]), str(row["parts"]), str(row["frames"]), f"{row['busy_seconds']:.1f}")
    return [videos, ranks]
