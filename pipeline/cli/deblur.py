"""Deblur videos with CDVD-TSP: files, folders or globs in, deblurred videos (or PNG frames) out.

    python scripts/deblur.py clip.mp4 --output out/ --checkpoint CDVD_TSP_DVD_Convergent.pt
    python scripts/deblur.py 'footage/*.mov' --output out/ --set deblur.precision=bf16 --resume
    torchrun --nproc-per-node 8 scripts/deblur.py footage/ --output out/   # each rank takes its share

Bad inputs are reported one line each and do not stop the others; the exit code is 1 if any failed.
"""
import argparse
import glob
import logging
import os
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from model import CDVDTSP, CheckpointError
from pipeline.cli import command_parser, fail
from pipeline.config import ConfigError, dump_config, load_config
from pipeline.data.datasets import VideoPaths
from pipeline.errors import VideoError
from pipeline.evaluation import Video, outputs_restore_fn, score
from pipeline.metrics import Summary
from pipeline.precision import PRECISIONS
from pipeline.runtime import UNTRAINED, build_model, compute_device
from pipeline.stream.deblur import deblur_video

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv",
                  ".wmv"}
console = Console(stderr=True)


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files, folders (their videos, sorted) and globs -> video paths, in order, without duplicates."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            found.append(Path(pattern))  # reported as missing later, with the others
        for match in map(Path, matches):
            if match.is_dir():
                found += sorted(p for p in match.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
            else:
                found.append(match)
    return list(dict.fromkeys(found))


def output_names(sources: list[Path]) -> list[str]:
    """A distinct output name (no suffix) per input: its stem; its file name where stems repeat
    (``clip.mov``, ``clip.mp4``); its folders from the inputs' common one and its stem where file names
    repeat too (``a__clip``, ``b__clip``)."""
    stems = Counter(source.stem for source in sources)
    names = [source.stem if stems[source.stem] == 1 else source.name for source in sources]
    repeated = Counter(names)
    if any(count > 1 for count in repeated.values()):
        base = Path(os.path.commonpath([source.resolve().parent for source in sources]))
        names = [name if repeated[name] == 1 else "__".join((*source.resolve().parent.relative_to(base).parts,
                                                              source.stem))
                 for name, source in zip(names, sources)]
    return names


def output_for(name: str, output: Path, single: bool, png: bool) -> Path:
    """Where the input named ``name`` (`output_names`) goes: ``output`` itself for one input named like a
    file, else inside it."""
    if single and (output.suffix.lower() in VIDEO_SUFFIXES) != png and not output.is_dir():
        return output
    return output / (name if png else f"{name}.mp4")


def build(args, config) -> tuple[CDVDTSP, str]:
    """The model from --checkpoint, the bundled default checkpoint, or (loudly) untrained weights."""
    model, weights = build_model(config, args.checkpoint)
    if weights == UNTRAINED:
        console.print("[bold yellow]warning:[/] no --checkpoint and the default checkpoint is not installed "
                      "(model/weights/cdvd_tsp_default.pt): these weights are UNTRAINED (seeded random), so "
                      "the output is not deblurred. Pass an official CDVD_TSP_*.pt or a trained checkpoint.")
    return model, weights


def score_against(sharp: Path, restored: Path, blurred: Path) -> tuple[Summary, Summary]:
    """(input, output) mean PSNR/SSIM (official protocol) against the sharp frames."""
    video = Video.of(VideoPaths(sharp.stem, sharp, blurred))
    outputs, inputs = score([video], outputs_restore_fn(restored, single=True), baseline=True)
    return inputs.overall(), outputs.overall()


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("inputs", nargs="+", help="video files, folders of videos, or glob patterns")
    parser.add_argument("--output", "-o", type=Path, required=True, help="output file (one input) or folder")
    parser.add_argument("--checkpoint", type=Path, help="project or official CDVD-TSP .pt file")
    parser.add_argument("--config", type=Path, help="YAML config (default: configs/default.yaml values)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--precision", choices=PRECISIONS, help="= --set deblur.precision=...")
    parser.add_argument("--border", choices=["reflect", "replicate", "official"],
                        help="= --set deblur.border=...")
    parser.add_argument("--chunk", type=int, help="= --set deblur.chunk=N (frames decoded per chunk)")
    parser.add_argument("--reader", choices=["auto", "dali", "pyav"], help="= --set deblur.reader=...")
    parser.add_argument("--codec", help="= --set deblur.codec=... (e.g. libx264, libx265, libvpx-vp9)")
    parser.add_argument("--crf", type=int, help="= --set deblur.crf=N")
    parser.add_argument("--format", choices=["video", "png"], help="= --set deblur.format=...")
    parser.add_argument("--compare", action="store_true", help="write input | output side by side")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--resume", action="store_true",
                        help="continue interrupted runs from their last segment")
    parser.add_argument("--sharp", type=Path,
                        help="sharp reference video: print PSNR/SSIM of input and output")
    parser.add_argument("--verbose", "-v", action="store_true", help="log decisions (reader choice, ...)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    shortcuts = {"precision": args.precision, "border": args.border, "chunk": args.chunk,
                 "reader": args.reader, "codec": args.codec, "crf": args.crf, "format": args.format,
                 "compare": args.compare or None}
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        config = load_config(args.config, args.set, values={f"deblur.{k}": v for k, v in shortcuts.items()})
        device = compute_device(args.device)
        model, weights = build(args, config)
    except (ConfigError, CheckpointError, RuntimeError) as error:
        return fail(console, error)
    model = model.to(device).eval()
    everything = expand_inputs(args.inputs)  # named over all inputs, so that no two ranks share an output
    inputs, names = everything[rank::world], output_names(everything)[rank::world]
    png = config.deblur.format == "png"
    single = len(inputs) == 1 and world == 1
    if not single:
        args.output.mkdir(parents=True, exist_ok=True)
    results, failures = [], 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[fps]:.2f} fps"), TimeRemainingColumn(),
                  console=console) as progress:
        for source, name in zip(inputs, names):
            output = output_for(name, args.output, single, png)
            task = progress.add_task(source.name, total=None, fps=0.0)

            def on_start(info, reader, first, task=task, source=source):
                progress.update(task, total=info.num_frames, completed=first,
                                description=f"{source.name} [dim]({reader})[/]")

            def on_frames(count, task=task):
                progress.advance(task, count)
                elapsed = progress.tasks[task].elapsed or 1e-9
                progress.update(task, fps=progress.tasks[task].completed / elapsed)

            try:
                result = deblur_video(model, source, output, config.deblur, device=device,
                                      overwrite=args.overwrite, resume=args.resume, on_start=on_start,
                                      on_frames=on_frames, settings={"weights": weights})
                results.append((source, result.frames, result.seconds, result.reader, str(output)))
                if not png:
                    dump_config(config, output.with_name(output.name + ".yaml"))
            except KeyboardInterrupt:
                console.print(f"[yellow]interrupted[/]: {source}; finished segments are kept, "
                              "rerun with --resume")
                return 130
            except (VideoError, ValueError, OSError) as error:
                failures += 1
                message = str(error) if str(error).startswith(str(source)) else f"{source}: {error}"
                fail(console, message)
                results.append((source, 0, 0.0, "-", f"[red]failed: {error}[/]"))
    table = Table(title=f"deblurred with {weights}" + (f" (rank {rank}/{world})" if world > 1 else ""))
    for column in ("input", "frames", "seconds", "fps", "reader", "output"):
        table.add_column(column, justify="right" if column in ("frames", "seconds", "fps") else "left")
    for source, frames, seconds, reader, output in results:
        fps = f"{frames / seconds:.2f}" if seconds else "-"
        table.add_row(source.name, str(frames), f"{seconds:.1f}", fps, reader, output)
    Console().print(table)
    if args.sharp and single and not failures and not png:
        before, after = score_against(args.sharp, Path(results[0][4]), inputs[0])
        Console().print(f"against {args.sharp.name}: input PSNR {before.psnr:.2f} dB / "
                        f"SSIM {before.ssim:.4f}, output PSNR {after.psnr:.2f} dB / SSIM {after.ssim:.4f}: "
                        f"gain {after.psnr - before.psnr:+.2f} dB ({weights} weights)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
