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
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel

from model import CDVDTSP, CheckpointError, load_checkpoint, load_pwc_weights, save_checkpoint
from model.init import identity_restoration_, zero_flow_
from pipeline.config import ConfigError, TrainConfig, dump_config, load_config
from pipeline.datasets import Manifest, PngWindowDataset, discover_frame_pairs
from pipeline.distributed import Process, barrier, close_process, gather, init_process
from pipeline.framesource import read_frames
from pipeline.pairs import split_pair
from pipeline.scoring import frame_folder_videos, score_restoration
from pipeline.train_loader import LoaderConfig, PairedVideoLoader, dali_device_id
from pipeline.training import TrainForward, build_optimizer, train_step

console = Console(stderr=True)


def make_loader(train: TrainConfig, frames: int, process: Process, device: torch.device):
    """Batches of (blurred, sharp) windows, (B, 2T+1, 3, crop, crop), sharded by rank; ``set_epoch`` each epoch."""
    if train.loader == "dali":
        config = LoaderConfig(frames=frames, crop=train.crop, batch_size=train.batch, step=train.step,
                              seed=train.seed, max_frames=train.max_frames)
        return PairedVideoLoader(Manifest.load(train.data), "train", config, rank=process.rank,
                                 world_size=process.world_size,
                                 device_id=dali_device_id(device))
    dataset = PngWindowDataset(discover_frame_pairs(train.data), frames=frames, crop=train.crop, seed=train.seed,
                               max_frames=train.max_frames)
    sampler = torch.utils.data.DistributedSampler(dataset, process.world_size, process.rank, seed=train.seed,
                                                  drop_last=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=train.batch, sampler=sampler, drop_last=True,
                                         num_workers=train.workers, pin_memory=device.type == "cuda",
                                         persistent_workers=False)

    class EpochLoader:  # one set_epoch for both the sampler's order and the dataset's augmentation
        def set_epoch(self, epoch):
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)

        def __len__(self):
            return len(loader)

        def __iter__(self):
            return iter(loader)

    return EpochLoader()


def held_out(train: TrainConfig) -> list[tuple[str, object, object]]:
    """Validation videos as (name, blurred frames factory, sharp frames factory); empty when there are none."""
    if train.loader == "dali":
        manifest = Manifest.load(train.val_data or train.data)
        splits = {v.split for v in manifest.videos}
        split = "val" if "val" in splits else ("test" if "test" in splits else None)
        if split is None or (not train.val_data and split == "train"):
            return []
        videos = []
        for video in manifest.split(split):
            path = manifest.video_path(video)
            videos.append((video.name, lambda p=path: (split_pair(f)[0] for f in read_frames(p)),
                           lambda p=path: (split_pair(f)[1] for f in read_frames(p))))
        return videos
    if not train.val_data:
        return []
    return frame_folder_videos(train.val_data)


def validate(model: CDVDTSP, videos, config, device) -> dict[str, float]:
    """Mean PSNR/SSIM (official protocol) of the input and of the restored frames over the held-out videos."""
    inputs, outputs = score_restoration(model, videos, config.deblur, device, config.train.val_frames or None)
    model.train()
    before, after = inputs.overall(), outputs.overall()
    return {"input_psnr": before.psnr, "input_ssim": before.ssim, "psnr": after.psnr, "ssim": after.ssim}


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """This rank's random state: torch's, the hard-example generator's and CUDA's where there is one."""
    cuda = {"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {}
    return {"torch": torch.get_rng_state(), "hem": generator.get_state(), **cuda}


def restore_rng(saved: dict, generator: torch.Generator, process: Process, device: torch.device) -> None:
    """This rank's own random state from ``last.pt`` (``saved["ranks"]``, one per rank). A run resumed on
    another number of ranks keeps the fresh per-rank seeds instead."""
    ranks = saved.get("ranks", [saved])  # a single-process run saved before per-rank states: one state
    if len(ranks) != process.world_size:
        console.print(f"[yellow]warning:[/] last.pt holds random states for {len(ranks)} rank(s), this "
                      f"run has {process.world_size}: data augmentation and sampling start from fresh seeds")
        return
    mine = ranks[process.rank]
    torch.set_rng_state(mine["torch"].cpu())
    generator.set_state(mine["hem"].cpu())
    if "cuda" in mine and device.type == "cuda":
        torch.cuda.set_rng_state(mine["cuda"].cpu())


def save_state(path: Path, model, optimizer, scheduler, state: dict, rngs: list[dict], config) -> None:
    """Everything a resume needs, as a project checkpoint (deblur/evaluate load it too); ``rngs`` holds
    every rank's random state, in rank order."""
    save_checkpoint(model, path, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                    progress=dict(state), rng={"ranks": rngs},
                    train_config=json.loads(json.dumps(config.train.__dict__)))


def initialise(model: CDVDTSP, train: TrainConfig) -> None:
    """The weights a new run starts from: ``train.start``, then ``train.pwc_weights``, then ``train.init``."""
    if train.start == "identity":
        zero_flow_(model.flow)
        if model.config.residual:
            identity_restoration_(model)
    if train.pwc_weights:
        load_pwc_weights(model, train.pwc_weights)
    if train.init:
        model.load_state_dict(load_checkpoint(train.init, config=model.config).state_dict())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, config)")
    parser.add_argument("--config", type=Path, help="YAML config (default: configs/default.yaml values)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--device", help="cpu or cuda:N (default: this rank's GPU, else cpu)")
    args = parser.parse_args(argv)
    process, device = init_process(args.device)
    try:
        return train(args, process, device)
    except (ConfigError, CheckpointError, ValueError, OSError) as error:
        console.print(f"[bold red]error:[/] {error}", soft_wrap=True, highlight=False)
        return 2
    finally:
        close_process()


