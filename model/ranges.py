"""Named ranges: where the time goes, marked in the code that spends it, the one seam measuring uses.

``with timed("flow"):`` opens a ``torch.profiler.record_function`` range (profiler traces show it) and,
inside a `listen` block, also tells a listener: a function from the range's name to a context manager,
entered for the range's length (the profiler's ``Sections.section``). Ranges nest and may run on any
thread (decode and encode threads included). `timed_items` puts each step of an iterator in a range, for
generators, whose consumers' time between items must not be charged.

The model marks ``flow`` (PWC-Net), ``warp + TSP`` and ``restoration``; the pipeline marks decoding,
conversions, encoding and the training step's parts (`pipeline.measure.profiling` lists them all).
"""
import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")
Listener = Callable[[str], contextlib.AbstractContextManager]

_listener: Listener | None = None
_END = object()


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    """A range called ``name`` around the ``with`` block."""
    listener = _listener
    with torch.profiler.record_function(name):
        if listener is None:
            yield
        else:
            with listener(name):
                yield


def timed_items(name: str, items: Iterable[T]) -> Iterator[T]:
    """The items of ``items``, each produced inside a range called ``name``."""
    items = iter(items)
    while True:
        with timed(name):
            item = next(items, _END)
        if item is _END:
            return
        yield item


@contextlib.contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Tell ``listener`` of every range opened, on any thread, during the ``with`` block."""
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous
