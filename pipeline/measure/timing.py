"""Measuring where time goes: named sections, interleaved repeats, spreads, peak memory, CPU use.

`Sections` attributes wall time to names. Sections nest per thread and each reports its *exclusive*
time (its own minus the sections inside it), so the names partition the time of the threads they run
in. A section marked ``sync`` first waits for the current CUDA stream, at entry and exit, so that
asynchronous GPU work is charged to the section that queued it (the breakdown costs a little overlap;
throughput is measured separately, without sections).

The code marks its stages with named ranges (`model.ranges`); the profiler listens to them with
``Sections.section``. `time_interleaved` times configurations in turns, so background load hits all alike.
"""
import contextlib
import os
import resource
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import torch


class Sections:
    """Exclusive wall time per section name, from any number of threads.

    Args:
        device: the compute device; on CUDA, ``sync`` sections synchronise its current stream.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock, self._local = threading.Lock(), threading.local()

    @contextlib.contextmanager
    def section(self, name: str, *, sync: bool = False) -> Iterator[None]:
        stack = self._local.__dict__.setdefault("stack", [])
        self._sync(sync)
        stack.append(0.0)  # time spent in sections nested inside this one
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync(sync)
            total = time.perf_counter() - start
            inner = stack.pop()
            if stack:
                stack[-1] += total
            with self._lock:
                self.seconds[name] += total - inner
                self.calls[name] += 1

    def per_item(self, items: int) -> dict[str, float]:
        """Milliseconds per item (frame, sample) of every section."""
        return {name: 1000 * seconds / items for name, seconds in self.seconds.items()}

    def _sync(self, sync: bool) -> None:
        if sync and self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int,
                     device: torch.device) -> dict[str, list[tuple[float, float]]]:
    """(wall seconds, CPU seconds) of each function, ``repeats`` times after one warm-up, taking turns."""
    runs = {name: [] for name in fns}
    for round_ in range(repeats + 1):
        for name, fn in fns.items():
            synchronize(device)
            wall, cpu = time.perf_counter(), cpu_seconds()
            fn()
            synchronize(device)
            if round_:
                runs[name].append((time.perf_counter() - wall, cpu_seconds() - cpu))
    return runs


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int,
                        device: torch.device) -> dict[str, float]:
    """Median wall seconds of each function, timed in turns by `time_interleaved`."""
    return {name: statistics.median(wall for wall, _ in runs)
            for name, runs in time_interleaved(fns, repeats, device).items()}


def paired_ratio(first: list[tuple[float, float]], second: list[tuple[float, float]]) -> float:
    """Median over repetitions of first / second wall time (the two ran in the same repetition)."""
    return statistics.median(a[0] / b[0] for a, b in zip(first, second))


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (nothing to do on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak host RSS and peak GPU memory allocated by PyTorch, from ``reset()`` to ``read()``.

    The host peak is the kernel's high-water mark (``VmHWM``), reset through ``/proc/self/clear_refs``
    where Linux allows it; elsewhere it is the process's lifetime peak (``reset_ok`` says which).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset_ok = False

    def reset(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset_ok = True
        except OSError:
            self.reset_ok = False
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> dict[str, float | None]:
        return {"host_mb": _host_peak_mb(),
                "gpu_mb": (torch.cuda.max_memory_allocated(self.device) / 2**20
                           if self.device.type == "cuda" else None)}


def _host_peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its child processes (e.g. DataLoader workers): the
    live ones from /proc, the ended and reaped ones from ``getrusage``, so the count never goes down."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks, me = os.sysconf("SC_CLK_TCK"), os.getpid()
    total = time.process_time() + reaped.ru_utime + reaped.ru_stime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == me:  # after the name: state, ppid, ...; utime and stime are fields 11 and 12
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def busy_share(intervals: list[tuple[float, float]], wall: float) -> float:
    """Share of ``wall`` seconds covered by the union of (start, end) intervals in seconds."""
    covered, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            covered += stop - max(start, end)
            end = stop
    return covered / wall if wall > 0 else 0.0


def gpu_busy_share(fn, device: torch.device, trace: Path | None = None) -> float | None:
    """Run ``fn()`` under ``torch.profiler`` and return the share of its wall time during which the GPU
    ran at least one kernel or copy (the union of their intervals); None on a CPU. ``trace`` saves the
    Chrome trace of the run."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    synchronize(device)
    with torch.profiler.profile(activities=activities) as profiler:
        start = time.perf_counter()
        fn()
        synchronize(device)
        wall = time.perf_counter() - start
    if trace is not None:
        profiler.export_chrome_trace(str(trace))
    if device.type != "cuda":
        return None
    intervals = [(event.time_range.start / 1e6, event.time_range.end / 1e6) for event in profiler.events()
                 if event.device_type == torch.autograd.DeviceType.CUDA]
    return busy_share(intervals, wall)
