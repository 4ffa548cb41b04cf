"""CLI sub-commands (filled in by the owner of this area)."""

import typer

app = typer.Typer(no_args_is_help=True)
