r"""Why PWC-Net from zero flow does not leave it: its cost volumes and gradients over its first updates.

    python benchmarks/flow_start.py --json benchmarks/results/flow_start_cpu.json

The flow phase's first ``--updates`` Adam updates as it ran from zero flow (the ``flow`` section of the
recipe's config: warm-up, batch, pair size, gaps, blurred share; with `ZERO_START`'s start, rate and
precision, the recipe's until it took the matching start of `pipeline.training.matching`; rendered pairs
only, from scikit-image's photographs), from two starts of the same random net:

* ``recipe``: `model.init.zero_flow_` on PyTorch's default initialisation (``flow.start: zero``);
* ``rescaled``: the same, then rescaled on the first batch (`pipeline.training.matching.rescale_`, the
  matching start's first step) so that every pyramid level's cost volume varies by about 1 across its 81
  displacements.

Every ``--every`` updates, per pyramid level (6, the coarsest, to 2): the cost volume's spread (its standard
deviation over the displacements, mean over pixels and over a fixed batch of pairs) and the mean absolute
gradient of the level decoder's first conv against Adam's epsilon, 1e-8 (a weight whose gradients are far
below it barely moves); and the batch endpoint error against zero flow's.

Then the simplest motion there is, from the ``recipe`` start in fp32: pairs of crops of the same
photographs moved by a whole number of pixels (up to ``--shift`` either way, the same for every pixel),
``--translation-updates`` updates on a fresh batch each time and as many on one batch repeated. A net that
reads its cost volumes learns translations quickly; one that memorises its batch fits the repeated one
without them.
"""
import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from skimage import data

from model import CDVDTSP
from model.init import zero_flow_
from model.pwc import PWCNet
from pipeline.checkout import CONFIGS
from pipeline.config import load_config
from pipeline.measure.runinfo import write_result
from pipeline.training.flow import FlowPairs, PairConfig, batch_epe, flow_loss, warm_up_
from pipeline.training.matching import rescale_, spreads

CPU = torch.device("cpu")
ADAM_EPS = 1e-8
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
TRANSLATION_EVERY = 50  # updates per record of the translation runs
ZERO_START = {"start": "zero", "lr": 1e-4, "precision": "bf16"}  # the flow phase this studies


def photographs() -> list[torch.Tensor]:
    """scikit-image's colour photographs as (3, h, w) float32 in [0, 1], halved."""
    return [torch.from_numpy(np.ascontiguousarray(getattr(data, name)()[::2, ::2, :3])).permute(2, 0, 1)
            .float() / 255 for name in PHOTOS]


def train(net: PWCNet, flow, pairs, precision: str, updates: int, every: int):
    """``updates`` Adam updates of ``net`` on the batches of ``pairs`` with the flow phase's rate and loss in
    ``precision``. Every ``every`` updates, before that update's step (its gradients still in place), yields
    (update, mean batch EPE, zero flow's) over the last ``every``."""
    optimizer = torch.optim.Adam(net.parameters(), lr=flow.lr, eps=ADAM_EPS)
    errors = []
    for update in range(1, updates + 1):
        first, second, truth, valid = next(pairs)
        warm_up_(optimizer, flow, update - 1)
        loss, levels = flow_loss(net, first, second, truth, valid, precision, CPU)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        errors.append(batch_epe(levels, truth, valid))
        if update % every == 0:
            yield (update, float(np.mean([e for e, _ in errors[-every:]])),
                   float(np.mean([z for _, z in errors[-every:]])))
        optimizer.step()


def run(start: str, config, updates: int, every: int) -> list[dict]:
    """The first ``updates`` updates from ``start``; a record every ``every`` updates."""
    flow = config.flow
    torch.manual_seed(0)
    net = zero_flow_(CDVDTSP(config.model).flow)
    pair_config = PairConfig(size=flow.size, blurred=flow.blurred, gap=tuple(flow.gap))
    pairs = iter(FlowPairs(photographs(), pair_config, batch=flow.batch, seed=flow.seed))
    probe = next(pairs)[:2]
    if start == "rescaled":
        rescale_(net, *probe)
    return [{
        "update": update,
        "cost_spread": spreads(net, *probe)[:0:-1],  # levels 6 .. 2
        "gradient": [decoder.dense[0][0].weight.grad.abs().mean().item() for decoder in net.decoders],
        "epe": epe,
        "zero_epe": zero,
    } for update, epe, zero in train(net, flow, pairs, flow.precision, updates, every)]


