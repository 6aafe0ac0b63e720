"""What skipping a zero-flow PWC-Net saves: the default checkpoint's training steps and deblurring, with the
skip (`PWCNet.emits_zero_flow`) and with the zero flow computed.

    python benchmarks/zero_flow.py --json benchmarks/results/zero_flow_cpu.json

Training: forward (bf16 autocast) and backward of the recipe's stage 1 (T=1) and cascade (T=2) at its
batch and crop (`configs/default_checkpoint.yaml`), PWC-Net frozen at zero flow as the recipe keeps it.
Deblurring: the streaming engine (fp32) over ``--frames`` frames at ``--size`` with the default
checkpoint. Each configuration is timed ``--repeats`` times in turns with the other (background load hits
both alike); medians, and the ratio of the medians. The outputs of both are checked to be equal.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP, default_checkpoint, load_checkpoint
from model.init import identity_restoration_, zero_flow_
from pipeline.checkout import CONFIGS
from pipeline.cli import frame_size
from pipeline.config import load_config
from pipeline.measure.runinfo import write_document
from pipeline.measure.timing import interleaved_medians
from pipeline.stream.engine import StreamingEngine

CPU = torch.device("cpu")  # these comparisons are CPU measurements


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8, help="frames deblurred per repeat")
    parser.add_argument("--size", type=frame_size, default="320x180", help="WxH of the deblurred frames")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


class ComputedFlow:
    """Within the block, ``model`` computes its zero flow through PWC-Net as before the skip."""

    def __init__(self, model: CDVDTSP) -> None:
        self.flow = model.flow

    def __enter__(self) -> None:
        self.flow.emits_zero_flow = lambda: False

    def __exit__(self, *exc) -> None:
        del self.flow.emits_zero_flow


def training_step(config, stages: int, repeats: int) -> dict:
    """Stage-``stages`` training steps of the recipe, PWC-Net frozen at zero flow, skipped vs computed."""
    train = config.train
    model = CDVDTSP(dataclasses.replace(config.model, stages=stages))
    zero_flow_(model.flow)
    identity_restoration_(model)
    model.flow.requires_grad_(False)
    clips = torch.rand(train.batch, 2 * stages + 1, 3, train.crop, train.crop,
                       generator=torch.Generator().manual_seed(0))

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = model.forward_stages(clips)
        sum(output.float().abs().mean() for output in outputs).backward()

    def computed():
        with ComputedFlow(model):
            step()

    seconds = interleaved_medians({"skipped": step, "computed": computed}, repeats, CPU)
    return {"seconds_per_step": seconds, "speedup": seconds["computed"] / seconds["skipped"]}


def training_steps(repeats: int) -> dict:
    config = load_config(CONFIGS / "default_checkpoint.yaml")
    return {f"T={stages}": training_step(config, stages, repeats) for stages in (1, config.model.stages)}


def deblurring(repeats: int, frames: int, width: int, height: int) -> dict:
    model = load_checkpoint(default_checkpoint()).eval()
    video = torch.rand(frames, 3, height, width, generator=torch.Generator().manual_seed(0))
    engine = StreamingEngine(model)
    outputs = {}

    def run(name):
        outputs[name] = torch.cat(list(engine.run(video.split(4))))

    def computed():
        with ComputedFlow(model):
            run("computed")

    seconds = interleaved_medians({"skipped": lambda: run("skipped"), "computed": computed}, repeats, CPU)
    return {"frames": frames, "size": f"{width}x{height}",
            "seconds_per_frame": {name: value / frames for name, value in seconds.items()},
            "speedup": seconds["computed"] / seconds["skipped"],
            "same_output": bool(torch.equal(outputs["skipped"], outputs["computed"]))}


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    width, height = args.size
    result = {"threads": torch.get_num_threads(),
              "training": training_steps(args.repeats),
              "deblurring": deblurring(args.repeats, args.frames, width, height)}
    table = Table(title="zero-flow PWC-Net: skipped vs computed (medians)")
    for column in ("what", "skipped", "computed", "speedup"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for name, row in result["training"].items():
        seconds = row["seconds_per_step"]
        table.add_row(f"training step {name}", f"{seconds['skipped']:.3f} s", f"{seconds['computed']:.3f} s",
                      f"{row['speedup']:.2f}x")
    row = result["deblurring"]
    table.add_row(f"deblur, s per {row['size']} frame", f"{row['seconds_per_frame']['skipped']:.3f} s",
                  f"{row['seconds_per_frame']['computed']:.3f} s", f"{row['speedup']:.2f}x")
    Console(stderr=True).print(table)
    if not row["same_output"]:
        raise SystemExit("the skipped and computed outputs differ")
    write_document(args.json, "zero_flow", CPU, argv, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
