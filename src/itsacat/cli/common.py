"""What every command shares: settings, one-line errors, JSON output."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from itsacat.settings import Settings

MAX_PIPE_WIDTH = 250  # characters per table line when stdout is not a terminal


def settings_from(args) -> Settings:
    """Build the settings from `--home` when given, otherwise from the environment."""
    return Settings.from_env(getattr(args, "home", None))


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Print rows as a table on stdout; None prints as a dash, floats with 4 decimals."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        # Pipes and logs get whole values on one line each, never cut to 80 columns.
        console = Console(width=MAX_PIPE_WIDTH)
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text() keeps values such as paths with brackets from being read as rich markup.
        table.add_row(*(Text(_cell(value)) for value in row))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
