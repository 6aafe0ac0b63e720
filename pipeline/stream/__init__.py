"""Streaming: a whole video through the cascade with each stage result computed once, decode and encode
overlapped with the model, and a video's frames shared out among workers in time shards.

* `windows`: which source frame each position of the padded virtual sequence shows (border policies).
* `StreamingEngine`: every output frame of a video from chunks of frames (`engine`; `naive_windows` is
  the official per-window schedule, kept as the oracle and the baseline).
* `restore_frames`: frames from any source through the engine, in this thread (`restore`).
* `deblur_part`: one part of a video end to end: read ahead, restore, write on a thread.
* `parts`: time shards: which frames a part holds and decodes, and the work list of a job.
* `workers`: the workers of a job: parts claimed, outputs joined.
* `Job`: a job's inputs, outputs, prepared model, work list, results and summary (`job`); `deblur_video`:
  one video in this process.
"""
from pipeline.stream.engine import StreamingEngine, naive_windows
from pipeline.stream.job import DeblurResult, Job, deblur_video
from pipeline.stream.restore import restore_frames
from pipeline.stream.windows import padded_indices, windows

__all__ = [
    "DeblurResult", "Job", "StreamingEngine", "deblur_video", "naive_windows", "padded_indices",
    "restore_frames", "windows",
]
