"""`hetero` command line: thin layer over campaigns, builders, table and figures."""

from __future__ import annotations

import typer

from hetero.cli_build import app as build_app
from hetero.cli_structures import app as structures_app

app = typer.Typer(help="Build, compute and screen battery heterostructures.", no_args_is_help=True)
app.add_typer(structures_app, name="structures", help="The material library and user structures.")
app.add_typer(build_app, name="build", help="Interfaces, slabs, adsorption sites and migration paths.")

if __name__ == "__main__":
    app()
