"""Run an iterator ahead of its consumer in a daemon thread, through a bounded queue."""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.1  # how often a producer blocked on a full queue checks whether the consumer has gone


class _End:
    """End of the stream, carrying the producer's exception if it failed."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(iterable: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield the items of ``iterable``, produced by a daemon thread up to ``depth`` items ahead.

    The thread starts at the first ``next()``. An exception raised by the producer is re-raised in the
    consumer after the items made before it. When the consumer stops early (``break``, an exception,
    ``close()``), the producer stops after its current item and closes the iterator in its own thread,
    so that files or decoders it holds are released before this generator returns.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth}")
    return _prefetched(iterable, depth)


def _prefetched(iterable: Iterable[T], depth: int) -> Iterator[T]:
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Queue ``item`` unless the consumer has gone; True if it was queued."""
        while not stop.is_set():
            try:
                items.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(iterable)
        try:
            for item in source:
                if not offer(item):
                    break
            else:
                offer(_End())
        except BaseException as error:  # forwarded to the consumer, which re-raises it
            offer(_End(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
