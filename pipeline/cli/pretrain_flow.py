"""Pretrain PWC-Net on rendered motion with exact flow and on footage with DIS's, resumable (no downloaded
weights), from zero flow or (``flow.start: matching``) from the matching start of
``pipeline/training/matching.py``.

    python scripts/pretrain_flow.py --out runs/flow --set flow.photos=runs/default/data/photos/train \
        --set flow.val_photos=runs/default/data/photos/val --set flow.max_minutes=15
    python scripts/pretrain_flow.py --out runs/flow --resume        # continue exactly where it stopped

The run folder holds ``config.yaml``, ``last.pt`` (net, optimiser, step, trained seconds), ``log.jsonl``,
``flow.pt`` (the net in sniklaus's PWC-Net format: ``--set train.pwc_weights=OUT/flow.pt`` starts a
cascade training from it) and ``scores.json``: endpoint error on held-out rendered pairs against zero
flow, and on held-out real footage the photometric error of the neighbour warped by the net's flow
against the unwarped neighbour. See ``pipeline/training/flow.py`` for the data and the loss.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

from model import CDVDTSP, save_pwc_weights
from model.init import zero_flow_
from pipeline.cli import add_device_option, command_parser, fail
from pipeline.config import ConfigError
from pipeline.data.exposures import load_sequences
from pipeline.distributed import init_process
from pipeline.measure.runinfo import command_line, stamp
from pipeline.training.flow import (
    FlowPairs,
    PairConfig,
    batch_epe,
    flow_loss,
    load_photos,
    score_flow,
    warm_up_,
)
from pipeline.training.matching import matching_start_
from pipeline.training.run_folder import Clock, RunFolder

console = Console(stderr=True)
MATCHING_SEED_OFFSET = 20_000  # the matching start's pairs: a stream the training pairs never use


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--config", type=Path, help="YAML config (its flow section)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    add_device_option(parser)
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    _, device = init_process(args.device)
    try:
        return pretrain(args, device, command_line(argv))
    except (ConfigError, ValueError, OSError) as error:
        return fail(console, error)


def pretrain(args, device: torch.device, command: str) -> int:
    folder = RunFolder(args.out, resume=args.resume)
    config = folder.config(args.config, args.set)
    flow = config.flow
    if not flow.photos:
        raise ValueError("no photographs: --set flow.photos=FOLDER (scripts/build_training_set.py makes one)")
    model = CDVDTSP(config.model)
    net = zero_flow_(model.flow).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=flow.lr)
    state = {"step": 0, "seconds": 0.0}
    if folder.resume:
        saved = folder.load_last(device)
        net.load_state_dict(saved["flow"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["progress"]
    folder.keep_config(config)
    photos = load_photos(flow.photos)
    footage = load_sequences(flow.footage) if flow.footage_share else ()

    def flow_pairs(seed: int, start: int) -> FlowPairs:
        return FlowPairs(
            photos, PairConfig(size=flow.size, blurred=flow.blurred, gap=tuple(flow.gap)), batch=flow.batch,
            seed=seed, start=start, footage=footage, footage_share=flow.footage_share, blur=config.blur,
            still=flow.still)

    def save() -> None:
        folder.save_last({"flow": net.state_dict(), "optimizer": optimizer.state_dict(),
                          "progress": dict(state)})

    if flow.start == "matching" and not folder.resume:
        began = time.monotonic()
        with console.status("the matching start: the pyramid learns to match, the flow heads are fitted"):
            start_pairs = iter(flow_pairs(flow.seed + MATCHING_SEED_OFFSET, 0))
            matching_start_(net, start_pairs, flow, device, folder.log)
        state["seconds"] += time.monotonic() - began  # the budget includes the start
        save()  # a resume goes on from the start, never makes it again
    loader = torch.utils.data.DataLoader(
        flow_pairs(flow.seed, state["step"]), batch_size=None, num_workers=flow.workers,
        prefetch_factor=2 if flow.workers else None,
    )

    clock = Clock(flow.max_minutes, state)
    with console.status("pretraining flow") as status:
        for first, second, truth, valid in loader:
            if clock.finished(flow.max_steps):
                break
            first, second, truth, valid = (t.to(device) for t in (first, second, truth, valid))
            warm_up_(optimizer, flow, state["step"])
            loss, levels = flow_loss(net, first, second, truth, valid, flow.precision, device, flow.matching)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state["step"] += 1
            if state["step"] % flow.log_every == 0:
                epe, zero_epe = batch_epe(levels, truth, valid)
                record = {"step": state["step"], "loss": loss.item(), "epe": epe, "zero_epe": zero_epe,
                          "seconds": state["seconds"]}
                folder.log(record)
                status.update(
                    f"pretraining flow: step {record['step']}, EPE {record['epe']:.2f} px "
                    f"(zero flow {record['zero_epe']:.2f})"
                )
            if state["step"] % flow.checkpoint_every == 0:
                save()
            if flow.val_every and state["step"] % flow.val_every == 0 and flow.val_footage:
                footage = score_flow(net.eval(), dataclasses.replace(flow, val_photos=""), device,
                                     flow.val_frames or None)["footage"]
                net.train()
                folder.log({"step": state["step"], "validation": footage})
        save()
    net.eval()
    result = {
        **stamp(device, command),
        "steps": state["step"],
        "seconds": round(state["seconds"], 1),
        **score_flow(net, config.flow, device),
    }
    (args.out / "scores.json").write_text(json.dumps(result, indent=1))
    save_pwc_weights(model, args.out / "flow.pt")
    console.print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
