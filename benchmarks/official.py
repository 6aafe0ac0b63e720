r"""The official inference against the streaming engine, seconds per frame in fp32 and bf16, in turns.

The official code runs on CUDA only (a CuPy correlation, hard-coded ``.cuda()``);
`tests/official_reference.py` transcribes it for any device, with its unbatched call sequence (8 PWC-Net
and 4 restoration calls per output frame) and the correlation as a loop over displacements. Here it runs
as ``inference.py --border`` does over a clip: every frame's 5-frame window, one at a time. The engine
(``deblur.*`` of the config: its group size and chunk) restores the same frames with the same weights
(the published model, seeded) and the official border policy, under the same precision context; fp32
outputs are checked equal to 1e-4.

    python benchmarks/official.py --json benchmarks/results/official_cpu.json
"""
import argparse
import importlib.util
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from model import CDVDTSP, official_state_dict
from pipeline.checkout import ROOT
from pipeline.cli import frame_size
from pipeline.config import load_config
from pipeline.measure.clips import looped_clip
from pipeline.measure.runinfo import add_result_options, write_result
from pipeline.measure.timing import paired_ratio, time_interleaved
from pipeline.precision import precision_context
from pipeline.stream.engine import StreamingEngine
from pipeline.stream.windows import windows
from pipeline.video.frames import to_model
from pipeline.video.sequences import read_frames

PRECISIONS = ("fp32", "bf16")


def official_model(model: CDVDTSP) -> torch.nn.Module:
    """`tests/official_reference.py`'s CDVD_TSP with ``model``'s weights (official keys, strict)."""
    path = ROOT / "tests" / "official_reference.py"
    spec = importlib.util.spec_from_file_location("official_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    official = module.CDVD_TSP(n_feat=model.config.features, n_resblock=model.config.resblocks)
    official.load_state_dict(official_state_dict(model), strict=True)
    return official.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=frame_size, default="128x192", help="WxH of the clip")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    add_result_options(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.set)
    if config.model.stages != 2:
        raise ValueError("the official model has 2 stages")
    width, height = args.size
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = CDVDTSP(config.model).eval()
    official = official_model(model)
    with tempfile.TemporaryDirectory() as folder:
        clip = looped_clip(Path(folder) / "clip.mp4", args.frames, width, height)
        frames = to_model(torch.from_numpy(np.stack(list(read_frames(clip)))))  # (F, 3, H, W)
    index = windows(len(frames), 2, "official")
    engine = StreamingEngine(model, border="official", group=config.deblur.group)

    @torch.inference_mode()
    def run_official(precision: str) -> torch.Tensor:
        with precision_context(device, precision):
            return torch.cat([official(frames[window][None])[3] for window in index]).float()

    @torch.inference_mode()
    def run_engine(precision: str) -> torch.Tensor:
        with precision_context(device, precision):
            return torch.cat(list(engine.run(frames.split(config.deblur.chunk)))).float()

    difference = (run_official("fp32") - run_engine("fp32")).abs().max().item()
    if difference > 1e-4:
        raise RuntimeError(f"the engine differs from the official inference by {difference:.3g}")
    fns = {}
    for precision in PRECISIONS:
        fns[f"official {precision}"] = lambda p=precision: run_official(p)
        fns[f"engine {precision}"] = lambda p=precision: run_engine(p)
    runs = time_interleaved(fns, args.repeats, device)
    n = len(frames)
    seconds = {name: statistics.median(wall for wall, _ in runs[name]) / n for name in fns}
    ratios = {f"official / engine, {p}": paired_ratio(runs[f"official {p}"], runs[f"engine {p}"])
              for p in PRECISIONS}
    group = config.deblur.group
    table = Table(title=f"official inference vs engine: {args.size}, {n} frames, group {group}, "
                        f"median of {args.repeats} in turns")
    table.add_column("configuration")
    table.add_column("s/frame", justify="right")
    for name, value in seconds.items():
        table.add_row(name, f"{value:.3f}")
    for name, value in ratios.items():
        table.add_row(name, f"[bold]{value:.2f}x[/]")
    Console().print(table)
    Console().print(f"fp32 outputs: largest difference {difference:.2g}")
    write_result(args.json, "official", device, argv,
                 {"size": str(args.size), "frames": n, "repeats": args.repeats, "group": group,
                  "chunk": config.deblur.chunk, "model": vars(config.model)},
                 {"s_per_frame": seconds, "ratios": ratios, "fp32_max_abs_difference": difference})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
