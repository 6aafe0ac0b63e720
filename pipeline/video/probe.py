"""What a video file holds, read once before choosing a reader: codec, size, frame count, timing, audio.

Frame counts are exact. MP4/MOV files list every frame in their index, which is read without touching
the frames (and checked against the file size, which catches truncation); every other container is
counted packet by packet (a demux, no decoding) and the count's end time is checked against the
duration the container declares.
"""

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from pipeline.errors import VideoError
from pipeline.video.colour import Colour, colour_of
from pipeline.video.hdr import HdrMetadata, hdr_of

log = logging.getLogger(__name__)

_INDEXED_FORMATS = ("mov",)  # demuxers whose index lists every frame (the sample table)
_TRUNCATION_SLACK_FRAMES = 2  # a stream may end this many frame durations before its declared end


@dataclass(frozen=True)
class VideoInfo:
    """A probed video. Sizes are as stored; readers rotate frames upright (see `frame_size`)."""

    path: Path
    codec: str  # FFmpeg's codec name: "h264", "hevc", "vp9", "mjpeg", "cinepak", ...
    width: int
    height: int
    num_frames: int
    fps: Fraction  # average frame rate (nominal for variable-frame-rate video)
    time_base: Fraction  # seconds per pts tick
    start_pts: int
    rotation: int  # degrees counter-clockwise that make the stored frames upright: 0, 90, 180 or 270
    pix_fmt: str  # decoded pixel format, e.g. "yuv420p", "yuv420p10le", "gray", "rgba"
    bit_depth: int
    has_alpha: bool
    is_gray: bool
    has_audio: bool
    audio_codec: str | None
    colour: Colour  # how its YUV maps to RGB (tags, or what players assume)
    hdr: HdrMetadata | None = None  # mastering display and light levels of an HDR10 file

    def nominal_pts(self, index: int) -> int:
        """The pts frame ``index`` has at the nominal frame rate (for frames without timestamps)."""
        return self.start_pts + round(index / self.fps / self.time_base)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the upright frames the readers yield."""
        return (self.width, self.height) if self.rotation in (90, 270) else (self.height, self.width)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of ``path``.

    Raises:
        VideoError: the file is missing, empty, not a video, has no video stream, cannot be decoded,
            or is truncated or corrupt where that shows without decoding it all.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "no such file")
    if path.is_dir():
        raise VideoError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file")
    try:
        with av.open(str(path)) as container:
            return _describe(path, container)
    except av.error.PermissionError as error:
        raise VideoError(path, "permission denied") from error
    except av.error.FFmpegError as error:
        raise VideoError(path, f"not a video file or corrupt ({error.strerror})") from error


def _describe(path: Path, container: av.container.InputContainer) -> VideoInfo:
    if not container.streams.video:
        raise VideoError(path, "has no video stream")
    stream = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    time_base = stream.time_base
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not time_base or not fps:
        raise VideoError(path, "video stream has no timing information")
    num_frames = _count_frames(path, container, stream, Fraction(fps))
    first = _first_frame(path, stream.index)
    fmt = first.format
    info = VideoInfo(
        path=path,
        codec=stream.codec_context.codec.canonical_name,
        width=first.width,
        height=first.height,
        num_frames=num_frames,
        fps=Fraction(fps),
        time_base=Fraction(time_base),
        start_pts=stream.start_time if stream.start_time is not None else first.pts or 0,
        rotation=_upright_rotation(path, first.rotation),
        pix_fmt=fmt.name,
        bit_depth=max(component.bits for component in fmt.components),
        has_alpha=any(component.is_alpha for component in fmt.components),
        is_gray=not fmt.has_palette and sum(not component.is_alpha for component in fmt.components) == 1,
        has_audio=audio is not None,
        audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
        colour=colour_of(stream, first.height, fmt.name),
        hdr=hdr_of(first),
    )
    log.debug("probed %s", info)
    return info


def _first_frame(path: Path, index: int) -> av.VideoFrame:
    """Decode the first frame: proves the stream decodes, gives the real pixel format and the rotation."""
    with av.open(str(path)) as container:
        stream = container.streams[index]
        try:
            frame = next(container.decode(stream), None)
        except av.error.FFmpegError as error:
            raise VideoError(
                path, f"cannot decode its {stream.codec_context.name} video ({error.strerror})"
            ) from error
    if frame is None:
        raise VideoError(path, "video stream has no decodable frames")
    return frame


def _upright_rotation(path: Path, degrees: int) -> int:
    """The display rotation rounded to a quarter turn (readers rotate by quarter turns only)."""
    quarter = round(degrees / 90) % 4 * 90
    if degrees % 90:
        log.warning("%s: display rotation %d degrees rounded to %d", path, degrees, quarter)
    return quarter


def _count_frames(
    path: Path, container: av.container.InputContainer, stream: av.VideoStream, fps: Fraction
) -> int:
    entries = stream.index_entries
    if container.format.name.split(",")[0] in _INDEXED_FORMATS and len(entries) == stream.frames > 0:
        return _check_index(path, [entry for entry in entries if not entry.is_discard])
    return _count_packets(path, container, stream, fps)


def _check_index(path: Path, entries: list) -> int:
    """Frames listed in an MP4/MOV index, after checking that their data lies inside the file."""
    size = path.stat().st_size
    present = sum(entry.pos + entry.size <= size for entry in entries)
    if present < len(entries):
        raise VideoError(path, f"truncated or corrupt (data for {present} of {len(entries)} frames)")
    return len(entries)


def _count_packets(
    path: Path, container: av.container.InputContainer, stream: av.VideoStream, fps: Fraction
) -> int:
    """Count the video packets (one per frame) and check that they reach the declared duration."""
    count, end, last_duration = 0, None, 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            count += 1
            if packet.pts is not None:
                last_duration = packet.duration or 0
                packet_end = packet.pts + last_duration
                end = packet_end if end is None else max(end, packet_end)
    except av.error.FFmpegError as error:
        raise VideoError(
            path, f"truncated or corrupt (stopped after {count} frames: {error.strerror})"
        ) from error
    if count == 0:
        raise VideoError(path, "video stream has no frames")
    declared = _declared_end(container, stream)
    if declared is not None and end is not None:
        frame_ticks = max(last_duration, round(1 / fps / stream.time_base))
        if end < declared - _TRUNCATION_SLACK_FRAMES * frame_ticks:
            seconds = float(end * stream.time_base), float(declared * stream.time_base)
            raise VideoError(
                path, "truncated or corrupt (video ends at {:.2f} s of {:.2f} s)".format(*seconds)
            )
    return count


def _declared_end(container: av.container.InputContainer, stream: av.VideoStream) -> int | None:
    """End of the video stream in pts ticks as the container declares it, or None if it does not.

    A stream's duration is a length (from its start); Matroska's per-track DURATION tag and its segment
    duration are timestamps on the segment's own clock, which starts at 0: the absolute end already.
    """
    start = stream.start_time or 0
    if stream.duration is not None:
        return start + stream.duration
    tag = stream.metadata.get("DURATION")  # written per track by FFmpeg's Matroska/WebM muxer
    if tag:
        hours, minutes, seconds = tag.split(":")
        total = Fraction(hours) * 3600 + Fraction(minutes) * 60 + Fraction(seconds)
        return round(total / stream.time_base)
    if container.duration is not None and len(container.streams) == 1:  # the file's duration is the video's
        length = round(Fraction(container.duration, av.time_base) / stream.time_base)
        return length if "matroska" in container.format.name else start + length
    return None
