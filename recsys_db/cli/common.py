"""What every command module of the CLI shares: the consoles, errors, progress bars, --config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)  # messages, progress
out = Console()  # results

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Settings file (default: $RECSYS_CONFIG, ./recsys.toml, "
                     "$RECSYS_HOME/recsys.toml).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def bar(description: str, bytes_: bool = False) -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    amount = DownloadColumn() if bytes_ else MofNCompleteColumn()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), amount,
                    TimeRemainingColumn(), console=console, transient=False,
                    disable=not console.is_terminal)
