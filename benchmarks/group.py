r"""The engine's group size (``deblur.group``, positions per model call) per frame size, measured in one run.

For each size, the streaming engine runs the same synthetic frames at every group size (and weight layout,
``--formats``) in turns (`pipeline.measure.profiling.profile_groups`): seconds per frame, each
configuration's time over the first one's, and peak memory. The published model with seeded weights (the
flow net runs; a zero-flow checkpoint skips it and batches only the restoration net).

    python benchmarks/group.py --json benchmarks/results/group_cpu.json
    python benchmarks/group.py --sizes 1280x720 --frames 8 --groups 1 2 4 --repeats 1 \
        --json benchmarks/results/group_cpu_720p.json
    python benchmarks/group.py --frames 8 --groups 2 --formats contiguous channels_last --precision bf16 \
        --json benchmarks/results/channels_last_bf16_cpu.json
    python benchmarks/group.py --device cuda --sizes 480x272 1280x720 --groups 1 2 4 8 16 --precision bf16
"""
import argparse

from rich.console import Console
from rich.table import Table

from model import CDVDTSP
from pipeline.cli import FrameSize, frame_size
from pipeline.measure.profiling import profile_groups
from pipeline.measure.runinfo import parse_device_benchmark, write_result
from pipeline.memory_format import MEMORY_FORMATS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=frame_size, help="WxH frame sizes",
                        default=[FrameSize(96, 96), FrameSize(320, 180)])
    parser.add_argument("--frames", type=int, default=16, help="frames per run")
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--formats", nargs="+", default=["contiguous"], choices=list(MEMORY_FORMATS),
                        help="weight layouts (deblur.memory_format)")
    args, config, device = parse_device_benchmark(parser, argv)
    model = CDVDTSP(config.model).to(device).eval()
    results = {}
    for size in args.sizes:
        results[str(size)] = profile_groups(model, config.deblur, device, frames=args.frames,
                                            height=size.height, width=size.width, repeats=args.repeats,
                                            groups=args.groups, precision=args.precision,
                                            formats=tuple(args.formats))
    table = Table(title=f"engine per group size, {args.frames} frames, {args.precision}, "
                        f"median of {args.repeats} in turns")
    for column in ("size", "group", "layout", "ms/frame", "time / first", "host peak MB", "GPU peak MB"):
        table.add_column(column, justify="left" if column in ("size", "layout") else "right")
    for size, result in results.items():
        first = result["configurations"][0]
        for row in result["configurations"]:
            ratio = result["ratios"].get(f"{row['name']} / {first['name']} (time per frame)", 1.0)
            memory = row["memory"]
            table.add_row(size, str(row["group"]), row["memory_format"],
                          f"{row['ms_per_item']['median']:.1f}", f"{ratio:.3f}", f"{memory['host_mb']:.0f}",
                          "-" if memory["gpu_mb"] is None else f"{memory['gpu_mb']:.0f}")
    Console().print(table)
    write_result(args.json, "group", device, argv,
                 {"sizes": [str(size) for size in args.sizes], "frames": args.frames, "groups": args.groups,
                  "repeats": args.repeats, "precision": args.precision, "formats": args.formats,
                  "model": vars(config.model), "chunk": config.deblur.chunk}, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
