"""The GPU check at its tiny size on the CPU: every step runs and reports, so the command a GPU lease
depends on cannot rot."""
import json

from pipeline.cli.gpu_check import main
from pipeline.measure.gpu_check import STEPS


def test_every_step_runs_at_the_tiny_size_and_reports(tmp_path):
    assert main(["--out", str(tmp_path), "--tiny", "--device", "cpu"]) == 0
    document = json.loads((tmp_path / "gpu_check_cpu.json").read_text())
    steps = document["steps"]
    assert list(steps) == [step.name for step in STEPS]
    assert all(record["status"] in ("ok", "skipped") for record in steps.values()), steps
    assert steps["cuda_tests"]["tests"] == steps["cuda_tests"]["skipped"] > 0  # no GPU here: all skip
    assert steps["fidelity"]["fp32_vs_cpu"]["max_abs"] == 0  # the CPU against itself
    assert 40 < steps["fidelity"]["bf16_vs_fp32"]["psnr_db"] < 120
    assert set(steps["engine"]["fps"]) == {"engine fp32", "engine bf16", "naive windows fp32"}
    assert steps["end_to_end"]["fps"] > 0 and steps["train"]["samples_per_s"]
    assert steps["channels_last"]["max_abs_vs_contiguous"] <= 1e-5
    assert steps["channels_last"]["channels_last_fps"] > 0 and steps["channels_last"]["contiguous_fps"] > 0
    assert steps["compiled"]["max_abs_vs_eager"] == 0 and steps["compiled"]["compiled_fps"] > 0  # traced
    assert set(document["results"]) >= {"model", "end-to-end", "train"}
    assert (tmp_path / "gpu_check_cpu.png").stat().st_size > 10_000
    assert document["commit"] and document["device"]["cpu"]


def test_a_step_that_does_not_fit_the_budget_is_not_started(tmp_path, monkeypatch):
    """Outside the tiny size, the budget decides; a failing step is recorded and the next one runs."""
    from pipeline.measure import gpu_check

    records = {}

    def broken(check):
        raise RuntimeError("out of memory")

    steps = (gpu_check.Step("first", broken, 1), gpu_check.Step("second", lambda check: {"x": 1}, 1),
             gpu_check.Step("too long", lambda check: {}, 10_000))
    check = gpu_check.Check(None, None, None, tmp_path, tiny=False)
    gpu_check.run_steps(check, 100, lambda name, record: records.__setitem__(name, record), steps)
    assert records["first"]["status"] == "failed" and "out of memory" in records["first"]["error"]
    assert records["second"]["status"] == "ok" and records["second"]["x"] == 1
    assert records["too long"]["status"] == "budget"
