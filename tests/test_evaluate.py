"""scripts/evaluate.py end to end on tiny frame folders and lossless videos in temporary folders."""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from pipeline.cli.evaluate import main
from pipeline.data.datasets import VideoPaths, discover
from pipeline.data.scored import Video
from pipeline.evaluation import score

from .helpers import TINY

HEIGHT, WIDTH = 24, 32  # 16x24 after the 4-px crop: still larger than the 11x11 SSIM window


def _frames(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(20, 236, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(count)]


def _offset(frames: list[np.ndarray], delta: int) -> list[np.ndarray]:
    return [frame + np.uint8(delta) for frame in frames]


def _write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:05d}.png")
    return folder


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """Lossless FFV1 (RGB) in Matroska, so decoded frames equal ``frames``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr0"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture
def dvd(tmp_path) -> tuple[Path, Path]:
    """A DVD-style root ``{blur,gt}/<video>/`` with videos a (3 frames) and b (2), and restored folders.

    Restored a equals its ground truth; restored b is off by 5 everywhere; blurred input is off by 10.
    """
    root, restored = tmp_path / "DVD", tmp_path / "restored"
    for name, count, seed, delta in (("a", 3, 0, 0), ("b", 2, 1, 5)):
        gt = _frames(count, seed)
        _write_folder(root / "gt" / name, gt)
        _write_folder(root / "blur" / name, _offset(gt, 10))
        _write_folder(restored / name, _offset(gt, delta))
    return root, restored


def test_dvd_layout_json_and_csv(dvd, tmp_path):
    """Per-video, average (over frames) and per-frame figures for restored and input, in JSON and CSV."""
    root, restored = dvd
    out_json, out_csv = tmp_path / "out" / "scores.json", tmp_path / "out" / "frames.csv"
    assert main([str(root), "--restored", str(restored), "--blurred", "--json", str(out_json),
                 "--csv", str(out_csv)]) == 0

    doc = json.loads(out_json.read_text())
    assert set(doc) == {"sources", "protocol", "videos", "average", "frames"}
    assert doc["protocol"]["crop"] == 4
    assert [(v["video"], v["frames"]) for v in doc["videos"]] == [("a", 3), ("b", 2)]
    assert doc["videos"][0]["restored"] == {"psnr": None, "ssim": 1.0}  # identical: infinite PSNR -> null
    off_by = {delta: 20 * math.log10(255 / delta) for delta in (5, 10)}
    assert doc["videos"][1]["restored"]["psnr"] == pytest.approx(off_by[5])
    assert doc["average"]["frames"] == 5
    assert doc["average"]["input"]["psnr"] == pytest.approx(off_by[10])
    assert [(f["video"], f["frame"]) for f in doc["frames"]] == [("a", 0), ("a", 1), ("a", 2),
                                                                  ("b", 0), ("b", 1)]
    assert set(doc["frames"][0]) == {"video", "frame", "restored", "input"}

    with open(out_csv, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["video", "frame", "restored_psnr", "restored_ssim", "input_psnr", "input_ssim"]
    assert len(rows) == 5
    assert float(rows[0]["restored_psnr"]) == math.inf
    assert float(rows[3]["restored_psnr"]) == pytest.approx(off_by[5])


def test_gopro_layout_with_video_outputs(tmp_path):
    """``<root>/<video>/{blur,sharp}/`` is discovered; restored outputs may be files ``<video>.<ext>``."""
    root, restored = tmp_path / "GOPRO", tmp_path / "restored"
    for name, seed in (("GOPR0001", 2), ("GOPR0002", 3)):
        gt = _frames(2, seed)
        _write_folder(root / name / "sharp", gt)
        _write_folder(root / name / "blur", _offset(gt, 10))
        _write_video(restored / f"{name}.mkv", _offset(gt, 5))
    (root / "notes").mkdir()  # a folder without sharp/gt is not a video
    assert [(p.name, p.blurred.name) for p in discover(root)] == [("GOPR0001", "blur"), ("GOPR0002", "blur")]

    out_json = tmp_path / "scores.json"
    assert main([str(root), "--restored", str(restored), "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    assert [v["video"] for v in doc["videos"]] == ["GOPR0001", "GOPR0002"]
    assert "input" not in doc["average"]
    assert doc["average"]["restored"]["psnr"] == pytest.approx(20 * math.log10(255 / 5))


def test_plain_pair_of_videos_with_blurred_folder(tmp_path, capsys):
    """Ground truth and restored as single videos, the blurred input as a frame folder."""
    gt = _frames(3, 4)
    sharp = _write_video(tmp_path / "sharp.mkv", gt)
    restored = _write_video(tmp_path / "restored.mkv", _offset(gt, 5))
    blurred = _write_folder(tmp_path / "blurred", _offset(gt, 10))
    out_csv = tmp_path / "frames.csv"
    argv = [str(sharp), "--restored", str(restored), "--blurred", str(blurred), "--csv", str(out_csv)]
    assert main(argv) == 0
    assert "gain (dB)" in capsys.readouterr().out
    with open(out_csv, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["video"] for row in rows] == ["sharp"] * 3
    assert float(rows[0]["input_psnr"]) == pytest.approx(20 * math.log10(255 / 10))


def test_score_takes_any_restore_fn(dvd):
    """The restore_fn hook: any function giving a video's restored frames (here its ground truth) works."""
    root, _ = dvd
    videos = [Video.of(paths) for paths in discover(root)]
    restored, inputs = score(videos, lambda video: ("ground truth copy", video.sharp()))
    assert inputs is None
    assert restored.overall().frames == 5 and restored.overall().psnr == math.inf


