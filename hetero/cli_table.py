"""`hetero table RUN_FOLDER_OR_STORE [--sort COL] [--filter "ion==Li"] [--out DIR]`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Collect a campaign's store into the screening table.", no_args_is_help=True)


@app.command("table")
def table(
    source: Path = typer.Argument(..., help="Run folder (holding store.json) or a JSON store file."),
    sort: str = typer.Option(None, "--sort", help="Column(s) to sort by, comma-separated; '-col' = descending."),
    filter_: list[str] = typer.Option(None, "--filter", help='Row filter, e.g. "ion==Li" or "e_ads_eV<-1"; repeatable.'),
    out: Path = typer.Option(None, "--out", help="Folder for screening.csv/.parquet/.md (default: print only)."),
    formats: str = typer.Option("csv,parquet,md", "--formats", help="Comma-separated: csv, parquet, md, json."),
    nu_hz: float = typer.Option(1e13, "--nu-hz", help="Attempt frequency for D = a^2 nu exp(-Ea/kT)."),
    temperature_k: float = typer.Option(300.0, "--temperature-k", help="Temperature for D."),
    compare: bool = typer.Option(False, "--compare", help="Also print (and write) per-site E_ads beside the study's published values."),
) -> None:
    """Build the screening table from a store and print/write it."""
    from hetero.io.store import load_run
    from hetero.table import build_table, compare_with_published, write_table

    try:
        run = load_run(source)  # read once: the table and the comparison share it
        df = build_table(run, nu_Hz=nu_hz, temperature_K=temperature_k, sort=sort, filters=filter_ or None)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if out is not None:
        paths = write_table(df, out, formats=tuple(f.strip() for f in formats.split(",") if f.strip()))
        for fmt, p in paths.items():
            typer.echo(f"{fmt}: {p}")
    shown = [c for c in ("system", "ion", "site", "path", "e_ads_reference", "e_ads_eV", "ocv_V", "barrier_eV",
                         "band_gap_eV", "work_function_eV", "status") if c in df.columns]
    typer.echo(f"{len(df)} rows")
    if len(df):
        typer.echo(df[shown].dropna(axis=1, how="all").head(50).to_string(index=False))

    if compare:
        cmp_df = compare_with_published(run)
        typer.echo("\nadsorption energies: this work vs published (literature)")
        typer.echo(cmp_df.to_string(index=False) if len(cmp_df) else "no adsorption results yet")
        moved = cmp_df[cmp_df.ended_at.notna() & (cmp_df.ended_at != cmp_df.site)] if len(cmp_df) else cmp_df
        for _, r in moved.iterrows():
            typer.echo(f"note: the ion started on {r.site} ended at {r.ended_at}: its row is not a {r.site} energy")
        if out is not None and len(cmp_df):
            out.mkdir(parents=True, exist_ok=True)
            cmp_df.to_csv(out / "comparison_published.csv", index=False)
            (out / "comparison_published.md").write_text(cmp_df.to_markdown(index=False, floatfmt=".3f") + "\n")


def compare(  # registered on the main app as `hetero compare` (this module's own app stays one command: `table`)
    sources: list[Path] = typer.Argument(..., help="Run folders (or exported examples) of one study, e.g. each "
                                         "side alone and the stack."),
    out: Path = typer.Option(None, "--out", help="Folder for study_comparison.csv / .md (default: print only)."),
) -> None:
    """A study system by system: each campaign's best site, gap and work function beside the published values."""
    from hetero.table import study_comparison, study_orderings

    try:
        cmp_df = study_comparison(sources)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if not len(cmp_df):
        typer.echo("no results yet in " + ", ".join(map(str, sources)))
        raise typer.Exit(code=1)
    shown = ["system", "n_atoms", "quantity", "this_work", "detail", "engine", "published", "published_system"]
    typer.echo(cmp_df[shown].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    refs = cmp_df.dropna(subset=["published_reference"]).published_reference.unique()
    typer.echo("published reference state: " + ("; ".join(refs) if len(refs) else "-"))
    orderings = study_orderings(cmp_df)
    for line in orderings:
        typer.echo(line)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        cmp_df.to_csv(out / "study_comparison.csv", index=False)
        (out / "study_comparison.md").write_text(cmp_df.to_markdown(index=False, floatfmt=".3f") + "\n\n"
                                                 + "".join(f"- {line}\n" for line in orderings))
        typer.echo(f"written: {out / 'study_comparison.csv'}, {out / 'study_comparison.md'}")


if __name__ == "__main__":
    app()
