"""`hetero figures RUN_FOLDER` and `hetero report RUN_FOLDER`: redraw from the store, no recomputation.

`figures_command` / `report_command` are plain functions (the main CLI mounts them); `app` wraps both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hetero.io.store import STORE_FILENAME

console = Console()
app = typer.Typer(help="Figures and the HTML report of a run folder.", no_args_is_help=True)


def _check(run_folder: Path) -> None:
    if not (Path(run_folder) / STORE_FILENAME).exists():
        console.print(f"[red]error:[/red] no store.json in {run_folder}: give a run folder written by "
                      "`hetero run` (runs/<campaign>-<preset>/)")
        raise typer.Exit(2)


def _print_skipped_and_warnings(fs) -> None:
    for name, why in fs.skipped:
        console.print(f"[yellow]skipped[/yellow] {name}: {why}")
    for name, why in fs.warnings:
        console.print(f"[red]warning[/red] {name}: {why}")


def figures_command(
    run_folder: Annotated[Path, typer.Argument(help="run folder holding store.json (runs/<campaign>-<preset>)")],
    out: Annotated[Path | None, typer.Option(help="output folder (default RUN_FOLDER/figures)")] = None,
    isovalue: Annotated[float, typer.Option(help="CDD isosurface value (e/A^3)")] = 0.007,
):
    """Write PNG + PDF figures (DOS, CDD, Bader, E_ads, NEB, screening map, models) from the store."""
    from hetero.plots import make_figures

    _check(run_folder)
    fs = make_figures(run_folder, out=out, isovalue=isovalue)
    for stem in fs.figures:
        console.print(f"[green]wrote[/green] {stem}.png / .pdf")
    _print_skipped_and_warnings(fs)
    console.print(f"{len(fs.figures)} figures in {fs.out_dir}, {len(fs.skipped)} skipped")
    return fs


def report_command(
    run_folder: Annotated[Path, typer.Argument(help="run folder holding store.json")],
    out: Annotated[Path | None, typer.Option(help="output folder (default RUN_FOLDER/report)")] = None,
    isovalue: Annotated[float, typer.Option(help="CDD isosurface value (e/A^3) for the redrawn figures")] = 0.007,
    embed: Annotated[bool, typer.Option(help="embed the PNGs in the HTML (base64) instead of relative links")] = False,
):
    """Write RUN_FOLDER/report/index.html: table, figures, settings per step, provenance, published vs ours."""
    from hetero.report import build_report

    _check(run_folder)
    path, fs = build_report(run_folder, out=out, isovalue=isovalue, embed=embed)
    _print_skipped_and_warnings(fs)
    console.print(f"[green]report[/green]: {path}")
    return path


app.command("figures")(figures_command)
app.command("report")(report_command)

if __name__ == "__main__":
    app()
