"""PWC-Net's correlation as one fused kernel (``--compile correlation``) against the pure version's 81
multiply-mean pairs: each pyramid level of a frame size, and the whole flow net on one pair of frames.

    python benchmarks/correlation.py --json benchmarks/results/correlation_cpu.json

The fused kernel is one inductor compile with dynamic shapes (`pipeline.compiling`); its compile time is
reported apart. Each configuration is timed ``--repeats`` times in turns with the other (background load
hits both alike); medians, and the ratio of the medians. Every fused output is checked against the pure
one (largest difference).
"""
import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP, ModelConfig, pad_to_multiple
from model.correlation import correlation
from model.pwc import PYRAMID_CHANNELS
from pipeline.cli import frame_size
from pipeline.compiling import compile_model
from pipeline.measure.runinfo import write_document
from pipeline.measure.timing import interleaved_medians

CPU = torch.device("cpu")  # these comparisons are CPU measurements


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--size", type=frame_size, default="1280x720", help="WxH of the frames")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def level_rows(fused, padded_h: int, padded_w: int, repeats: int, generator) -> list[dict]:
    """Pure vs fused correlation on random features of each pyramid level's shape (batch 1)."""
    rows = []
    for level in range(2, 7):
        shape = (1, PYRAMID_CHANNELS[level - 1], padded_h >> level, padded_w >> level)
        pair = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
        runs = {"pure": partial(correlation, *pair), "fused": partial(fused, *pair)}
        seconds = interleaved_medians(runs, repeats, CPU)
        rows.append({"level": level, "shape": list(shape), **seconds,
                     "speedup": seconds["pure"] / seconds["fused"],
                     "max_abs": (fused(*pair) - correlation(*pair)).abs().max().item()})
    return rows


def flow_row(model: CDVDTSP, frames: torch.Tensor, repeats: int) -> dict:
    """The flow net on one pair of frames with the pure correlation (a copy of ``model``) vs ``model``'s."""
    pure = CDVDTSP(ModelConfig()).eval()
    pure.load_state_dict(model.state_dict())
    pair = frames[:1], frames[1:]
    runs = {"pure": partial(pure.flow, *pair), "fused": partial(model.flow, *pair)}
    seconds = interleaved_medians(runs, repeats, CPU)
    return {**seconds, "speedup": seconds["pure"] / seconds["fused"],
            "max_abs": (model.flow(*pair) - pure.flow(*pair)).abs().max().item()}


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    width, height = args.size
    generator = torch.Generator().manual_seed(0)
    model = CDVDTSP(ModelConfig()).eval()  # the published flow net (random weights: speed does not care)
    with torch.inference_mode():
        frames = pad_to_multiple(torch.rand(2, 3, height, width, generator=generator), 64)
        padded_h, padded_w = frames.shape[-2:]
        began = time.perf_counter()
        compile_model(model, "correlation")
        fused = model.flow.decoders[0].cost_volume.kernel
        fused(frames[:1], frames[1:])  # the one compile, with dynamic shapes, and its first call
        compile_seconds = time.perf_counter() - began
        rows = level_rows(fused, padded_h, padded_w, args.repeats, generator)
        flow = flow_row(model, frames, args.repeats)
    threads = torch.get_num_threads()
    table = Table(title=f"correlation at {width}x{height}, {threads} threads: seconds (median)")
    for column in ("level", "shape", "pure", "fused", "speedup", "max diff"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["level"]), "x".join(map(str, row["shape"])), f"{row['pure']:.4f}",
                      f"{row['fused']:.4f}", f"{row['speedup']:.2f}x", f"{row['max_abs']:.1e}")
    table.add_row("flow net", f"{padded_w}x{padded_h} pair", f"{flow['pure']:.3f}", f"{flow['fused']:.3f}",
                  f"{flow['speedup']:.2f}x", f"{flow['max_abs']:.1e}")
    Console().print(table)
    Console().print(f"compile and first call: {compile_seconds:.1f} s")
    write_document(args.json, "correlation", CPU, argv,
                   {"size": [width, height], "threads": threads, "repeats": args.repeats,
                    "compile_seconds": compile_seconds, "levels": rows, "flow_net": flow})
    return 0


if __name__ == "__main__":
    sys.exit(main())
