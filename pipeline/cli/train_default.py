"""Train the default checkpoint from nothing downloaded: one command, a time budget, resumable at any point.

    python scripts/train_default.py --out runs/default                  # the recipe as configured
    python scripts/train_default.py --out runs/default --budget 540     # minutes; a GPU gets further
    python scripts/train_default.py --out runs/default                  # after a kill: resumes
    python scripts/train_default.py --out runs/default --budget 240     # later, bigger: stage 1 goes on
    python scripts/train_default.py --out runs/further --set train.init=model/weights/cdvd_tsp_default.pt
                                    # the shipped checkpoint trained further (its card goes into the new one)

Phases (each in its own folder under OUT, each resumed from its last checkpoint, skipped once done):

1. ``data``: the training set from the named sources (``scripts/build_training_set.py``; ``--packed`` on a
   machine without a package index);
2. ``flow``: PWC-Net pretrained on rendered motion with exact flow, from zero flow (``pretrain_flow.py``);
3. ``stage1``: the restoration net and the flow net trained as one stage (T = 1), Algorithm 1's first
   step, from the identity and the pretrained flow (``train.py``);
4. ``cascade``: the full shared-weight cascade (T = 2) from stage 1's weights (``train.py``);
5. ``export``: the validation clips scored before and after, by the cascade and by stage 1 alone (the better
   one is shipped; the card has both), and the flow net as ``pretrain_flow.py`` scores
   it (held-out rendered pairs, held-out footage); the weights stored in fp16 when that moves
   no clip by more than 0.05 dB; ``OUT/card.json`` (the model card's figures) and ``OUT/default.pt``;
   ``--install`` copies both to ``model/weights/cdvd_tsp_default.{pt,json}`` (what deblur loads by
   default, and the figures of the README's model card).

The budget (``recipe.minutes``) is shared by the training phases as ``recipe.*_share`` say; data
building and scoring come on top. Rerun with a bigger budget and stage 1 goes on to its new share (its
learning-rate schedule counts epochs, not the budget: the same schedule as a run given that budget at the
start) and the cascade starts again from the longer stage 1. Settings: ``configs/default_checkpoint.yaml``,
``--set`` overrides.
"""

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP, DEFAULT_CHECKPOINT, load_checkpoint, save_checkpoint
from pipeline.checkout import CONFIGS
from pipeline.cli import add_device_option, command_parser, fail
from pipeline.config import ConfigError, load_config
from pipeline.data.scored import frame_folder_videos
from pipeline.evaluation import score_restoration
from pipeline.measure.runinfo import command_line, stamp
from pipeline.runtime import compute_device
from pipeline.training.flow import score_flow

