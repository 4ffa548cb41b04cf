"""`hetero` command line: thin layer over campaigns, builders, table and figures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hetero.cli_build import app as build_app
from hetero.cli_structures import app as structures_app
from hetero.cli_figures import figures_command, report_command
from hetero.cli_hpc import cancel_command, resume_command, runner_command, status_command, submit_command
from hetero.cli_table import compare as compare_command
from hetero.cli_table import table as table_command

app = typer.Typer(help="Build, compute and screen battery heterostructures.", no_args_is_help=True)
app.add_typer(structures_app, name="structures", help="The material library and user structures.")
app.add_typer(build_app, name="build", help="Interfaces, slabs, adsorption sites and migration paths.")
console = Console()


def bad_input_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean the user's input (files, settings, set-up) is wrong: one line, exit 2."""
    from hetero.builders.common import BuildError
    from hetero.campaigns import CampaignError
    from hetero.engines import EngineCapabilityError, ModelTooLargeError, SettingsError
    from hetero.io.runlock import RunFolderBusy
    from hetero.io.store import StoreCorruptError
    from hetero.preflight import EngineSetupError
    from hetero.structures import StructureInputError

    return (CampaignError, SettingsError, EngineCapabilityError, ModelTooLargeError, BuildError, StructureInputError,
            EngineSetupError, RunFolderBusy, StoreCorruptError)


def fail(exc: BaseException, code: int = 2) -> None:
    """Print ``error: <message>`` on one line (no markup, no wrapping) and exit."""
    from rich.text import Text

    console.print(Text("error: ", style="red") + Text(" ".join(str(exc).split())), soft_wrap=True)
    raise typer.Exit(code)


