"""The writer's background thread: frames from a bounded queue into a sink, segment by segment.

The compute thread blocks only while the queue is full. An error on the thread is kept and raised, as a
`VideoError`, by the compute thread's next `EncoderThread.put` or `EncoderThread.finish`.
"""

import queue
import threading
from collections.abc import Callable

import numpy as np

from pipeline.errors import VideoError, cannot_write
from pipeline.video.prefetch import POLL_S
from pipeline.video.segments import Segments, Sink


class EncoderThread:
    """Feeds ``sink`` from frame ``start`` (a segment's first) on; ``checkpoint(segment, frames)`` after each
    finished segment.

    Items are ``(frames, pts, source, ready)``: (F, H, W, 3) uint8 frames, their pts, the input frames for
    a side-by-side comparison (or None) and an event to ``synchronize()`` first (or None).
    """

    def __init__(self, sink: Sink, *, output, start: int, segments: Segments, queue_depth: int,
                 checkpoint: Callable[[int, int], None]) -> None:
        self.sink, self.output = sink, output
        self.segments, self.checkpoint = segments, checkpoint
        self._written = start
        self._queue: queue.Queue = queue.Queue(maxsize=queue_depth)
        self._stop, self._error = threading.Event(), None
        self._thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self._thread.start()

    def put(self, item: tuple | None) -> None:
        """Queue ``item`` (None: the end of the stream); raises the thread's error, if it had one."""
        while True:
            self.raise_error()
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Encode what is queued and seal the last segment; raises the thread's error, if it had one."""
        self.put(None)
        self._thread.join()
        self.raise_error()

    def stop(self) -> None:
        """Stop as soon as possible, dropping the unfinished segment."""
        self._stop.set()
        self._thread.join()

    def raise_error(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, VideoError):
            raise error
        raise cannot_write(self.output, error) from error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if item is None:
                    self.sink.seal()
                    if self._written % self.segments.size:  # a last, shorter segment
                        self.checkpoint(self.segments.of(self._written), self._written % self.segments.size)
                    return
                self._encode(*item)
        except BaseException as error:  # handed to the caller's next put() or finish()
            self._error = error
        finally:
            self.sink.discard()

    def _encode(self, frames: np.ndarray, pts: list[int], source: np.ndarray | None, ready) -> None:
        if ready is not None:
            ready.synchronize()
        if source is not None:
            frames = np.concatenate((source, frames), axis=2)  # (F, H, 2W, 3): input | output
        for image, stamp in zip(frames, pts):
            if self._stop.is_set():
                return
            self.sink.add(self._written, image, stamp)
            self._written += 1
            if self._written % self.segments.size == 0:
                self.sink.seal()
                self.checkpoint(self.segments.of(self._written) - 1, self.segments.size)
