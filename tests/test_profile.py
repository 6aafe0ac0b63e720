"""The profiler: timing primitives, FLOP counts, every profile mode on a tiny clip, the JSON schema,
the chart."""
import json
import threading
import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from model import CDVDTSP
from model.init import zero_flow_
from model.ranges import listen, timed, timed_items
from pipeline.cli.profiler import main
from pipeline.measure import profiling
from pipeline.measure.flop_count import count_macs
from pipeline.measure.timing import Sections, busy_share, spread

from .helpers import TINY, TINY_ARGS


def test_sections_report_exclusive_time():
    sections = Sections()
    with sections.section("outer"):
        time.sleep(0.02)
        with sections.section("inner"):
            time.sleep(0.05)
    assert 0.045 < sections.seconds["inner"] < 0.2
    assert 0.015 < sections.seconds["outer"] < 0.045  # the inner 50 ms are not counted twice
    assert sections.per_item(2)["inner"] == pytest.approx(500 * sections.seconds["inner"])


def test_listen_hears_ranges_of_functions_generators_and_threads_then_stops():
    sections = Sections()

    @timed("step")
    def step(x):
        return x + 1

    def items(n):
        for i in range(n):
            time.sleep(0.01)
            yield i

    with listen(sections.section):
        assert step(1) == 2
        assert list(timed_items("items", items(3))) == [0, 1, 2]
        worker = threading.Thread(target=step, args=(2,))
        worker.start()
        worker.join()
    assert step(3) == 4  # no listener any more: not counted
    assert sections.calls == {"step": 2, "items": 4}  # 3 items and the final StopIteration
    assert sections.seconds["items"] >= 0.03


def test_the_profiled_code_marks_its_stages():
    """Every stage the breakdown reports is a range the code itself marks (nothing is patched in)."""
    sections = Sections()
    model = CDVDTSP(TINY).eval()
    with listen(sections.section):
        list(profiling.StreamingEngine(model).run(torch.rand(6, 3, 32, 32).split(3)))
    assert set(sections.calls) == {"flow", "warp + TSP", "restoration", "engine other"}


def test_busy_share_is_the_union_of_intervals():
    assert busy_share([(0, 1), (0.5, 1.5), (3, 4)], 4.0) == pytest.approx(2.5 / 4)
    assert busy_share([], 1.0) == 0.0
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}


def test_cached_engine_counts_half_the_official_macs():
    macs = count_macs(CDVDTSP(), 256, 256)
    assert macs["cached"] / macs["official"] == pytest.approx(0.498, abs=0.002)
    assert macs["official"] / 1e9 == pytest.approx(346.7, abs=0.1)  # the figure in README


def test_engine_flops_on_meta_match_the_schedules():
    model, config = CDVDTSP(TINY), profiling.DeblurConfig()
    counts = profiling.engine_flops(model, 12, 32, 32, config)
    per_frame = count_macs(model, 32, 32)
    assert counts["naive"] == pytest.approx(2 * 12 * per_frame["official"])
    assert 0.45 < counts["engine"] / counts["naive"] < 0.75  # borders add positions on a short clip


def test_check_result_rejects_malformed_results():
    good = {"mode": "model", "unit": "frame", "ratios": {}, "notes": [], "configurations": [
        {"name": "a", "items": 1, "rate": {"median": 2, "min": 1, "max": 3},
         "ms_per_item": {"median": 2, "min": 1, "max": 3},
         "stages": {"flow": {"ms_per_item": 1.0, "thread": "compute"}},
         "memory": {"host_mb": 1.0, "gpu_mb": None}}]}
    assert profiling.check_result(good) is good
    for broken in ({**good, "mode": "nap"}, {**good, "configurations": []},
                   {**good, "configurations": [{**good["configurations"][0], "rate": {"median": 1}}]},
                   {**good, "configurations": [{**good["configurations"][0],
                                                "stages": {"x": {"ms_per_item": 1, "thread": "gpu"}}}]}):
        with pytest.raises(ValueError):
            profiling.check_result(broken)


