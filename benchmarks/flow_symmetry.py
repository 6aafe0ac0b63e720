"""Is a flow net's error one-sided? Real frames given to PWC-Net against themselves, and consecutive frames
aligned by its flow as it is and antisymmetrised.

    python benchmarks/flow_symmetry.py --flow runs/flow/flow.pt --footage runs/default/data/sequences/val \
        --json flow_symmetry.json

Per shot (each frame folder under ``--footage``, its first ``--frames`` frames):

* ``self``: the mean length (px) and mean (x, y) vector of the flow from each frame to itself, whose truth
  is zero everywhere;
* ``sharp`` and ``blurred`` (the DVD-style 7-frame exposures stage 1 sees): the mean absolute difference
  (levels of 255) of each frame against the next one warped by the net's flow F(a, b) (``plain``), by the
  antisymmetrised flow (F(a, b) - F(b, a)) / 2 (``antisymmetric``, the model's ``antisymmetric_flow``:
  what the net says alike in both directions cancels, a frame against itself gets exactly zero), and
  unwarped; over the pixels where both warps land inside the frame.

On fine repeating texture (a tower's windows) a fraction of a pixel decides whether a warped neighbour
helps or hurts, so a bias that the flips of training cancel on average still costs there.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP, ModelConfig, load_pwc_weights
from model.pwc import PWCNet
from pipeline.data.synth import DVD_EXPOSURE, synthesize
from pipeline.measure.runinfo import write_document
from pipeline.training.flow import alignment_errors
from pipeline.video.frames import to_model
from pipeline.video.sequences import frame_files, read_image

CPU = torch.device("cpu")
ALIGNMENTS = ("plain", "antisymmetric", "unwarped")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--flow", type=Path, required=True, help="PWC-Net weights (pretrain_flow's flow.pt)")
    parser.add_argument("--footage", type=Path, required=True, help="a folder of sharp frame folders")
    parser.add_argument("--frames", type=int, default=12, help="first frames of each shot (0: all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def model_frames(frames: list[np.ndarray]) -> torch.Tensor:
    """(F, 3, H, W) in [0, 1] from (H, W, 3) uint8 frames."""
    return to_model(torch.from_numpy(np.stack(frames)))


@torch.no_grad()
def self_flow(net: torch.nn.Module, clip: torch.Tensor) -> dict:
    """Mean length (px) and mean (x, y) vector of ``net``'s flow from each frame of ``clip`` to itself."""
    flows = torch.cat([net(frame[None], frame[None]).float() for frame in clip])  # (F, 2, H, W)
    return {"length": flows.norm(dim=1).mean().item(), "vector": flows.mean(dim=(0, 2, 3)).tolist()}


@torch.no_grad()
def alignment(nets: dict[str, PWCNet], clip: torch.Tensor) -> dict[str, float]:
    """Per `ALIGNMENTS`, the mean absolute difference (levels) of each frame of ``clip`` against the next:
    warped by each of ``nets`` (``plain``, ``antisymmetric``), and unwarped."""
    errors: dict[str, list[float]] = {name: [] for name in ALIGNMENTS}
    for centre, neighbour in zip(clip[:-1], clip[1:]):
        flows = {name: net(centre[None], neighbour[None]).float() for name, net in nets.items()}
        for name, error in alignment_errors(centre, neighbour, flows).items():
            errors[name].append(error)
    return {name: float(np.mean(values)) for name, values in errors.items()}


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    model = CDVDTSP(ModelConfig())
    load_pwc_weights(model, args.flow)
    net = model.flow.eval()
    antisymmetric = PWCNet(antisymmetric=True).eval()  # the same weights, `model.antisymmetric_flow`
    antisymmetric.load_state_dict(net.state_dict())
    nets = {"plain": net, "antisymmetric": antisymmetric}
    shots = {}
    for folder in sorted(p for p in args.footage.iterdir() if p.is_dir()):
        sharp = [read_image(path) for path in frame_files(folder)]
        blurred = [pair.blurred for pair in synthesize(sharp, DVD_EXPOSURE)][:args.frames or None]
        sharp = model_frames(sharp[:args.frames or None])
        shots[folder.name] = {"frames": len(sharp), "self": self_flow(net, sharp),
                              "sharp": alignment(nets, sharp),
                              "blurred": alignment(nets, model_frames(blurred))}
    table = Table(title=f"{args.flow}: a frame against itself, and the next frame aligned (levels)")
    for column in ("shot", "self: length, x, y (px)", *(f"{kind}: {' / '.join(ALIGNMENTS)}"
                                                        for kind in ("sharp", "blurred"))):
        table.add_column(column, justify="left" if column == "shot" else "right")
    for name, row in shots.items():
        still = ", ".join(f"{v:.2f}" for v in (row["self"]["length"], *row["self"]["vector"]))
        looks = (" / ".join(f"{row[kind][a]:.2f}" for a in ALIGNMENTS) for kind in ("sharp", "blurred"))
        table.add_row(name, still, *looks)
    Console().print(table)
    write_document(args.json, "flow_symmetry", CPU, argv,
                   {"flow": str(args.flow), "footage": str(args.footage), "shots": shots})
    return 0


if __name__ == "__main__":
    sys.exit(main())
