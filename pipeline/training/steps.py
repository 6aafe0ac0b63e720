"""Training with the paper's recipe: the optimiser and its schedule, one step, and a run's state.

Shared by ``scripts/train.py`` (`pipeline.cli.train`) and the profiler.

The loss is `model.losses.cascade_loss` (L1 + 2 x hard example mining on stage 1 and the final output);
Adam with one learning rate for the restoration net and a gentler one for PWC-Net (or PWC-Net frozen),
halved on a schedule, optionally with the gradients' norm clipped and after a linear warm-up (which keeps a
model that starts at the identity near it while Adam's first, sign-like updates would otherwise move every
weight by the full rate at once).

A run starts from `initialise`'s weights and saves everything a resume needs (`save_state`): model,
optimiser, schedule, progress and every rank's random state (`rng_state`, `restore_rng`).
"""
import contextlib
import json
import logging
from pathlib import Path

import torch

from model import CDVDTSP, load_checkpoint, load_pwc_weights, save_checkpoint
from model.init import grow_restoration_, identity_restoration_, zero_flow_
from model.losses import cascade_loss
from model.ranges import timed
from pipeline.config import Config, TrainConfig
from pipeline.precision import precision_context

log = logging.getLogger(__name__)


class TrainForward(torch.nn.Module):
    """What DDP wraps: every stage's outputs, so the deep supervision sees them all."""

    def __init__(self, model: CDVDTSP) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_stages(frames)


class Schedule:
    """The rates' schedule: a linear warm-up from 1/warmup of each rate to all of it over the first
    ``train.warmup`` steps, then ``lr_gamma`` every ``lr_step`` epochs. Both are PyTorch's chainable
    schedulers (``LinearLR``, ``StepLR``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainConfig) -> None:
        self.epochs = torch.optim.lr_scheduler.StepLR(optimizer, step_size=train.lr_step,
                                                      gamma=train.lr_gamma)
        self.warmup = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1 / train.warmup, total_iters=train.warmup) if train.warmup else None

    def step(self) -> None:
        """After each optimiser step."""
        if self.warmup is not None and self.warmup.last_epoch < self.warmup.total_iters:
            self.warmup.step()

    def end_epoch(self) -> None:
        self.epochs.step()

    def state_dict(self) -> dict:
        return {"epochs": self.epochs.state_dict(),
                "warmup": self.warmup.state_dict() if self.warmup is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if "epochs" not in state:  # a run saved before warm-up existed: its StepLR alone
            state = {"epochs": state, "warmup": None}
        self.epochs.load_state_dict(state["epochs"])
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])


def build_optimizer(model: CDVDTSP, train: TrainConfig) -> tuple[torch.optim.Adam, Schedule]:
    """Adam over two parameter groups (restoration ``lr``, PWC-Net ``flow_lr``) and its `Schedule`.

    With ``flow_lr`` 0, PWC-Net is frozen instead (``requires_grad`` off, its group empty), so the backward
    pass stops at the warps.
    """
    model.flow.requires_grad_(train.flow_lr > 0)
    flow = list(model.flow.parameters()) if train.flow_lr > 0 else []
    optimizer = torch.optim.Adam(
        [{"params": model.restore.parameters(), "lr": train.lr}, {"params": flow, "lr": train.flow_lr}],
        betas=tuple(train.betas), eps=train.eps)
    return optimizer, Schedule(optimizer, train)


def autocast_for(device: torch.device, train: TrainConfig) -> contextlib.AbstractContextManager:
    """The training precision (`pipeline.precision`): bf16 autocast, or exact fp32."""
    return precision_context(device, train.precision)


def train_step(
    net: torch.nn.Module, optimizer: torch.optim.Optimizer, blurred: torch.Tensor, sharp: torch.Tensor,
    train: TrainConfig, generator: torch.Generator, device: torch.device,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward, loss, backward and one optimiser step on a batch.

    Args:
        net: `TrainForward` (or DDP around it).
        blurred, sharp: (B, 2T+1, 3, H, W) in [0, 1], on ``device``.
        generator: draws the random share of the hard-example mask; on ``device``, so nothing syncs.

    Returns:
        the loss and its parts (``l1``, ``hem``), 0-d tensors on ``device`` (``.item()`` them only to log).
    """
    with timed("forward"), autocast_for(device, train):
        stages = net(blurred)
    with timed("loss"):
        loss, parts = cascade_loss([s.float() for s in stages], sharp, hem_weight=train.hem_weight,
                                   hard_ratio=train.hard_ratio, random_ratio=train.random_ratio,
                                   generator=generator)
    optimizer.zero_grad(set_to_none=True)
    with timed("backward"):
        loss.backward()
    if train.clip:
        trained = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(trained, train.clip)
    with timed("optimizer"):
        optimizer.step()
    return loss, parts


def initialise(model: CDVDTSP, train: TrainConfig) -> None:
    """The weights a new run starts from: ``train.start``, then ``train.init`` (a checkpoint narrower than
    ``model``, e.g. ``features: 16`` into 32, is grown into it: `grow_restoration_`), then
    ``train.pwc_weights`` for the flow net."""
    if train.start == "identity":
        zero_flow_(model.flow)
        if model.config.residual:
            identity_restoration_(model)
    if train.init:
        start = load_checkpoint(train.init, config=model.config)
        if start.config.features < model.config.features:  # e.g. the shipped checkpoint at the full width
            grow_restoration_(model, start)
        else:
            model.load_state_dict(start.state_dict())
    if train.pwc_weights:  # a flow net trained on its own (the recipe's flow phase) replaces init's
        load_pwc_weights(model, train.pwc_weights)


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """This rank's random state: torch's, the hard-example generator's and CUDA's where there is one."""
    cuda = {"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {}
    return {"torch": torch.get_rng_state(), "hem": generator.get_state(), **cuda}


def restore_rng(saved: dict, generator: torch.Generator, rank: int, world_size: int,
                device: torch.device) -> None:
    """This rank's own random state from a saved run (``saved["ranks"]``, one per rank). A run resumed on
    another number of ranks keeps the fresh per-rank seeds instead (with a warning)."""
    ranks = saved.get("ranks", [saved])  # a single-process run saved before per-rank states: one state
    if len(ranks) != world_size:
        log.warning("the saved run holds random states for %d rank(s), this run has %d: data augmentation "
                    "and sampling start from fresh seeds", len(ranks), world_size)
        return
    mine = ranks[rank]
    torch.set_rng_state(mine["torch"].cpu())
    generator.set_state(mine["hem"].cpu())
    if "cuda" in mine and device.type == "cuda":
        torch.cuda.set_rng_state(mine["cuda"].cpu())


def save_state(path: Path, model: CDVDTSP, optimizer: torch.optim.Optimizer, schedule: Schedule,
               progress: dict, rngs: list[dict], config: Config) -> None:
    """Everything a resume needs, as a project checkpoint (deblur/evaluate load it too); ``rngs`` holds
    every rank's random state, in rank order."""
    save_checkpoint(model, path, optimizer=optimizer.state_dict(), scheduler=schedule.state_dict(),
                    progress=dict(progress), rng={"ranks": rngs},
                    train_config=json.loads(json.dumps(config.train.__dict__)))
