"""Video I/O: what a file holds, its frames as upright RGB on the device, and the resumable, atomic writer.

* `probe`: codec, size, exact frame count, timing, colour and audio, read once (`VideoInfo`).
* `open_reader`: DALI (NVDEC, or its CPU decoders) when it can decode the file, else PyAV; chunks of
  (F, H, W, 3) uint8 frames with their pts (`readers`; what DALI decodes where: `dali`).
* `Output`: one video's output, written in parts that encode on a thread into resumable segments, joined
  losslessly with the source's audio
  (`writer`, `segments`, `workfolder`, `encoder_thread`).
* `colour`: one YUV <-> RGB rule for every reader and the writer; `frames`: uint8 frames <-> model tensors;
  `sequences`: frames of a video file or a frame folder, for scoring.
"""
from pipeline.video.colour import Colour, colour_of
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.probe import VideoInfo, probe
from pipeline.video.readers import Chunk, open_reader
from pipeline.video.sequences import read_frames, read_image
from pipeline.video.writer import Output

__all__ = [
    "Chunk", "Colour", "Output", "VideoInfo", "colour_of", "open_reader", "probe", "read_frames",
    "read_image", "to_model", "to_uint8",
]
