r"""The engine's bits across chunkings and across thread counts, same clip, same weights.

Each run is a fresh process with its own thread count (``OMP_NUM_THREADS`` and ``torch.set_num_threads``)
that restores the clip in chunks of some size and saves the uint8 frames. At one thread count, any chunking
gives the same bits (the engine's calls hold whole groups of absolute positions; `tests/test_engine.py`
holds it for chunks, resumes and parts); across thread counts the CPU kernels split their sums
differently, so a level may move here and there: this counts the pixels that differ and by how much.

    python benchmarks/threads.py --json benchmarks/results/threads_cpu.json
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP
from pipeline.cli import frame_size
from pipeline.config import load_config
from pipeline.measure.clips import looped_clip
from pipeline.measure.runinfo import add_result_options, write_result
from pipeline.stream.engine import StreamingEngine
from pipeline.video.frames import to_model, to_uint8
from pipeline.video.sequences import read_frames

RUNS = ((2, 16), (2, 5), (1, 16))  # (threads, chunk): the first is the reference


def child(args) -> None:
    """Restore ``args.clip`` in chunks of ``args.chunk`` with ``args.threads`` threads into ``args.out``."""
    torch.set_num_threads(args.threads)
    config = load_config(args.config, args.set)
    torch.manual_seed(0)
    model = CDVDTSP(config.model).eval()
    frames = to_model(torch.from_numpy(np.stack(list(read_frames(args.clip)))))  # (F, 3, H, W)
    engine = StreamingEngine(model, border=config.deblur.border, group=config.deblur.group)
    restored = torch.cat([to_uint8(out) for out in engine.run(frames.split(args.chunk))])  # (F, H, W, 3)
    np.save(args.out, restored.numpy())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=frame_size, default="128x192", help="WxH of the clip")
    parser.add_argument("--frames", type=int, default=12)
    add_result_options(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    config = load_config(args.config, args.set)
    width, height = args.size
    settings = sum((["--set", s] for s in args.set), ["--config", args.config] if args.config else [])
    outputs = {}
    with tempfile.TemporaryDirectory() as folder:
        clip = looped_clip(Path(folder) / "clip.mp4", args.frames, width, height)
        for threads, chunk in RUNS:
            out = Path(folder) / f"{threads}_{chunk}.npy"
            subprocess.run([sys.executable, __file__, "--child", "--clip", str(clip), "--out", str(out),
                            "--threads", str(threads), "--chunk", str(chunk), *settings], check=True,
                           env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            outputs[(threads, chunk)] = np.load(out).astype(int)
    reference = outputs[RUNS[0]]
    results = []
    for threads, chunk in RUNS[1:]:
        difference = np.abs(outputs[(threads, chunk)] - reference)
        results.append({"threads": threads, "chunk": chunk, "identical": bool(not difference.any()),
                        "pixels_differing": int(difference.any(axis=-1).sum()),
                        "pixels": int(np.prod(reference.shape[:-1])), "max_levels": int(difference.max())})
    table = Table(title=f"uint8 output against {RUNS[0][0]} threads, chunks of {RUNS[0][1]}: {args.size}, "
                        f"{args.frames} frames, group {config.deblur.group}")
    for column in ("threads", "chunk", "identical", "pixels differing", "largest difference (levels)"):
        table.add_column(column, justify="right")
    for row in results:
        table.add_row(str(row["threads"]), str(row["chunk"]), str(row["identical"]),
                      f"{row['pixels_differing']} of {row['pixels']}", str(row["max_levels"]))
    Console().print(table)
    write_result(args.json, "threads", torch.device("cpu"), argv,
                 {"size": str(args.size), "frames": args.frames, "group": config.deblur.group,
                  "model": vars(config.model), "reference": {"threads": RUNS[0][0], "chunk": RUNS[0][1]}},
                 results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
