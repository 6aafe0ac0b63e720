"""The options every command shares: a frame size and a device are checked as they are read."""
import pytest

from pipeline.cli import FrameSize, frame_size
from pipeline.cli.deblur import main as deblur
from pipeline.cli.flops import main as flops
from pipeline.cli.profiler import get_args_parser as profiler_parser


def test_a_frame_size_reads_and_writes_back_as_wxh():
    size = frame_size("1280X720")
    assert size == FrameSize(1280, 720) and (size.width, size.height) == (1280, 720)
    assert str(size) == f"{size}" == "1280x720"


@pytest.mark.parametrize("text", ["12", "axb", "1x2x3", "0x5", "64x-8", ""])
def test_a_bad_frame_size_is_the_parsers_one_line_error(text, capsys):
    with pytest.raises(SystemExit) as stop:
        flops(["--size", text])
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --size" in errors[0] and repr(text) in errors[0]


def test_a_command_gets_the_frame_size_it_was_given(capsys):
    assert flops(["--size", "64x48"]) == 0
    assert "64x48" in capsys.readouterr().out
    assert profiler_parser().parse_args(["model", "--size", "32X24"]).size == FrameSize(32, 24)


def test_a_bad_device_is_the_parsers_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        deblur([str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"), "--device", "gpu7"])
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --device" in errors[0] and "'gpu7'" in errors[0]
    assert not (tmp_path / "out.mp4").exists()
