"""The console commands (``cdvd-deblur``, ``cdvd-train``, ...); ``python scripts/NAME.py`` runs the same.

Each is ``get_args_parser()`` and ``main(argv=None) -> int``: its phases in order, and every expected
failure reported by `fail` as one line and a non-zero exit status.
"""
from rich.console import Console
from rich.markup import escape


def fail(console: Console, error: BaseException | str) -> int:
    """Print ``error: <what went wrong>`` as one line on ``console``; the exit status of a failed command."""
    console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
    return 2
