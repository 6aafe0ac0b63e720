"""The console commands (``cdvd-deblur``, ``cdvd-train``, ...); ``python scripts/NAME.py`` runs the same.

Each is ``get_args_parser()`` and ``main(argv=None) -> int``: its phases in order, and every expected
failure reported by `fail` as one line and a non-zero exit status.
"""
import argparse
from typing import NamedTuple

import torch
from rich.console import Console
from rich.markup import escape


def command_parser(doc: str) -> argparse.ArgumentParser:
    """A command's parser: its module docstring's first line as the description, the whole docstring
    (usage examples included) under ``--help``."""
    return argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


class FrameSize(NamedTuple):
    """A frame size as a command line gives it, ``WxH``; ``str()`` writes it back the same way."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def frame_size(text: str) -> FrameSize:
    """``WxH`` (``1280x720``, any case of the x) as a `FrameSize`; an argparse ``type=``, so that a bad
    value is the parser's one-line error."""
    try:
        width, height = (int(value) for value in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a frame size is WxH, such as 1280x720, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"a frame size needs a positive width and height, got {text!r}")
    return FrameSize(width, height)


def _device_name(text: str) -> str:
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a device: {text!r} (cpu, cuda or cuda:N)") from None
    return text


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``, checked as the parser reads it; unset, `pipeline.runtime.compute_device` picks."""
    parser.add_argument("--device", type=_device_name, help="cpu, cuda or cuda:N "
                        "(default: this process's GPU, cuda:LOCAL_RANK, if there is one, else cpu)")


def fail(console: Console, error: BaseException | str) -> int:
    """Print ``error: <what went wrong>`` as one line on ``console``; the exit status of a failed command."""
    console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
    return 2
