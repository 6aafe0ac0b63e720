"""The GPU check at its tiny size on the CPU: every step runs and reports, so the command a rare GPU run
depends on cannot rot; and what keeps a run cut short useful (the JSON from the start, the budget)."""
import json
import time

from pipeline.cli import gpu_check as command
from pipeline.cli.gpu_check import main
from pipeline.measure import gpu_steps
from pipeline.measure.gpu_steps import STEPS


def test_every_step_runs_at_the_tiny_size_and_reports(tmp_path):
    assert main(["--out", str(tmp_path), "--tiny", "--device", "cpu"]) == 0
    document = json.loads((tmp_path / "gpu_check_cpu.json").read_text())
    steps = document["steps"]
    assert list(steps) == [step.name for step in STEPS]
    assert all(record["status"] in ("ok", "skipped") for record in steps.values()), steps
    cuda = steps["cuda_tests"]
    assert cuda["tests"] > cuda["skipped"] > 0 and cuda["failures"] == cuda["errors"] == 0  # torch_api ran
    assert steps["peak"]["measured_tflops"]["fp32"] > 0 and steps["peak"]["datasheet_tflops"]["fp32"] is None
    assert steps["fidelity"]["fp32_vs_cpu"]["max_abs"] == 0  # the CPU against itself
    assert 40 < steps["fidelity"]["bf16_vs_fp32"]["psnr_db"] < 120
    assert set(steps["engine"]["fps"]) == {"engine fp32", "engine bf16", "naive windows fp32"}
    assert steps["flow"]["max_abs_vs_eager"] == 0 and steps["flow"]["correlation_fps"] > 0  # traced
    assert steps["flow"]["tflop_per_frame"] > 0 and steps["flow"]["achieved_tflops"]["eager"] > 0
    assert steps["end_to_end"]["fps"] > 0 and steps["train"]["samples_per_s"]
    pyav = steps["long_decode"]["pyav"]
    assert steps["long_decode"]["frames"] == 40
    assert pyav["first_minute_fps"] > 0 and pyav["last_minute_fps"] > 0
    assert steps["channels_last"]["max_abs_vs_contiguous"] <= 1e-5
    assert steps["channels_last"]["channels_last_fps"] > 0 and steps["channels_last"]["contiguous_fps"] > 0
    assert steps["compiled"]["max_abs_vs_eager"] == 0 and steps["compiled"]["compiled_fps"] > 0  # traced
    assert set(document["results"]) >= {"model", "end-to-end", "train"}
    assert (tmp_path / "gpu_check_cpu.png").stat().st_size > 10_000
    versions = document["device"]["versions"]
    assert document["commit"] and document["device"]["cpu"]
    assert {"torch", "cuda", "cudnn", "driver", "dali"} <= set(versions)


def test_the_json_is_written_before_the_first_step(tmp_path, monkeypatch):
    """A run that hangs in its first step still leaves the stamp, and the step it hung in."""
    seen = {}

    def look(check):
        seen.update(json.loads((tmp_path / "gpu_check_cpu.json").read_text()))
        return {}

    monkeypatch.setattr(command, "STEPS", (gpu_steps.Step("look", look, 1),))
    assert main(["--out", str(tmp_path), "--tiny", "--device", "cpu"]) == 0
    assert seen["device"]["cpu"] and seen["steps"]["look"]["status"] == "running"


def test_a_step_that_does_not_fit_the_budget_is_not_started(tmp_path):
    """Outside the tiny size, the budget decides; a failing step is recorded and the next one runs."""
    records = {}

    def broken(check):
        raise RuntimeError("out of memory")

    steps = (gpu_steps.Step("first", broken, 1), gpu_steps.Step("second", lambda check: {"x": 1}, 1),
             gpu_steps.Step("too long", lambda check: {}, 10_000))
    check = gpu_steps.Check(None, None, None, tmp_path, tiny=False)
    gpu_steps.run_steps(check, 100, lambda name, record: records.__setitem__(name, record), steps)
    assert records["first"]["status"] == "failed" and "out of memory" in records["first"]["error"]
    assert records["second"]["status"] == "ok" and records["second"]["x"] == 1
    assert records["too long"]["status"] == "budget"


def test_a_step_that_runs_past_the_budget_is_stopped(tmp_path):
    """A step whose estimate fitted but that runs on is stopped where the budget ends, and recorded."""
    records = {}
    steps = (gpu_steps.Step("hangs", lambda check: time.sleep(30), 0.1),
             gpu_steps.Step("next", lambda check: {}, 0.1))
    check = gpu_steps.Check(None, None, None, tmp_path, tiny=False)
    began = time.perf_counter()
    gpu_steps.run_steps(check, 1.0, lambda name, record: records.__setitem__(name, record), steps)
    assert time.perf_counter() - began < 5
    assert records["hangs"]["status"] == "timeout" and records["next"]["status"] == "budget"


def test_the_test_step_fails_when_pytest_does_and_keeps_to_the_budget(tmp_path, monkeypatch):
    """A collection error is a failed step, not "ok" with no tests; pytest is stopped where the budget
    ends."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_broken.py").write_text("import a_module_that_is_not_there\n")
    monkeypatch.setattr(gpu_steps, "TESTS", tests)
    check = gpu_steps.Check(None, None, None, tmp_path, tiny=False)
    record = gpu_steps.cuda_tests(check)
    assert record["status"] == "failed" and record["exit_code"] == 2 and record["errors"] == 1
    (tests / "test_broken.py").write_text("import time\ntime.sleep(60)\n")
    check.deadline = time.perf_counter() + 2
    began = time.perf_counter()
    assert gpu_steps.cuda_tests(check)["status"] == "timeout" and time.perf_counter() - began < 10
