"""Streaming: a whole video through the cascade with each stage result computed once, decode and encode
overlapped with the model.

* `windows`: which source frame each position of the padded virtual sequence shows (border policies).
* `StreamingEngine`: every output frame of a video from chunks of frames (`engine`; `naive_windows` is
  the official per-window schedule, kept as the oracle and the baseline).
* `deblur_video`: probe, read ahead, restore, write on a thread: one video end to end (`deblur`).
"""
from pipeline.stream.deblur import DeblurResult, deblur_video, restore_frames
from pipeline.stream.engine import StreamingEngine, naive_windows
from pipeline.stream.windows import padded_indices, windows

__all__ = [
    "DeblurResult", "StreamingEngine", "deblur_video", "naive_windows", "padded_indices", "restore_frames",
    "windows",
]
