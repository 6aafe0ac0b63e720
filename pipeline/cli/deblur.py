"""Deblur videos with CDVD-TSP: files, folders or globs in, deblurred videos (or PNG frames) out.

    python scripts/deblur.py clip.mp4 --output out/ --checkpoint CDVD_TSP_DVD_Convergent.pt
    python scripts/deblur.py 'footage/*.mov' --output out/ --set deblur.precision=bf16 --resume
    torchrun --nproc-per-node 8 scripts/deblur.py long.mp4 -o out.mp4   # 8 workers share one video
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        scripts/deblur.py /shared/footage/ -o /shared/out/              # every node, same shared paths

Under torchrun the workers share out frames, not files: long videos are cut into time shards
(`pipeline.stream.parts`) that any worker takes when it is free, and each output is joined into the file
one process would write. Bad inputs are reported one line each and do not stop the others; the exit code is
1 if any failed. A launch restarted by torchrun (``--max-restarts``) resumes as with ``--resume``.
"""
import argparse
import contextlib
import dataclasses
import glob
import json
import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from model import CDVDTSP, CheckpointError
from pipeline.cli import command_parser, fail
from pipeline.cli.job_view import LiveView, part_line, summarize, summary_tables
from pipeline.compiling import COMPILE_MODES, compile_model
from pipeline.config import ConfigError, dump_config, load_config
from pipeline.data.datasets import VideoPaths
from pipeline.data.scored import Video
from pipeline.distributed import broadcast, close_process, gather, init_process, restarted
from pipeline.errors import VideoError
from pipeline.evaluation import outputs_restore_fn, score
from pipeline.measure.runinfo import command_line, stamp
from pipeline.memory_format import with_memory_format
from pipeline.metrics import Summary
from pipeline.precision import PRECISIONS
from pipeline.runtime import UNTRAINED, build_model
from pipeline.stream.windows import BORDERS
from pipeline.stream.workers import Worker, open_videos, plan_videos
from pipeline.video import dali
from pipeline.video.readers import READERS
from pipeline.video.workfolder import make_folder
from pipeline.video.writer import OUTPUT_BITS, OUTPUT_FORMATS, Output

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


