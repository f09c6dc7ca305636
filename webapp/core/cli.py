"""What the operators' listing commands share: a `--status` filter and tab-separated rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., object])


def status_option(statuses: type[StrEnum]) -> Callable[[Command], Command]:
    """`--status`: only the rows with that status (default: every row)."""
    return click.option(
        "--status", type=click.Choice([status.value for status in statuses]), default=None
    )


def echo_rows(header: str, rows: Iterable[str], *, nothing: str, status: str | None) -> None:
    """The rows under their header, or "No <nothing>." ("... with status S." when filtered)."""
    lines = list(rows)
    if not lines:
        click.echo(f"No {nothing}" + (f" with status {status}." if status else "."))
        return
    click.echo(header)
    for line in lines:
        click.echo(line)
