"""A training run's folder, the one shape ``cdvd-train`` and ``cdvd-pretrain-flow`` share.

* ``config.yaml``: the resolved config; a resume reads it back (``--set`` still applies on top), so a
  resumed run cannot drift from the one it continues;
* ``last.pt``: everything a resume needs, written atomically (`model.checkpoint.atomic_save`);
* ``log.jsonl``: one JSON object per logged step or validation, appended and flushed as written.

`Clock` is a run's budget: trained seconds, resumes included, against ``max_minutes`` and ``max_steps``.
"""
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from model.checkpoint import atomic_save
from pipeline.config import Config, dump_config, load_config


class RunFolder:
    """The run folder ``path``; ``resume``: continue the run saved there (its ``last.pt`` must exist).

    Raises:
        ValueError: ``resume`` and there is nothing to resume.
    """

    def __init__(self, path: Path, *, resume: bool = False) -> None:
        self.path, self.resume = Path(path), resume
        self.last = self.path / "last.pt"
        if resume and not self.last.is_file():
            raise ValueError(f"{self.last}: nothing to resume")

    def config(self, path: Path | None, overrides: Sequence[str]) -> Config:
        """The run's config: on a resume the folder's own, else the file at ``path`` (None: the defaults),
        with ``overrides`` (``key=value``) on top."""
        return load_config(self.path / "config.yaml" if self.resume else path, overrides)

    def keep_config(self, config: Config) -> None:
        """Make the folder and write ``config`` as the run's own."""
        self.path.mkdir(parents=True, exist_ok=True)
        dump_config(config, self.path / "config.yaml")

    def load_last(self, device: torch.device) -> dict:
        """What the last save wrote, its tensors on ``device``."""
        return torch.load(self.last, map_location=device, weights_only=True)

    def save_last(self, state: dict) -> None:
        """Write ``state`` as ``last.pt``, atomically: a crash leaves the previous one."""
        atomic_save(state, self.last)

    def log(self, record: dict) -> None:
        """Append ``record`` to ``log.jsonl``."""
        with (self.path / "log.jsonl").open("a") as log:
            log.write(json.dumps(record) + "\n")


class Clock:
    """The run's trained seconds, resumes included (``progress["seconds"]``), against ``max_minutes``.

    With several processes every rank must stop at the same step (or DDP would hang), so they agree by an
    all-reduce; that waits for the device, so it runs only every ``agree_every`` steps, not every step.
    """

    def __init__(self, max_minutes: float, progress: dict, world_size: int = 1,
                 device: torch.device | None = None, agree_every: int = 1) -> None:
        self.budget, self.progress = max_minutes * 60, progress
        self.world_size, self.device, self.agree_every = world_size, device, agree_every
        self.start = time.perf_counter() - progress["seconds"]

    def finished(self, max_steps: int) -> bool:
        """Out of steps (``progress["step"]`` against ``max_steps``; 0: no limit) or of time."""
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
