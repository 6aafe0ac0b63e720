"""The console commands (``cdvd-deblur``, ``cdvd-train``, ...); ``python scripts/NAME.py`` runs the same.

Each is ``get_args_parser()`` and ``main(argv=None) -> int``: its phases in order, and every expected
failure reported by `fail` as one line and a non-zero exit status.
"""
import argparse

from rich.console import Console
from rich.markup import escape


def command_parser(doc: str) -> argparse.ArgumentParser:
    """A command's parser: its module docstring's first line as the description, the whole docstring
    (usage examples included) under ``--help``."""
    return argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def fail(console: Console, error: BaseException | str) -> int:
    """Print ``error: <what went wrong>`` as one line on ``console``; the exit status of a failed command."""
    console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
    return 2
