"""The streaming engine: every output frame of a video, each stage result computed once.

The official inference runs the whole (2T+1)-frame cascade for every output frame (8 PWC-Net and 4
restoration calls at T=2). Over the padded virtual sequence P (see `windows.py`) the stage-1 result at
position p is the same for all three windows that contain it, and a frame's PWC-Net pyramid is the same
for every flow pair it is in. The engine therefore runs the stages as a pipeline over P: stage t turns
the stream of stage t-1 results into its own, keeping only the last two frames (and their pyramids) of
each stage between chunks. Per output frame that is T restorations and 2T flow decodes instead of
T**2 and 2T**2 (4 and 8 at T=2): half the work at T=2, and the naive windows' output up to fp32 rounding.

Memory is bounded by the chunk size, not by the video length.
"""
from collections.abc import Iterable, Iterator

import torch

from model import CDVDTSP, crop_to, pad_to_multiple
from model.cascade import SIZE_MULTIPLE
from model.ranges import timed
from pipeline.stream.windows import padded_indices, windows
from pipeline.video.frames import take


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


class _StageStream:
    """One cascade stage applied to a stream of frames, restoring each inner position once.

    Every model call takes one frame (PWC-Net features) or one position (a stage on its three frames), so
    each call has the same shape however the stream is chunked or wherever it starts: kernels whose
    rounding depends on the batch (measured here: 5e-7 between chunkings at 2 CPU threads, enough to move a
    uint8 level) cannot make a time shard or a resumed run differ from a whole run.
    """

    def __init__(self, model: CDVDTSP) -> None:
        self.model = model
        self.frames: torch.Tensor | None = None  # (<=2, 3, H, W) carried to the next chunk
        self.pyramids: list[torch.Tensor] = []

    def push(self, frames: torch.Tensor) -> torch.Tensor:
        """(k, 3, H, W) more frames -> (m, 3, H, W) restored frames that became computable (m may be 0)."""
        each = [self.model.pyramids(frame[None]) for frame in frames]  # once per frame, for both pairs
        pyramids = [torch.cat(levels) for levels in zip(*each)]
        if self.frames is not None:
            frames = torch.cat((self.frames, frames))
            pyramids = [torch.cat(pair) for pair in zip(self.pyramids, pyramids)]
        restored = [self.model.stage(frames[None, s:s + 3], [p[None, s:s + 3] for p in pyramids])[0]
                    for s in range(len(frames) - 2)]
        self.frames, self.pyramids = frames[-2:].clone(), [p[-2:].clone() for p in pyramids]
        return torch.cat(restored) if restored else frames[:0]


class StreamingEngine:
    """Deblur a whole video as a stream of chunks.

    Args:
        model: the cascade (its ``config.stages`` sets the border radius).
        border: border policy, one of `windows.BORDERS`.
    """

    def __init__(self, model: CDVDTSP, *, border: str = "reflect") -> None:
        padded_indices(1, 1, border)  # validates the name
        self.model, self.border = model, border

    @torch.inference_mode()
    def run(self, chunks: Iterable[torch.Tensor], first_frame: int = 0,
            ends_video: bool = True) -> Iterator[torch.Tensor]:
        """Restore every frame that has its context in ``chunks``.

        Args:
            chunks: (F, 3, H, W) float frames in [0, 1], in order, any F >= 1 and any H, W.
            first_frame: index of the first frame in ``chunks``. To resume at frame s > T, feed the
                video from ``s - T`` with ``first_frame = s - T``: the T frames before s are context only.
            ends_video: False when ``chunks`` stop before the video's end (frames up to e + T - 1 for a
                part ending at frame e): the last T frames are context only.

        Yields:
            (F', 3, H, W) restored frames in order: frames 0 (or ``first_frame + T``) to n - 1 (or to the
            last frame of ``chunks`` minus T).
        """
        stages = [_StageStream(self.model) for _ in range(self.model.config.stages)]
        size = None
        for chunk in virtual_chunks(chunks, self.model.config.stages, self.border, first_frame, ends_video):
            with timed("engine other"):
                size = size or tuple(chunk.shape[-2:])
                if tuple(chunk.shape[-2:]) != size:
                    raise ValueError(f"frame size changed from {size} to {tuple(chunk.shape[-2:])} mid-video")
                frames = pad_to_multiple(chunk, SIZE_MULTIPLE)
                for stage in stages:
                    frames = stage.push(frames)
            if len(frames):
                yield crop_to(frames, size)


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