def _exits_2_on_bad_store(command):
    """figures/report on a corrupt or missing store: the one-line error, not a traceback."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from hetero.io.store import StoreCorruptError

        try:
            return command(*args, **kwargs)
        except (StoreCorruptError, FileNotFoundError) as exc:
            fail(exc)

    return wrapper


app.command("table", help="Collect a run folder's store into the screening table (CSV/Parquet/Markdown).")(table_command)
app.command("compare", help="One study system by system (each side alone, the stack) beside the published values.")(
    compare_command)
app.command("figures", help="Redraw every figure (PNG + PDF) of a run folder from its store.")(
    _exits_2_on_bad_store(figures_command))
app.command("report", help="One self-contained HTML page: table, figures, settings, provenance.")(
    _exits_2_on_bad_store(report_command))


@app.command()
def run(
    campaign: Path = typer.Argument(..., help="campaign file, e.g. workflows/na_vn001.yaml"),
    preset: str = typer.Option(None, help="compute preset (configs/<engine>/*.yaml): fast | standard | ..."),
    engine: str = typer.Option(None, help="run on another engine than the campaign's: gpaw | vasp | mlip | mlip:sevennet"),
    geometry: str = typer.Option(None, help="relax on an MLIP (mlip:chgnet | mlip:sevennet), everything else on the "
                                 "engine: a cheap DFT//MLIP first look, labelled so in the table (own run folder)"),
    runs_dir: Path = typer.Option(Path("runs"), help="where run folders and the store live"),
    size: str = typer.Option(None, help="model size from the builder preset: fast | standard"),
    cores: int = typer.Option(None, help="MPI ranks per DFT run (default: all local cores or SLURM_NTASKS)"),
    add_step: list[str] = typer.Option(None, "--add-step", help="run a step the campaign file does not list, e.g. "
                                       "--add-step coverage (same run folder: finished steps are reused)"),
    skip_step: list[str] = typer.Option(None, "--skip-step", help="put an analysis off to a later run, e.g. "
                                        "--skip-step cdd: every site's E_ads first; a run without it adds the CDD "
                                        "and reuses every static"),
    dry_run: bool = typer.Option(False, "--dry-run", help="VASP: write every input folder that can be written now "
                                 "(no POTCARs needed, nothing runs) and list what waits for earlier results"),
    wait: bool = typer.Option(False, "--wait", help="if another hetero run holds the run folder, wait for it to "
                              "finish instead of refusing"),
    report: bool = typer.Option(False, "--report", help="after a complete run also write the table (RUN/table), "
                                "the figures and the HTML report (RUN/report/index.html)"),
    reuse_from: list[Path] = typer.Option(None, "--reuse-from", help="another run folder: its finished tasks that are "
                                          "the same calculation (same place, same task hash: host, references, "
                                          "sites) are linked in, not recomputed"),
):
    """Run a campaign locally; finished steps are reused, results go to <runs>/<name>-<preset>/store.json.

    Exit status: 0 when every job finished, 1 when any failed or was skipped (listed), 2 for bad input."""
    import os

    from hetero.builders.common import BuildError
    from hetero.campaigns import CampaignError, RunFailed, prepare_campaign, run_campaign
    from hetero.engines import EngineCapabilityError, ModelTooLargeError, SettingsError

    if cores:
        os.environ["HETERO_CORES"] = str(cores)
    if dry_run:
        from hetero.dryrun import dry_run_flow

        try:
            _camp, _preset, eng, root, flow, _models = prepare_campaign(campaign, preset, runs_dir, size,
                                                                        add_step or (), engine,
                                                                        skip_steps=skip_step or ())
        except (CampaignError, SettingsError, EngineCapabilityError, BuildError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2)
        if eng.name != "vasp":
            console.print(f"[red]error:[/red] --dry-run writes VASP input folders; add --engine vasp (this campaign "
                          f"runs on {eng.label})")
            raise typer.Exit(2)
        report = dry_run_flow(flow, root / "dry_run.json")
        typer.echo(report.text())
        raise typer.Exit(1 if report.failed else 0)
    import warnings

    from hetero.progress import format_s, next_steps

    if cores is not None and cores < 1:
        fail(ValueError(f"--cores {cores}: give the number of MPI ranks per DFT run, 1 or more"))
    # library chatter that says nothing about the run: jobflow's own deprecation, CHGNet's tensor note,
    # ASE's notice about its NEB default (hetero names the method it uses)
    warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="chgnet")
    warnings.filterwarnings("ignore", message="The default method has changed", category=UserWarning)
    try:
        root = run_campaign(campaign, preset=preset, runs_dir=runs_dir, size=size, add_steps=add_step or (),
                            engine=engine, progress=True, wait=wait, geometry=geometry, skip_steps=skip_step or (),
                            reuse_from=reuse_from or ())
    except bad_input_errors() as exc:
        fail(exc)
    except RunFailed as exc:
        console.print(f"[red]incomplete:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    import json

    summary = json.loads((root / "run_summary.json").read_text())
    console.print(f"[green]done[/green]: every job finished ({summary['jobs_finished']} jobs, "
                  f"{format_s(summary['wall_s'])})", highlight=False)
    record = json.loads((root / "campaign.json").read_text())
    used_preset = record.get("preset_used", "")
    if record.get("steps_deferred"):
        console.print(f"put off: {', '.join(record['steps_deferred'])}; the same command without --skip-step adds "
                      "them (finished statics are reused)", highlight=False)
    if reuse_from and (root / "reused_tasks.tsv").exists():
        n = len((root / "reused_tasks.tsv").read_text().splitlines())
        console.print(f"reused: {n} finished tasks linked from other run folders (listed in {root}/reused_tasks.tsv)",
                      highlight=False, soft_wrap=True)
    from hetero.io.store import steps_not_run

    not_run = [f"{step}: {why}" for step, why in (record.get("steps_not_available") or {}).items()]
    for line in not_run + steps_not_run(root / "store.json"):
        console.print(f"not run: {line}", highlight=False, markup=False, soft_wrap=True)
    if report:
        _table_figures_report(root)
    lines = next_steps(root, used_preset)
    for line in (lines[:1] + [f"report:  {root}/report/index.html"] + lines[2:]) if report else lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def _table_figures_report(root: Path) -> None:
    from hetero.plots import make_figures
    from hetero.report import build_report
    from hetero.table import build_table, write_table

    df = build_table(root)
    paths = write_table(df, root / "table")
    console.print(f"table: {len(df)} rows -> {paths.get('csv', root / 'table')}", highlight=False)
    fs = make_figures(root)
    console.print(f"figures: {len(fs.figures)} in {fs.out_dir}", highlight=False)
    build_report(root, figures=fs)


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