def train(args, process: Process, device: torch.device) -> int:
    last = args.out / "last.pt"
    if args.resume and not last.is_file():
        raise ValueError(f"{last}: nothing to resume")
    config = load_config(args.config, args.set)
    if args.resume:  # the run's own config, so a resume cannot drift; --set still applies on top
        config = load_config(args.out / "config.yaml", args.set)
    train_config = config.train
    if not train_config.data:
        raise ValueError("no training data: --set train.data=MANIFEST.json (or a frame root with train.loader=png)")
    torch.manual_seed(train_config.seed + process.rank)
    model = CDVDTSP(config.model)
    if not args.resume:
        initialise(model, train_config)
    model = model.to(device)
    optimizer, scheduler = build_optimizer(model, train_config)
    generator = torch.Generator(device=device).manual_seed(train_config.seed * 1000 + process.rank)  # HEM
    state = {"step": 0, "epoch": 0, "batch": 0, "seconds": 0.0}
    if args.resume:
        saved = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = {"seconds": 0.0, **saved["progress"]}
        restore_rng(saved["rng"], generator, process, device)
    if process.main:
        args.out.mkdir(parents=True, exist_ok=True)
        dump_config(config, args.out / "config.yaml")
    net = TrainForward(model)
    if process.world_size > 1:
        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    loader = make_loader(train_config, config.model.window, process, device)
    videos = held_out(train_config) if process.main else []
    log = (args.out / "log.jsonl").open("a") if process.main else None
    total = train_config.max_steps or train_config.epochs * len(loader)
    model.train()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=console,
                  disable=not process.main) as progress:
        task = progress.add_task("train", total=total, completed=state["step"], status="")
        window_start, window_steps = time.perf_counter(), 0
        budget = train_config.max_minutes * 60
        clock = time.perf_counter() - state["seconds"]  # trained seconds, resumes included

        def finished() -> bool:
            state["seconds"] = time.perf_counter() - clock
            out_of_time = bool(budget) and state["seconds"] >= budget
            if budget and process.world_size > 1:  # every rank stops at the same step, or DDP hangs
                flag = torch.tensor(float(out_of_time), device=device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                out_of_time = bool(flag.item())
            return bool(train_config.max_steps and state["step"] >= train_config.max_steps) or out_of_time

        while state["epoch"] < train_config.epochs and not finished():
            loader.set_epoch(state["epoch"])
            for index, (blurred, sharp) in enumerate(loader):
                if index < state["batch"]:  # resuming mid-epoch: same order and augmentation, skip what was done
                    continue
                blurred, sharp = blurred.to(device, non_blocking=True), sharp.to(device, non_blocking=True)
                loss, parts = train_step(net, optimizer, blurred, sharp, train_config, generator, device)
                scheduler.step()
                state["step"] += 1
                state["batch"] = index + 1
                window_steps += 1
                step = state["step"]
                if step % train_config.log_every == 0 or step == train_config.max_steps:
                    elapsed = time.perf_counter() - window_start
                    record = {"step": step, "epoch": state["epoch"], "loss": loss.item(),
                              **{name: part.item() for name, part in parts.items()},
                              "lr": optimizer.param_groups[0]["lr"], "it_s": window_steps / elapsed,
                              "samples_s": window_steps * train_config.batch * process.world_size / elapsed}
                    window_start, window_steps = time.perf_counter(), 0
                    if log:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    progress.update(task, status=f"loss {record['loss']:.4f} · {record['it_s']:.2f} it/s · "
                                                 f"{record['samples_s']:.1f} samples/s")
                progress.update(task, completed=step)
                if step % train_config.checkpoint_every == 0:
                    rngs = gather(rng_state(generator))  # every rank takes part
                    if process.main:
                        save_state(last, model, optimizer, scheduler, state, rngs, config)
                        save_checkpoint(model, args.out / f"step_{step}.pt")
                if process.main and videos and step % train_config.val_every == 0:
                    scores = validate(model, videos, config, device)
                    log.write(json.dumps({"step": step, "validation": scores}) + "\n")
                    log.flush()
                    console.print(f"step {step}: validation PSNR {scores['psnr']:.2f} dB (input "
                                  f"{scores['input_psnr']:.2f}), SSIM {scores['ssim']:.4f}")
                if step % train_config.checkpoint_every == 0 or step % train_config.val_every == 0:
                    barrier()  # the others wait here, under the process group's timeout, while rank 0 works
                if finished():
                    break
            else:
                state["epoch"] += 1
                state["batch"] = 0
                scheduler.end_epoch()
    rngs = gather(rng_state(generator))
    if process.main:
        save_state(last, model, optimizer, scheduler, state, rngs, config)
        save_checkpoint(model, args.out / f"step_{state['step']}.pt")
        log.close()
        console.print(f"saved {args.out / ('step_%d.pt' % state['step'])} after {state['step']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
