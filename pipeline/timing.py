"""Measuring where time goes: named sections, patched-in instrumentation, spreads, peak memory, CPU use.

`Sections` attributes wall time to names. Sections nest per thread and each reports its *exclusive*
time (its own minus the sections inside it), so the names partition the time of the threads they run
in. A section marked ``sync`` first waits for the current CUDA stream, at entry and exit, so that
asynchronous GPU work is charged to the section that queued it (the breakdown costs a little overlap;
throughput is measured separately, without sections).

`instrument` wraps existing functions, methods and generator functions in sections for the length of a
``with`` block, so the code being profiled carries no timing code of its own.
"""
import contextlib
import functools
import inspect
import os
import resource
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import torch

_INHERITED = object()  # an instrumented attribute that the owner only inherits


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


@contextlib.contextmanager
def instrument(sections: Sections, targets: list[tuple[object, str, str, bool]]) -> Iterator[None]:
    """Wrap ``owner.attribute`` in a section named ``name`` for each ``(owner, attribute, name, sync)``.

    Functions and methods are timed per call; generator functions per item produced (the consumer's time
    between items is not charged). Owners may be classes, modules or instances; everything is restored on
    exit.
    """
    saved = []
    try:
        for owner, attribute, name, sync in targets:
            own = vars(owner).get(attribute, _INHERITED)  # restored as it was: set on the owner, or not
            function = getattr(owner, attribute)
            saved.append((owner, attribute, own))
            setattr(owner, attribute, _timed(sections, function, name, sync))
    except BaseException:
        _restore(saved)
        raise
    try:
        yield
    finally:
        _restore(saved)


def _restore(saved: list) -> None:
    for owner, attribute, own in reversed(saved):
        if own is _INHERITED:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, own)


def _timed(sections: Sections, function, name: str, sync: bool):
    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def timed_generator(*args, **kwargs):
            items = function(*args, **kwargs)
            try:
                while True:
                    with sections.section(name, sync=sync):
                        try:
                            item = next(items)
                        except StopIteration:
                            return
                    yield item
            finally:
                items.close()
        return timed_generator

    @functools.wraps(function)
    def timed(*args, **kwargs):
        with sections.section(name, sync=sync):
            return function(*args, **kwargs)
    return timed


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


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
                "gpu_mb": torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None}


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
