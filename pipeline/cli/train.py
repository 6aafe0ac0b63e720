"""Train CDVD-TSP with the paper's recipe: L1 + 2 x hard example mining on stage 1 and the final output.

    python scripts/train.py --out runs/dvd --set train.data=data/dvd/manifest.json
    python scripts/train.py --out runs/dvd --resume                 # continue exactly where it stopped
    torchrun --nproc-per-node 8 scripts/train.py --out runs/dvd --set train.data=...   # DDP, one GPU each

The run folder holds ``config.yaml`` (resolved), ``last.pt`` (everything needed to resume: model, optimiser,
scheduler, step, epoch, batch within the epoch, RNG), ``step_N.pt`` project checkpoints that `deblur` and
`evaluate` load, and ``log.jsonl`` (one JSON object per logged step and per validation).
"""
import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel

from model import CDVDTSP, CheckpointError, save_checkpoint
from pipeline.cli import command_parser, fail
from pipeline.config import Config, ConfigError, dump_config, load_config
from pipeline.data.loaders import training_loader, validation_videos
from pipeline.data.scored import Video
from pipeline.distributed import Process, barrier, close_process, gather, init_process
from pipeline.evaluation import score_restoration
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
    parser.add_argument("--device", help="cpu or cuda:N (default: this rank's GPU, else cpu)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    process, device = init_process(args.device)
    try:
        config = run_config(args)
        run = start_run(config, args, process, device)
        train(run, config, args.out, process, device)
        finish(run, config, args.out)
    except (ConfigError, CheckpointError, ValueError, OSError) as error:
        return fail(console, error)
    finally:
        close_process()
    return 0


def run_config(args) -> Config:
    """The config: on --resume the run's own (so a resume cannot drift), --set still applied on top."""
    if args.resume:
        if not (args.out / "last.pt").is_file():
            raise ValueError(f"{args.out / 'last.pt'}: nothing to resume")
        config = load_config(args.out / "config.yaml", args.set)
    else:
        config = load_config(args.config, args.set)
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


def start_run(config: Config, args, process: Process, device: torch.device) -> Run:
    """A new run from `initialise`'s weights, or the saved one with --resume, on ``device``."""
    torch.manual_seed(config.train.seed + process.rank)
    model = CDVDTSP(config.model)
    if not args.resume:
        initialise(model, config.train)
    model = model.to(device)
    optimizer, schedule = build_optimizer(model, config.train)
    generator = torch.Generator(device=device).manual_seed(config.train.seed * 1000 + process.rank)
    progress = {"step": 0, "epoch": 0, "batch": 0, "seconds": 0.0}
    if args.resume:
        saved = torch.load(args.out / "last.pt", map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["scheduler"])
        progress = {"seconds": 0.0, **saved["progress"]}
        restore_rng(saved["rng"], generator, process.rank, process.world_size, device)
    if process.main:
        args.out.mkdir(parents=True, exist_ok=True)
        dump_config(config, args.out / "config.yaml")
    net = TrainForward(model)
    if process.world_size > 1:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return Run(model, net, optimizer, schedule, generator, progress, process.main)


def train(run: Run, config: Config, out: Path, process: Process, device: torch.device) -> None:
    """Epochs of steps until ``train.epochs``, ``train.max_steps`` or ``train.max_minutes``; a resumed run
    skips the batches of its epoch that were done (same order and augmentation)."""
    settings, progress = config.train, run.progress
    loader = training_loader(settings, config.blur, config.model.window, rank=process.rank,
                             world_size=process.world_size, device=device)
    videos = validation_videos(settings) if run.main else []
    clock = Clock(settings.max_minutes, progress, process.world_size, device, agree_every=settings.log_every)
    log = (out / "log.jsonl").open("a") if run.main else None
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
                    write_log(log, record)
                    bar.update(task, status=f"loss {record['loss']:.4f} · {record['it_s']:.2f} it/s · "
                                            f"{record['samples_s']:.1f} samples/s")
                bar.update(task, completed=step)
                if step % settings.checkpoint_every == 0:
                    save(run, config, out, step_file=True)
                if run.main and videos and step % settings.val_every == 0:
                    validate(run, videos, config, device, log, step)
                if step % settings.checkpoint_every == 0 or step % settings.val_every == 0:
                    barrier()  # the others wait here, under the process group's timeout, while rank 0 works
                if clock.finished(settings.max_steps):
                    break
            else:
                progress["epoch"] += 1
                progress["batch"] = 0
                run.schedule.end_epoch()
    if log:
        log.close()


class Clock:
    """The run's trained seconds, resumes included (``progress["seconds"]``), against ``max_minutes``.

    With several processes every rank must stop at the same step (or DDP would hang), so they agree by an
    all-reduce; that waits for the device, so it runs only every ``agree_every`` steps, not every step.
    """

    def __init__(self, max_minutes: float, progress: dict, world_size: int, device: torch.device,
                 agree_every: int) -> None:
        self.budget, self.progress = max_minutes * 60, progress
        self.world_size, self.device, self.agree_every = world_size, device, agree_every
        self.start = time.perf_counter() - progress["seconds"]

    def finished(self, max_steps: int) -> bool:
        """Out of steps or of time."""
        self.progress["seconds"] = time.perf_counter() - self.start
        out_of_time = bool(self.budget) and self.progress["seconds"] >= self.budget
        if self.budget and self.world_size > 1:
            if self.progress["step"] % self.agree_every:
                out_of_time = False
            else:
                flag = torch.tensor(float(out_of_time), device=self.device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                out_of_time = bool(flag.item())
        return bool(max_steps and self.progress["step"] >= max_steps) or out_of_time


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


def write_log(log, record: dict) -> None:
    if log:
        log.write(json.dumps(record) + "\n")
        log.flush()


def validate(run: Run, videos: list[Video], config: Config, device: torch.device, log, step: int) -> None:
    """Mean PSNR/SSIM (official protocol) of the input and of the restored frames over the held-out
    videos (their first ``train.val_frames``), logged and printed."""
    inputs, outputs = score_restoration(run.model, videos, config.deblur, device,
                                        config.train.val_frames or None)
    run.model.train()
    before, after = inputs.overall(), outputs.overall()
    scores = {"input_psnr": before.psnr, "input_ssim": before.ssim, "psnr": after.psnr, "ssim": after.ssim}
    write_log(log, {"step": step, "validation": scores})
    console.print(f"step {step}: validation PSNR {scores['psnr']:.2f} dB (input {scores['input_psnr']:.2f}), "
                  f"SSIM {scores['ssim']:.4f}")


def save(run: Run, config: Config, out: Path, *, step_file: bool) -> None:
    """``last.pt`` (and ``step_N.pt``); every rank takes part (their random states are gathered)."""
    rngs = gather(rng_state(run.generator))
    if run.main:
        save_state(out / "last.pt", run.model, run.optimizer, run.schedule, run.progress, rngs, config)
        if step_file:
            save_checkpoint(run.model, out / f"step_{run.progress['step']}.pt")


def finish(run: Run, config: Config, out: Path) -> None:
    save(run, config, out, step_file=True)
    if run.main:
        step = run.progress["step"]
        console.print(f"saved {out / f'step_{step}.pt'} after {step} steps")


if __name__ == "__main__":
    sys.exit(main())
