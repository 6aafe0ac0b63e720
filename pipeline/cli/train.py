"""Train CDVD-TSP with the paper's recipe: L1 + 2 x hard example mining on stage 1 and the final output.

    python scripts/train.py --out runs/dvd --set train.data=data/dvd/manifest.json
    python scripts/train.py --out runs/dvd --resume                 # continue exactly where it stopped
    torchrun --nproc-per-node 8 scripts/train.py --out runs/dvd --set train.data=...   # DDP, one GPU each

The run folder holds ``config.yaml`` (resolved), ``last.pt`` (everything needed to resume: model, optimiser,
scheduler, step, epoch, batch within the epoch, RNG), ``step_N.pt`` project checkpoints that `deblur` and
`evaluate` load, and ``log.jsonl`` (one JSON object per logged step and per validation).
"""
import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel

from model import CDVDTSP, CheckpointError, save_checkpoint
from pipeline.cli import add_device_option, command_parser, fail
from pipeline.config import Config, ConfigError
from pipeline.data.loaders import training_loader, validation_videos
from pipeline.data.scored import Video
from pipeline.distributed import Process, barrier, close_process, gather, init_process
from pipeline.evaluation import score_restoration
from pipeline.training.run_folder import Clock, RunFolder
from pipeline.training.steps import (
    Schedule,
    TrainForward,
    build_optimizer,
    initialise,
    restore_rng,
    rng_state,
    save_state,
    train_step,
)

console = Console(stderr=True)


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, config)")
    parser.add_argument("--config", type=Path, help="YAML config (default: configs/default.yaml values)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    add_device_option(parser)
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    process, device = init_process(args.device)
    try:
        folder = RunFolder(args.out, resume=args.resume)
        config = run_config(folder, args)
        run = start_run(config, folder, process, device)
        train(run, config, folder, process, device)
        finish(run, config, folder)
    except (ConfigError, CheckpointError, ValueError, OSError) as error:
        return fail(console, error)
    finally:
        close_process()
    return 0


def run_config(folder: RunFolder, args) -> Config:
    """The config: on --resume the run's own (so a resume cannot drift), --set still applied on top."""
    config = folder.config(args.config, args.set)
    if not config.train.data:
        raise ValueError("no training data: --set train.data=MANIFEST.json (or a frame root with "
                         "train.loader=png)")
    return config


@dataclass
class Run:
    """What a training run carries from step to step; ``progress`` is what ``last.pt`` records of it."""

    model: CDVDTSP
    net: torch.nn.Module  # `TrainForward`, in DDP when there are several processes
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    generator: torch.Generator  # hard-example mining's random share, on the device
    progress: dict  # step, epoch, batch within the epoch, trained seconds
    main: bool  # rank 0: logs, validates and saves


def start_run(config: Config, folder: RunFolder, process: Process, device: torch.device) -> Run:
    """A new run from `initialise`'s weights, or the saved one with --resume, on ``device``."""
    torch.manual_seed(config.train.seed + process.rank)
    model = CDVDTSP(config.model)
    if not folder.resume:
        initialise(model, config.train)
    model = model.to(device)
    optimizer, schedule = build_optimizer(model, config.train)
    generator = torch.Generator(device=device).manual_seed(config.train.seed * 1000 + process.rank)
    progress = {"step": 0, "epoch": 0, "batch": 0, "seconds": 0.0}
    if folder.resume:
        saved = folder.load_last(device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["scheduler"])
        progress = {"seconds": 0.0, **saved["progress"]}
        restore_rng(saved["rng"], generator, process.rank, process.world_size, device)
    if process.main:
        folder.keep_config(config)
    net = TrainForward(model)
    if process.world_size > 1:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return Run(model, net, optimizer, schedule, generator, progress, process.main)


def train(run: Run, config: Config, folder: RunFolder, process: Process, device: torch.device) -> None:
    """Epochs of steps until ``train.epochs``, ``train.max_steps`` or ``train.max_minutes``; a resumed run
    skips the batches of its epoch that were done (same order and augmentation)."""
    settings, progress = config.train, run.progress
    loader = training_loader(settings, config.blur, config.model.window, rank=process.rank,
                             world_size=process.world_size, device=device)
    videos = validation_videos(settings) if run.main else []
    clock = Clock(settings.max_minutes, progress, process.world_size, device, agree_every=settings.log_every)
    total = settings.max_steps or settings.epochs * len(loader)
    run.model.train()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=console,
                  disable=not run.main) as bar:
        task = bar.add_task("train", total=total, completed=progress["step"], status="")
        rate = Rate()
        while progress["epoch"] < settings.epochs and not clock.finished(settings.max_steps):
            loader.set_epoch(progress["epoch"])
            for index, (blurred, sharp) in enumerate(loader):
                if index < progress["batch"]:
                    continue
                blurred, sharp = blurred.to(device, non_blocking=True), sharp.to(device, non_blocking=True)
                loss, parts = train_step(run.net, run.optimizer, blurred, sharp, settings, run.generator,
                                         device)
                run.schedule.step()
                progress["step"], progress["batch"] = progress["step"] + 1, index + 1
                rate.count()
                step = progress["step"]
                if step % settings.log_every == 0 or step == settings.max_steps:
                    record = rate.record(step, progress["epoch"], loss, parts, run.optimizer,
                                         settings.batch * process.world_size)
                    if run.main:
                        folder.log(record)
                    bar.update(task, status=f"loss {record['loss']:.4f} · {record['it_s']:.2f} it/s · "
                                            f"{record['samples_s']:.1f} samples/s")
                bar.update(task, completed=step)
                if step % settings.checkpoint_every == 0:
                    save(run, config, folder, step_file=True)
                if run.main and videos and step % settings.val_every == 0:
                    validate(run, videos, config, device, folder, step)
                if step % settings.checkpoint_every == 0 or step % settings.val_every == 0:
                    barrier()  # the others wait here, under the process group's timeout, while rank 0 works
                if clock.finished(settings.max_steps):
                    break
            else:
                progress["epoch"] += 1
                progress["batch"] = 0
                run.schedule.end_epoch()


