"""Count multiply-accumulates per output frame, measured by ``torch.utils.flop_counter`` on the meta device.

Published tables count with thop's convention (bias included, transposed convs over output pixels);
that column is shown too. Two schedules: the official one (every output frame runs the whole 2T+1-frame cascade: 8 PWC-Net and 4
restoration calls at T=2) and the cached streaming engine's steady state (each frame's stage results and
pyramids computed once: the marginal cost of one more position per stage, times T).

    python scripts/flops.py                      # 1280x720 and 256x256
    python scripts/flops.py --size 960x540 --set model.stages=3
"""
import argparse

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from model import CDVDTSP
from pipeline.config import load_config


def _thop_style(model: torch.nn.Module, fn, *args) -> float:
    """The convention of the published tables (thop): every conv, transposed ones included, counted as
    output elements x (C_in/groups x k x k + 1 for the bias)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += output.numel() * (module.in_channels // module.groups * module.kernel_size[0]
                                   * module.kernel_size[1] + (module.bias is not None))

    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    handles = [m.register_forward_hook(hook) for m in convs]
    try:
        with torch.no_grad():
            fn(*args)
    finally:
        for handle in handles:
            handle.remove()
    return total


def _macs(fn, *args) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops() / 2  # the counter reports FLOPs = 2 x MACs


def count(model: CDVDTSP, height: int, width: int) -> dict[str, float]:
    """MACs per output frame at (height, width) for the official and the cached schedules."""
    def frames(n):
        return torch.empty(1, n, 3, height, width, device="meta")

    official = _macs(model, frames(model.config.window))
    marginal = _macs(model.stage, frames(4)) - _macs(model.stage, frames(3))  # one more restored position
    return {"official": official, "cached": marginal * model.config.stages,
            "thop": _thop_style(model, model, frames(model.config.window))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", help="WxH (repeatable); default 1280x720 and 256x256")
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    model = CDVDTSP(config.model).to("meta")
    table = Table(title=f"CDVD-TSP MACs per output frame (T={config.model.stages}, torch.utils.flop_counter)")
    for column in ("size", "official schedule", "cached engine", "cached / official",
                   "official, thop-style"):
        table.add_column(column, justify="right")
    for size in args.size or ["1280x720", "256x256"]:
        width, height = (int(v) for v in size.lower().split("x"))
        macs = count(model, height, width)
        table.add_row(size, f"{macs['official'] / 1e9:,.1f} G", f"{macs['cached'] / 1e9:,.1f} G",
                      f"{macs['cached'] / macs['official']:.3f}", f"{macs['thop'] / 1e9:,.1f} G")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
