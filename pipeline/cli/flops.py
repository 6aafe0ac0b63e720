"""Count multiply-accumulates per output frame (`pipeline.measure.flop_count`): official vs cached engine.

    python scripts/flops.py                      # 1280x720 and 256x256
    python scripts/flops.py --size 960x540 --set model.stages=3
    python scripts/flops.py --json benchmarks/results/flops.json
"""
import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP
from pipeline.cli import FrameSize, frame_size
from pipeline.config import load_config
from pipeline.measure.flop_count import count_macs
from pipeline.measure.runinfo import command_line, stamp


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", type=frame_size,
                        help="WxH (repeatable); default 1280x720 and 256x256")
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", type=Path, help="write the counts here")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    config = load_config(args.config, args.set)
    model = CDVDTSP(config.model).to("meta")
    table = Table(title=f"CDVD-TSP MACs per output frame (T={config.model.stages}, torch.utils.flop_counter)")
    for column in ("size", "official schedule", "cached engine", "cached / official",
                   "official, thop-style"):
        table.add_column(column, justify="right")
    rows = []
    for size in args.size or [FrameSize(1280, 720), FrameSize(256, 256)]:
        macs = count_macs(model, size.height, size.width)
        rows.append({"size": str(size), **macs, "cached_over_official": macs["cached"] / macs["official"]})
        table.add_row(str(size), f"{macs['official'] / 1e9:,.1f} G", f"{macs['cached'] / 1e9:,.1f} G",
                      f"{macs['cached'] / macs['official']:.3f}", f"{macs['thop'] / 1e9:,.1f} G")
    Console().print(table)
    if args.json:
        document = {**stamp(torch.device("cpu"), command_line(argv)), "model": config.model.__dict__,
                    "macs_per_output_frame": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
