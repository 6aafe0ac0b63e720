"""Index arithmetic of the padded virtual sequence: which source frame each virtual position shows.

A T-stage model needs T frames of context on each side of every output frame. The virtual sequence
P has the video's n frames plus ``radius = T`` border frames on each side, chosen by a policy:

* ``reflect`` (default): ``f2 f1 | f0 f1 f2 ... | f[n-2] f[n-3]`` (mirror without repeating the edge);
* ``replicate``: ``f0 f0 | f0 ... f[n-1] | f[n-1] f[n-1]``;
* ``official``: the official ``inference.py --border``: prepend ``f0 f1``, append ``f[n-2] f[n-1]``
  (the first and last ``radius`` frames, in order).

Indices are clamped to the video for videos shorter than the border, so 1-frame videos work.

The engine computes every level of the cascade in *groups* of B absolute positions (frames gB .. gB+B-1;
the border's positions are frames -T .. -1 and n .. n+T-1), each group once all of it can be computed
(`pipeline.stream.engine`). A run that starts or stops inside the video therefore restores whole groups
only: `first_restored` says where its output starts and `frames_needed` what it must read.
"""
BORDERS = ("reflect", "replicate", "official")


def _reflect(index: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    index %= period
    return period - index if index >= n else index


def padded_indices(n: int, radius: int, border: str = "reflect") -> list[int]:
    """Source frame of each of the ``n + 2 * radius`` virtual positions.

    >>> padded_indices(5, 2, "reflect")
    [2, 1, 0, 1, 2, 3, 4, 3, 2]
    >>> padded_indices(5, 2, "official")
    [0, 1, 0, 1, 2, 3, 4, 3, 4]
    """
    if n < 1:
        raise ValueError(f"a video needs at least one frame, got {n}")
    if border not in BORDERS:
        raise ValueError(f"unknown border policy {border!r}; choose from {', '.join(BORDERS)}")
    middle = list(range(n))
    if border == "reflect":
        before = [_reflect(-i, n) for i in range(radius, 0, -1)]
        after = [_reflect(n - 1 + i, n) for i in range(1, radius + 1)]
    elif border == "replicate":
        before, after = [0] * radius, [n - 1] * radius
    else:
        before = [min(i, n - 1) for i in range(radius)]
        after = [max(n - radius + i, 0) for i in range(radius)]
    return before + middle + after


def windows(n: int, radius: int, border: str = "reflect") -> list[list[int]]:
    """The naive schedule: for each output frame i, the source frames of its 2*radius+1 window."""
    padded = padded_indices(n, radius, border)
    return [padded[i:i + 2 * radius + 1] for i in range(n)]


def first_restored(first_frame: int, radius: int, group: int) -> int:
    """The first frame that an engine run fed from ``first_frame`` restores (0: fed from the video's start,
    border included).

    Its first whole group of frames gets pyramids; each stage's first group needs one position before it,
    which only the previous stage's second group has: T groups after the first whole one.

    >>> first_restored(62, 2, 1), first_restored(56, 2, 4), first_restored(57, 2, 4)
    (64, 64, 68)
    """
    return 0 if first_frame <= 0 else (-(-first_frame // group) + radius) * group


def frames_needed(start: int, stop: int, radius: int, group: int) -> tuple[int, int]:
    """The frames ``[first, last)`` an engine run reads to restore frames ``[start, stop)`` exactly: the
    groups that hold them and T groups each side, T * B frames of context for a run on group boundaries
    (of the first and last of those groups, only one frame reaches a stage; the others give it their
    group's pyramid call). ``first`` below 1 or ``last`` past the video: read from its start or to its end
    instead, with the border.

    >>> frames_needed(64, 128, 2, 1), frames_needed(64, 128, 2, 4), frames_needed(65, 127, 2, 4)
    ((62, 130), (56, 136), (56, 136))
    """
    return (start // group - radius) * group, (-(-stop // group) + radius) * group
