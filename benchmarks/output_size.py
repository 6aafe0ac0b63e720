"""What the writer's exact resume costs in file size: its output against one FFmpeg-default encode at CRF 18.

    python benchmarks/output_size.py --json benchmarks/results/output_size_cpu.json

The writer encodes segments of 64 frames separately (each opens with a keyframe) without B-frames, so that
a resumed run and a run cut into time shards make the same bytes as an uninterrupted one. Here the same
decoded frames of ``--source`` (default: the 1280x720 cockatoo footage) are written three ways at the
same CRF: by the writer (`Output`, as ``deblur`` writes), as one stream with the writer's settings
(no B-frames, one keyframe), and as one stream with libx264's defaults, which are FFmpeg's
(``ffmpeg -i in -c:v libx264 -crf 18``: B-frames, a keyframe every 250 frames at most). For each: bytes
and the PSNR of its decoded frames against the frames it was given.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from pipeline.checkout import FOOTAGE
from pipeline.measure.runinfo import write_document
from pipeline.metrics import mean_psnr
from pipeline.runtime import compute_device
from pipeline.video.encoder import Encoder
from pipeline.video.probe import probe
from pipeline.video.readers import open_reader
from pipeline.video.sequences import read_frames
from pipeline.video.writer import Output


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", type=Path, default=FOOTAGE / "cockatoo.mp4", help="footage to encode")
    parser.add_argument("--frames", type=int, help="first frames only (default: all)")
    parser.add_argument("--crf", type=int, default=18, help="the writer's default (18)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def one_stream(path: Path, frames: np.ndarray, pts: list[int], info, options: dict[str, str]) -> None:
    """All ``frames`` as one libx264 stream in ``path`` (mp4), with ``options`` over libx264's defaults."""
    with Encoder(path, codec="libx264", rate=info.fps, pix_fmt="yuv420p", colour=info.colour,
                 options=options, time_base=info.time_base) as encoder:
        for image, stamp_ in zip(frames, pts):
            encoder.write(image, stamp_)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    info = probe(args.source)
    chunks = list(open_reader(info, "pyav", "cpu", 16, stop_frame=args.frames))
    frames = np.concatenate([chunk.frames.numpy() for chunk in chunks])  # (F, H, W, 3) uint8
    pts = [stamp_ for chunk in chunks for stamp_ in chunk.pts]
    crf = str(args.crf)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="output_size_") as scratch:
        work = Path(scratch)
        outputs = {
            "writer": work / "writer.mp4",
            "one stream, writer's settings": work / "no_b.mp4",
            "one stream, FFmpeg defaults": work / "defaults.mp4",
        }
        output = Output(outputs["writer"], info, crf=args.crf)
        output.prepare()
        try:
            with output.writer(0, last=True) as writer:
                writer.write(frames, pts)
            output.join()
        finally:
            output.release()
        segment = output.segments.size
        one_stream(outputs["one stream, writer's settings"], frames, pts, info,
                   {"crf": crf, "bf": "0", "g": str(len(frames))})
        one_stream(outputs["one stream, FFmpeg defaults"], frames, pts, info, {"crf": crf})
        for name, path in outputs.items():
            rows[name] = {"bytes": path.stat().st_size,
                          "psnr_db": mean_psnr(read_frames(path), iter(frames))}
        default = rows["one stream, FFmpeg defaults"]["bytes"]
        for row in rows.values():
            row["size_vs_ffmpeg_defaults"] = row["bytes"] / default
    result = {
        "source": str(args.source),
        "frames": len(frames), "size": f"{info.width}x{info.height}", "crf": args.crf,
        "segment_frames": segment, "outputs": rows,
    }
    table = Table(title=f"{len(frames)} frames of {args.source.name} ({info.width}x{info.height}), CRF {crf}")
    for column in ("output", "size", "vs FFmpeg defaults", "PSNR vs frames"):
        table.add_column(column, justify="left" if column == "output" else "right")
    for name, row in rows.items():
        table.add_row(name, f"{row['bytes'] / 1e6:.2f} MB", f"{row['size_vs_ffmpeg_defaults']:.2f}x",
                      f"{row['psnr_db']:.2f} dB")
    console = Console(stderr=True)
    console.print(table)
    write_document(args.json, "output_size", compute_device("cpu"), argv, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
