"""Readers: a probed video as non-overlapping chunks of upright RGB frames on the compute device.

Every reader yields `Chunk`s of ``chunk`` frames in order (the last one may be shorter), from
``start_frame`` to ``stop_frame`` (None: the end of the stream), and raises `VideoError` when the stream
ends before that frame (the probed frame count when reading to the end).

* `DaliReader`: ``fn.experimental.readers.video`` with ``step = sequence_length`` (no overlap),
  ``device="gpu"`` (NVDEC) or ``"cpu"`` (VP8/VP9/MJPEG only). The tail window is edge-padded
  (``pad_mode='none'`` would drop it) and its padded frames, which repeat the last frame number of
  ``enable_frame_num='sequence'``, are dropped. The video is given as a one-line ``file_list`` with the
  frame range ``[start_frame, stop_frame)``, so DALI itself seeks to the keyframe before ``start_frame``.
  DALI decodes ahead in its own prefetch thread.
* `PyAVReader`: anything FFmpeg decodes, with FFmpeg's frame/slice threads, converted to rgb24 (gray,
  10-bit and alpha formats included; alpha is dropped), or with ``deep`` files deeper than 8 bits to
  rgb48 (uint16 levels), in a `prefetch` thread that runs ahead of the consumer. Starting at a frame
  seeks to the keyframe before it, decodes forward and drops.

Both rotate frames upright by the probed display rotation and convert with the file's colour
(`pipeline.video.colour`: its tags, or BT.709 for untagged HD). DALI converts every file with the BT.601
matrix; its RGB is corrected on the device (exact where DALI did not clip a channel), and on the CPU, where
PyAV is as fast, ``auto`` leaves files of any other colour to PyAV; on a GPU too when the file's range is
not the one DALI converts with (full-range H.264 as limited: it clips most of what a correction needs).
"""

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch

from model.ranges import timed, timed_items
from pipeline.errors import DaliDecodeError, VideoError
from pipeline.video import dali
from pipeline.video.colour import DaliCorrection, to_rgb
from pipeline.video.frames import take
from pipeline.video.prefetch import prefetch
from pipeline.video.probe import VideoInfo

log = logging.getLogger(__name__)

READERS = ("auto", "dali", "pyav")
PREFETCH_CHUNKS = 2  # PyAV decodes this many chunks ahead of the consumer
_REORDER_MARGIN = 32  # packets scanned past a seek target: more than any decoder's frame reordering
DALI_READER = "video"


@dataclass(frozen=True)
class Chunk:
    """Consecutive frames of a video: ``frames[i]`` is frame ``start + i``, shown at ``pts[i]``."""

    start: int
    frames: torch.Tensor  # (F, H, W, 3) uint8 (uint16 when deep) RGB, upright, on the compute device
    pts: list[int]  # (F,) presentation timestamps in the video's time base


