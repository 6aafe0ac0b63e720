"""The held-out gain along a recipe run: its phases' saved ``step_N.pt`` scored as the recipe's export
scores them (every frame of each held-out clip; stage 1 alone at T = 1, the cascade at T = 2).

    python benchmarks/checkpoint_curve.py --run runs/default2 --stage1 7343 13582 --cascade 1000 \\
        --json benchmarks/results/checkpoint_curve_cpu.json

Shows where more steps of a phase still pay and whether the cascade catches up with stage 1.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from model import load_checkpoint
from pipeline.cli.train_default import CANDIDATES, CONFIG, mean_gain, score
from pipeline.config import load_config
from pipeline.data.scored import frame_folder_videos
from pipeline.measure.runinfo import write_document


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--run", type=Path, required=True, help="a train_default.py run folder")
    for phase in CANDIDATES:
        parser.add_argument(f"--{phase}", type=int, nargs="*", default=[], metavar="STEP",
                            help=f"steps of {phase}/step_STEP.pt to score")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    config = load_config(CONFIG, [])
    videos = frame_folder_videos(args.run / "data" / "val")
    device = torch.device("cpu")
    rows = []
    for phase, stages in CANDIDATES.items():
        for step in getattr(args, phase):
            model = load_checkpoint(args.run / phase / f"step_{step}.pt",
                                    config=dataclasses.replace(config.model, stages=stages))
            clips = score(model.eval(), videos, config, device)
            rows.append({"phase": phase, "stages": stages, "step": step, "mean_gain_db": mean_gain(clips),
                         "gain_db": {name: clip["gain_db"] for name, clip in clips.items()}})
            Console(stderr=True).print(f"{phase} step {step}: {rows[-1]['mean_gain_db']:+.3f} dB")
    table = Table(title=f"held-out gain (dB) along {args.run}")
    names = list(rows[0]["gain_db"]) if rows else []
    for column in ("phase", "T", "step", *names, "mean"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for row in rows:
        table.add_row(row["phase"], str(row["stages"]), str(row["step"]),
                      *[f"{row['gain_db'][name]:+.2f}" for name in names], f"{row['mean_gain_db']:+.3f}")
    Console().print(table)
    write_document(args.json, "checkpoint_curve", device, argv, {"run": str(args.run), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
