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
import json
import logging
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from model import CDVDTSP, CheckpointError
from pipeline.cli import add_device_option, command_parser, fail
from pipeline.cli.job_view import LiveView, part_line, summary_tables
from pipeline.compiling import COMPILE_MODES
from pipeline.config import ConfigError, dump_config, load_config
from pipeline.data.datasets import VideoPaths
from pipeline.data.scored import Video
from pipeline.distributed import close_process, init_process, restarted
from pipeline.errors import VideoError
from pipeline.evaluation import outputs_restore_fn, score
from pipeline.measure.runinfo import command_line, stamp
from pipeline.metrics import Summary
from pipeline.precision import PRECISIONS
from pipeline.runtime import UNTRAINED, build_model
from pipeline.stream.job import Job, expand_inputs, output_paths
from pipeline.stream.windows import BORDERS
from pipeline.video import dali
from pipeline.video.readers import READERS
from pipeline.video.writer import OUTPUT_BITS, OUTPUT_FORMATS

console = Console(stderr=True)


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
    add_device_option(parser)
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
    job = Job(model.eval(), config.deblur, weights=weights, device=device, process=process)
    terminate = signal.signal(signal.SIGTERM, _stop)  # a scheduler's stop: as clean as Ctrl-C
    try:
        with job:  # the outputs' locks are released however it ends
            return _deblur(args, config, job, command_line(argv))
    except KeyboardInterrupt as stop:
        console.print(f"[yellow]{'stopped (SIGTERM)' if isinstance(stop, Terminated) else 'interrupted'}[/]: "
                      "finished segments are kept, rerun with --resume")
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, terminate)
        close_process()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that the run stops as cleanly."""


def _stop(signum, frame) -> None:
    raise Terminated


def _deblur(args, config, job: Job, command: str) -> int:
    """Open every input (rank 0 prepares the outputs and plans the parts), work, summarise on rank 0."""
    sources = expand_inputs(args.inputs)
    try:
        outputs = output_paths(sources, args.output, png=config.deblur.format == "png")
    except VideoError as error:
        fail(console, error)
        return 1
    for problem in job.open(sources, outputs, overwrite=args.overwrite, resume=args.resume or restarted()):
        fail(console, problem)
    main = job.process.main

    def log_part(result) -> None:  # an error line from the worker that hit it; off a terminal, every part
        if result.error:
            fail(console, result.error)
        elif not console.is_terminal:
            console.print(part_line(job.inputs, result))

    live = main and console.is_terminal
    with LiveView(console, job.inputs, job.parts) if live else contextlib.nullcontext():  # until all are done
        results = job.run(on_part=log_part)
    if not main:
        return 1 if job.failed(results) else 0
    summary = {**stamp(job.device, command), **job.summary(results)}
    for table in summary_tables(summary):
        Console().print(table)
    png = config.deblur.format == "png"
    for row in summary["videos"]:
        if row["output"] and not png:  # with the model that ran: the checkpoint's, not the config's defaults
            dump_config(dataclasses.replace(config, model=job.model.config), Path(row["output"] + ".yaml"))
    failed = any(row["error"] for row in summary["videos"])
    if args.sharp and len(sources) == 1 and not failed and not png:
        before, after = score_against(args.sharp, outputs[0], sources[0])
        scores = summary["against_sharp"] = {
            "sharp": str(args.sharp), "input": {"psnr": before.psnr, "ssim": before.ssim},
            "output": {"psnr": after.psnr, "ssim": after.ssim}, "gain_db": after.psnr - before.psnr}
        Console().print(f"against {args.sharp.name}: input PSNR {before.psnr:.2f} dB / "
                        f"SSIM {before.ssim:.4f}, output PSNR {after.psnr:.2f} dB / SSIM {after.ssim:.4f}: "
                        f"gain {scores['gain_db']:+.2f} dB ({job.weights} weights)")
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