class Reader:
    """Base of the readers: numbering, rotation and the frame-count check around a backend's decode."""

    name = ""

    def __init__(
        self, info: VideoInfo, *, device: torch.device, chunk: int, start_frame: int = 0,
        stop_frame: int | None = None, reason: str = "", deep: bool = False
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 frame, got {chunk}")
        stop = info.num_frames if stop_frame is None else stop_frame
        if not 0 <= start_frame <= stop <= info.num_frames:
            raise ValueError(f"frames [{start_frame}, {stop}) are not within [0, {info.num_frames}]")
        self.info, self.device, self.chunk = info, torch.device(device), chunk
        self.start_frame, self.stop_frame, self.reason = start_frame, stop_frame, reason
        self.pixels = torch.uint16 if deep and info.bit_depth > 8 else torch.uint8

    def __iter__(self) -> Iterator[Chunk]:
        info, done = self.info, self.start_frame
        stop = info.num_frames if self.stop_frame is None else self.stop_frame
        if done == stop:
            return
        decoded = self._decode()  # (F, h, w, 3) as stored, F <= chunk
        try:
            for frames, pts in decoded:
                if self.stop_frame is not None and done + len(pts) >= stop:
                    keep = stop - done
                    yield Chunk(done, _upright(frames[:keep], info.rotation), pts[:keep])
                    done = stop
                    break
                yield Chunk(done, _upright(frames, info.rotation), pts)
                done += len(pts)
        finally:
            decoded.close()  # stops a decoder that runs ahead
        if done < stop:
            raise VideoError(info.path, f"truncated or corrupt (decoded {done} of {info.num_frames} frames)")
        if done > info.num_frames:
            log.warning("%s: decoded %d frames, the container said %d", info.path, done, info.num_frames)

    def _decode(self) -> Iterator[tuple[torch.Tensor, list[int]]]:
        """Chunks of (F, h, w, 3) ``self.pixels`` frames as stored, on ``self.device``, with their pts.

        Called only when there are frames from ``start_frame`` on; may run past ``stop_frame``.
        """
        raise NotImplementedError


class PyAVReader(Reader):
    """FFmpeg decoding through PyAV, one prefetch thread ahead of the consumer."""

    name = "pyav"

    def _decode(self) -> Iterator[tuple[torch.Tensor, list[int]]]:
        pin = self.device.type == "cuda"  # pinned host memory: the copy to the GPU overlaps compute
        decoded = prefetch(timed_items("decode", self._decode_host(pin)), PREFETCH_CHUNKS)  # on its thread
        uploaded = ((frames.to(self.device, non_blocking=pin), pts) for frames, pts in decoded)
        yield from timed_items("input wait + upload", uploaded)

    def _decode_host(self, pin: bool) -> Iterator[tuple[torch.Tensor, list[int]]]:
        info = self.info
        if info.has_alpha:
            log.info("%s: alpha channel (%s) dropped", info.path, info.pix_fmt)
        shape = (self.chunk, info.height, info.width, 3)
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            deep = self.pixels == torch.uint16
            buffer, pts = torch.empty(shape, dtype=self.pixels, pin_memory=pin), []
            try:
                for index, frame in enumerate(self._frames(container, stream), start=self.start_frame):
                    if (frame.height, frame.width) != shape[1:3]:
                        raise VideoError(info.path, f"frame size changes to {frame.width}x{frame.height}")
                    buffer.numpy()[len(pts)] = to_rgb(frame, info.colour, deep)
                    pts.append(frame.pts if frame.pts is not None else info.nominal_pts(index))
                    if len(pts) == self.chunk:
                        yield buffer, pts
                        buffer, pts = torch.empty(shape, dtype=self.pixels, pin_memory=pin), []
            except av.error.FFmpegError as error:
                raise VideoError(info.path, f"truncated or corrupt ({error.strerror})") from error
            if pts:
                yield buffer[: len(pts)], pts

    def _frames(
        self, container: av.container.InputContainer, stream: av.VideoStream
    ) -> Iterator[av.VideoFrame]:
        """Decoded frames from ``start_frame`` on: seek to the keyframe before it, decode forward, drop."""
        target = _frame_pts(self.info.path, stream.index, self.start_frame) if self.start_frame else None
        if target is None:  # from the start, or no timestamps to seek by: decode and drop by count
            frames = container.decode(stream)
            for _ in range(self.start_frame):
                next(frames, None)
            yield from frames
            return
        container.seek(target, stream=stream, backward=True)
        frames = container.decode(stream)
        for frame in frames:
            if frame.pts is not None and frame.pts >= target:
                if frame.pts != target:
                    raise VideoError(
                        self.info.path, f"cannot seek to frame {self.start_frame} (pts {target})"
                    )
                yield frame
                break
        yield from frames


class DaliReader(Reader):
    """DALI's experimental video reader, on NVDEC (``backend="gpu"``) or the CPU (``backend="cpu"``)."""

    def __init__(self, info: VideoInfo, *, backend: str, **kwargs) -> None:
        if backend not in ("cpu", "gpu"):
            raise ValueError(f"DALI backend must be 'cpu' or 'gpu', got {backend!r}")
        super().__init__(info, **kwargs)
        self.backend, self.name = backend, f"dali-{backend}"

    def _decode(self) -> Iterator[tuple[torch.Tensor, list[int]]]:
        info = self.info
        device_id = dali.device_id(self.device) if self.backend == "gpu" else None
        with tempfile.TemporaryDirectory(prefix="dali-reader-") as folder:
            try:
                # DALI is imported here so that probing and PyAV decoding do not pay for it; a DALI that
                # fails to import or to build is a DALI failure like any other (retried with PyAV)
                from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

                pipe = chunk_pipeline(
                    file_list=one_line_file_list(Path(folder), info, self.start_frame, self.stop_frame),
                    chunk=self.chunk,
                    backend=self.backend,
                    batch_size=1,
                    num_threads=1,
                    device_id=device_id,
                    prefetch_queue_depth=2,
                )
                batches = DALIGenericIterator(
                    [pipe],
                    ["frames", "frame_num", "timestamps"],
                    reader_name=DALI_READER,
                    last_batch_policy=LastBatchPolicy.PARTIAL,
                )
                next_frame, last_time = self.start_frame, float("-inf")
                correct = DaliCorrection(info.colour, info.pix_fmt)  # DALI converts with BT.601
                for batch in timed_items("decode (DALI)", batches):
                    out = batch[0]
                    numbers, seconds = out["frame_num"][0].tolist(), out["timestamps"][0].tolist()  # host
                    keep = _real_frames(numbers, seconds, last_time)
                    if not keep:
                        continue
                    if [numbers[i] for i in keep] != list(range(next_frame, next_frame + len(keep))):
                        raise VideoError(
                            info.path, f"DALI returned frames {numbers} after frame {next_frame - 1}"
                        )
                    frames = out["frames"][0]  # (chunk, h, w, 3), owned by DALI until the next batch
                    with timed("decode (DALI)"):
                        frames = correct(take(frames, keep)).to(self.device)  # a copy, ours
                    yield frames, [_pts(seconds[i], info) for i in keep]
                    next_frame, last_time = next_frame + len(keep), seconds[keep[-1]]
            except (RuntimeError, ImportError, OSError) as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise DaliDecodeError(info.path, f"DALI could not decode it ({message})") from error


def open_reader(
    info: VideoInfo,
    kind: str = "auto",
    device: torch.device | str = "cpu",
    chunk: int = 16,
    *,
    start_frame: int = 0,
    stop_frame: int | None = None,
    deep: bool = False,
) -> Reader:
    """A reader for ``info``'s video yielding chunks of ``chunk`` frames on ``device``, frames
    ``[start_frame, stop_frame)`` (None: to the end); with ``deep``, a file deeper than 8 bits as uint16
    levels (DALI decodes 8-bit files only, so those go to PyAV).

    ``kind="auto"`` takes DALI on NVDEC when ``device`` is a CUDA device that decodes the codec, else
    DALI on the CPU for 8-bit VP8/VP9/MJPEG, else PyAV; PyAV too where DALI is not usable
    (`dali.unavailable`). ``reader.name`` ("dali-gpu", "dali-cpu", "pyav") and ``reader.reason`` say which
    and why.

    Raises:
        VideoError: ``kind="dali"`` for a video DALI cannot decode here, or where DALI is not usable.
    """
    if kind not in READERS:
        raise ValueError(f"reader kind must be one of {READERS}, got {kind!r}")
    device = torch.device(device)
    common = dict(device=device, chunk=chunk, start_frame=start_frame, stop_frame=stop_frame, deep=deep)
    if kind == "pyav":
        return PyAVReader(info, reason="PyAV requested", **common)
    gpu_problem = dali.gpu_problem(info, device)
    if gpu_problem is None and kind == "auto":
        gpu_problem = DaliCorrection(info.colour, info.pix_fmt).range_problem
    cpu_problem = dali.cpu_problem(info)
    if cpu_problem is None and kind == "auto" and not DaliCorrection(info.colour, info.pix_fmt).identity:
        cpu_problem = f"DALI's CPU reader converts with BT.601, not {info.colour.name}"
    if gpu_problem is None:
        backend, reason = "gpu", f"{info.codec} {info.pix_fmt} decodes on NVDEC"
    elif cpu_problem is None:
        where = "no CUDA device" if device.type != "cuda" else gpu_problem
        backend, reason = "cpu", f"DALI decodes {info.codec} on the CPU ({where})"
    else:
        problem = cpu_problem if device.type != "cuda" else f"{gpu_problem}; {cpu_problem}"
        if kind == "dali":
            raise VideoError(info.path, f"DALI cannot decode it here: {problem}; use --reader pyav")
        return PyAVReader(info, reason=problem, **common)
    missing = dali.unavailable()
    if missing is not None:
        if kind == "dali":
            raise VideoError(info.path, f"{missing}; use --reader pyav")
        return PyAVReader(info, reason=missing, **common)
    return DaliReader(info, backend=backend, reason=reason, **common)


def readers_for(info: VideoInfo, device: torch.device | str = "cpu") -> list[str]:
    """The readers that can decode ``info``'s video on ``device``: "dali-gpu", "dali-cpu" (where DALI is
    usable), "pyav" (always)."""
    device = torch.device(device)
    usable = dali.unavailable() is None
    return [name for name, problem in (("dali-gpu", dali.gpu_problem(info, device)),
                                        ("dali-cpu", dali.cpu_problem(info)), ("pyav", None))
            if problem is None and (usable or name == "pyav")]


def make_reader(info: VideoInfo, name: str, device: torch.device | str = "cpu", chunk: int = 16) -> Reader:
    """The reader called ``name`` (see `readers_for`), without choosing: for comparing readers."""
    if name not in readers_for(info, device):
        raise VideoError(info.path, f"reader {name} cannot decode it here")
    common = dict(device=torch.device(device), chunk=chunk, reason=f"{name} requested")
    return PyAVReader(info, **common) if name == "pyav" else DaliReader(info, backend=name[5:], **common)


def chunk_pipeline(*, file_list: str, chunk: int, backend: str, **pipeline_args):
    """A DALI pipeline yielding one window of ``chunk`` frames per run: (frames, frame_num, timestamps)."""
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(**pipeline_args)
    def chunks():
        frames, _label, frame_num, timestamps = fn.experimental.readers.video(
            device=backend,
            file_list=file_list,
            file_list_format="frames",
            file_list_include_end=False,
            sequence_length=chunk,
            step=chunk,
            pad_mode="edge",
            enable_frame_num="sequence",
            enable_timestamps=True,
            name=DALI_READER,
        )
        # the metadata is read on the host every chunk: moved there inside the pipeline (a no-op on the
        # CPU), so reading it waits for DALI's copy, never for the model's CUDA stream
        return frames, frame_num.cpu(), timestamps.cpu()  # (chunk, h, w, 3) uint8, (chunk,) int, seconds

    return chunks()


def one_line_file_list(folder: Path, info: VideoInfo, start_frame: int, stop_frame: int | None) -> str:
    """A DALI file list for frames [start_frame, stop_frame or num_frames) of the video, through a symlink.

    DALI splits file-list lines on whitespace, so the video is linked under a name without any.
    """
    link = folder / f"video{info.path.suffix}"
    link.symlink_to(info.path.resolve())
    file_list = folder / "files.txt"
    file_list.write_text(f"{link} 0 {start_frame} {info.num_frames if stop_frame is None else stop_frame}\n")
    return str(file_list)


def _real_frames(numbers: list[int], seconds: list[float], last_time: float) -> list[int]:
    """Indices of the decoded frames in a window, given the time of the last frame before it.

    Edge padding repeats the last frame; DALI numbers it either as the last frame again or, past the
    end of a stream shorter than its frame range, with new numbers. A repeated timestamp shows it.
    """
    keep, latest = [], last_time
    for i, (number, stamp) in enumerate(zip(numbers, seconds)):
        if number >= 0 and stamp > latest and (i == 0 or number > numbers[i - 1]):
            keep.append(i)
            latest = stamp
    return keep


def _pts(seconds: float, info: VideoInfo) -> int:
    """The pts of a frame DALI stamps ``seconds``: DALI counts from the stream's first frame, pts do not."""
    return info.start_pts + round(Fraction(seconds) / info.time_base)


def _frame_pts(path: Path, stream_index: int, index: int) -> int | None:
    """The pts of frame ``index`` in presentation order, from packet timestamps (a demux, no decoding).

    None when packets carry no timestamps. Packets come in decoding order, so the scan reads a margin
    past ``index`` to cover reordering.
    """
    stamps = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams[stream_index]):
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                return None
            stamps.append(packet.pts)
            if len(stamps) > index + _REORDER_MARGIN:
                break
    return sorted(stamps)[index] if index < len(stamps) else None


def _upright(frames: torch.Tensor, rotation: int) -> torch.Tensor:
    """(F, h, w, 3) frames as stored -> (F, H, W, 3) rotated ``rotation`` degrees counter-clockwise."""
    return frames if rotation == 0 else torch.rot90(frames, rotation // 90, dims=(1, 2)).contiguous()
