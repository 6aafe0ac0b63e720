"""The default checkpoint as a user meets it, under every condition of the protocol, on clips held out of
every phase of its training (selection included).

    python benchmarks/held_out.py --json benchmarks/results/held_out_cpu.json
    python benchmarks/held_out.py --checkpoint runs/default/default.pt --json candidate.json
    python benchmarks/held_out.py --flow runs/flow/flow.pt --json with_flow.json   # another flow net in it

For each ``footage.test`` clip of ``configs/sources/training_set.yaml`` (the bundled samples' clips among
them) and each condition of `pipeline.data.protocol` (blur of 3, 7 and 11 frames in linear light, 7 in
decoded values, fast motion 2 and 3 frames apart, the sharp frames, a still shot):

1. the clip's frames at the training set's width (``footage.width``, aspect kept, even sizes; area
   downscaling), the condition's (input, target) pairs, the first ``--frames`` of them;
2. the input written losslessly (FFV1, RGB), as a user's file; the targets kept as frames;
3. ``deblur.py INPUT --output OUT --format png``: the default checkpoint (or ``--checkpoint``; with
   ``--flow``, its PWC-Net replaced by those weights), default settings otherwise; lossless out;
4. PSNR and SSIM of input and output against the targets, every frame (official protocol: crop 4).

A blurred condition is judged by its gain (output PSNR - input PSNR); ``sharp`` and ``still``, whose
target is the input, by the output's PSNR against it. The summary gives the mean gain over the blurred
conditions, the worst blurred (clip, condition), and the lowest sharp/still PSNR.
"""
import argparse
import itertools
import math
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from model import DEFAULT_CHECKPOINT, load_checkpoint, load_pwc_weights, save_checkpoint
from pipeline.checkout import ROOT
from pipeline.cli import deblur
from pipeline.cli.build_training_set import SOURCES
from pipeline.data.prepare import fit_width
from pipeline.data.protocol import CONDITIONS, condition_pairs
from pipeline.data.scored import Video
from pipeline.data.trainset import Sources, footage_items
from pipeline.evaluation import outputs_restore_fn, score
from pipeline.measure.runinfo import write_document
from pipeline.runtime import compute_device
from pipeline.video.colour import Colour
from pipeline.video.encoder import Encoder
from pipeline.video.sequences import read_frames

console = Console(stderr=True)
LOSSLESS = {"codec": "ffv1", "pix_fmt": "bgr0"}  # RGB kept bit for bit (no YUV conversion)


def write_lossless(path: Path, frames: list[np.ndarray]) -> None:
    with Encoder(path, rate=Fraction(25), colour=Colour(), **LOSSLESS) as encoder:
        for frame in frames:
            encoder.write(frame)


def run_condition(frames: list[np.ndarray], condition: str, folder: Path, limit: int,
                  checkpoint: list[str]) -> dict:
    """One clip under one condition through deblur: its figures."""
    pairs = list(condition_pairs(frames, CONDITIONS[condition], limit))
    inputs, targets = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    source, output = folder / f"{condition}.mkv", folder / condition
    write_lossless(source, inputs)
    if deblur.main([str(source), "--output", str(output), "--format", "png", *checkpoint]):
        raise RuntimeError(f"deblur failed on {source}")
    video = Video(condition, lambda: iter(targets), "targets", lambda: iter(inputs), str(source))
    restored, before = score([video], outputs_restore_fn(output, single=True), baseline=True)
    after, before = restored.overall(), before.overall()
    row = {"frames": after.frames, "input": {"psnr": before.psnr, "ssim": before.ssim},
           "output": {"psnr": after.psnr, "ssim": after.ssim}}
    if CONDITIONS[condition].blurred:
        row["gain_db"] = after.psnr - before.psnr
    return row


