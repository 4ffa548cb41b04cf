"""`hetero submit | status | resume | cancel | runner`: campaigns on Slurm, PBS or SGE clusters."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()

TARGET_HELP = "campaign file (with --preset/--runs-dir as given to submit) or its run folder"


def _errors():
    from hetero.campaigns import CampaignError
    from hetero.hpc.profile import HpcProfileError
    from hetero.hpc.remote import HpcError

    errs: tuple = (CampaignError, HpcProfileError, HpcError)
    try:
        from hetero.engines.settings import PresetError, SettingsError

        errs += (PresetError, SettingsError)
    except ImportError:
        pass
    return errs


def _fail(exc: Exception) -> None:
    from hetero.hpc.remote import FollowStopped

    if isinstance(exc, FollowStopped):
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(130)
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


def _fmt_s(s: float | None) -> str:
    if s is None:
        return ""
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _print_rows(rows: list[dict], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("id", "job", "kind", "state", "queue id", "cores", "walltime", "run time", "reason"):
        table.add_column(col, overflow="fold")
    colour = {"COMPLETED": "green", "FAILED": "red", "REMOTE_ERROR": "red", "USER_STOPPED": "yellow",
              "RUNNING": "cyan", "SUBMITTED": "blue"}
    for r in rows:
        c = colour.get(r["state"])
        state = f"[{c}]{r['state']}[/{c}]" if c else r["state"]
        table.add_row(str(r["db_id"]), r["name"], r["kind"], state, r["queue_id"] or "", str(r["cores"] or ""),
                      r["walltime"] or "", _fmt_s(r["run_s"]), r["reason"])
    console.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    console.print(", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())))


def _finish(rows: list[dict], run_dir: Path) -> None:
    from hetero.hpc.remote import ACTIVE_STATES

    bad = [r for r in rows if r["state"] != "COMPLETED" and r["state"] not in ACTIVE_STATES]
    if bad:
        console.print(f"[red]{len(bad)} job(s) did not finish[/red] ({', '.join(r['name'] for r in bad[:5])}"
                      f"{', ...' if len(bad) > 5 else ''}); see `hetero status {run_dir}`, then `hetero resume {run_dir}`")
        raise typer.Exit(1)
    console.print(f"[green]done[/green]: results in {run_dir}/store.json (hetero table {run_dir})")


def _print_plan(steps: list[dict]) -> None:
    table = Table(title="one queue job per step", title_justify="left")
    for col in ("job", "kind", "atoms", "images", "cores", "nodes", "walltime", "worker"):
        table.add_column(col)
    for r in steps:
        table.add_row(r["name"], r["kind"], str(r["n_atoms"] or ""), str(r["n_images"] or ""), str(r["cores"]),
                      str(r["nodes"]), r["walltime"], r["worker"])
    console.print(table)
    shown = set()
    for r in steps:
        if r["script"] and r["kind"] not in shown:
            shown.add(r["kind"])
            console.rule(f"{r['kind']}: {r['name']}")
            console.print(r["script"], markup=False, highlight=False)


def submit_command(
    campaign: Path = typer.Argument(..., help="campaign file, e.g. workflows/na_vn001.yaml"),
    profile: str = typer.Option("slurm", help="HPC profile: configs/hpc/<name>.yaml (slurm, pbs, sge, slurm-local) "
                                "or a YAML file"),
    preset: str = typer.Option(None, help="compute preset (default: the campaign's)"),
    runs_dir: Path = typer.Option(Path("runs"), help="run folders, on a file system the compute nodes see"),
    size: str = typer.Option(None, help="model size from the builder preset: fast | standard"),
    single_allocation: bool = typer.Option(False, "--single-allocation",
                                           help="one batch script running the whole campaign (no database needed)"),
    now: bool = typer.Option(False, "--now", help="with --single-allocation: also submit the script"),
    wait: bool = typer.Option(None, "--wait/--no-wait", help="follow the jobs here until they end (default: only "
                              "for the mongomock backend, which has no separate runner)"),
    timeout: float = typer.Option(None, help="with --wait: give up following after this many seconds"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print each step's resources and one submission script "
                                 "per kind of step; queue nothing"),
):
    """Send a campaign to a cluster queue: one job per step through jobflow-remote (or --single-allocation)."""
    errors = _errors()
    if dry_run and not single_allocation:
        from hetero.hpc import remote

        try:
            steps = remote.dry_run(campaign, profile, preset=preset, runs_dir=runs_dir, size=size)
        except errors as exc:
            _fail(exc)
        _print_plan(steps)
        return
    if single_allocation:
        from hetero.campaigns import load_campaign
        from hetero.hpc.single import write_and_submit

        try:
            script, job_id = write_and_submit(campaign, profile, preset or load_campaign(campaign).preset, runs_dir,
                                              submit=now)
        except errors as exc:
            _fail(exc)
        console.print(f"script: {script}" + (f"; submitted: {job_id}" if job_id else
                                             "; submit it with sbatch/qsub or --now"))
        return
    from hetero.hpc import remote
    from hetero.hpc.resources import RULE_PREFIX

    try:
        record = remote.submit_campaign(campaign, profile, preset=preset, runs_dir=runs_dir, size=size)
    except errors as exc:
        _fail(exc)
    run_dir = Path(record["run_dir"])
    kinds: dict[str, list] = {}
    for key, p in record["plans"].items():
        if not key.startswith(RULE_PREFIX):  # rules for jobs made at run time are not jobs yet
            kinds.setdefault(p["kind"], []).append(p["cores"])
    summary = ", ".join(f"{len(c)} {k} ({min(c)}-{max(c)} cores)" if min(c) != max(c) else f"{len(c)} {k} ({c[0]} "
                        f"core{'s' if c[0] > 1 else ''})" for k, c in sorted(kinds.items()))
    console.print(f"submitted {record['jobs']} jobs to project {record['project']} ({record['backend']}): {summary}")
    if wait is None:
        wait = record["backend"] == "mongomock"
    if not wait:
        name = record["project"]
        console.print(f"the project's runner sends them to the queue: `jf runner start -p {name}` (daemon) or "
                      f"`hetero runner --profile {profile}`; follow with `hetero status {run_dir}`")
        return
    try:
        rows = remote.run_until_done(run_dir, progress=console.print, timeout_s=timeout)
    except errors as exc:
        _fail(exc)
    _finish(rows, run_dir)


def status_command(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    preset: str = typer.Option(None, help="compute preset the campaign was submitted with"),
    runs_dir: Path = typer.Option(Path("runs"), help="runs folder given to submit"),
):
    """Jobs of a submitted campaign: state, queue id, cores, walltime, run time and failure reason."""
    from hetero.hpc import remote

    try:
        run_dir = remote.resolve_run_dir(target, preset, runs_dir)
        record, rows = remote.status(run_dir)
    except _errors() as exc:
        _fail(exc)
    _print_rows(rows, f"{run_dir} - project {record['project']} ({record['backend']}), submitted {record['submitted_at']}")


def resume_command(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    preset: str = typer.Option(None, help="compute preset the campaign was submitted with"),
    runs_dir: Path = typer.Option(Path("runs"), help="runs folder given to submit"),
    wait: bool = typer.Option(None, "--wait/--no-wait", help="follow the jobs here until they end (default: only "
                              "for the mongomock backend)"),
    timeout: float = typer.Option(None, help="with --wait: give up following after this many seconds"),
):
    """Send failed, killed or cancelled jobs back to the queue; finished jobs are never recomputed."""
    from hetero.hpc import remote

    try:
        run_dir = remote.resolve_run_dir(target, preset, runs_dir)
        rerun, rows = remote.resume(run_dir, wait=wait, progress=console.print, timeout_s=timeout)
    except _errors() as exc:
        _fail(exc)
    console.print(f"requeued {len(rerun)} job(s)" + (f": {', '.join(map(str, rerun))}" if rerun else
                                                     " (nothing failed)"))
    if rows is not None:
        _finish(rows, run_dir)


def cancel_command(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    preset: str = typer.Option(None, help="compute preset the campaign was submitted with"),
    runs_dir: Path = typer.Option(Path("runs"), help="runs folder given to submit"),
):
    """Cancel the campaign's queued and running jobs (scancel/qdel); `hetero resume` restarts them."""
    from hetero.hpc import remote

    try:
        run_dir = remote.resolve_run_dir(target, preset, runs_dir)
        stopped = remote.cancel(run_dir)
    except _errors() as exc:
        _fail(exc)
    console.print(f"cancelled {len(stopped)} job(s)" + (f": {', '.join(map(str, stopped))}" if stopped else ""))


def runner_command(
    profile: str = typer.Option("slurm", help="HPC profile whose jobflow-remote project to run"),
):
    """Run the profile's jobflow-remote runner in the foreground (Ctrl-C stops it); MongoDB backend."""
    from hetero.hpc import remote
    from hetero.hpc.profile import parse_profile

    try:
        prof = parse_profile(profile)
        if prof.store.backend != "mongodb":
            raise remote.HpcError("the mongomock backend has no separate runner: `hetero submit` and "
                                  "`hetero resume` follow their jobs themselves")
        q = remote.open_queue(prof)
    except _errors() as exc:
        _fail(exc)
    with q:
        console.print(f"runner of project {q.project_name}: Ctrl-C stops it (queued jobs keep running)")
        try:
            q.runner().run()
        except KeyboardInterrupt:
            console.print("runner stopped")
