"""The GPU check: one command that measures what matters on a GPU, in order of value, within a budget.

    python scripts/gpu_check.py --out gpu/ --budget 480      # on a lent GPU; the JSON and PNG name the device
    python scripts/gpu_check.py --out /tmp/check --tiny      # every step at a toy size on any device (CI)

Steps (`pipeline.measure.gpu_steps.STEPS`): the CUDA tests; the matmul peak per precision, measured beside
the datasheet's; fidelity (fp32 on the device against the CPU; tf32, bf16, fp16 against fp32; real 720p
frames, the default checkpoint); the engine at 1280x720 per precision (frames/s, counted TFLOP/s and their
share of the peaks, peak memory, the official schedule); the flow net's path (a random PWC-Net, eager and
``--compile correlation``); end to end 720p H.264 -> H.264 with PyAV on the host; decoding a 3-minute file
(first minute against last, every reader); a short training run; when DALI imports, every reader against
PyAV and the DALI loader against the PNG one; channels-last weights; compiled with CUDA graphs. A step that
would not fit in what is left of ``--budget`` is not started, one that runs past it is stopped, one that
fails is recorded and the next runs. ``OUT/gpu_check_<device>.json`` (device, driver, CUDA, torch and DALI
versions, date, commit, every figure) is written before the first step and rewritten as each starts and
ends; ``OUT/gpu_check_<device>.png`` and a summary come at the end.
"""
import argparse
import json
import logging
import re
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.cli import add_device_option, command_parser, fail
from pipeline.config import ConfigError, load_config
from pipeline.measure.chart import draw
from pipeline.measure.gpu_steps import STEPS, Check, run_steps
from pipeline.measure.runinfo import command_line, stamp
from pipeline.runtime import build_model, compute_device

console = Console(width=None if sys.stdout.isatty() else 140)


def get_args_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and the PNG")
    parser.add_argument("--budget", type=float, default=480, help="seconds for all steps (default 480)")
    parser.add_argument("--tiny", action="store_true", help="every step at a toy size (what CI runs)")
    add_device_option(parser)
    parser.add_argument("--steps", nargs="+", choices=[step.name for step in STEPS],
                        help="only these steps (default: all, in order)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        device = compute_device(args.device)
        document = {**stamp(device, command_line(argv)), "weights": None, "budget_s": args.budget,
                    "tiny": args.tiny, "steps": {}, "results": {}}
        name = re.sub(r"[^a-z0-9]+", "-", (document["device"]["gpu"] or "cpu").lower()).strip("-")
        json_path, chart_path = args.out / f"gpu_check_{name}.json", args.out / f"gpu_check_{name}.png"
        args.out.mkdir(parents=True, exist_ok=True)

        def save() -> None:
            json_path.write_text(json.dumps(document, indent=1, default=str) + "\n")

        save()  # before anything that could hang: the stamp alone already says what the machine is
        config = load_config()
        model, document["weights"] = build_model(config)
        steps = tuple(step for step in STEPS if not args.steps or step.name in args.steps)

        def on_step(step: str, record: dict) -> None:
            document["results"] |= record.pop("results", {})
            document["steps"][step] = record
            save()
            if record["status"] != "running":
                console.print(f"{step}: [bold]{record['status']}[/] ({record.get('seconds', 0):.0f} s)"
                              + (f" {record['error']}" if "error" in record else ""), highlight=False)

        with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
            check = Check(model.to(device).eval(), config, device, Path(work), args.tiny)
            run_steps(check, args.budget, on_step, steps)
    except (ConfigError, ValueError, OSError) as error:
        return fail(console, error)
    if document["results"]:
        draw(document, chart_path)
    console.print(summary(document))
    console.print(f"wrote {json_path}" + (f" and {chart_path}" if document["results"] else ""))
    failed = [step for step, record in document["steps"].items() if record["status"] in ("failed", "timeout")]
    return 1 if failed else 0


def summary(document: dict) -> Table:
    """One row per step: its status, time and headline figures."""
    table = Table(title=f"GPU check on {document['device']['gpu'] or document['device']['cpu']}",
                  title_justify="left")
    for column in ("step", "status", "seconds", "figures"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for step, record in document["steps"].items():
        table.add_row(step, record["status"], f"{record.get('seconds', 0):.0f}", _headline(step, record))
    return table


def _headline(step: str, record: dict) -> str:
    if record["status"] != "ok":
        return record.get("error", "")
    if step == "cuda_tests":
        failed = record["failures"] + record["errors"]
        return f"{record['tests']} tests, {failed} failed, {record['skipped']} skipped"
    if step == "peak":
        shares = {p: f" ({100 * share:.0f}% of datasheet)" if share else ""
                  for p, share in record["measured_share_of_datasheet"].items()}
        return "; ".join(f"{p} {tflops:.1f} TFLOP/s{shares[p]}"
                         for p, tflops in record["measured_tflops"].items())
    if step == "fidelity":
        return "; ".join(f"{name}: {v['psnr_db'] or float('inf'):.1f} dB, max {v['max_levels']} levels"
                         for name, v in record.items() if isinstance(v, dict))
    if step == "engine":
        shares = record["share_of_bf16_peak"] or {}
        return "; ".join(f"{name} {fps:.1f} fps"
                         + (f" ({100 * shares[name]:.0f}% of bf16 peak)" if shares else "")
                         for name, fps in record["fps"].items())
    if step == "flow":
        return (f"{record['precision']}: eager {record['eager_fps']:.1f} fps, correlation compiled "
                f"{record['correlation_fps']:.1f} ({record['speedup']:.2f}x), first run "
                f"{record['first_run_seconds']:.0f} s, max {record['max_abs_vs_eager']:.1e} from eager")
    if step == "long_decode":
        return "; ".join(f"{name} {v['first_minute_fps']:.0f} -> {v['last_minute_fps']:.0f} fps "
                         f"(first -> last minute)" for name, v in record.items() if isinstance(v, dict))
    if step == "end_to_end":
        return (f"{record['precision']} {record['fps']:.1f} fps = {100 * record['share_of_engine_fps']:.0f}% "
                f"of the engine's {record['engine_fps']:.1f}")
    if step == "train":
        return "; ".join(f"{name} {rate:.1f} samples/s" for name, rate in record["samples_per_s"].items())
    if step == "channels_last":
        return (f"{record['precision']}: {record['channels_last_fps']:.1f} fps vs contiguous "
                f"{record['contiguous_fps']:.1f} ({record['speedup']:.2f}x), "
                f"max {record['max_abs_vs_contiguous']:.1e} from contiguous")
    if step == "compiled":
        return (f"{record['mode']} {record['precision']}: {record['compiled_fps']:.1f} fps vs eager "
                f"{record['eager_fps']:.1f} ({record['speedup']:.2f}x), first run "
                f"{record['first_run_seconds']:.0f} s, max {record['max_abs_vs_eager']:.1e} from eager")
    if step == "dali":
        levels = [f"{name} max {value} levels from PyAV"
                  for name, value in record["max_levels_vs_pyav"].items()]
        rates = [f"{name} {rate:.1f} samples/s" for name, rate in record["ingest_samples_per_s"].items()]
        return "; ".join(levels + rates)
    return ""


if __name__ == "__main__":
    sys.exit(main())
