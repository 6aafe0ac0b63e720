"""The default checkpoint as a user meets it: each clip held out of its training, blurred the DVD/GOPRO way
into an H.264 file, through ``deblur`` with no ``--checkpoint``, scored against its sharp frames.

    python benchmarks/held_out.py --json benchmarks/results/held_out_cpu.json
    python benchmarks/held_out.py --crf 12 --json held_out_crf12.json   # what the output encode costs

Per held-out clip (``footage.val`` of ``configs/sources/training_set.yaml``), the project's own commands:

1. ``make_sample.py``: every frame of the clip at the training set's width (``footage.width``, aspect
   kept, even sizes), each blurred frame the mean of 7 consecutive sharp ones, the middle one its sharp
   frame; ``<clip>_blurred.mp4`` and ``<clip>_sharp.mp4`` (H.264, make_sample's CRF);
2. ``deblur.py <clip>_blurred.mp4 -o <clip>_deblurred.mp4``: default checkpoint and settings (H.264 out at
   deblur's default CRF, or ``--crf``);
3. ``evaluate.py <clip>_sharp.mp4 --restored <clip>_deblurred.mp4 --blurred <clip>_blurred.mp4``: PSNR and
   SSIM of input and output over every frame (official protocol).

Unlike the recipe's export (which scores frame folders in memory) this includes both encodes.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.checkout import ROOT
from pipeline.cli.build_training_set import SOURCES
from pipeline.config import DeblurConfig
from pipeline.data.prepare import fitted_size
from pipeline.data.synth import DVD_EXPOSURE
from pipeline.data.trainset import Sources
from pipeline.measure.runinfo import command_line, stamp
from pipeline.runtime import compute_device
from pipeline.video.probe import probe


def run(script: str, *arguments: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / script), *arguments], check=True,
                   stdout=subprocess.DEVNULL)


def held_out_clip(clip: Path, max_width: int, folder: Path, crf: int) -> dict:
    """Make, deblur and score one clip; its evaluate.py figures."""
    info = probe(clip)
    height, width = fitted_size(info.height, info.width, max_width)  # as the training set's clips are
    name, exposure = clip.stem, DVD_EXPOSURE.window
    run("make_sample.py", "--source", str(clip), "--out", str(folder), "--name", name, "--start", "0",
        "--frames", str(info.num_frames - exposure + 1), "--width", str(width), "--height", str(height),
        "--window", str(exposure))
    blurred, sharp = folder / f"{name}_blurred.mp4", folder / f"{name}_sharp.mp4"
    deblurred = folder / f"{name}_deblurred.mp4"
    run("deblur.py", str(blurred), "--output", str(deblurred), "--crf", str(crf))
    scores = folder / f"{name}.json"
    run("evaluate.py", str(sharp), "--restored", str(deblurred), "--blurred", str(blurred),
        "--json", str(scores))
    video = json.loads(scores.read_text())["videos"][0]
    return {"size": f"{width}x{height}", "frames": video["frames"], "input": video["input"],
            "output": video["restored"], "gain_db": video["restored"]["psnr"] - video["input"]["psnr"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crf", type=int, default=DeblurConfig.crf,
                        help=f"deblur's output quality (default {DeblurConfig.crf}, deblur's own default)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    sources = Sources.load(SOURCES)
    footage, folder = sources.footage, sources.folder(sources.footage["root"], ROOT)
    with tempfile.TemporaryDirectory(prefix="held_out_") as scratch:
        clips = {Path(name).stem: held_out_clip(folder / name, footage["width"], Path(scratch), args.crf)
                 for name in footage["val"]}
    mean = sum(clip["gain_db"] for clip in clips.values()) / len(clips)
    table = Table(title=f"held-out clips through deblur (default checkpoint, CRF {args.crf}), every frame")
    for column in ("clip", "size", "frames", "input PSNR / SSIM", "output PSNR / SSIM", "gain"):
        table.add_column(column, justify="left" if column == "clip" else "right")
    for name, clip in clips.items():
        table.add_row(name, clip["size"], str(clip["frames"]),
                      f"{clip['input']['psnr']:.2f} / {clip['input']['ssim']:.4f}",
                      f"{clip['output']['psnr']:.2f} / {clip['output']['ssim']:.4f}",
                      f"{clip['gain_db']:+.2f} dB")
    table.add_row("mean", "", "", "", "", f"{mean:+.2f} dB")
    Console().print(table)
    if args.json:
        document = {**stamp(compute_device(), command_line(argv)), "crf": args.crf, "clips": clips,
                    "mean_gain_db": mean}
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