def summarise(clips: dict[str, dict[str, dict]]) -> dict:
    """Per condition means over the clips, and the figures the protocol is judged by."""
    conditions = {}
    for name, condition in CONDITIONS.items():
        rows = [clip[name] for clip in clips.values() if name in clip]
        if not rows:
            continue
        key = "gain_db" if condition.blurred else None
        values = [row["gain_db"] if key else row["output"]["psnr"] for row in rows]
        conditions[name] = {"what": condition.what, "measure": "gain_db" if key else "psnr_vs_input",
                            "mean": float(np.mean(values)), "worst": float(min(values))}
    blurred = [(clip, name, row["gain_db"]) for clip, rows in clips.items() for name, row in rows.items()
               if "gain_db" in row]
    unblurred = [(clip, name, row["output"]["psnr"]) for clip, rows in clips.items()
                 for name, row in rows.items() if "gain_db" not in row]
    worst = min(blurred, key=lambda item: item[2]) if blurred else None
    lowest = min(unblurred, key=lambda item: item[2]) if unblurred else None
    return {
        "conditions": conditions,
        "mean_gain_db": float(np.mean([gain for *_, gain in blurred])) if blurred else None,
        "worst_blurred": {"clip": worst[0], "condition": worst[1], "gain_db": worst[2]} if worst else None,
        "lowest_sharp": {"clip": lowest[0], "condition": lowest[1], "psnr": lowest[2]} if lowest else None,
    }


def table(clips: dict[str, dict[str, dict]], summary: dict, title: str) -> Table:
    names = [name for name in CONDITIONS if any(name in clip for clip in clips.values())]
    out = Table(title=title, caption="blurred: gain in dB; sharp, still: output PSNR against the input")
    out.add_column("clip")
    for name in names:
        out.add_column(name, justify="right")
    for clip, rows in clips.items():
        out.add_row(clip, *(f"{rows[n]['gain_db']:+.2f}" if "gain_db" in rows[n] else
                            f"{rows[n]['output']['psnr']:.1f}" for n in names))
    out.add_section()
    out.add_row("mean", *(f"{summary['conditions'][n]['mean']:+.2f}" if CONDITIONS[n].blurred else
                          f"{summary['conditions'][n]['mean']:.1f}" for n in names))
    return out


def finite(value):
    """``value`` with infinite floats (the PSNR of an input equal to its target) as None (JSON null)."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return None if isinstance(value, float) and math.isinf(value) else value


def with_flow(checkpoint: str | None, flow: Path, folder: Path) -> Path:
    """``checkpoint`` (None: the default one) with its PWC-Net replaced by the weights in ``flow``, saved in
    ``folder``."""
    model = load_checkpoint(checkpoint or DEFAULT_CHECKPOINT)
    load_pwc_weights(model, flow)
    path = folder / "with_flow.pt"
    save_checkpoint(model, path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a checkpoint to judge instead of the default one")
    parser.add_argument("--flow", type=Path, help="PWC-Net weights in sniklaus's format (pretrain_flow.py's "
                                                  "flow.pt) to run in place of the checkpoint's")
    parser.add_argument("--frames", type=int, default=12, help="frames per clip and condition (default 12)")
    parser.add_argument("--clips", nargs="+", help="only these test clips (names)")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), help="only these conditions")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    sources = Sources.load(SOURCES)
    tests = [item for item in footage_items(sources.footage) if item.split == "test"]
    tests = [item for item in tests if not args.clips or item.name in args.clips]
    checkpoint = ["--checkpoint", args.checkpoint] if args.checkpoint else []
    conditions = args.conditions or list(CONDITIONS)
    clips: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="held_out_") as scratch:
        if args.flow:
            checkpoint = ["--checkpoint", str(with_flow(args.checkpoint, args.flow, Path(scratch)))]
        for item in tests:
            reach = max(c.exposure.window + (args.frames - 1) * c.exposure.stride
                        for c in CONDITIONS.values() if c.exposure is not None)
            frames = [fit_width(frame, item.width)
                      for frame in itertools.islice(read_frames(sources.clip(item, ROOT)), reach)]
            folder = Path(scratch) / item.name
            folder.mkdir()
            clips[item.name] = {}
            for condition in conditions:
                console.print(f"{item.name}: {condition}")
                clips[item.name][condition] = run_condition(frames, condition, folder, args.frames,
                                                            checkpoint)
    summary = summarise(clips)
    weights = args.checkpoint or "the default checkpoint"
    if args.flow:
        weights += f" with the flow net {args.flow}"
    title = f"held-out clips under the protocol ({weights}), lossless in and out"
    Console().print(table(clips, summary, title))
    Console().print(f"mean gain over blurred conditions {summary['mean_gain_db']:+.2f} dB; worst "
                    f"{summary['worst_blurred']}; lowest sharp/still {summary['lowest_sharp']}")
    write_document(args.json, "held_out", compute_device(), argv,
                   finite({"weights": weights, "frames": args.frames, "clips": clips, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
