"""The lossless join: the writer's video segments and everything else the source holds, into one file.

Remuxed, never re-encoded: the segments' video packets, every audio and subtitle stream of the source
that the output container can hold (the others are left out, with a warning naming them), the streams'
language and title, the file's metadata (title, creation time, ...) and its chapters. Packets are
interleaved by decoding time. The source's own timestamps are kept, so audio and subtitles stay in sync
with the frames, which keep the source's pts.
"""
import heapq
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import av

from pipeline.video.probe import VideoInfo

log = logging.getLogger(__name__)

CARRIED = ("audio", "subtitle")  # the source's streams that go into the output beside the new video
STREAM_TAGS = ("language", "title")  # per-stream tags carried over (DURATION and the like the muxer writes)
MUXER_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")  # the source muxer's own


def join_segments(segments: list[Path], info: VideoInfo, output: Path, container_format: str) -> None:
    """Remux ``segments`` (in order) and what `CARRIED` of ``info``'s source into ``output``."""
    with ExitStack() as stack:
        muxer = stack.enter_context(av.open(str(output), "w", format=container_format))
        source = stack.enter_context(av.open(str(info.path)))
        muxer.metadata.update({k: v for k, v in source.metadata.items() if k.lower() not in MUXER_TAGS})
        first = stack.enter_context(av.open(str(segments[0])))
        video = muxer.add_stream_from_template(first.streams.video[0])
        video.time_base = info.time_base
        _copy_tags(source.streams.video[0], video)
        carried = {}
        for stream in source.streams:
            if stream.type not in CARRIED:
                continue
            codec = stream.codec_context.name
            if codec not in muxer.supported_codecs:
                log.warning("%s: %s stream %d (%s) cannot go into %s; the output leaves it out",
                            info.path, stream.type, stream.index, codec, output.suffix)
                continue
            carried[stream.index] = muxer.add_stream_from_template(stream)
            _copy_tags(stream, carried[stream.index])
        if source.chapters():
            muxer.set_chapters(source.chapters())
        streams = [_segment_packets(segments, video)]
        if carried:
            streams.append(_packets(source, carried))
        for packet in heapq.merge(*streams, key=_decoding_time):
            muxer.mux(packet)


def _copy_tags(source: av.stream.Stream, target: av.stream.Stream) -> None:
    target.metadata.update({k: v for k, v in source.metadata.items() if k.lower() in STREAM_TAGS})


def _segment_packets(segments: list[Path], stream: av.stream.Stream) -> Iterator[av.Packet]:
    """The video packets of the segments in order, addressed to ``stream``."""
    for segment in segments:
        with av.open(str(segment)) as container:
            yield from _packets(container, {container.streams.video[0].index: stream})


def _packets(container: av.container.InputContainer,
             targets: dict[int, av.stream.Stream]) -> Iterator[av.Packet]:
    """The packets of the streams ``targets`` names (by index), each addressed to its target stream."""
    for packet in container.demux(*(container.streams[index] for index in targets)):
        if packet.size:
            packet.stream = targets[packet.stream.index]
            yield packet


def _decoding_time(packet: av.Packet) -> Fraction:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return stamp * packet.time_base if stamp is not None else Fraction(0)
