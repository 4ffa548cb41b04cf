"""`hetero` command line: thin layer over campaigns, builders, table and figures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hetero.cli_build import app as build_app
from hetero.cli_structures import app as structures_app
from hetero.cli_figures import figures_command, report_command
from hetero.cli_hpc import cancel_command, resume_command, runner_command, status_command, submit_command
from hetero.cli_table import table as table_command

app = typer.Typer(help="Build, compute and screen battery heterostructures.", no_args_is_help=True)
app.add_typer(structures_app, name="structures", help="The material library and user structures.")
app.add_typer(build_app, name="build", help="Interfaces, slabs, adsorption sites and migration paths.")
app.command("table", help="Collect a run folder's store into the screening table (CSV/Parquet/Markdown).")(table_command)
app.command("figures", help="Redraw every figure (PNG + PDF) of a run folder from its store.")(figures_command)
app.command("report", help="One self-contained HTML page: table, figures, settings, provenance.")(report_command)
console = Console()


@app.command()
def run(
    campaign: Path = typer.Argument(..., help="campaign file, e.g. workflows/na_vn001.yaml"),
    preset: str = typer.Option(None, help="compute preset (configs/<engine>/*.yaml): fast | standard | ..."),
    engine: str = typer.Option(None, help="run on another engine than the campaign's: gpaw | vasp | mlip | mlip:sevennet"),
    runs_dir: Path = typer.Option(Path("runs"), help="where run folders and the store live"),
    size: str = typer.Option(None, help="model size from the builder preset: fast | standard"),
    cores: int = typer.Option(None, help="MPI ranks per DFT run (default: all local cores or SLURM_NTASKS)"),
    add_step: list[str] = typer.Option(None, "--add-step", help="run a step the campaign file does not list, e.g. "
                                       "--add-step coverage (same run folder: finished steps are reused)"),
):
    """Run a campaign locally; finished steps are reused, results go to <runs>/<name>-<preset>/store.json.

    Exit status: 0 when every job finished, 1 when any failed or was skipped (listed), 2 for bad input."""
    import os

    from hetero.builders.common import BuildError
    from hetero.campaigns import CampaignError, RunFailed, run_campaign
    from hetero.engines import EngineCapabilityError, ModelTooLargeError, SettingsError

    if cores:
        os.environ["HETERO_CORES"] = str(cores)
    try:
        root = run_campaign(campaign, preset=preset, runs_dir=runs_dir, size=size, add_steps=add_step or (),
                            engine=engine)
    except (CampaignError, SettingsError, EngineCapabilityError, ModelTooLargeError, BuildError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    except RunFailed as exc:
        console.print(f"[red]incomplete:[/red] {exc}")
        raise typer.Exit(1)
    console.print(f"[green]done[/green]: every job finished; results in {root}/store.json")


@app.command("new-campaign")
def new_campaign(
    film: str = typer.Argument(..., help="film: library name (hetero structures list) or structure file"),
    substrate: str = typer.Argument(..., help="substrate: library name or structure file"),
    ion: str = typer.Option("Li", help="ion to adsorb / intercalate"),
    out_dir: Path = typer.Option(Path("workflows"), help="where to write the campaign file"),
    max_area: float = typer.Option(100.0, help="largest interface area searched (A^2)"),
    max_atoms: int = typer.Option(60, help="largest model accepted"),
    max_length_tol: float = typer.Option(None, help="ZSL lattice-vector length tolerance (pymatgen default 0.03)"),
    max_angle_tol: float = typer.Option(None, help="ZSL angle tolerance (default 0.01)"),
    max_area_ratio_tol: float = typer.Option(None, help="ZSL area-ratio tolerance (default 0.09)"),
):
    """Scaffold a campaign file for a new pair from the builders' best-ranked interface model."""
    from hetero.builders.common import BuildError
    from hetero.campaigns import CampaignError, scaffold_campaign

    tol = {k: v for k, v in (("max_length_tol", max_length_tol), ("max_angle_tol", max_angle_tol),
                             ("max_area_ratio_tol", max_area_ratio_tol)) if v is not None}
    try:
        path = scaffold_campaign(film, substrate, ion, out_dir, max_area=max_area, max_atoms=max_atoms, tolerances=tol)
    except (CampaignError, BuildError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    console.print(f"wrote {path}; run it with: hetero run {path} --preset fast")


app.command("submit")(submit_command)
app.command("status")(status_command)
app.command("resume")(resume_command)
app.command("cancel")(cancel_command)
app.command("runner")(runner_command)


@app.command()
def export(
    run_folder: Path = typer.Argument(..., help="a run folder (holding store.json)"),
    dest: Path = typer.Argument(..., help="where to copy the small outputs"),
):
    """Copy a run's store, settings, logs and small grids (no wavefunctions or full densities)."""
    from hetero.export import export_run

    try:
        summary = export_run(run_folder, dest)
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    console.print(f"copied {summary['copied']} files to {dest} ({summary['skipped']} large files left behind)")


if __name__ == "__main__":
    app()
