r"""Where the engine's time goes, operator by operator: convolution against everything else, per frame size.

For each size and precision the streaming engine (``deblur.*`` of the config: group, chunk, border, memory
format) restores the same synthetic frames once to warm up and once under ``torch.profiler``, and the
operators' self times are split into *convolution* (the convolution kernels themselves) and the rest, listed
by name: correlation products and means, ``cat``, copies, casts, warps. The rest is what a leaner engine
could still take out; the convolutions are the arithmetic itself. The published model with seeded weights
(the flow net runs).

    python benchmarks/overhead.py --json benchmarks/results/overhead_cpu.json
    python benchmarks/overhead.py --sizes 1280x720 --frames 6 --precision bf16
"""
import argparse
import time

import torch
from rich.console import Console
from rich.table import Table
from torch.profiler import ProfilerActivity, profile

from model import CDVDTSP
from pipeline.cli import FrameSize, frame_size
from pipeline.measure.runinfo import parse_device_benchmark, write_result
from pipeline.measure.timing import synchronize
from pipeline.precision import precision_context
from pipeline.runtime import prepare_model
from pipeline.stream.engine import StreamingEngine

# the operators that are the convolution arithmetic (CPU: oneDNN or the slow path; CUDA: cuDNN); their
# dispatch wrappers (aten::conv2d, aten::_convolution) count as overhead through their self time
CONVOLUTION_KERNELS = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward",
                       "aten::slow_conv_transpose2d", "aten::cudnn_convolution",
                       "aten::cudnn_convolution_transpose", "aten::_nnpack_spatial_convolution",
                       "aten::convolution_overrideable")
LISTED = 8  # the largest non-convolution operators named in the results


def op_breakdown(engine: StreamingEngine, video: torch.Tensor, chunk: int, device: torch.device,
                 precision: str) -> dict:
    """One profiled run of ``engine`` over ``video`` ((n, 3, H, W)): ms per frame, the convolution share of
    the operators' self time, and the largest other operators' shares."""
    def run() -> None:
        with precision_context(device, precision):
            for _ in engine.run(video.split(chunk)):
                pass
        synchronize(device)

    run()  # warm-up: oneDNN primitives, allocator
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    attribute = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    # ranges (record_function) have no self time of their own worth listing; operators start with "aten::"
    selves = {event.key: getattr(event, attribute) for event in profiler.key_averages()
              if event.key.startswith("aten::") and getattr(event, attribute) > 0}
    total = sum(selves.values())
    convolution = sum(t for name, t in selves.items() if name in CONVOLUTION_KERNELS)
    others = sorted(((t, name) for name, t in selves.items() if name not in CONVOLUTION_KERNELS),
                    reverse=True)
    return {"ms_per_frame_profiled": 1000 * wall / len(video), "convolution_share": convolution / total,
            "other_share": 1 - convolution / total,
            "largest_others": {name: t / total for t, name in others[:LISTED]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=frame_size, help="WxH frame sizes",
                        default=[FrameSize(96, 96), FrameSize(320, 180), FrameSize(1280, 720)])
    parser.add_argument("--frames", type=int, default=8, help="frames per run")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    args, config, device = parse_device_benchmark(parser, argv)
    model = prepare_model(CDVDTSP(config.model).eval(), config.deblur, device)
    engine = StreamingEngine(model, border=config.deblur.border, group=config.deblur.group)
    results = {}
    for size in args.sizes:
        seeded = torch.Generator().manual_seed(0)
        video = torch.rand(args.frames, 3, size.height, size.width, generator=seeded).to(device)
        results[str(size)] = {precision: op_breakdown(engine, video, config.deblur.chunk, device, precision)
                              for precision in args.precision}
    table = Table(title=f"engine operators, {args.frames} frames, group {config.deblur.group}, "
                        f"{config.deblur.memory_format}")
    for column in ("size", "precision", "ms/frame", "convolution", "largest other operators"):
        table.add_column(column, justify="left" if column in ("size", "largest other operators") else "right")
    for size, by_precision in results.items():
        for precision, row in by_precision.items():
            largest = list(row["largest_others"].items())[:4]
            others = ", ".join(f"{name[6:]} {share:.1%}" for name, share in largest)  # name[6:]: no "aten::"
            table.add_row(size, precision, f"{row['ms_per_frame_profiled']:.0f}",
                          f"{row['convolution_share']:.1%}", others)
    Console(width=160).print(table)
    write_result(args.json, "overhead", device, argv,
                 {"sizes": [str(size) for size in args.sizes], "frames": args.frames,
                  "precisions": args.precision, "model": vars(config.model), "deblur": vars(config.deblur)},
                 results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
