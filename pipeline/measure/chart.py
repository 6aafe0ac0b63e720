"""The profile as a picture: where a frame's time goes, and throughput per configuration.

Panels (those with data): stage breakdown in ms per frame (one stacked bar per configuration and
thread), frames/s per configuration, training samples/s per configuration; medians with min-max whiskers.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

_COLOURS = plt.get_cmap("tab20").colors


def _stage_bars(results: list[dict]) -> list[tuple[str, dict[str, float]]]:
    """(label, {stage: ms per frame}) per configuration and thread that has a breakdown."""
    bars = []
    for result in results:
        if result["unit"] != "frame":
            continue
        for config in result["configurations"]:
            by_thread: dict[str, dict[str, float]] = {}
            for stage, value in config["stages"].items():
                by_thread.setdefault(value["thread"], {})[stage] = value["ms_per_item"]
            for thread, stages in by_thread.items():
                bars.append((f"{config['name']}\n[{thread} thread]", stages))
    return bars


def _rates(results: list[dict], unit: str) -> list[tuple[str, str, dict]]:
    """(mode, configuration, rate spread) of every configuration counted in ``unit``."""
    return [(r["mode"], c["name"], c["rate"])
            for r in results if r["unit"] == unit for c in r["configurations"]]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _draw_breakdown(axis, bars: list[tuple[str, dict[str, float]]]) -> None:
    stages = list(dict.fromkeys(stage for _, values in bars for stage in values))
    colours = {stage: _COLOURS[i % len(_COLOURS)] for i, stage in enumerate(stages)}
    for row, (_, values) in enumerate(bars):
        left = 0.0
        for stage, ms in values.items():
            axis.barh(row, ms, left=left, color=colours[stage], edgecolor="white", linewidth=0.5)
            left += ms
        axis.text(left, row, f" {left:.1f}", va="center", fontsize=8)
    axis.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("ms per frame (stage breakdown run)")
    axis.set_title("Where a frame's time goes")
    axis.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in stages], labels=stages,
                fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axis.margins(x=0.08)


def _draw_rates(axis, rates: list[tuple[str, str, dict]], label: str) -> None:
    """Horizontal bars on a log scale (decoders and models differ by orders of magnitude), one colour per
    mode."""
    modes = list(dict.fromkeys(mode for mode, _, _ in rates))
    for row, (mode, _, rate) in enumerate(rates):
        axis.barh(row, rate["median"], color=_COLOURS[2 * modes.index(mode) % len(_COLOURS)],
                  xerr=[[rate["median"] - rate["min"]], [rate["max"] - rate["median"]]], capsize=3)
        axis.text(rate["max"] * 1.08, row, _number(rate["median"]), va="center", fontsize=8)
    axis.set_xscale("log")
    axis.set_yticks(range(len(rates)), [f"{mode}: {name}" for mode, name, _ in rates], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel(f"{label}, log scale (median, min-max)")
    axis.set_title(label[0].upper() + label[1:])
    axis.set_xlim(min(rate["min"] for _, _, rate in rates) / 2, max(rate["max"] for _, _, rate in rates) * 4)


def draw(document: dict, path: Path) -> Path:
    """Write the chart of a profile document (``scripts/profiler.py --json``'s content) as a PNG."""
    results = list(document["results"].values())
    panels = [(_draw_breakdown, bars) for bars in [_stage_bars(results)] if bars]
    panels += [(lambda axis, rates, label=label: _draw_rates(axis, rates, label), rates)
               for unit, label in (("frame", "frames per second"), ("sample", "training samples per second"))
               for rates in [_rates(results, unit)] if rates]
    if not panels:
        raise ValueError("nothing to draw: the profile has no results")
    heights = [max(2.0, 0.45 * len(data) + 1.2) for _, data in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(12, sum(heights)), height_ratios=heights,
                                squeeze=False)
    for axis, (draw_panel, data) in zip(axes[:, 0], panels):
        draw_panel(axis, data)
        axis.grid(axis="x", alpha=0.3)
    device = document["device"]
    figure.suptitle(f"CDVD-TSP profile: {device['gpu'] or device['cpu']} - {document['date'][:10]}, "
                    f"commit {document['commit']}", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