class Rate:
    """Steps per second since the last logged step."""

    def __init__(self) -> None:
        self.start, self.steps = time.perf_counter(), 0

    def count(self) -> None:
        self.steps += 1

    def record(self, step: int, epoch: int, loss: torch.Tensor, parts: dict, optimizer,
               samples: int) -> dict:
        """The log line of ``step`` (the only place the loss leaves the device); restarts the count."""
        elapsed = time.perf_counter() - self.start
        record = {"step": step, "epoch": epoch, "loss": loss.item(),
                  **{name: part.item() for name, part in parts.items()},
                  "lr": optimizer.param_groups[0]["lr"], "it_s": self.steps / elapsed,
                  "samples_s": self.steps * samples / elapsed}
        self.start, self.steps = time.perf_counter(), 0
        return record


def validate(run: Run, videos: list[Video], config: Config, device: torch.device, folder: RunFolder,
             step: int) -> None:
    """Mean PSNR/SSIM (official protocol) of the input and of the restored frames over the held-out
    videos (their first ``train.val_frames``), logged and printed."""
    inputs, outputs = score_restoration(run.model, videos, config.deblur, device,
                                        config.train.val_frames or None)
    run.model.train()
    before, after = inputs.overall(), outputs.overall()
    scores = {"input_psnr": before.psnr, "input_ssim": before.ssim, "psnr": after.psnr, "ssim": after.ssim}
    folder.log({"step": step, "validation": scores})
    console.print(f"step {step}: validation PSNR {scores['psnr']:.2f} dB (input {scores['input_psnr']:.2f}), "
                  f"SSIM {scores['ssim']:.4f}")


def save(run: Run, config: Config, folder: RunFolder, *, step_file: bool) -> None:
    """``last.pt`` (and ``step_N.pt``); every rank takes part (their random states are gathered)."""
    rngs = gather(rng_state(run.generator))
    if run.main:
        save_state(folder.last, run.model, run.optimizer, run.schedule, run.progress, rngs, config)
        if step_file:
            save_checkpoint(run.model, folder.path / f"step_{run.progress['step']}.pt")


def finish(run: Run, config: Config, folder: RunFolder) -> None:
    save(run, config, folder, step_file=True)
    if run.main:
        step = run.progress["step"]
        console.print(f"saved {folder.path / f'step_{step}.pt'} after {step} steps")


if __name__ == "__main__":
    sys.exit(main())
