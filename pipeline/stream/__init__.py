"""Streaming: a whole video through the cascade with each stage result computed once, decode and encode
overlapped with the model, and a video's frames shared out among workers in time shards.

* `windows`: which source frame each position of the padded virtual sequence shows (border policies).
* `StreamingEngine`: every output frame of a video from chunks of frames (`engine`; `naive_windows` is
  the official per-window schedule, kept as the oracle and the baseline).
* `deblur`: one part of a video end to end: read ahead, restore, write on a thread.
* `parts`: time shards: which frames a part holds and decodes, and the work list of a job.
* `jobs`: many videos on one or many workers; `deblur_video`: one video in this process.
"""
from pipeline.stream.deblur import restore_frames
from pipeline.stream.engine import StreamingEngine, naive_windows
from pipeline.stream.jobs import DeblurResult, deblur_video
from pipeline.stream.windows import padded_indices, windows

__all__ = [
    "DeblurResult", "StreamingEngine", "deblur_video", "naive_windows", "padded_indices", "restore_frames",
    "windows",
]