def test_every_mode_on_a_tiny_clip(tmp_path):
    out, chart = tmp_path / "profile.json", tmp_path / "profile.png"
    code = main(["all", "--size", "32x24", "--frames", "6", "--repeats", "1", *TINY_ARGS,
                 "--set", "train.batch=1",
                 "--crop", "32", "--clips", "2", "--clip-frames", "6", "--batch-size", "2", "--batches", "1",
                 "--steps", "1", "--workers", "1", "--threads", "1", "--json", str(out),
                 "--chart", str(chart)])
    assert code == 0
    document = json.loads(out.read_text())
    assert {"date", "commit", "device", "command", "settings", "results"} <= set(document)
    assert list(document["results"]) == list(profiling.MODES)
    for result in document["results"].values():
        profiling.check_result(result)
    model = document["results"]["model"]
    names = [c["name"] for c in model["configurations"]]
    assert names == ["engine fp32", "naive windows fp32"]
    engine = model["configurations"][0]
    assert {"flow", "warp + TSP", "restoration", "engine other"} == set(engine["stages"])
    assert engine["achieved_tflops"] > 0 and engine["tflops_counted"] > 0
    assert 0.3 < model["ratios"]["engine / naive FLOPs"] < 0.8
    decoders = {c["reader"] for c in document["results"]["decode"]["configurations"]}
    assert {"pyav", "dali-cpu"} <= decoders  # the VP9 copy lets DALI's CPU reader be compared
    stages = document["results"]["end-to-end"]["configurations"][0]["stages"]
    assert {"decode", "encode", "flow", "restoration"} <= set(stages)
    assert stages["decode"]["thread"] == "decode" and stages["encode"]["thread"] == "encode"
    loaders = [c["name"] for c in document["results"]["ingest"]["configurations"]]
    assert any(name.startswith("DALI") for name in loaders) and loaders[-1].startswith("PNG")
    train = document["results"]["train"]
    assert {"forward", "loss", "backward", "optimizer"} <= set(train["configurations"][0]["stages"])
    assert "data wait" in train["configurations"][1]["stages"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trace_is_written(tmp_path):
    trace = tmp_path / "trace.json"
    assert main(["model", "--size", "16x16", "--frames", "3", "--repeats", "1", *TINY_ARGS,
                 "--trace", str(trace)]) == 0
    assert "traceEvents" in json.loads(trace.read_text())


def test_bad_clip_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["decode", "--clip", str(tmp_path / "missing.mp4")]) == 2
    error = capsys.readouterr().out.strip()
    assert error.startswith("error:") and "missing.mp4" in error and "\n" not in error


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_profile_reports_busy_share_memory_and_bf16_difference(tmp_path):
    out = tmp_path / "profile.json"
    assert main(["model", "end-to-end", "--device", "cuda", "--size", "128x96", "--frames", "8",
                 "--repeats", "1", "--precision", "fp32", "bf16", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    for mode in ("model", "end-to-end"):
        share = next(v for k, v in results[mode]["ratios"].items() if k.startswith("GPU busy share"))
        assert 0 < share <= 1
        assert all(c["memory"]["gpu_mb"] > 0 for c in results[mode]["configurations"])
    bf16 = next(c for c in results["model"]["configurations"] if c["name"] == "engine bf16")
    assert bf16["psnr_vs_fp32_db"] is None or bf16["psnr_vs_fp32_db"] > 25  # None: identical after rounding


def test_unknown_modes_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["nap"])
    assert exit_.value.code == 2 and "unknown mode 'nap'" in capsys.readouterr().err


def test_a_skipped_zero_flow_net_is_not_counted():
    """A zero-flow model runs no PWC-Net: at T=2 its official count is less by 8 frames' pyramids
    (5 in stage 1, 3 in stage 2) and 8 flow decodes (2 per restored position)."""
    model = CDVDTSP(TINY)
    computed = count_macs(model, 64, 64)
    zero_flow_(model.flow)
    skipped = count_macs(model, 64, 64)
    frame, pwc = torch.empty(1, 3, 64, 64, device="meta"), CDVDTSP(model.config).to("meta").flow

    def macs(fn, *args):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            fn(*args)
        return counter.get_total_flops() / 2

    pyramid = macs(pwc.features, frame)
    decode = macs(pwc, frame, frame) - 2 * pyramid
    assert computed["official"] - skipped["official"] == pytest.approx(8 * pyramid + 8 * decode)
