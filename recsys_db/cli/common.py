"""What every command module of the CLI shares: the consoles, errors, progress bars, --config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

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


class Result(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


def report(result: Result, as_json: bool, text: str) -> None:
    """A command's result: one JSON object of `result.as_dict()` with --json, else `text`."""
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        out.print(text)


def fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def bar(description: str, bytes_: bool = False) -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    amount = DownloadColumn() if bytes_ else MofNCompleteColumn()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), amount,
                    TimeRemainingColumn(), console=console, transient=False,
                    disable=not console.is_terminal)