def build(args, config, warn: bool = True) -> tuple[CDVDTSP, str]:
    """The model from --checkpoint, the bundled default checkpoint, or (loudly, when ``warn``) untrained
    weights."""
    model, weights = build_model(config, args.checkpoint)
    if weights == UNTRAINED and warn:
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
    parser.add_argument("--border", choices=BORDERS, help="= --set deblur.border=...")
    parser.add_argument("--chunk", type=int, help="= --set deblur.chunk=N (frames decoded per chunk)")
    parser.add_argument("--reader", choices=READERS, help="= --set deblur.reader=...")
    parser.add_argument("--codec", help="= --set deblur.codec=... (e.g. libx264, libx265, libvpx-vp9)")
    parser.add_argument("--crf", type=int, help="= --set deblur.crf=N")
    parser.add_argument("--bits", type=int, choices=OUTPUT_BITS,
                        help="output depth (default: 10 for inputs deeper than 8 bits, else 8)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, help="= --set deblur.format=...")
    parser.add_argument("--compare", action="store_true", help="write input | output side by side")
    parser.add_argument("--compile", choices=COMPILE_MODES,
                        help="= --set deblur.compile=... (torch.compile; reduce-overhead: CUDA graphs; "
                             "correlation: PWC-Net's correlation only)")
    parser.add_argument("--channels-last", action="store_true",
                        help="= --set deblur.memory_format=channels_last (weights and activations NHWC)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--resume", action="store_true",
                        help="continue interrupted runs from their last segment")
    parser.add_argument("--sharp", type=Path,
                        help="sharp reference video: print PSNR/SSIM of input and output")
    parser.add_argument("--summary", type=Path,
                        help="write the summary (date, commit, command, weights, videos, workers, balance, "
                             "and the scores against --sharp) as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="log decisions (reader choice, ...)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    shortcuts = {"precision": args.precision, "border": args.border, "chunk": args.chunk,
                 "reader": args.reader, "codec": args.codec, "crf": args.crf, "bits": args.bits,
                 "format": args.format, "compare": args.compare or None, "compile": args.compile,
                 "memory_format": "channels_last" if args.channels_last else None}
    try:
        config = load_config(args.config, args.set, values={f"deblur.{k}": v for k, v in shortcuts.items()})
        if config.deblur.reader == "dali" and dali.unavailable():
            raise ConfigError(f"--reader dali: {dali.unavailable()}; use --reader auto or pyav")
        process, device = init_process(args.device)
        model, weights = build(args, config, warn=process.main)
    except (ConfigError, CheckpointError, RuntimeError) as error:
        return fail(console, error)
    model = with_memory_format(model.to(device).eval(), config.deblur.memory_format)
    model = compile_model(model, config.deblur.compile)
    held: list[Output] = []  # the outputs whose locks this launch holds: released however it ends
    terminate = signal.signal(signal.SIGTERM, _stop)  # a scheduler's stop: as clean as Ctrl-C
    try:
        return _deblur(args, config, model, weights, process, device, command_line(argv), held)
    except KeyboardInterrupt as stop:
        console.print(f"[yellow]{'stopped (SIGTERM)' if isinstance(stop, Terminated) else 'interrupted'}[/]: "
                      "finished segments are kept, rerun with --resume")
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, terminate)
        for output in held:
            output.release()
        close_process()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that the run stops as cleanly."""


def _stop(signum, frame) -> None:
    raise Terminated


def _deblur(args, config, model, weights: str, process, device, command: str, held: list[Output]) -> int:
    """Open every input (rank 0 prepares the outputs, adding them to ``held``, and plans the parts), work,
    summarise on rank 0."""
    sources = expand_inputs(args.inputs)
    png, single = config.deblur.format == "png", len(sources) == 1
    if not single:
        try:
            make_folder(args.output)
        except VideoError as error:
            fail(console, error)
            return 1
    outputs = [output_for(name, args.output, single, png) for name in output_names(sources)]
    videos = open_videos(model, sources, outputs, config.deblur, {"weights": weights}, prepare=process.main,
                         overwrite=args.overwrite, resume=args.resume or restarted())
    held += [video.output for video in videos if video.output is not None]
    if process.main:
        for video in videos:
            if video.error:
                fail(console, video.error)
    job = ([i for i, v in enumerate(videos) if v.output], plan_videos(videos, process.world_size)) \
        if process.main else None  # the other ranks must not read work folders rank 0 is preparing
    opened, parts = broadcast(job)
    for index, video in enumerate(videos):
        if index not in opened:  # rank 0 could not open it: not part of the job
            video.output = None
        elif video.output is None:  # rank 0 could: this worker cannot, and reports why
            fail(console, f"rank {process.rank}: {video.error}")
    live = process.main and console.is_terminal
    def log_part(result) -> None:  # an error line from the worker that hit it; off a terminal, every part
        if result.error:
            fail(console, result.error)
        elif not console.is_terminal:
            console.print(part_line(videos, result))

    worker = Worker(model, videos, parts, config.deblur, device, rank=process.rank, on_part=log_part)
    with LiveView(console, videos, parts) if live else contextlib.nullcontext():  # until every worker is done
        everything = [result for results in gather(worker.run()) for result in results]
    if not process.main:
        return 1 if any(r.error for r in everything) or any(v.error for v in videos) else 0
    summary = {**stamp(device, command), "weights": weights,
               **summarize(videos, everything, process.world_size)}
    for table in summary_tables(summary, weights):
        Console().print(table)
    for row in summary["videos"]:
        if row["output"] and not png:  # with the model that ran: the checkpoint's, not the config's defaults
            dump_config(dataclasses.replace(config, model=model.config), Path(row["output"] + ".yaml"))
    failed = any(row["error"] for row in summary["videos"])
    if args.sharp and single and not failed and not png:
        before, after = score_against(args.sharp, outputs[0], sources[0])
        scores = summary["against_sharp"] = {
            "sharp": str(args.sharp), "input": {"psnr": before.psnr, "ssim": before.ssim},
            "output": {"psnr": after.psnr, "ssim": after.ssim}, "gain_db": after.psnr - before.psnr}
        Console().print(f"against {args.sharp.name}: input PSNR {before.psnr:.2f} dB / "
                        f"SSIM {before.ssim:.4f}, output PSNR {after.psnr:.2f} dB / SSIM {after.ssim:.4f}: "
                        f"gain {scores['gain_db']:+.2f} dB ({weights} weights)")
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
