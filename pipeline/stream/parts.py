"""Time shards: a video's unfinished frames as parts, and what each part decodes.

A part is frames ``[start, stop)`` of one video, starting on a segment boundary of the writer, so that
every part writes whole segments that one uninterrupted run would write too, and the segments join into
the same file. The engine computes in groups of B absolute positions (`pipeline.stream.engine`), so a part
decodes the groups that hold its frames and T groups of context on each side (`windows.frames_needed`:
T * B frames for a part on group boundaries; none beyond the video's ends, where the border policy takes
over, exactly as for the whole video): its frames come out identical to a whole run's.

Work is shared by frames, not files (`plan`): the unfinished segments of all videos are cut into parts of
about ``total / (workers * PARTS_PER_WORKER)`` of the job's cost (frames times pixels per frame), listed
costliest first, and workers take the next unclaimed one, so a worker that finishes early takes more and
none waits on one long video.
"""
from dataclasses import dataclass

from pipeline.stream.windows import frames_needed
from pipeline.video.segments import Segments

PARTS_PER_WORKER = 4  # parts per worker when a video is cut: few enough to keep context overhead small


@dataclass(frozen=True)
class Part:
    """Frames ``[start, stop)`` of video ``video`` (an index into the job's videos); ``stop`` None: to the
    end of the stream."""

    video: int
    start: int
    stop: int | None

    def frames(self, num_frames: int) -> int:
        """How many frames the part holds in a video of ``num_frames`` frames (as probed)."""
        return (num_frames if self.stop is None else self.stop) - self.start

    @property
    def name(self) -> str:
        """The part's claim name in its video's work folder."""
        return f"part-{self.start:06d}"


@dataclass(frozen=True)
class Decode:
    """The frames a part decodes: ``[first, stop)`` (``stop`` None: to the end, border included)."""

    first: int
    stop: int | None

    @property
    def ends_video(self) -> bool:
        return self.stop is None


def decode_range(part: Part, num_frames: int, radius: int, group: int) -> Decode:
    """The frames ``part`` reads: its groups of ``group`` frames and ``radius`` groups each side, within the
    video (`windows.frames_needed`).

    A part whose context reaches the video's start decodes from frame 0 with the leading border (and drops
    the restored frames before ``part.start``); one whose context reaches the end decodes to the end with
    the trailing border (and drops those after ``part.stop``).
    """
    first, stop = frames_needed(part.start, num_frames if part.stop is None else part.stop, radius, group)
    return Decode(max(first, 0), stop if part.stop is not None and stop < num_frames else None)


def runs(segments: list[int]) -> list[tuple[int, int]]:
    """Consecutive segment numbers as ``[first, last + 1)`` runs: [0, 1, 2, 5] -> [(0, 3), (5, 6)]."""
    found: list[tuple[int, int]] = []
    for segment in segments:
        if found and found[-1][1] == segment:
            found[-1] = (found[-1][0], segment + 1)
        else:
            found.append((segment, segment + 1))
    return found


def plan(missing: list[list[int]], num_frames: list[int], segments: Segments, workers: int,
         pixels: list[int] | None = None) -> list[Part]:
    """The work list: the unfinished segments of each video as parts, the costliest first.

    Args:
        missing: per video, its unfinished segment numbers in order (`WorkFolder.missing`).
        num_frames: per video, its probed frame count; the part holding its last segment reads to the end.
        segments: the writer's segments; parts start and (but for the last) end on their bounds.
        workers: how many processes share the list; with one, each run of unfinished segments is one part.
        pixels: per video, pixels per frame: a frame's cost (None: every frame costs the same).
    """
    pixels = pixels or [1] * len(missing)
    size = segments.size
    frames = [min(len(video) * size, count) for video, count in zip(missing, num_frames)]
    target = sum(f * p for f, p in zip(frames, pixels)) / (workers * PARTS_PER_WORKER)  # cost per part
    parts = []
    for video, (todo, count) in enumerate(zip(missing, num_frames)):
        last = segments.count(count)
        per_part = max(1, round(target / (pixels[video] * size))) if workers > 1 else len(todo)
        for first, end in runs(todo):
            pieces = -(-(end - first) // max(per_part, 1))
            bounds = [first + (end - first) * i // pieces for i in range(pieces + 1)]  # even pieces
            for a, b in zip(bounds, bounds[1:]):
                parts.append(Part(video, a * size, None if b >= last else b * size))
    return sorted(parts, key=lambda p: (-p.frames(num_frames[p.video]) * pixels[p.video], p.video, p.start))