def translations(shift: int, size: int, batch: int, rng: np.random.Generator):
    """Endless batches of (first, second, truth, valid): ``size``-pixel crops of `photographs` and the same
    crops moved by (dx, dy), each in [-shift, shift], so that the flow is (-dx, -dy) everywhere."""
    photos = photographs()
    while True:
        firsts, seconds, truths = [], [], []
        for _ in range(batch):
            photo = photos[rng.integers(len(photos))]
            y = int(rng.integers(shift, photo.shape[1] - size - shift))
            x = int(rng.integers(shift, photo.shape[2] - size - shift))
            dx, dy = (int(d) for d in rng.integers(-shift, shift + 1, size=2))
            firsts.append(photo[:, y:y + size, x:x + size])
            seconds.append(photo[:, y + dy:y + dy + size, x + dx:x + dx + size])
            truths.append(torch.tensor([-dx, -dy], dtype=torch.float32)[:, None, None].expand(2, size, size))
        yield torch.stack(firsts), torch.stack(seconds), torch.stack(truths), torch.ones(batch, 1, size, size)


def learn_translations(config, shift: int, updates: int, repeat: bool) -> list[dict]:
    """``updates`` fp32 updates from the recipe's start on `translations` (fresh, or the first batch again
    when ``repeat``); the endpoint error against zero flow's every `TRANSLATION_EVERY` updates."""
    flow = config.flow
    torch.manual_seed(0)
    net = zero_flow_(CDVDTSP(config.model).flow)
    pairs = translations(shift, flow.size, flow.batch, np.random.default_rng(flow.seed))
    if repeat:
        pairs = itertools.repeat(next(pairs))
    else:
        next(pairs)  # the repeated batch, drawn in both runs so that fresh ones start after it
    return [{"update": update, "epe": epe, "zero_epe": zero}
            for update, epe, zero in train(net, flow, pairs, "fp32", updates, TRANSLATION_EVERY)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config", type=Path, default=CONFIGS / "default_checkpoint.yaml")
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--shift", type=int, default=6, help="largest translation, pixels (default 6)")
    parser.add_argument("--translation-updates", type=int, default=400)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    config = dataclasses.replace(config, flow=dataclasses.replace(config.flow, **ZERO_START))
    results = {start: run(start, config, args.updates, args.every) for start in ("recipe", "rescaled")}
    results["translations"] = {
        batches: learn_translations(config, args.shift, args.translation_updates, batches == "repeated")
        for batches in ("fresh", "repeated")
    }
    table = Table(title=f"PWC-Net's first {args.updates} updates: cost volume spread and first-conv gradient "
                        f"per level (6 .. 2); Adam's epsilon {ADAM_EPS:g}")
    for column in ("start", "update", "cost volume spread", "gradient", "EPE / zero flow's"):
        table.add_column(column, justify="left" if column == "start" else "right")
    for start in ("recipe", "rescaled"):
        for row in results[start]:
            table.add_row(start, str(row["update"]), *(" ".join(f"{v:.0e}" for v in row[key])
                                                       for key in ("cost_spread", "gradient")),
                          f"{row['epe'] / row['zero_epe']:.3f}")
    Console(width=140).print(table)
    moved = Table(title=f"the recipe's start on translations of up to {args.shift} px (fp32): "
                        f"EPE / zero flow's, per {TRANSLATION_EVERY} updates")
    moved.add_column("batches", justify="left")
    for row in results["translations"]["fresh"]:
        moved.add_column(str(row["update"]), justify="right")
    for batches, records in results["translations"].items():
        moved.add_row(batches, *(f"{row['epe'] / row['zero_epe']:.3f}" for row in records))
    Console(width=140).print(moved)
    write_result(args.json, "flow_start", CPU, argv,
                 {"photos": list(PHOTOS), "flow": vars(config.flow), "adam_eps": ADAM_EPS,
                  "updates": args.updates, "every": args.every, "shift": args.shift,
                  "translation_updates": args.translation_updates}, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
