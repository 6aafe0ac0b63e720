"""The streaming engine: every output frame of a video, each stage result computed once.

The official inference runs the whole (2T+1)-frame cascade for every output frame (8 PWC-Net and 4
restoration calls at T=2). Over the padded virtual sequence P (see `windows.py`) the stage-1 result at
position p is the same for all three windows that contain it, and a frame's PWC-Net pyramid is the same
for every flow pair it is in. The engine therefore runs the stages as a pipeline over P: stage t turns
the stream of stage t-1 results into its own, keeping only the few positions (and their pyramids) that
its next call reads. Per output frame that is T restorations and 2T flow decodes instead of T**2 and
2T**2 (4 and 8 at T=2): half the work at T=2, and the naive windows' output up to fp32 rounding.

Calls are batched by absolute position (`_Cascade`): at every level (the frames' pyramids, then each
stage) one call computes the group of B positions gB .. gB+B-1 (frame numbers; the border's are -T .. -1
and n .. n+T-1), once every input of the whole group has come, and only the groups cut by the video's
true ends are smaller. Every call therefore has the same inputs and shape wherever the stream starts or
is chunked: kernels whose rounding depends on the batch (5e-7 between batch sizes at 2 CPU threads,
enough to move a uint8 level) cannot make a time shard or a resumed run differ from a whole run at the
same thread count. The price is context: a run that starts or stops inside the video restores whole
groups only (`windows.first_restored`, `windows.frames_needed`).

Memory is bounded by the chunk and group sizes, not by the video length.
"""
from collections import deque
from collections.abc import Iterable, Iterator

import torch

from model import CDVDTSP, crop_to, pad_to_multiple
from model.cascade import SIZE_MULTIPLE
from model.ranges import timed
from pipeline.stream.windows import padded_indices, windows
from pipeline.video.frames import take

GROUP = 2  # positions per model call: the default of ``deblur.group`` (`pipeline.config` says why 2)


def virtual_chunks(
    chunks: Iterable[torch.Tensor], radius: int, border: str, first_frame: int = 0, ends_video: bool = True
) -> Iterator[torch.Tensor]:
    """Stream the padded virtual sequence: the border frames around the source frames, chunk by chunk.

    The leading border needs only the first ``radius + 1`` frames and the trailing border only the last
    ``radius + 1`` (true for every policy in `windows.py`), so the video length is learnt at its end.

    Args:
        chunks: (F, C, H, W) tensors, the video in order from ``first_frame``.
        first_frame: index of the first frame of ``chunks``; above 0 (resuming, or a part of the video)
            there is no leading border: the stream starts with real context frames.
        ends_video: whether ``chunks`` run to the video's end; if not (a part of the video) there is no
            trailing border: the stream ends with real context frames.

    Yields:
        (F', C, H, W) tensors: the ``m`` frames of ``chunks`` plus ``radius`` border frames for each border
        (``m + 2 * radius`` frames for a whole video).
    """
    chunks = iter(chunks)
    head, count = [], first_frame
    for chunk in chunks:
        head.append(chunk)
        count += len(chunk)
        if count > radius:
            break
    if count == first_frame:
        raise ValueError("the video has no frames" if first_frame == 0
                         else f"the video ends before frame {first_frame}")
    frames = torch.cat(head)
    if not ends_video:
        yield frames if first_frame else torch.cat(
            (take(frames, padded_indices(count, radius, border)[:radius]), frames))
        for chunk in chunks:
            yield chunk
        return
    if first_frame:
        yield frames
    elif count <= radius:  # the whole video is shorter than one border: index it at once
        yield take(frames, padded_indices(count, radius, border))
        return
    else:
        yield torch.cat((take(frames, padded_indices(count, radius, border)[:radius]), frames))
    tail = frames[-(radius + 1):]
    for chunk in chunks:
        if len(chunk):
            yield chunk
            tail = torch.cat((tail, chunk))[-(radius + 1):]
            count += len(chunk)
    offset = count - len(tail)
    yield take(tail, [i - offset for i in padded_indices(count, radius, border)[-radius:]])