def test_skip_ends_scores_only_the_inner_frames(tmp_path):
    """--skip-ends 2 (the paper's protocol) scores frames 2 .. N-3: here only those are restored exactly."""
    gt = _frames(7, 3)
    restored = [frame if 2 <= i < 5 else _offset([frame], 40)[0] for i, frame in enumerate(gt)]
    videos = [Video.of(VideoPaths("v", _write_folder(tmp_path / "gt", gt), None))]
    scores, _ = score(videos, lambda video: ("r", iter(restored)), skip_ends=2)
    assert scores.overall().frames == 3 and scores.overall().psnr == math.inf
    with pytest.raises(ValueError, match="no frames"):  # nothing left to score
        score(videos, lambda video: ("r", iter(restored)), skip_ends=4)[0].overall()
    with pytest.raises(ValueError, match="skip_ends"):
        score(videos, lambda video: ("r", iter(restored)), skip_ends=-1)


@pytest.mark.parametrize("damage, message", [
    (lambda restored: (restored / "b" / "00001.png").unlink(), "frame count mismatch"),
    (lambda restored: Image.new("RGB", (WIDTH, HEIGHT + 2)).save(restored / "b" / "00001.png"),
     "frame size mismatch at frame 1"),
])
def test_mismatch_exits_2_with_one_line(dvd, capsys, damage, message):
    """A frame count or size mismatch is a one-line error naming the restored path, exit code 2."""
    root, restored = dvd
    damage(restored)
    assert main([str(root), "--restored", str(restored)]) == 2
    out = capsys.readouterr().out
    assert message in out and str(restored / "b") in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


@pytest.mark.parametrize("args, message", [
    (["{root}", "--restored", "{tmp}/nowhere"], "no restored output for video 'a'"),
    (["{tmp}", "--restored", "{restored}"], "no evaluation videos"),
    (["{root}/gt/a", "--restored", "{restored}/a", "--blurred"], "--blurred needs a PATH"),
    (["{root}", "--restored", "{restored}", "--blurred", "{root}/blur"], "--blurred takes no PATH"),
])
def test_bad_input_exits_2(dvd, tmp_path, capsys, args, message):
    """Missing outputs, an unknown layout and a misused --blurred are one-line errors with exit code 2."""
    root, restored = dvd
    argv = [arg.format(root=root, restored=restored, tmp=tmp_path) for arg in args]
    assert main(argv) == 2
    assert message in capsys.readouterr().out


def test_script_exit_code_without_traceback(tmp_path):
    """Run as a script, bad input exits with status 2 and prints no traceback."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "evaluate.py"
    argv = [sys.executable, str(script), str(tmp_path / "missing"), "--restored", str(tmp_path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no such folder" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_checkpoint_runs_the_model_on_the_blurred_input(tmp_path):
    """--checkpoint restores the blurred sequence through the engine and scores it beside the input."""
    from model import save_checkpoint
    from pipeline.config import DeblurConfig
    from pipeline.metrics import psnr
    from pipeline.stream import restore_frames
    from pipeline.video.sequences import read_frames

    from .helpers import seeded_model

    model = seeded_model(TINY)
    save_checkpoint(model, tmp_path / "tiny.pt")
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    blurred = ((sharp.astype(np.uint16) + np.roll(sharp, 1, axis=0)) // 2).astype(np.uint8)
    for name, frames in (("gt", sharp), ("blur", blurred)):
        folder = tmp_path / name
        folder.mkdir()
        for i, image in enumerate(frames):
            Image.fromarray(image).save(folder / f"{i:05d}.png")
    report = tmp_path / "scores.json"
    code = main(["--checkpoint", str(tmp_path / "tiny.pt"), str(tmp_path / "gt"), "--blurred",
                     str(tmp_path / "blur"), "--json", str(report), "--set", "deblur.chunk=4"])
    assert code == 0
    document = json.loads(report.read_text())
    expected = np.stack(list(restore_frames(model, read_frames(tmp_path / "blur"), DeblurConfig(chunk=4))))
    scores = [psnr(image, target) for image, target in zip(expected, sharp)]
    assert abs(document["average"]["restored"]["psnr"] - float(np.mean(scores))) < 1e-9