CONFIG = CONFIGS / "default_checkpoint.yaml"
FP16_TOLERANCE_DB = 0.05
# what export may ship, each phase's last weights with the number of stages it runs: the cascade (T = 2), or
# stage 1 alone (T = 1) when that scores better on the validation clips (as on the CPU recipe, where the short
# cascade phase does not catch up with stage 1)
CANDIDATES = {"cascade": 2, "stage1": 1}
# what the .pt carries: a run started from another checkpoint carries that one's card too, and so on back
CHECKPOINT_CARD = ("date", "commit", "phases", "shipped", "validation", "mean_gain_db", "started_from")
console = Console(stderr=True)


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder (every phase's state)")
    parser.add_argument("--config", type=Path, default=CONFIG, help=f"recipe config (default {CONFIG.name})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--budget", type=float, help="training minutes in all (= --set recipe.minutes=N)")
    add_device_option(parser)
    parser.add_argument("--packed", type=Path,
                        help="build the data from a folder of packed sources (build_training_set.py --pack)")
    parser.add_argument(
        "--install", action="store_true", help=f"copy the result and its card to {DEFAULT_CHECKPOINT.parent}"
    )
    return parser


def run(command: str, *arguments: str) -> None:
    """Run the command `pipeline.cli.<command>` in its own process; a failure stops the recipe (its state
    is kept)."""
    line = [sys.executable, "-m", f"pipeline.cli.{command}", *arguments]
    console.print(f"[dim]$ {' '.join(line)}[/]", soft_wrap=True, highlight=False)
    if subprocess.run(line).returncode:
        raise RuntimeError(f"{command} failed; rerun the same command to resume")


def phase_arguments(folder: Path, args, overrides: list[str]) -> list[str]:
    """The common arguments of a training phase: its folder, --resume once it has state, config, device."""
    resume = ["--resume"] if (folder / "last.pt").is_file() else ["--config", str(args.config)]
    device = ["--device", args.device] if args.device else []
    return ["--out", str(folder), *resume, *device, *[f"--set={item}" for item in overrides]]


def train_phase(folder: Path, args, overrides: list[str], minutes: float) -> bool:
    """One ``train.py`` phase of the recipe in ``folder`` for ``minutes`` of training in all; skipped when
    ``folder/done`` says it has had as many. A bigger budget resumes it. Returns whether it trained."""
    done = folder / "done"
    if done.is_file() and float(done.read_text()) >= minutes:
        return False
    run("train", *phase_arguments(folder, args, args.set + overrides + [f"train.max_minutes={minutes}"]))
    done.write_text(f"{minutes}\n")
    return True


def train_phases(args, config, out: Path) -> dict:
    recipe, data = config.recipe, out / "data"
    if not (data / "sources.json").is_file():
        shutil.rmtree(data, ignore_errors=True)  # a build that was cut off starts again
        packed = ["--packed", str(args.packed)] if args.packed else []
        run("build_training_set", "--out", str(data), *packed)
    minutes = {"flow": recipe.minutes * recipe.flow_share, "stage1": recipe.minutes * recipe.stage1_share}
    minutes["cascade"] = recipe.minutes - minutes["flow"] - minutes["stage1"]
    flow_weights = out / "flow" / "flow.pt"
    if minutes["flow"] > 0 and not flow_weights.is_file():
        run(
            "pretrain_flow",
            *phase_arguments(
                out / "flow",
                args,
                args.set
                + [
                    f"flow.photos={data / 'photos' / 'train'}",
                    f"flow.val_photos={data / 'photos' / 'val'}",
                    f"flow.footage={data / 'sequences' / 'train'}",
                    f"flow.val_footage={data / 'sequences' / 'val'}",
                    f"flow.max_minutes={minutes['flow']}",
                ],
            ),
        )
    shared = [f"train.data={data / 'sequences' / 'train'}", f"train.val_data={data / 'val'}"]
    stage1, cascade = out / "stage1", out / "cascade"
    stage1_weights = f"train.pwc_weights={flow_weights if flow_weights.is_file() else ''}"
    origin = stage1 / "started_from.json"
    if not (stage1 / "last.pt").is_file():  # what this stage 1 starts from, before a later --install moves it
        stage1.mkdir(parents=True, exist_ok=True)
        origin.write_text(json.dumps(started_from(config.train.init), indent=1))
    if train_phase(stage1, args, shared + ["model.stages=1", stage1_weights], minutes["stage1"]):
        shutil.rmtree(cascade, ignore_errors=True)  # it started from an earlier stage 1: start it again
    train_phase(cascade, args, shared + [
        "model.stages=2", f"train.init={stage1 / 'last.pt'}", f"train.lr={recipe.cascade_lr}",
        f"train.warmup={recipe.cascade_warmup}"], minutes["cascade"])
    progress = {}
    for name in ("stage1", "cascade"):
        saved = torch.load(out / name / "last.pt", map_location="cpu", weights_only=True)["progress"]
        progress[name] = {"steps": saved["step"], "minutes": round(saved["seconds"] / 60, 1)}
    if flow_weights.is_file():
        flow_run = json.loads((out / "flow" / "scores.json").read_text())
        progress["flow"] = {"steps": flow_run["steps"], "minutes": round(flow_run["seconds"] / 60, 1)}
    return progress


def mean_gain(rows: dict[str, dict[str, float]]) -> float:
    return sum(row["gain_db"] for row in rows.values()) / len(rows)


def score(model, videos, config, device) -> dict[str, dict[str, float]]:
    """Per validation folder: frames, input and output PSNR/SSIM and the gain, on its first
    ``recipe.export_frames`` frames."""
    inputs, outputs = score_restoration(model, videos, config.deblur, device, config.recipe.export_frames)
    rows = {}
    for (name, before), after in zip(inputs.per_video().items(), outputs.per_video().values()):
        rows[name] = {
            "frames": before.frames,
            "input_psnr": before.psnr,
            "psnr": after.psnr,
            "gain_db": after.psnr - before.psnr,
            "input_ssim": before.ssim,
            "ssim": after.ssim,
        }
    return rows


def started_from(init: str) -> dict | None:
    """What stage 1 starts from (``--set train.init=FILE``, e.g. the shipped checkpoint to train it further):
    the file and its card (None for a file this recipe did not export), or None for a run from nothing.
    Recorded in ``stage1/started_from.json`` at stage 1's first launch; the export reads it from there."""
    if not init:
        return None
    saved = torch.load(init, map_location="cpu", weights_only=True)
    return {"path": init, "card": saved.get("card") if isinstance(saved, dict) else None}


def started_from_record(out: Path) -> dict | None:
    """`started_from` as stage 1 recorded it (None for a run folder from before the record was kept)."""
    origin = out / "stage1" / "started_from.json"
    return json.loads(origin.read_text()) if origin.is_file() else None


def phase_model(out: Path, phase: str, config) -> CDVDTSP:
    """The last weights of ``phase``, run with the number of stages `CANDIDATES` gives it."""
    stages = CANDIDATES[phase]
    return load_checkpoint(out / phase / "last.pt", config=dataclasses.replace(config.model, stages=stages))


def export(args, config, out: Path, progress: dict, device: torch.device) -> dict:
    """Score each `CANDIDATES` phase's result in fp32 on the validation clips under the protocol's blurred
    conditions, take the best (the cascade on a tie), score it again with fp16-rounded weights; write
    OUT/default.pt and OUT/card.json. The test clips judge it afterwards (``benchmarks/held_out.py``)."""
    videos = frame_folder_videos(out / "data" / "val")
    candidates = {}
    for name, stages in CANDIDATES.items():
        rows = score(phase_model(out, name, config).to(device), videos, config, device)
        candidates[name] = {"stages": stages, "mean_gain_db": mean_gain(rows), "validation": rows}
    shipped = max(candidates, key=lambda name: candidates[name]["mean_gain_db"])
    fp32 = candidates[shipped]["validation"]
    # the weights rounded to fp16 and back, as an fp16 file would load
    model = phase_model(out, shipped, config).to(device).half().float()
    fp16 = score(model, videos, config, device)
    worst = max(abs(fp16[name]["psnr"] - fp32[name]["psnr"]) for name in fp32)
    data = out / "data"
    flow_sources = dataclasses.replace(
        config.flow, val_photos=str(data / "photos" / "val"), val_footage=str(data / "sequences" / "val")
    )
    flow = score_flow(model.flow.eval(), flow_sources, device, config.recipe.export_frames)
    store_fp16 = worst <= FP16_TOLERANCE_DB
    if not store_fp16:
        model = phase_model(out, shipped, config)
    card = {
        **stamp(device, command_line(None)),
        "phases": progress,
        "started_from": started_from_record(out),
        "shipped": shipped,
        "candidates": candidates,
        "flow": flow,
        "validation": fp32,
        "validation_fp16_weights": fp16,
        "fp16_worst_change_db": worst,
        "stored": "fp16" if store_fp16 else "fp32",
        "mean_gain_db": mean_gain(fp32),
        "data": json.loads((out / "data" / "sources.json").read_text()),
        "model": dataclasses.asdict(model.config),
    }
    weights = model.cpu().half() if store_fp16 else model.cpu()
    save_checkpoint(
        weights,
        out / "default.pt",
        card=json.loads(json.dumps({k: card[k] for k in CHECKPOINT_CARD})),
    )
    (out / "card.json").write_text(json.dumps(card, indent=1))
    return card


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    device = compute_device(args.device)
    started = time.perf_counter()
    try:
        config = load_config(args.config, args.set, values={"recipe.minutes": args.budget})
        args.out.mkdir(parents=True, exist_ok=True)
        progress = train_phases(args, config, args.out)
        card = export(args, config, args.out, progress, device)
    except (ConfigError, RuntimeError, ValueError, OSError) as error:
        return fail(console, error)
    table = Table(title=f"validation clips, {card['stored']} weights ({args.out / 'default.pt'})")
    for column in ("clip", "frames", "input PSNR", "output PSNR", "gain", "input SSIM", "output SSIM"):
        table.add_column(column, justify="left" if column == "clip" else "right")
    for name, row in card["validation"].items():
        table.add_row(
            name,
            str(row["frames"]),
            f"{row['input_psnr']:.2f}",
            f"{row['psnr']:.2f}",
            f"{row['gain_db']:+.2f}",
            f"{row['input_ssim']:.4f}",
            f"{row['ssim']:.4f}",
        )
    Console().print(table)
    Console().print(
        f"mean gain {card['mean_gain_db']:+.2f} dB; phases {json.dumps(card['phases'])}; "
        f"this call {(time.perf_counter() - started) / 60:.1f} min"
    )
    if args.install:
        DEFAULT_CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "default.pt", DEFAULT_CHECKPOINT)
        shutil.copyfile(args.out / "card.json", DEFAULT_CHECKPOINT.with_suffix(".json"))
        Console().print(
            f"installed {DEFAULT_CHECKPOINT} and its card {DEFAULT_CHECKPOINT.with_suffix('.json').name}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