class _Run:
    """Consecutive positions of one level of the cascade: frames and their pyramids, kept as the calls that
    made them returned them (each its own tensor), oldest first."""

    def __init__(self) -> None:
        self.pieces: deque[tuple[int, torch.Tensor, list[torch.Tensor]]] = deque()  # at, frames, pyramids

    @property
    def start(self) -> int | None:
        return self.pieces[0][0] if self.pieces else None

    @property
    def stop(self) -> int | None:
        return self.pieces[-1][0] + len(self.pieces[-1][1]) if self.pieces else None

    def add(self, position: int, frames: torch.Tensor, pyramids: list[torch.Tensor]) -> None:
        """(b, 3, H, W) frames at positions ``position`` .. ``position + b - 1``; pyramid level l as
        (b, C_l, h_l, w_l)."""
        assert not self.pieces or position == self.stop, (position, self.stop)
        self.pieces.append((position, frames, pyramids))

    def take(self, first: int, stop: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Positions [first, stop) as one new (stop - first, 3, H, W) tensor and pyramids."""
        cut = [(max(first - at, 0), stop - at, frames, pyramids) for at, frames, pyramids in self.pieces
               if at < stop and at + len(frames) > first]
        frames = torch.cat([frames[a:b] for a, b, frames, _ in cut])
        levels = range(len(cut[0][3]))
        return frames, [torch.cat([pyramids[level][a:b] for a, b, _, pyramids in cut]) for level in levels]

    def drop_before(self, position: int) -> None:
        """Forget the pieces that end before ``position``."""
        while self.pieces and self.pieces[0][0] + len(self.pieces[0][1]) <= position:
            self.pieces.popleft()


class _Cascade:
    """Every level of the cascade over absolute positions, computed in groups of ``group`` positions.

    Step 0 gives the input frames their PWC-Net pyramids, step t (1..T) runs stage t; step t computes group
    g (positions gB .. gB+B-1, cut only by the video's true ends) in one call, once the level below holds
    every position it reads (one more each side for a stage), so that each call has the same inputs and
    shape wherever the stream started or was chunked.

    Args:
        start: the absolute position of the first input frame.
        at_video_start: whether that is the video's first border position (else the groups cut by the
            stream's start are not computed: they would lack frames).
    """

    def __init__(self, model: CDVDTSP, group: int, start: int, at_video_start: bool) -> None:
        self.model, self.group, self.stages = model, group, model.config.stages
        self.input = _Run()  # the frames as they come: (k, 3, H, W) pieces
        self.levels = [_Run() for _ in range(self.stages)]  # step t's results for t < T, with pyramids
        self.next: list[int | None] = [None] * (self.stages + 1)  # the next group of each step
        self.position = start
        self.low = start if at_video_start else None  # the video's first position, when the stream has it
        self.high: int | None = None  # one past its last position, once the stream has ended there

    def push(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """(k, 3, H, W) more input frames -> the (b, 3, H, W) groups of restored frames now computable."""
        self.input.add(self.position, frames, [])
        self.position += len(frames)
        return self._advance()

    def finish(self) -> list[torch.Tensor]:
        """The stream ended at the video's end: the groups cut by it."""
        self.high = self.position
        return self._advance()

    def _span(self, step: int, group: int) -> tuple[int, int]:
        """Positions [a, b) of ``group`` at ``step``: the whole group, cut by the video's known ends."""
        a, b = group * self.group, (group + 1) * self.group
        if self.low is not None:
            a = max(a, self.low + step)
        if self.high is not None:
            b = min(b, self.high - step)
        return a, b

    def _advance(self) -> list[torch.Tensor]:
        restored = []
        for step in range(self.stages + 1):
            source, reach = (self.levels[step - 1], 1) if step else (self.input, 0)
            while source.start is not None:
                if self.next[step] is None:  # the first group: the video's first, or the first whole one
                    self.next[step] = ((self.low + step) // self.group if self.low is not None
                                       else -(-(source.start + reach) // self.group))
                a, b = self._span(step, self.next[step])
                if a >= b or b + reach > source.stop:
                    break
                frames, pyramids = source.take(a - reach, b + reach)
                source.drop_before(b - reach)  # the next group reads from b - reach
                if step:
                    frames = self.model.stage(frames[None], [p[None] for p in pyramids])[0]  # (b-a, 3, H, W)
                if step < self.stages:
                    self.levels[step].add(a, frames, self.model.pyramids(frames))
                else:
                    restored.append(frames)
                self.next[step] += 1
        return restored


class StreamingEngine:
    """Deblur a whole video as a stream of chunks.

    Args:
        model: the cascade (its ``config.stages`` sets the border radius).
        border: border policy, one of `windows.BORDERS`.
        group: positions per model call (`_Cascade`); a run's bits depend on it, not on the chunking.
    """

    def __init__(self, model: CDVDTSP, *, border: str = "reflect", group: int = GROUP) -> None:
        padded_indices(1, 1, border)  # validates the name
        if group < 1:
            raise ValueError(f"group must be >= 1, got {group}")
        self.model, self.border, self.group = model, border, group

    @torch.inference_mode()
    def run(self, chunks: Iterable[torch.Tensor], first_frame: int = 0,
            ends_video: bool = True) -> Iterator[torch.Tensor]:
        """Restore every frame that has its context in ``chunks``.

        Args:
            chunks: (F, 3, H, W) float frames in [0, 1], in order, any F >= 1 and any H, W.
            first_frame: index of the first frame in ``chunks``; above 0 (a part of the video, or a resume)
                the output starts at `windows.first_restored` (feed from `windows.frames_needed` to restore
                from a given frame); the frames before it are context only.
            ends_video: False when ``chunks`` stop before the video's end (at frame e, exclusive): the output
                stops at the last whole group that has T whole groups after it (`windows.frames_needed`).

        Yields:
            (F', 3, H, W) restored frames in order, each a tensor of its own: frames 0 (or
            `windows.first_restored`) to n - 1 (or to the end said above).
        """
        radius = self.model.config.stages
        cascade = _Cascade(self.model, self.group, first_frame or -radius, at_video_start=not first_frame)
        size = None
        for chunk in virtual_chunks(chunks, radius, self.border, first_frame, ends_video):
            with timed("engine other"):
                size = size or tuple(chunk.shape[-2:])
                if tuple(chunk.shape[-2:]) != size:
                    raise ValueError(f"frame size changed from {size} to {tuple(chunk.shape[-2:])} mid-video")
                groups = cascade.push(pad_to_multiple(chunk, SIZE_MULTIPLE))
                restored = crop_to(torch.cat(groups), size) if groups else None
            if restored is not None:
                yield restored
        if ends_video:
            with timed("engine other"):
                groups = cascade.finish()
                restored = crop_to(torch.cat(groups), size) if groups else None
            if restored is not None:
                yield restored


@torch.inference_mode()
def naive_windows(model: CDVDTSP, frames: torch.Tensor, *, border: str = "reflect",
                  batch: int = 8) -> torch.Tensor:
    """The official schedule: the whole cascade once per output frame on its own window.

    Args:
        frames: (n, 3, H, W) the whole video.

    Returns:
        (n, 3, H, W) restored frames.
    """
    size = frames.shape[-2:]
    padded = pad_to_multiple(frames, SIZE_MULTIPLE)
    index = windows(len(frames), model.config.stages, border)
    outputs = [model(torch.stack([take(padded, window) for window in index[s:s + batch]]))
               for s in range(0, len(index), batch)]
    return crop_to(torch.cat(outputs), size)
